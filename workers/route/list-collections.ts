// The router's step for deletecollection events whose answer was not recorded (audit level Metadata or
// Request, or an answer too long to carry): list what the (type, namespace) holds now, so the writer removes
// the files of the objects that are gone and keeps the others. Each (cluster, type, namespace) is listed
// once per batch, a few at a time, and only where some rule wants the event. A list that fails fails its
// events (retried, at last dead letters to replay): what was deleted is never guessed.
import type { CollectionLister, ListNamesOutcome } from '../../kube/list-object-names.js';
import type { IngestJob, ObjectIdentity } from '../../core/contracts.js';
import { identityOf } from '../../core/identity.js';

/** What became of a deletecollection's listing. */
export type CollectionListing = { kind: 'listed'; names: string[] } | { kind: 'failed'; reason: string };

export interface ListCollectionsOptions {
  listNames: CollectionLister;
  /** Whether the event is worth a list: no rule routing it, no list (the API server's limits are shared). */
  wanted: (identity: ObjectIdentity) => boolean;
  /** Lists in flight at once. @defaultValue 4 */
  concurrency?: number;
}

/** A deletecollection the router must list for: its answer named no deleted objects. */
export function needsListing(job: IngestJob): boolean {
  return job.verb === 'deletecollection' && job.deletedNames === undefined;
}

/** Per job of `batch`: the listing, or undefined when none was needed. */
export async function listCollections(batch: readonly IngestJob[], opts: ListCollectionsOptions): Promise<(CollectionListing | undefined)[]> {
  const out: (CollectionListing | undefined)[] = new Array(batch.length).fill(undefined);
  const todo: { i: number; key: string }[] = [];
  batch.forEach((job, i) => {
    if (!needsListing(job)) return;
    const identity = identityOf(job);
    if (!opts.wanted(identity)) return;
    todo.push({ i, key: JSON.stringify([job.clusterId, identity.group, identity.version, identity.resource, identity.namespace]) });
  });
  const lists = new Map<string, Promise<ListNamesOutcome>>();
  // A cluster that stayed unreachable through one list's retries is not tried again in this batch: its
  // events fail all the same (and are retried), without holding the router up once per namespace.
  const unreachable = new Map<string, string>();
  const list = async (job: IngestJob): Promise<ListNamesOutcome> => {
    const earlier = unreachable.get(job.clusterId);
    if (earlier) return { kind: 'failed', reason: `not tried, cluster ${job.clusterId} was unreachable for an earlier event of this batch: ${earlier}`, transient: true };
    const outcome = await opts.listNames(job).catch((err: unknown): ListNamesOutcome => ({ kind: 'failed', reason: err instanceof Error ? err.message : String(err), transient: false }));
    if (outcome.kind === 'failed' && outcome.transient) unreachable.set(job.clusterId, outcome.reason);
    return outcome;
  };
  const one = async ({ i, key }: { i: number; key: string }): Promise<void> => {
    let pending = lists.get(key);
    if (!pending) {
      pending = list(batch[i]!);
      lists.set(key, pending);
    }
    const outcome = await pending;
    out[i] = outcome.kind === 'listed' ? { kind: 'listed', names: outcome.names } : { kind: 'failed', reason: `list failed: ${outcome.reason}` };
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < todo.length) await one(todo[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, todo.length) }, worker));
  return out;
}
