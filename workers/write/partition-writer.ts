// The serial Git writer of one partition {repoURL, branch}.
//
// It runs as an exclusive batch consumer of the partition's queue (queues/exclusive-batch-consumer.ts):
// only the holder of the partition's lease writes, up to WRITE_BATCH_SIZE events at a time, in the order
// the changes happened (write-batch.ts plans, commits, checks the lease and pushes). Only after the push
// are the jobs completed, each with its commit. A lost lease, an unreachable remote or a remote that
// refuses everything hands the batch back to the head of the queue, in order, for the next attempt.
import type { Valkey } from 'iovalkey';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WriteJobSchema, type GitAuthor, type WriteJob, type WriteResult } from '../../core/contracts.js';
import { startExclusiveBatchConsumer, type JobFailure, type JobHistory } from '../../queues/exclusive-batch-consumer.js';
import { LeaseLostError, type HeldLease } from '../../queues/lease.js';
import { raiseAppliedVersions } from '../../queues/applied-versions.js';
import { SLIM_COMPLETED_BYTES } from '../../queues/job-options.js';
import { ownKeys, type Partition } from '../../queues/names.js';
import { GitRemoteError, gitAuthEnv, openMirror, redactURL, type Mirror } from '../../git/git-remote.js';
import { PushConflictError, REFUSED_PREFIX, RemoteRefusingError, writeBatch, type RemoteState } from './write-batch.js';
import type { WriterMetrics } from '../../observability/writer-metrics.js';
import { removeStaleLocks } from '../../git/stale-locks.js';
import { withBatchProgress, type BatchProgress } from '../../queues/target-progress.js';
import { outOfOrderFailure } from './out-of-order.js';
import { checkWrite, TargetNotConfiguredError, withWriteCheck, type WriteTarget } from './validate-write.js';
import { changeOrder } from '../../core/change-order.js';
import { listedIds } from '../../core/log-ids.js';

export interface PartitionWriterOptions {
  connection: Valkey;
  prefix: string;
  partition: Partition;
  credentials?: Record<string, string>;
  dataDir: string;
  replicaId: string;
  leaseTtlMs: number;
  batchSize: number;
  committer: GitAuthor;
  logger: Logger;
  metrics?: WriterMetrics;
  /** Told of every batch written or handed back, for the targets' status (see target-progress.ts); must not throw or block. */
  onProgress?: (progress: BatchProgress) => void;
  /**
   * The GitTargets configured now, by key (the live configuration's `targets`); read for every batch.
   * Every job is checked against them before it is planned (validate-write.ts): a job that is not what the
   * router or a reconcile run makes for a target of this partition fails alone, as a dead letter; one whose
   * target is not (yet) configured on this partition here is retried through its attempts first.
   * Required: a writer that checks nothing is not constructible.
   */
  targets: () => ReadonlyMap<string, WriteTarget>;
}

export interface PartitionWriter {
  partition: Partition;
  stop(): Promise<void>;
}

/** The most writes of one reconcile run taken as one batch (one commit); a larger run makes a few commits. */
const RECONCILE_BATCH_MAX = 10_000;

/** Errors after which nothing of the batch was lost and it should wait at the head of the queue. */
const isTransient = (err: unknown) =>
  err instanceof LeaseLostError || err instanceof GitRemoteError || err instanceof PushConflictError || err instanceof RemoteRefusingError;

/** What a completed write keeps: all of it, or for large content its length only (it is in Git). */
export function slimWriteJob(job: WriteJob): Omit<WriteJob, 'content'> | undefined {
  if (job.content === null || job.content.length <= SLIM_COMPLETED_BYTES) return undefined;
  const { content, ...rest } = job;
  return { ...rest, contentOmitted: content.length };
}

