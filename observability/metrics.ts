// Prometheus metrics of the service, in one registry, named `<prefix>_…` with bounded label sets
// (cluster names come from configuration, never from request input).
import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { WriterMetrics } from './writer-metrics.js';
import type { StatusMetrics } from './status-metrics.js';
import type { BatchProgress } from '../queues/target-progress.js';
import { JobFailure } from '../queues/exclusive-batch-consumer.js';

export interface ServiceMetrics extends WriterMetrics, StatusMetrics {
  registry: Registry;
  eventsReceived: Counter<'cluster'>;
  eventsIngested: Counter<'cluster'>;
  eventsSkipped: Counter<'cluster' | 'reason'>;
  eventsRefused: Counter<'cluster' | 'reason'>;
  /** `cluster` is '' for a request naming no configured cluster: URLs must not add label values. */
  webhookRejected: Counter<'cluster' | 'reason'>;
  eventsRateLimited: Counter<'cluster'>;
  eventsWithoutBody: Counter<'cluster'>;
  /**
   * Objects read back from their cluster for events without a body, once per read (a retried event is read
   * again); outcome found, gone or failed (the event failed with it, to be retried).
   */
  objectsFetched: Counter<'cluster' | 'outcome'>;
  eventsUnrouted: Counter<'cluster'>;
  writesQueued: Counter<'partition'>;
  /** Seconds from an event's stageTimestamp to the push of its commit (observeEventToPush). */
  eventToPush: Histogram<'partition'>;
  /** Seconds a reconcile run took, by result (observeReconcile). */
  reconcileDuration: Histogram<'result'>;
}

