// The router's first step on a batch: for each event that carried no object body but names one object
// that some rule wants, read the object back from its cluster, a few at a time, and put it into the
// event. Each object is read once per batch however many of its events the batch holds: they all get
// its current state anyway. Nothing is given up on a failed read: only an object that is gone, or an
// objectRef that addresses no object, leaves an event without a body; every other failure (unreachable,
// 401, 403, no client, credentials that could not be prepared) fails the event, so BullMQ retries it
// and at last keeps it as a dead letter to replay.
import type { ServiceMetrics } from '../../observability/metrics.js';
import type { FetchOutcome } from '../../kube/fetch-object.js';
import type { ObjectFetcher } from '../../kube/object-fetcher.js';
import type { IngestJob, ObjectIdentity, Operation } from '../../core/contracts.js';
import { storableObject } from '../../core/redact-secret.js';
import { identityKey } from '../../core/identity.js';
import { missingBody } from './normalize-event.js';

/** What became of an event's missing body. */
export type BodyFetch =
  | { kind: 'fetched' }
  /** There is nothing to read (the object is gone, the objectRef addresses none): the event has no body. */
  | { kind: 'absent'; reason: string }
  /** The read failed: the event fails with this reason (cluster, object, what is missing), to be retried. */
  | { kind: 'failed'; reason: string };

export interface FetchMissingBodiesOptions {
  fetchObject: ObjectFetcher;
  /** Whether the object is worth a request: no rule routing it, no read (the API server's limits are shared). */
  wanted: (identity: ObjectIdentity, operation: Operation) => boolean;
  /**
   * Counted once per read (or per read not tried for an unreachable cluster), not per event: found, gone
   * or failed. An objectRef that addresses no object is not read, and not counted.
   */
  metrics: Pick<ServiceMetrics, 'objectsFetched'>;
  /** Reads in flight at once. @defaultValue 8 */
  concurrency?: number;
}

export interface FilledBatch {
  /** The batch, with the fetched objects in place (other jobs are the same objects as before). */
  jobs: IngestJob[];
  /** Per job: undefined when nothing was to be fetched for it (it had a body, or no rule wants it). */
  fetches: (BodyFetch | undefined)[];
}

async function safely(fetchObject: ObjectFetcher, job: IngestJob): Promise<FetchOutcome> {
  try {
    return await fetchObject(job);
  } catch (err) {
    // A fetcher should answer, not throw; if it does, this event is the one that fails.
    return { kind: 'failed', reason: err instanceof Error ? err.message : String(err), transient: false };
  }
}

export async function fetchMissingBodies(batch: readonly IngestJob[], opts: FetchMissingBodiesOptions): Promise<FilledBatch> {
  const jobs = [...batch];
  const fetches: (BodyFetch | undefined)[] = new Array(jobs.length).fill(undefined);
  const todo: { i: number; key: string }[] = [];
  jobs.forEach((job, i) => {
    const missing = missingBody(job);
    if (missing && opts.wanted(missing.identity, missing.operation)) todo.push({ i, key: identityKey(missing.identity) });
  });
  // A cluster that stayed unreachable (or whose credentials could not be prepared) through one read's
  // retries is not tried again in this batch: each further read would hold the batch up for as long
  // again. Its events fail all the same, and are retried.
  const unreachable = new Map<string, string>();
  const reads = new Map<string, Promise<FetchOutcome>>();

  const read = async (job: IngestJob): Promise<FetchOutcome> => {
    const cluster = job.clusterId;
    const earlier = unreachable.get(cluster);
    const outcome: FetchOutcome = earlier
      ? { kind: 'failed', reason: `not tried, cluster ${cluster} was unreachable for an earlier event of this batch: ${earlier}`, transient: true }
      : await safely(opts.fetchObject, job);
    if (outcome.kind === 'failed' && outcome.transient && !earlier) unreachable.set(cluster, outcome.reason);
    if (outcome.kind !== 'unaddressable') opts.metrics.objectsFetched.inc({ cluster, outcome: outcome.kind });
    return outcome;
  };

  const fetchOne = async ({ i, key }: { i: number; key: string }): Promise<void> => {
    const job = jobs[i]!;
    let pending = reads.get(key);
    if (!pending) {
      pending = read(job);
      reads.set(key, pending);
    }
    const outcome = await pending;
    if (outcome.kind === 'found') {
      // Redacted again although the fetcher redacts: a Secret must never reach Valkey or Git in plaintext,
      // whatever fetcher the router was given.
      jobs[i] = { ...job, object: storableObject(outcome.object, job.objectRef) };
      fetches[i] = { kind: 'fetched' };
    } else if (outcome.kind === 'gone') {
      fetches[i] = { kind: 'absent', reason: `object no longer exists in cluster ${job.clusterId}` };
    } else if (outcome.kind === 'unaddressable') {
      fetches[i] = { kind: 'absent', reason: `no object body, and none can be read back from cluster ${job.clusterId}: ${outcome.reason}` };
    } else {
      fetches[i] = { kind: 'failed', reason: `fetch failed: ${outcome.reason}` };
    }
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < todo.length) await fetchOne(todo[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 8, todo.length) }, worker));
  return { jobs, fetches };
}