export function startPartitionWriter(opts: PartitionWriterOptions): PartitionWriter {
  const { partition } = opts;
  // Never a URL's credentials in a log line (a GitProvider refuses them; this holds whatever the URL).
  const log = opts.logger.child({ partition: partition.id, repo: redactURL(partition.repoURL), branch: partition.branch });
  const keys = ownKeys(opts.prefix, partition.id);
  let mirror: Mirror | undefined;
  let cleanupAuth: (() => Promise<void>) | undefined;
  /**
   * The remote as of our last push. The next batch builds on it without fetching: the push is a
   * compare-and-swap on that tip, so if someone else pushed meanwhile it is refused and we fetch then.
   */
  let remote: RemoteState | undefined;

  async function ensureMirror(): Promise<Mirror> {
    if (mirror) return mirror;
    const dir = join(opts.dataDir, 'git', `${partition.id}.git`);
    const stale = await removeStaleLocks(dir);
    if (stale.length > 0) log.warn({ files: stale }, 'removed lock files a killed process left in the mirror');
    const auth = await gitAuthEnv(partition.repoURL, opts.credentials);
    cleanupAuth = auth.cleanup;
    mirror = await openMirror({ dir, repoURL: partition.repoURL, branch: partition.branch, env: auth.env });
    return mirror;
  }

  async function appliedVersions(jobs: WriteJob[]): Promise<Map<string, string>> {
    const paths = [...new Set(jobs.map((j) => j.filePath))];
    const stored = await opts.connection.hmget(keys.versions, ...paths);
    const applied = new Map<string, string>();
    paths.forEach((p, i) => {
      const v = stored[i];
      if (v) applied.set(p, v);
    });
    return applied;
  }

  async function write(arrived: WriteJob[], lease: HeldLease, history: JobHistory[]): Promise<(WriteResult | JobFailure)[]> {
    const repo = await ensureMirror();
    // A reconcile write's resourceVersion is its listing's, not a change of its own: it keeps its place in
    // time (after the live events queued before it), and the stale guard keeps a newer live event's content.
    const order = changeOrder(arrived, (j) => ({ stageTimestamp: j.stageTimestamp, cluster: j.clusterId, resourceVersion: j.reconcile ? '' : j.resourceVersion }));
    const jobs = order.map((i) => arrived[i]!);
    const started = performance.now();
    // A reconcile repairs what others changed in the repository (edits by hand): it must plan against the
    // remote as it is, not as this writer last pushed it (which would see no difference and push nothing).
    if (jobs.some((j) => j.reconcile)) remote = undefined;
    let written;
    // Read once per batch, as the write check reads it: one batch, one configuration.
    const targets = opts.targets();
    const applied = await appliedVersions(jobs);
    try {
      const refusedBefore = order.map((i) => history[i]?.failedReason?.startsWith(REFUSED_PREFIX) ?? false);
      written = await writeBatch(jobs, applied, remote, refusedBefore, {
        repo,
        lease,
        committer: opts.committer,
        log,
        // Deep enough to hold every write of a batch that a dead writer pushed but did not complete.
        appliedDepth: Math.max(1000, opts.batchSize * 4),
        encryptionOf: (job) => targets.get(job.target)?.encryption,
      });
    } catch (err) {
      remote = undefined; // whatever happened, fetch before the next batch
      throw err;
    }
    remote = written.state;
    // Fenced: a writer that lost its lease since its push leaves the record to its successor (which finds
    // the pushed commits by their trailers and records them itself).
    await raiseAppliedVersions(opts.connection, keys, lease, `partition ${partition.id}`, written.versions);
    // A live event planned as stale arrived after a newer version of its object: never skipped silently.
    written.results.forEach((result, k) => {
      const job = jobs[k]!;
      const late = outOfOrderFailure(job, result, history[order[k]!], written.versions.get(job.filePath) ?? applied.get(job.filePath));
      if (!late) return;
      written.results[k] = late;
      opts.metrics?.eventsOutOfOrder.inc({ cluster: job.clusterId });
      log.warn({ file: job.filePath, auditID: job.auditID, resourceVersion: job.resourceVersion }, 'an event arrived after a newer version of its object was committed');
    });
    // What the commits of deletecollections and deleted namespaces removed (they are in Git now).
    written.results.forEach((result, k) => {
      const job = jobs[k]!;
      if (!job.collection || !result || !('outcome' in result) || result.outcome !== 'committed' || !result.filesDeleted) return;
      opts.metrics?.filesDeleted.inc({ cluster: job.clusterId, reason: job.collection.everythingBelow ? 'namespace' : 'deletecollection' }, result.filesDeleted);
    });
    if (written.commits > 0) {
      opts.metrics?.pushDuration.observe({ partition: partition.id }, (performance.now() - started) / 1000);
      opts.metrics?.commits.inc({ partition: partition.id }, written.commits);
    }
    log.info(
      {
        events: jobs.length,
        commits: written.commits,
        head: written.state.tip,
        ms: Math.round(performance.now() - started),
        // The audit IDs of the events this push carries: what ties the webhook's line to this commit.
        auditIDs: listedIds(
          jobs.filter((_, k) => {
            const r = written.results[k];
            return r !== undefined && 'outcome' in r && r.outcome === 'committed';
          }).map((j) => j.auditID),
        ),
      },
      'batch written',
    );
    const results: (WriteResult | JobFailure)[] = new Array(arrived.length);
    written.results.forEach((r, k) => (results[order[k]!] = r));
    return results;
  }

  // A job in Valkey is input: checked against the configured targets before anything is planned.
  const checked = withWriteCheck(
    write,
    (job) => checkWrite(job, { partition, targets: opts.targets(), committerEmail: opts.committer.email }),
    (job, err) =>
      err instanceof TargetNotConfiguredError
        ? log.warn({ target: job.target, eventKey: job.eventKey, err: err.message }, 'write for a target not configured here (yet): retried with backoff')
        : log.warn({ target: job.target, eventKey: job.eventKey, err: err.message }, 'write refused'),
  );

  const consumer = startExclusiveBatchConsumer<WriteJob, WriteResult>({
    owner: `partition ${partition.id}`,
    connection: opts.connection,
    prefix: opts.prefix,
    queueName: partition.queueName,
    leaseKeys: keys,
    replicaId: opts.replicaId,
    leaseTtlMs: opts.leaseTtlMs,
    batchSize: opts.batchSize,
    // A reconcile run is taken whole (up to a bound), so that it becomes one commit rather than one per batch.
    batchSizeFor: (payload) => {
      const run = (payload as { reconcile?: { created?: unknown; updated?: unknown; deleted?: unknown } } | null)?.reconcile;
      if (!run) return opts.batchSize;
      const total = [run.created, run.updated, run.deleted].reduce<number>((n, v) => n + (typeof v === 'number' ? v : 0), 0);
      return Math.min(RECONCILE_BATCH_MAX, Math.max(opts.batchSize, total));
    },
    logger: log,
    schema: WriteJobSchema,
    handle: opts.onProgress ? withBatchProgress(checked, opts.onProgress) : checked,
    slimCompleted: slimWriteJob,
    isTransient,
    onLeaseAcquired: () => {
      remote = undefined; // another writer may have pushed while we did not hold the lease
      opts.metrics?.ownershipChanges.inc({ partition: partition.id });
    },
  });

  return {
    partition,
    async stop() {
      await consumer.stop();
      await cleanupAuth?.();
    },
  };
}
