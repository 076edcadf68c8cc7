// The router's way to read an event's object back: from the event's own cluster, with that cluster's
// client. The router stays ignorant of clients and credentials; the service hands it this function.
import type { IngestJob } from '../core/contracts.js';
import type { ClusterClients } from './cluster-clients.js';
import { describeRef, fetchObject, type FetchObjectOptions, type FetchOutcome } from './fetch-object.js';
import { objectPath } from './object-path.js';

export type ObjectFetcher = (job: IngestJob) => Promise<FetchOutcome>;

export interface ObjectFetcherOptions extends FetchObjectOptions {
  /**
   * After a cluster could not be reached, its reads fail at once for this long (the events are retried
   * with backoff): one router serves every cluster, and an unreachable one must not hold it for a timeout
   * with every batch. @defaultValue 15000
   */
  unreachableHoldMs?: number;
  now?: () => number;
}

export function createObjectFetcher(clients: ClusterClients, opts: ObjectFetcherOptions = {}): ObjectFetcher {
  const now = opts.now ?? Date.now;
  const holdMs = opts.unreachableHoldMs ?? 15_000;
  const unreachable = new Map<string, { until: number; reason: string }>();
  return async (job) => {
    // What names no object stays unaddressable whatever the cluster's client.
    const target = objectPath(job.objectRef);
    if (target.kind === 'unaddressable') return { kind: 'unaddressable', reason: target.reason };
    // Looked up per event, so a configuration change takes effect with the next event.
    const client = clients.get(job.clusterId);
    if (!client) {
      // A failure like any other: the event is retried and kept, to be replayed once the cluster has a client.
      const why = clients.whyNoClient(job.clusterId) ?? `cluster ${job.clusterId} has no API client`;
      return { kind: 'failed', reason: `cannot read ${describeRef(job.objectRef)}: ${why}`, transient: false };
    }
    const held = unreachable.get(job.clusterId);
    if (held && now() < held.until) {
      return { kind: 'failed', reason: `not tried: cluster ${job.clusterId} was unreachable moments ago (${held.reason})`, transient: true };
    }
    const outcome = await fetchObject(client, job.objectRef, opts);
    if (outcome.kind === 'failed' && outcome.transient) unreachable.set(job.clusterId, { until: now() + holdMs, reason: outcome.reason });
    else unreachable.delete(job.clusterId);
    return outcome;
  };
}
