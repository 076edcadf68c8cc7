// The serial Git writer of one partition {repoURL, branch}.
//
// Why a lease and manual fetching, not a queue with global concurrency 1 and a processor: open-source
// BullMQ has no job groups, and global concurrency 1 would allow only one active job, so a batch of
// events could not go out in one push (1 push per event caps a partition near 10 events/s). Instead each
// replica runs this loop for every partition; only the holder of the partition's lease fetches jobs, up to
// WRITE_BATCH_SIZE at a time in queue order, plans one commit per effective change on top of the remote
// tip, writes them with one `git fast-import`, checks the lease (fencing token) and pushes once without
// force (the remote's fast-forward check is the compare-and-swap). Only then are the jobs completed.
// A lost lease or an unreachable remote hands the batch back to the head of the queue in order.
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WriteJobSchema, type GitAuthor, type WriteJob, type WriteResult } from '../../queues/contracts.js';
import { ownKeys, type Partition } from '../../queues/names.js';
import { GitRemoteError, gitAuthEnv, openMirror, type Mirror } from './git-remote.js';
import { writeCommits } from './fast-import-committer.js';
import { LeaseLostError, tryAcquireLease, type HeldLease } from './partition-lease.js';
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
  /** @defaultValue 3 — pushes of one batch before a non-fast-forward or hook refusal counts as failure */
  pushAttempts?: number;
}

export interface PartitionWriter {
  partition: Partition;
  stop(): Promise<void>;
}

interface Fetched {
  job: Job<WriteJob, WriteResult>;
  token: string;
}

