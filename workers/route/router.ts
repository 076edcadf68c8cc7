// The router: the one consumer of the ingest queue at a time (an exclusive batch consumer under the
// router lease). For each stored audit event, in change order (core/change-order.ts), it normalizes the event, matches the
// compiled rules and prepares one write job per selected target; then it adds each partition's writes
// with one addBulk. The queue order (the order the API server sent the events) thereby becomes the order
// of every partition queue, and a batch costs a few round trips instead of a few per event. Events that
// carried no object body have it read back from their cluster first (workers/route/fetch-missing-bodies.ts); a
// deletecollection whose answer named no objects has its (type, namespace) listed (list-collections.ts), and
// it, like the delete of a namespace, becomes one write per target that removes many files
// (route/collection-writes.ts).
import { UnrecoverableError, type JobsOptions, type Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import type { ResolvedTarget } from '../../config/resolved-config.js';
import type { ServiceMetrics } from '../../observability/metrics.js';
import type { CollectionLister } from '../../kube/list-object-names.js';
import type { ObjectFetcher } from '../../kube/object-fetcher.js';
import { budgetField, type BudgetEntry, type ClusterBudget } from '../../queues/cluster-budget.js';
import { IngestJobSchema, type IngestJob, type IngestResult, type WriteJob } from '../../core/contracts.js';
import { HOLD, JobFailure, startExclusiveBatchConsumer, type ExclusiveBatchConsumer } from '../../queues/exclusive-batch-consumer.js';
import { SLIM_COMPLETED_BYTES, WRITE_JOB_OPTIONS } from '../../queues/job-options.js';
import { eventJobId, INGEST_QUEUE, routerKeys, writeJobId } from '../../queues/names.js';
import { changeOrder, type ChangeKey } from '../../core/change-order.js';
import { fetchMissingBodies, type BodyFetch } from './fetch-missing-bodies.js';
import { DEFAULT_OBJECT_LIMITS, measureObject, type ObjectLimits } from '../../core/object-limits.js';
import { listCollections, type CollectionListing } from './list-collections.js';
import { normalizeEvent } from './normalize-event.js';
import { collectionWrites } from './collection-writes.js';
import { matchTargets, type CompiledRoutes } from './compile-rules.js';
import { isSecretIdentity, objectFilePath, UnsafePathError } from '../../core/path-layout.js';
import { DEFAULT_REORDER_WINDOW_MS, releasable } from './reorder-window.js';

export interface RouterOptions {
  connection: Valkey;
  prefix: string;
  /**
   * The routing rules in force. Read once per batch: a configuration change swaps in a new compiled set
   * between batches, so every event is routed by one whole set of rules, the old or the new.
   */
  routes: () => CompiledRoutes;
  /** Partition queue by queue name; every target's partition must be here. */
  writeQueues: Map<string, Queue<WriteJob>>;
  replicaId: string;
  leaseTtlMs: number;
  /** @defaultValue 500 */
  batchSize?: number;
  /** Attempts and backoff of write jobs. @defaultValue WRITE_JOB_OPTIONS */
  writeJobOptions?: JobsOptions;
  /**
   * Bounds on an event's object, checked again before normalizing (the webhook checked them, but a job in
   * Valkey may predate them or not come from the webhook): an event past them fails alone, at once.
   * @defaultValue DEFAULT_OBJECT_LIMITS
   */
  objectLimits?: ObjectLimits;
  logger: Logger;
  metrics: ServiceMetrics;
  /** The clusters' storage budgets: what an event reserved moves to the writes it became. Undefined: none. */
  budget?: ClusterBudget;
  /**
   * The reorder window (route/reorder-window.ts): an event is routed once no older change of its cluster
   * can still arrive, at most this long after it arrived. 0: at once, in the order of each batch.
   * @defaultValue DEFAULT_REORDER_WINDOW_MS
   */
  reorderWindowMs?: number;
  /**
   * Reads an event's object from its cluster when the audit event carried none (createObjectFetcher).
   * A read that fails fails its event (retried, at last a dead letter); an object that is gone, or an
   * objectRef that addresses none, is recorded as no-object-body. Undefined: such events are recorded as
   * no-object-body, with the audit level to blame.
   */
  fetchObject?: ObjectFetcher;
  /**
   * Lists a (type, namespace) of a cluster for a deletecollection whose answer named no objects (audit level
   * Metadata): what is still there keeps its file. A list that fails fails its event (retried, at last a
   * dead letter). Undefined: such events are recorded as no-object-body.
   */
  listNames?: CollectionLister;
}

export type PendingWrites = Map<string, { queue: Queue<WriteJob>; partitionId: string; jobs: { name: string; data: WriteJob; opts: JobsOptions }[] }>;

/** Adds one event's writes (one per target) to `pending`: all of them, or none when a partition is missing. */
function addWrites(
  planned: { target: ResolvedTarget; data: WriteJob }[],
  opts: Pick<RouterOptions, 'writeQueues' | 'writeJobOptions'>,
  pending: PendingWrites,
): { target: string; queue: string; filePath: string }[] | JobFailure {
  const mine: { queue: Queue<WriteJob>; partitionId: string; job: { name: string; data: WriteJob; opts: JobsOptions } }[] = [];
  for (const { target, data } of planned) {
    const queue = opts.writeQueues.get(target.partition.queueName);
    if (!queue) return new JobFailure(new Error(`no write queue for partition ${target.partition.id} of target ${target.key}`));
    // The job id makes a redelivered event (a batch routed again after a crash) add nothing twice.
    mine.push({ queue, partitionId: target.partition.id, job: { name: data.operation, data, opts: { ...(opts.writeJobOptions ?? WRITE_JOB_OPTIONS), jobId: writeJobId(data.eventKey, target.key) } } });
  }
  for (const { queue, partitionId, job } of mine) {
    const entry = pending.get(queue.name) ?? { queue, partitionId, jobs: [] };
    entry.jobs.push(job);
    pending.set(queue.name, entry);
  }
  return mine.map(({ queue, job }) => ({ target: job.data.target, queue: queue.name, filePath: job.data.filePath }));
}

/**
 * Routes one event: its outcome, with its writes appended to `pending` (nothing is added yet).
 * `fetch` says what became of a missing body that was read back (fetchMissingBodies); `listing`, what a
 * deletecollection's (type, namespace) holds now (listCollections).
 */
export function routeEvent(
  job: IngestJob,
  routes: CompiledRoutes,
  opts: Pick<RouterOptions, 'writeQueues' | 'metrics' | 'writeJobOptions' | 'objectLimits'>,
  pending: PendingWrites,
  fetch?: BodyFetch,
  listing?: CollectionListing,
): IngestResult | JobFailure {
  if (job.object) {
    const measured = measureObject(job.object, opts.objectLimits ?? DEFAULT_OBJECT_LIMITS);
    if (!measured.ok) return new JobFailure(new UnrecoverableError(`event refused: ${measured.error}`));
  }
  // A deletecollection, a namespace's delete: one write per target that removes many files.
  const collection = collectionWrites(job, routes, listing);
  if (collection) {
    if (collection.kind === 'failed') return new JobFailure(collection.permanent ? new UnrecoverableError(collection.reason) : new Error(collection.reason));
    if (collection.kind === 'unrouted') {
      opts.metrics.eventsUnrouted.inc({ cluster: job.clusterId });
      return { outcome: 'unrouted' };
    }
    if (collection.kind === 'no-object-body') {
      opts.metrics.eventsWithoutBody.inc({ cluster: job.clusterId });
      return { outcome: 'no-object-body', reason: collection.reason };
    }
    const writes = addWrites(collection.writes, opts, pending);
    return writes instanceof JobFailure ? writes : { outcome: 'routed', writes };
  }
  // A failed read (the cluster unreachable, the credentials refused or lacking a permission, no client)
  // fails the event, so BullMQ retries it with backoff and, after its attempts, keeps it as a dead letter
  // to replay once the cluster, its RBAC or its credentials are fixed: a change is never dropped because
  // its object could not be read.
  if (fetch?.kind === 'failed') return new JobFailure(new Error(fetch.reason));
  // Nothing to read: the object is gone (its delete event follows), or the objectRef names no object.
  if (fetch?.kind === 'absent') {
    opts.metrics.eventsWithoutBody.inc({ cluster: job.clusterId });
    return { outcome: 'no-object-body', reason: fetch.reason };
  }
  const normalized = normalizeEvent(job);
  if (normalized.kind === 'no-object-body') {
    opts.metrics.eventsWithoutBody.inc({ cluster: job.clusterId });
    return { outcome: 'no-object-body', reason: normalized.reason };
  }
  const event = normalized.event;
  const targets = matchTargets(routes, event.identity, event.operation);
  if (targets.length === 0) {
    opts.metrics.eventsUnrouted.inc({ cluster: event.clusterId });
    return { outcome: 'unrouted' };
  }
  // Collected first and added to `pending` only when every target worked: a failed event adds nothing.
  const planned: { target: ResolvedTarget; data: WriteJob }[] = [];
  for (const target of targets) {
    let filePath: string;
    try {
      filePath = objectFilePath(target.path, event.identity, { encrypted: target.encryption !== undefined });
    } catch (err) {
      if (err instanceof UnsafePathError) return new JobFailure(new UnrecoverableError(`target ${target.key}: ${err.message}`));
      throw err;
    }
    const data: WriteJob = {
      eventKey: event.eventKey,
      clusterId: event.clusterId,
      auditID: event.auditID,
      target: target.key,
      identity: event.identity,
      operation: event.operation,
      filePath,
      content: event.content,
      resourceVersion: event.resourceVersion,
      author: event.author,
      stageTimestamp: event.stageTimestamp,
    };
    // Only a target that keeps Secrets gets their sealed values; every other target's write stays REDACTED.
    if (target.encryption && event.sealedValues && isSecretIdentity(event.identity)) data.sealedValues = event.sealedValues;
    planned.push({ target, data });
  }
  const writes = addWrites(planned, opts, pending);
  if (writes instanceof JobFailure) return writes;
  return fetch?.kind === 'fetched' ? { outcome: 'routed', writes, fetched: true } : { outcome: 'routed', writes };
}

function ingestChangeKey(job: IngestJob): ChangeKey {
  const metadata = job.object?.metadata as { resourceVersion?: unknown } | undefined;
  const rv = typeof metadata?.resourceVersion === 'string' ? metadata.resourceVersion : '';
  return { stageTimestamp: job.stageTimestamp, cluster: job.clusterId, resourceVersion: rv };
}

/**
 * Routes a batch: reads back the bodies it lacks, then routes each event in change order. The outcome
 * of each job, in the batch's order, and the writes to add (nothing is added here).
 */
export async function routeBatch(
  batch: IngestJob[],
  routesAtStart: CompiledRoutes,
  opts: Pick<RouterOptions, 'writeQueues' | 'metrics' | 'writeJobOptions' | 'objectLimits' | 'fetchObject' | 'listNames'>,
  /** The routes in force after the reads (they can take a while): a batch routes by rules that are current. */
  currentRoutes: () => CompiledRoutes = () => routesAtStart,
): Promise<{ results: (IngestResult | JobFailure)[]; pending: PendingWrites }> {
  let routes = routesAtStart;
  let jobs = batch;
  let fetches: (BodyFetch | undefined)[] = [];
  let listings: (CollectionListing | undefined)[] = [];
  if (opts.listNames) {
    // Listed before any read back of an object: what a deletecollection left is what is there now.
    listings = await listCollections(batch, {
      listNames: opts.listNames,
      wanted: (identity) => matchTargets(routes, identity, 'DELETE').length > 0,
    });
  }
  if (opts.fetchObject) {
    // A fetched object is the object as it is now, so the event's resourceVersion becomes the current
    // one: equal to the event's own, or newer when the object changed again since. That is safe: the
    // writer keeps the newest resourceVersion per file and skips a write older than it, so the events
    // of those later changes (behind this one, or in this batch) either write the same state again or
    // are skipped as stale, and Git never goes back to an older state of the object. (The cost: a commit
    // may carry a later change under this event's author, when the object changed again before the read.)
    ({ jobs, fetches } = await fetchMissingBodies(batch, {
      fetchObject: opts.fetchObject,
      wanted: (identity, operation) => matchTargets(routes, identity, operation).length > 0,
      metrics: opts.metrics,
    }));
  }
  // The reads may have taken long enough for the configuration to change (and a partition no longer
  // configured to be retired): route by the rules in force now.
  if (opts.fetchObject || opts.listNames) routes = currentRoutes();
  const pending: PendingWrites = new Map();
  const results: (IngestResult | JobFailure)[] = new Array(jobs.length);
  for (const i of changeOrder(jobs, ingestChangeKey)) {
    try {
      results[i] = routeEvent(jobs[i]!, routes, opts, pending, fetches[i], listings[i]);
    } catch (err) {
      // One event that breaks normalizing must not hold up the events behind it: it fails alone.
      results[i] = new JobFailure(err as Error);
    }
  }
  return { results, pending };
}

/** Bytes a write job costs in Valkey beyond its content. */
const WRITE_OVERHEAD_BYTES = 512;

/** What a write job holds in Valkey: its content, or a collection write's names. */
function writeBytes(data: WriteJob): number {
  const names = data.collection?.names ?? data.collection?.keep;
  return (data.content?.length ?? 0) + (names ? JSON.stringify(names).length : 0) + WRITE_OVERHEAD_BYTES;
}

/**
 * What a completed ingest job keeps: all of it, or for a large object its size instead of the object (the
 * object is in its write jobs and in Git; a completed job is kept only so its id deduplicates a resent batch).
 */
export function slimIngestJob(job: IngestJob): IngestJob | undefined {
  if (!job.object || (job.objectBytes ?? 0) <= SLIM_COMPLETED_BYTES) return undefined;
  const { object: _object, objectBytes, ...rest } = job;
  return { ...rest, objectOmitted: objectBytes };
}

/**
 * Moves each event's share of its cluster's storage budget to the writes it became: the ingest job is done
 * (routed, unrouted, without a body), its writes now hold the bytes until they are in Git. A failed event
 * keeps its share (it is retried, or swept once it is a dead letter).
 */
function budgetTransfers(batch: IngestJob[], results: (IngestResult | JobFailure)[], pending: PendingWrites): Map<string, { from: string[]; to: BudgetEntry[] }> {
  const byCluster = new Map<string, { from: string[]; to: BudgetEntry[] }>();
  const of = (cluster: string) => byCluster.get(cluster) ?? byCluster.set(cluster, { from: [], to: [] }).get(cluster)!;
  batch.forEach((job, i) => {
    if (!(results[i] instanceof JobFailure)) of(job.clusterId).from.push(budgetField(INGEST_QUEUE, eventJobId(job.clusterId, job.auditID)));
  });
  for (const { queue, jobs } of pending.values()) {
    for (const { data, opts } of jobs) of(data.clusterId).to.push({ field: budgetField(queue.name, opts.jobId!), bytes: writeBytes(data) });
  }
  return byCluster;
}

/**
 * The most events the router holds in its reorder window; beyond it, it routes what arrived a window before
 * the newest of them (a backlog larger than this that arrived within one window can lose order).
 */
const MAX_HELD = 20_000;

export function startRouter(opts: RouterOptions): ExclusiveBatchConsumer {
  const windowMs = opts.reorderWindowMs ?? DEFAULT_REORDER_WINDOW_MS;
  return startExclusiveBatchConsumer<IngestJob, IngestResult>({
    owner: 'router',
    connection: opts.connection,
    prefix: opts.prefix,
    queueName: INGEST_QUEUE,
    leaseKeys: routerKeys(opts.prefix),
    replicaId: opts.replicaId,
    leaseTtlMs: opts.leaseTtlMs,
    batchSize: opts.batchSize ?? 500,
    logger: opts.logger.child({ stage: 'router' }),
    schema: IngestJobSchema,
    holds: { max: MAX_HELD },
    async handle(arrived, lease, history, batch) {
      const ready = releasable(
        arrived.map((job, i) => ({ key: ingestChangeKey(job), arrivedAt: history[i]!.addedAt })),
        { windowMs, now: Date.now(), drained: batch.drained },
      );
      const chosen = arrived.flatMap((_, i) => (ready[i] ? [i] : []));
      if (chosen.length === 0) return arrived.map(() => HOLD);
      const jobs = chosen.map((i) => arrived[i]!);
      const { results, pending } = await routeBatch(jobs, opts.routes(), opts, opts.routes);
      // A router that lost its lease must not add behind the next one's adds (that would reorder).
      await lease.assertHeld();
      for (const { queue, partitionId, jobs: writes } of pending.values()) {
        await queue.addBulk(writes);
        opts.metrics.writesQueued.inc({ partition: partitionId }, writes.length);
      }
      if (opts.budget) {
        for (const [cluster, { from, to }] of budgetTransfers(jobs, results, pending)) {
          // Best effort: a transfer that fails leaves entries the sweep releases once their jobs finish.
          await opts.budget.transfer(cluster, from, to).catch((err: unknown) => opts.logger.warn({ err, cluster }, 'could not move the storage budget of routed events'));
        }
      }
      const out: (IngestResult | JobFailure | typeof HOLD)[] = arrived.map(() => HOLD);
      chosen.forEach((i, k) => (out[i] = results[k]!));
      return out;
    },
    slimCompleted: slimIngestJob,
    // Per-event errors became JobFailures above; what fails a whole batch is Valkey, and then the
    // batch waits at the head of the queue.
    isTransient: () => true,
  });
}
