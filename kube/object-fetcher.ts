// The router's way to read an event's object back: from the event's own cluster, with that cluster's
// client. The router stays ignorant of clients and credentials; the service hands it this function.
import type { IngestJob } from '../queues/contracts.js';
import type { ClusterClients } from './cluster-clients.js';
import { describeRef, fetchObject, type FetchObjectOptions, type FetchOutcome } from './fetch-object.js';
import { objectPath } from './object-path.js';

export type ObjectFetcher = (job: IngestJob) => Promise<FetchOutcome>;

export function createObjectFetcher(clients: ClusterClients, opts: FetchObjectOptions = {}): ObjectFetcher {
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
    return fetchObject(client, job.objectRef, opts);
  };
}