const WORK_REF = 'refs/reverser/work';
/** Jobs fetched by hand are not extended by BullMQ; the writer extends the locks of its batch itself. */
const LOCK_DURATION_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function startPartitionWriter(opts: PartitionWriterOptions): PartitionWriter {
  const { partition, logger: parentLogger } = opts;
  const log = parentLogger.child({ partition: partition.id, repo: partition.repoURL, branch: partition.branch });
  const keys = ownKeys(opts.prefix, partition.id);
  const worker = new Worker<WriteJob, WriteResult>(partition.queueName, null, {
    connection: opts.connection,
    prefix: opts.prefix,
    autorun: false,
    drainDelay: 1,
    lockDuration: LOCK_DURATION_MS,
    // A batch handed back after a lost lease is not a crash; stalls are counted only for real deaths.
    maxStalledCount: 5,
  });
  worker.on('error', (err) => log.error({ err }, 'write queue connection error'));
  let stopping = false;
  let lease: HeldLease | null = null;
  let tokenCounter = 0;
  let mirror: Mirror | undefined;
  let cleanupAuth: (() => Promise<void>) | undefined;
  let cached: { tip: string | null; tree: Map<string, string> } | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let remoteBackoffMs = 0;
  let inHand: Fetched[] = [];
  // A slow push must not let the batch's locks expire: the stalled checker would hand the jobs to
  // the queue again while this writer still works on them.
  const lockTimer = setInterval(() => {
    if (inHand.length === 0) return;
    worker
      .extendJobLocks(inHand.map((f) => f.job.id!), inHand.map((f) => f.token), LOCK_DURATION_MS)
      .catch((err: unknown) => log.warn({ err }, 'could not extend the locks of the batch in hand'));
  }, LOCK_DURATION_MS / 3);

  const nextToken = () => `${opts.replicaId}:${partition.id}:${++tokenCounter}`;

  async function ensureMirror(): Promise<Mirror> {
    if (mirror) return mirror;
    const auth = await gitAuthEnv(partition.repoURL, opts.credentials);
    cleanupAuth = auth.cleanup;
    mirror = await openMirror({ dir: join(opts.dataDir, 'git', `${partition.id}.git`), repoURL: partition.repoURL, branch: partition.branch, env: auth.env });
    return mirror;
  }

  async function acquire(): Promise<boolean> {
    lease = await tryAcquireLease(opts.connection, keys, partition.id, opts.replicaId, opts.leaseTtlMs);
    if (!lease) return false;
    log.info({ fence: lease.fence, replica: opts.replicaId }, 'took the partition write lease');
    opts.metrics?.ownershipChanges.inc({ partition: partition.id });
    cached = undefined; // another writer may have pushed while we did not hold it
    const held = lease;
    renewTimer = setInterval(() => {
      held.renew().then(
        (ok) => {
          if (!ok && lease === held) {
            log.warn({ fence: held.fence }, 'lost the partition write lease');
            lease = null;
            clearInterval(renewTimer);
          }
        },
        (err: unknown) => log.warn({ err }, 'could not renew the partition write lease'),
      );
    }, Math.max(100, Math.floor(opts.leaseTtlMs / 3)));
    return true;
  }

  async function fetchBatch(): Promise<Fetched[]> {
    const batch: Fetched[] = [];
    const firstToken = nextToken();
    const first = await worker.getNextJob(firstToken, { block: true });
    if (!first) return batch;
    batch.push({ job: first, token: firstToken });
    while (batch.length < opts.batchSize) {
      const token = nextToken();
      const job = await worker.getNextJob(token, { block: false });
      if (!job) break;
      batch.push({ job, token });
    }
    return batch;
  }

  /** Back to the head of the queue, in their order, so the next holder starts exactly here. */
  async function handBack(batch: Fetched[]): Promise<void> {
    for (const { job, token } of [...batch].reverse()) await job.moveToWait(token);
  }

  async function failAll(batch: Fetched[], err: Error): Promise<void> {
    for (const { job, token } of batch) await job.moveToFailed(err, token, false);
  }

  /** Processes the batch; `inHand` is left holding the jobs it did not finish (complete or fail). */
  async function processBatch(inHand: Fetched[]): Promise<void> {
    const valid: { fetched: Fetched; data: WriteJob }[] = [];
    for (const fetched of [...inHand]) {
      const parsed = WriteJobSchema.safeParse(fetched.job.data);
      if (parsed.success) {
        valid.push({ fetched, data: parsed.data });
        continue;
      }
      // A malformed payload never becomes valid by retrying: straight to failed, visible with its error.
      const issue = parsed.error.issues[0];
      await fetched.job.moveToFailed(new UnrecoverableError(`invalid write job payload: ${issue?.path.join('.')}: ${issue?.message}`), fetched.token, false);
      inHand.splice(inHand.indexOf(fetched), 1);
    }
    if (valid.length === 0) return;
    const repo = await ensureMirror();
    const jobs = valid.map((v) => v.data);
    const paths = [...new Set(jobs.map((j) => j.filePath))];
    const stored = paths.length ? await opts.connection.hmget(keys.versions, ...paths) : [];
    const applied = new Map<string, string>();
    paths.forEach((p, i) => stored[i] && applied.set(p, stored[i]!));

    const attempts = opts.pushAttempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      const tip = await repo.fetch();
      const tree = cached && cached.tip === tip ? cached.tree : await readTreeIndex(repo.gitDir, tip);
      const plan = planCommits(jobs, tree, applied, opts.committer);
      let head = tip;
      const started = process.hrtime.bigint();
      let shas: string[] = [];
      if (plan.commits.length > 0) {
        shas = await writeCommits(repo.gitDir, WORK_REF, tip, plan.commits);
        head = shas[shas.length - 1]!;
        if (!lease) throw new LeaseLostError(partition.id, 0);
        await lease.assertHeld();
        const pushed = await repo.push(head, tip);
        if (!pushed.ok) {
          log.warn({ attempt, reason: pushed.reason, detail: pushed.detail }, 'push refused');
          if (attempt < attempts) {
            cached = undefined;
            continue; // fetch the new tip and plan again on top of it
          }
          throw new Error(`push to ${partition.repoURL} ${partition.branch} refused after ${attempts} attempts (${pushed.reason}): ${pushed.detail}`);
        }
        opts.metrics?.pushDuration.observe({ partition: partition.id }, Number(process.hrtime.bigint() - started) / 1e9);
        opts.metrics?.commits.inc({ partition: partition.id }, shas.length);
      }
      cached = { tip: head, tree: plan.tree };
      if (plan.versions.size > 0) await opts.connection.hset(keys.versions, Object.fromEntries(plan.versions));
      for (const [i, { fetched }] of valid.entries()) {
        const outcome = plan.outcomes[i]!;
        const result: WriteResult =
          outcome.kind === 'commit'
            ? { outcome: 'committed', commit: shas[outcome.commitIndex]!, pushedAs: head ?? '' }
            : { outcome: 'unchanged', reason: outcome.reason, head: head ?? '' };
        await fetched.job.moveToCompleted(result, fetched.token, false);
        inHand.splice(inHand.indexOf(fetched), 1);
      }
      log.info({ events: valid.length, commits: shas.length, head }, 'batch written');
      return;
    }
  }

  async function loop(): Promise<void> {
    await worker.startStalledCheckTimer();
    while (!stopping) {
      try {
        if (!lease && !(await acquire())) {
          await sleep(Math.floor(opts.leaseTtlMs / 3 + Math.random() * 200));
          continue;
        }
        if (remoteBackoffMs) await sleep(remoteBackoffMs);
        const batch = await fetchBatch();
        if (batch.length === 0) continue;
        inHand = batch;
        try {
          await processBatch(batch);
          remoteBackoffMs = 0;
        } catch (err) {
          if (err instanceof LeaseLostError || err instanceof GitRemoteError) {
            // Nothing was pushed: the events go back, in order, for us or the next holder.
            remoteBackoffMs = err instanceof GitRemoteError ? Math.min(30_000, Math.max(500, remoteBackoffMs * 2)) : 0;
            log.warn({ err, retryInMs: remoteBackoffMs }, 'batch handed back');
            await handBack(batch);
          } else {
            log.error({ err }, 'batch failed; its events go to retry with backoff');
            await failAll(batch, err as Error);
          }
          cached = undefined;
        } finally {
          inHand = [];
        }
      } catch (err) {
        // Valkey unreachable and the like: keep the loop alive, clients reconnect on their own.
        log.error({ err }, 'partition writer loop error');
        await sleep(500);
      }
    }
  }

  const running = loop();

  return {
    partition,
    async stop() {
      stopping = true;
      await running;
      clearInterval(renewTimer);
      clearInterval(lockTimer);
      if (lease) await lease.release().catch(() => undefined);
      lease = null;
      await worker.close();
      await cleanupAuth?.();
    },
  };
}