export function createMetrics(prefix: string): ServiceMetrics {
  const registry = new Registry();
  const p = prefix.replace(/[^a-zA-Z0-9_]/g, '_');
  collectDefaultMetrics({ register: registry, prefix: `${p}_` });
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Counter<L>({ name: `${p}_${name}`, help, labelNames, registers: [registry] });
  return {
    registry,
    eventsReceived: counter('events_received_total', 'Audit events received by the webhook', ['cluster']),
    eventsIngested: counter('events_ingested_total', 'Audit events kept and stored in the ingest queue', ['cluster']),
    eventsSkipped: counter('events_skipped_total', 'Audit events filtered out at ingest, by reason', ['cluster', 'reason']),
    eventsRefused: counter('events_refused_total', 'Audit events refused at ingest (400 for them; the rest of their batch stored), by reason', ['cluster', 'reason']),
    webhookRejected: counter('webhook_requests_rejected_total', 'Webhook requests refused, by cluster and reason', ['cluster', 'reason']),
    eventsRateLimited: counter('events_rate_limited_total', 'Audit events refused because their cluster was over its rate limit', ['cluster']),
    eventsWithoutBody: counter('events_without_object_total', 'Events that carried no object body (recorded, not written)', ['cluster']),
    objectsFetched: counter('objects_fetched_total', 'Objects read back from their cluster for events without a body, by outcome (found, gone, failed)', ['cluster', 'outcome']),
    eventsUnrouted: counter('events_unrouted_total', 'Events that no rule selected', ['cluster']),
    writesQueued: counter('writes_queued_total', 'Writes queued per partition', ['partition']),
    commits: counter('commits_total', 'Commits pushed', ['partition']),
    eventsOutOfOrder: counter('events_out_of_order_total', 'Events that reached their writer after a newer version of their object was committed (dead letters)', ['cluster']),
    filesDeleted: counter('files_deleted_total', 'Files removed from Git by one event each: a deletecollection, or a deleted namespace (reason deletecollection, namespace)', ['cluster', 'reason']),
    ownershipChanges: counter('partition_ownership_changes_total', 'Write leases taken by this replica', ['partition']),
    statusWrites: counter('status_writes_total', 'Status patches of configuration objects, by kind and outcome (written, gone, failed)', ['kind', 'outcome']),
    pushDuration: new Histogram({
      name: `${p}_push_duration_seconds`,
      help: 'Time to build and push one batch',
      labelNames: ['partition'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    eventToPush: new Histogram({
      name: `${p}_event_to_push_seconds`,
      help: 'Lag from an audit event (its stageTimestamp) to the push of the commit that holds it',
      labelNames: ['partition'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: `${p}_reconcile_duration_seconds`,
      help: 'Time a reconcile run took from its start to its end, by result (succeeded, failed)',
      labelNames: ['result'],
      buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers: [registry],
    }),
  };
}

/**
 * The lag of each event of a push: `pushedAtMs` minus its stageTimestamp. An unparseable timestamp is
 * skipped; a negative lag (clock skew between the API server and us) counts as 0.
 */
export function observeEventToPush(metrics: Pick<ServiceMetrics, 'eventToPush'>, partitionId: string, stageTimestamps: readonly string[], pushedAtMs = Date.now()): void {
  for (const ts of stageTimestamps) {
    const at = Date.parse(ts);
    if (Number.isNaN(at)) continue;
    metrics.eventToPush.observe({ partition: partitionId }, Math.max(0, pushedAtMs - at) / 1000);
  }
}

/**
 * observeEventToPush for a batch the partition writer finished (its `onProgress`): the live events whose
 * job was committed, i.e. pushed. A batch handed back, unchanged writes and reconcile writes (no event
 * behind them) are not observed.
 */
export function observeBatchPushed(metrics: Pick<ServiceMetrics, 'eventToPush'>, partitionId: string, batch: BatchProgress, pushedAtMs = Date.now()): void {
  if ('error' in batch) return;
  const stamps: string[] = [];
  batch.jobs.forEach((job, i) => {
    const result = batch.results[i];
    if (!job.reconcile && result && !(result instanceof JobFailure) && result.outcome === 'committed') stamps.push(job.stageTimestamp);
  });
  observeEventToPush(metrics, partitionId, stamps, pushedAtMs);
}

export type ReconcileResult = 'succeeded' | 'failed';

/** One reconcile run's duration in seconds. */
export function observeReconcile(metrics: Pick<ServiceMetrics, 'reconcileDuration'>, result: ReconcileResult, seconds: number): void {
  if (Number.isFinite(seconds) && seconds >= 0) metrics.reconcileDuration.observe({ result }, seconds);
}

/**
 * Queue depth per queue and state, read from Valkey when Prometheus scrapes: the backlog (waiting,
 * delayed, active) and the dead letters (failed). Label values are queue names from configuration.
 */
export function registerQueueGauges(metrics: ServiceMetrics, prefix: string, queues: () => Queue[]): void {
  const p = prefix.replace(/[^a-zA-Z0-9_]/g, '_');
  new Gauge({
    name: `${p}_queue_jobs`,
    help: 'Jobs per queue and state (waiting, delayed, active = backlog; failed = dead letters)',
    labelNames: ['queue', 'state'],
    registers: [metrics.registry],
    async collect() {
      this.reset();
      for (const queue of queues()) {
        const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'failed');
        for (const [state, n] of Object.entries(counts)) this.set({ queue: queue.name, state }, n);
      }
    },
  });
  new Gauge({
    name: `${p}_queue_oldest_job_age_seconds`,
    help: 'Age of the oldest waiting job per queue (0 when none waits)',
    labelNames: ['queue'],
    registers: [metrics.registry],
    async collect() {
      this.reset();
      const now = Date.now();
      for (const queue of queues()) this.set({ queue: queue.name }, await oldestWaitingAge(queue, now));
    },
  });
}

/** Seconds since the oldest waiting job of `queue` was added; 0 when none waits. */
export async function oldestWaitingAge(queue: Pick<Queue, 'getJobs'>, now = Date.now()): Promise<number> {
  // Ascending: the head of the wait list (the next job to run, the one that waited longest) comes first.
  const [oldest] = await queue.getJobs(['waiting'], 0, 0, true);
  return oldest?.timestamp ? Math.max(0, now - oldest.timestamp) / 1000 : 0;
}

/**
 * Each configured cluster's storage budget in use, read from Valkey when Prometheus scrapes: the bytes
 * of its events stored and not yet in Git (queues/cluster-budget.ts). Label values are cluster names from
 * configuration.
 */
export function registerBudgetGauge(metrics: ServiceMetrics, prefix: string, inFlight: () => Promise<ReadonlyMap<string, number>>): void {
  const p = prefix.replace(/[^a-zA-Z0-9_]/g, '_');
  new Gauge({
    name: `${p}_cluster_inflight_bytes`,
    help: "Bytes of each cluster's events in Valkey, stored and not yet in Git (its storage budget in use)",
    labelNames: ['cluster'],
    registers: [metrics.registry],
    async collect() {
      this.reset();
      for (const [cluster, bytes] of await inFlight()) this.set({ cluster }, bytes);
    },
  });
}
