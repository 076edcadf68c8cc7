// The serial Git writer of one partition {repoURL, branch}.
//
// It runs as an exclusive batch consumer of the partition's queue (queues/exclusive-batch-consumer.ts):
// only the holder of the partition's lease writes, up to WRITE_BATCH_SIZE events at a time. For a batch it
// plans one commit per effective change on top of the remote tip, writes all of them with one
// `git fast-import`, checks the lease (its fencing token) and pushes once, never forcing: the push lands
// only on top of the commit it was built on. Only then are the jobs completed, each with its commit.
// A lost lease or an unreachable remote hands the batch back to the head of the queue, in order.
import type { Valkey } from 'iovalkey';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WriteJobSchema, type GitAuthor, type WriteJob, type WriteResult } from '../../queues/contracts.js';
import { startExclusiveBatchConsumer } from '../../queues/exclusive-batch-consumer.js';
import { LeaseLostError, type HeldLease } from '../../queues/lease.js';
import { ownKeys, type Partition } from '../../queues/names.js';
import { writeCommits } from './fast-import-committer.js';
import { GitRemoteError, gitAuthEnv, openMirror, type Mirror } from './git-remote.js';
import { planCommits } from './plan-commits.js';
import { readTreeIndex } from './tree-index.js';
import type { WriterMetrics } from './writer-metrics.js';

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
  /** @defaultValue 3 — pushes of one batch refused by the remote before its jobs fail into retries */
  pushAttempts?: number;
}

export interface PartitionWriter {
  partition: Partition;
  stop(): Promise<void>;
}

/** A private ref: fast-import moves it freely, nothing else reads it. */
const WORK_REF = 'refs/reverser/work';

/**
 * The batch in the order the API server made the changes: by the audit stage timestamp, ties kept in
 * queue order. Batches of one cluster may arrive out of order (the API server's buffered audit backend
 * sends batches concurrently); within what one push carries, this restores the real order.
 */
function inChangeOrder(jobs: WriteJob[]): number[] {
  const time = jobs.map((j) => Date.parse(j.stageTimestamp));
  return jobs
    .map((_, i) => i)
    .sort((a, b) => (Number.isNaN(time[a]!) || Number.isNaN(time[b]!) ? 0 : time[a]! - time[b]!) || a - b);
}

export function startPartitionWriter(opts: PartitionWriterOptions): PartitionWriter {
  const { partition } = opts;
  const log = opts.logger.child({ partition: partition.id, repo: partition.repoURL, branch: partition.branch });
  const keys = ownKeys(opts.prefix, partition.id);
  const owner = `partition ${partition.id}`;
  let mirror: Mirror | undefined;
  let cleanupAuth: (() => Promise<void>) | undefined;
  /** The remote tip and its tree as of our last push; reused while the remote has not moved. */
  let cached: { tip: string | null; tree: Map<string, string> } | undefined;

  async function ensureMirror(): Promise<Mirror> {
    if (mirror) return mirror;
    const auth = await gitAuthEnv(partition.repoURL, opts.credentials);
    cleanupAuth = auth.cleanup;
    mirror = await openMirror({ dir: join(opts.dataDir, 'git', `${partition.id}.git`), repoURL: partition.repoURL, branch: partition.branch, env: auth.env });
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

  async function write(arrived: WriteJob[], lease: HeldLease): Promise<WriteResult[]> {
    const repo = await ensureMirror();
    const order = inChangeOrder(arrived);
    const jobs = order.map((i) => arrived[i]!);
    const applied = await appliedVersions(jobs);
    const attempts = opts.pushAttempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      const ms: Record<string, number> = {};
      let mark = performance.now();
      const lap = (name: string) => {
        const now = performance.now();
        ms[name] = Math.round(now - mark);
        mark = now;
      };
      // After our own push the remote tip is known; no fetch is needed to build on it, because the
      // push is a compare-and-swap on that tip: if someone else pushed meanwhile, it is refused, and the
      // next attempt fetches.
      let tip: string | null;
      let tree: Map<string, string>;
      if (cached) {
        ({ tip, tree } = cached);
      } else {
        tip = await repo.fetch();
        tree = await readTreeIndex(repo.gitDir, tip);
      }
      lap('fetch');
      const plan = planCommits(jobs, tree, applied, opts.committer);
      lap('plan');
      let head = tip;
      let shas: string[] = [];
      if (plan.commits.length > 0) {
        const started = process.hrtime.bigint();
        shas = await writeCommits(repo.gitDir, WORK_REF, tip, plan.commits);
        lap('commit');
        head = shas[shas.length - 1]!;
        await lease.assertHeld(); // the fence: a writer that lost its lease never pushes
        const pushed = await repo.push(head, tip);
        lap('push');
        if (!pushed.ok) {
          cached = undefined;
          log.warn({ attempt, reason: pushed.reason, detail: pushed.detail }, 'push refused');
          if (attempt < attempts) continue; // fetch the new tip and plan again on top of it
          throw new Error(`push to ${partition.repoURL} ${partition.branch} refused ${attempts} times (${pushed.reason}): ${pushed.detail}`);
        }
        opts.metrics?.pushDuration.observe({ partition: partition.id }, Number(process.hrtime.bigint() - started) / 1e9);
        opts.metrics?.commits.inc({ partition: partition.id }, shas.length);
      }
      cached = { tip: head, tree: plan.tree };
      if (plan.versions.size > 0) await opts.connection.hset(keys.versions, Object.fromEntries(plan.versions));
      log.info({ events: jobs.length, commits: shas.length, head, ms }, 'batch written');
      const results: WriteResult[] = new Array<WriteResult>(arrived.length);
      plan.outcomes.forEach((outcome, k) => {
        results[order[k]!] =
          outcome.kind === 'commit'
            ? { outcome: 'committed', commit: shas[outcome.commitIndex]!, pushedAs: head ?? '' }
            : { outcome: 'unchanged', reason: outcome.reason, head: head ?? '' };
      });
      return results;
    }
  }

  const consumer = startExclusiveBatchConsumer<WriteJob, WriteResult>({
    owner,
    connection: opts.connection,
    prefix: opts.prefix,
    queueName: partition.queueName,
    leaseKeys: keys,
    replicaId: opts.replicaId,
    leaseTtlMs: opts.leaseTtlMs,
    batchSize: opts.batchSize,
    logger: log,
    schema: WriteJobSchema,
    handle: write,
    // Nothing was pushed: the events wait, in order, for the remote or the next lease holder.
    isTransient: (err) => err instanceof LeaseLostError || err instanceof GitRemoteError,
    onLeaseAcquired: () => {
      cached = undefined; // another writer may have pushed while we did not hold the lease
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
