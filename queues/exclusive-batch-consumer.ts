// A queue consumer that only one replica runs at a time, in batches, in queue order.
//
// Open-source BullMQ has no job groups or batches, and a queue with global concurrency 1 admits one
// active job, so every job would pay its own round trips (and, for Git, its own push). Instead every
// replica runs this loop; only the holder of the queue's lease (queues/lease.ts) fetches jobs by hand,
// up to `batchSize` at a time in queue order, hands them to `handle` at once, and completes each with its
// result. When `handle` fails (the lease was lost, the remote is unreachable, anything else), the batch
// goes back to the head of the queue in its order, for this replica after a backoff or for the next lease
// holder: retrying through BullMQ would put the jobs behind later ones. A job that `handle` fails alone
// (JobFailure) goes through BullMQ's attempts and, at last, the failed set (the dead letters). A job that
// `handle` holds (HOLD) stays in hand, its lock kept, and is given to the next `handle` call again with the
// jobs fetched since: the router holds events until no older change can still arrive (its reorder window).
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { randomUUID } from 'node:crypto';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { LeaseLostError, tryAcquireLease, type HeldLease, type LeaseKeys } from './lease.js';

/** Returned by `handle` in place of a result: this one job fails (with its error); the others complete. */
export class JobFailure {
  constructor(readonly error: Error) {}
}

/** Returned by `handle` in place of a result: the job stays in hand and comes again in the next call. */
export const HOLD: unique symbol = Symbol('hold');

/** What BullMQ knows of a job's earlier attempts. */
export interface JobHistory {
  attemptsMade: number;
  /** The error of the last failed attempt, if any. */
  failedReason?: string;
  /** When the job was added (ms since the epoch, the adding replica's clock). */
  addedAt: number;
}

/** What the consumer knows of the batch it hands over. */
export interface BatchInfo {
  /** The queue held no more waiting jobs when the batch was fetched: every job added so far is in it. */
  drained: boolean;
}

export interface ExclusiveBatchConsumerOptions<D, R> {
  /** What the lease guards, for logs and errors, e.g. `partition 2b0f5489634d`. */
  owner: string;
  connection: Valkey;
  prefix: string;
  queueName: string;
  leaseKeys: LeaseKeys;
  replicaId: string;
  /** A dead holder's queue is taken over after at most this long. */
  leaseTtlMs: number;
  /** The most jobs one `handle` call gets. */
  batchSize: number;
  /** A batch size that depends on the first job of the batch (its payload is not validated yet). */
  batchSizeFor?: (firstPayload: unknown) => number;
  logger: Logger;
  /** Job payloads are input: each is validated; an invalid one fails at once, without retries. */
  schema: z.ZodType<D>;
  /**
   * Handles the batch in order; one result (or JobFailure, or HOLD when `holds` is set) per job, in the
   * same order. Held jobs come first in the next call, in the order they were fetched.
   */
  handle(jobs: D[], lease: HeldLease, history: JobHistory[], batch: BatchInfo): Promise<(R | JobFailure | typeof HOLD)[]>;
  /**
   * `handle` may hold jobs: up to this many stay in hand (beyond it, no more are fetched until some go).
   * Undefined: `handle` never holds.
   */
  holds?: { max: number; /** How soon a call with only held jobs is made again. @defaultValue 100 */ recheckMs?: number };
  /** Errors after which nothing was done and the batch should wait at the head of the queue. */
  isTransient(err: unknown): boolean;
  /** Called when this replica takes the lease (state cached from an earlier holding is stale). */
  onLeaseAcquired?(fence: number): void;
  /**
   * What a completed job keeps of its data, when less than all (a large object or content already in Git:
   * a completed job is kept only so its id deduplicates). Undefined: all. Best effort, after completion.
   */
  slimCompleted?(data: D): unknown;
}

export interface ExclusiveBatchConsumer {
  /** Finishes or hands back the batch in hand, releases the lease at once, closes the worker. */
  stop(): Promise<void>;
}

interface Fetched {
  job: Job;
  token: string;
}

/** A job in hand whose payload was validated. */
interface Valid<D> {
  fetched: Fetched;
  data: D;
}

/**
 * Jobs fetched by hand are not extended by BullMQ; the consumer extends the locks of its batch itself.
 * Short, because after a holder dies its batch comes back only once these locks expired and a stalled
 * check ran: the takeover time is about lease TTL + lock duration + stalled interval. Twice the lease TTL
 * (10 s by default), never under 4 s: a holder whose event loop stalls longer loses its locks, and the
 * fence then stops it before its next side effect.
 */
const lockDurationFor = (leaseTtlMs: number) => Math.max(2 * leaseTtlMs, 4000);
const MAX_BACKOFF_MS = 30_000;
const FETCH_PIPELINE = 50;
/** Unexpected failures of batches led by one job before that job alone goes to the failed set. */
const MAX_BATCH_FAILURES = 5;

export function startExclusiveBatchConsumer<D, R>(opts: ExclusiveBatchConsumerOptions<D, R>): ExclusiveBatchConsumer {
  const log = opts.logger;
  const LOCK_DURATION_MS = lockDurationFor(opts.leaseTtlMs);
  const STALLED_INTERVAL_MS = LOCK_DURATION_MS / 2;
  const worker = new Worker(opts.queueName, null, {
    connection: opts.connection,
    prefix: opts.prefix,
    autorun: false,
    drainDelay: 1,
    lockDuration: LOCK_DURATION_MS,
    stalledInterval: STALLED_INTERVAL_MS,
    // A batch handed back after a lost lease is not a crash; stalls are counted only for real deaths.
    maxStalledCount: 5,
  });
  worker.on('error', (err) => log.error({ err, queue: opts.queueName }, 'queue connection error'));

  let stopping = false;
  let wake: (() => void) | undefined;
  /** A sleep that stop() cuts short, so shutdown never waits out a backoff. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping) return resolve();
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  let lease: HeldLease | null = null;
  let renewTimer: NodeJS.Timeout | undefined;
  let tokenCounter = 0;
  let backoffMs = 0;
  let inHand: Fetched[] = [];
  /** Jobs `handle` held: in hand across batches, their locks kept, handed to it again first. */
  let held: Valid<D>[] = [];
  /** Consecutive unexpected failures of batches starting with the same job. */
  let streak: { jobId?: string; count: number } = { count: 0 };
  /** Set when BullMQ says a lock of the batch in hand is gone: the jobs may be given to someone else. */
  let locksLost = false;

  // A slow batch must not let its locks expire: the stalled checker would put the jobs back in the
  // queue while this replica still works on them.
  const lockTimer = setInterval(() => {
    if (inHand.length === 0) return;
    worker
      .extendJobLocks(inHand.map((f) => f.job.id!), inHand.map((f) => f.token), LOCK_DURATION_MS)
      .then((lost) => {
        if (lost.length > 0) {
          locksLost = true;
          log.warn({ jobs: lost.slice(0, 5), count: lost.length }, `${opts.owner}: locks of the batch in hand were lost`);
        }
      })
      .catch((err: unknown) => log.warn({ err }, 'could not extend the locks of the batch in hand'));
  }, LOCK_DURATION_MS / 3);

  // Unique per start: a restarted replica (same hostname-pid in a container) must not reuse a dead one's tokens.
  const tokenBase = `${opts.replicaId}:${randomUUID()}`;
  const nextToken = () => `${tokenBase}:${++tokenCounter}`;

  /** Stops acting on a lease that is no longer ours: no further fetch until it is taken again. */
  function dropLease(): void {
    lease = null;
    clearInterval(renewTimer);
  }

  async function acquire(): Promise<boolean> {
    const held = await tryAcquireLease(opts.connection, opts.leaseKeys, opts.owner, opts.replicaId, opts.leaseTtlMs);
    if (!held) return false;
    lease = held;
    log.info({ fence: held.fence, replica: opts.replicaId }, `took the lease of ${opts.owner}`);
    opts.onLeaseAcquired?.(held.fence);
    renewTimer = setInterval(() => {
      held.renew().then(
        (ok) => {
          if (!ok && lease === held) {
            log.warn({ fence: held.fence }, `lost the lease of ${opts.owner}`);
            dropLease();
          }
        },
        (err: unknown) => log.warn({ err }, `could not renew the lease of ${opts.owner}`),
      );
    }, Math.max(100, Math.floor(opts.leaseTtlMs / 3)));
    await awaitPredecessorBatch(held);
    return true;
  }

  /**
   * Only the lease holder has jobs active in this queue. A predecessor that died or froze in the middle
   * of a batch left its jobs active under locks of its own; fetching now would take the jobs behind them
   * first. So a new holder waits until the queue has no active job (the predecessor finished or handed
   * back, or its locks expired and a stalled check returned the jobs to the head); the batch that then
   * takes them puts them back in change order.
   */
  async function awaitPredecessorBatch(held: HeldLease): Promise<void> {
    const activeKey = worker.keys.active!; // BullMQ's own name for the list (always defined)
    const started = Date.now();
    const deadline = started + LOCK_DURATION_MS + 3 * STALLED_INTERVAL_MS;
    let waited = false;
    while (!stopping && lease === held && (await opts.connection.llen(activeKey)) > 0) {
      if (Date.now() > deadline) {
        log.error({ waitedMs: Date.now() - started }, `${opts.owner}: jobs of the previous holder are still active; going on`);
        return;
      }
      if (!waited) log.warn(`${opts.owner}: the previous holder left jobs active; waiting for them to come back`);
      waited = true;
      await pause(250);
    }
    if (waited) log.info({ waitedMs: Date.now() - started }, `${opts.owner}: the previous holder's jobs are back in the queue`);
  }

  async function fetchBatch(): Promise<{ batch: Fetched[]; drained: boolean }> {
    // A holder that froze since its last renewal must not take jobs that belong to its successor.
    if (!lease) return { batch: [], drained: false };
    try {
      await lease.assertHeld();
    } catch (err) {
      if (err instanceof LeaseLostError) {
        dropLease();
        return { batch: [], drained: false };
      }
      throw err;
    }
    // While jobs are held, do not block: they must be offered again soon, new jobs or not.
    const room = opts.holds ? opts.holds.max - held.length : Infinity;
    if (room <= 0) return { batch: [], drained: false };
    const firstToken = nextToken();
    const first = await worker.getNextJob(firstToken, { block: held.length === 0 });
    if (!first) return { batch: [], drained: true };
    const batch: Fetched[] = [{ job: first, token: firstToken }];
    const size = Math.min(room, opts.batchSizeFor?.(first.data) ?? opts.batchSize);
    let drained = false;
    // Fetches go out FETCH_PIPELINE at a time: one connection runs them in the order they were sent,
    // so the n-th call takes the n-th job, and the batch costs a few round trips instead of one per job.
    while (batch.length < size && lease) {
      const tokens = Array.from({ length: Math.min(FETCH_PIPELINE, size - batch.length) }, nextToken);
      const jobs = await Promise.all(tokens.map((token) => worker.getNextJob(token, { block: false })));
      jobs.forEach((job, i) => job && batch.push({ job, token: tokens[i]! }));
      if (jobs.some((job) => !job)) {
        drained = true;
        break;
      }
    }
    return { batch, drained };
  }

  /** Back to the head of the queue, in their order, so the next holder starts exactly here. */
  async function handBack(batch: Fetched[]): Promise<void> {
    for (const { job, token } of [...batch].reverse()) {
      // A job whose lock is already gone is back in the queue through the stalled check; go on with the rest.
      await job.moveToWait(token).catch((err: unknown) => log.warn({ err, job: job.id }, `${opts.owner}: could not hand a job back`));
    }
  }

  /** Whether the last call held every job it was given: the next waits a little unless new jobs come. */
  let onlyHeld = false;

  async function processBatch(batch: Fetched[], drained: boolean): Promise<void> {
    const valid: Valid<D>[] = [...held];
    held = [];
    for (const fetched of batch) {
      const parsed = opts.schema.safeParse(fetched.job.data);
      if (parsed.success) {
        valid.push({ fetched, data: parsed.data });
        continue;
      }
      // A malformed payload never becomes valid by retrying: straight to failed, visible with its error.
      const issue = parsed.error.issues[0];
      await fetched.job.moveToFailed(new UnrecoverableError(`invalid job payload: ${issue?.path.join('.')}: ${issue?.message}`), fetched.token, false);
    }
    inHand = valid.map((v) => v.fetched);
    if (valid.length === 0) return;
    const current = lease;
    if (!current) throw new LeaseLostError(opts.owner, 0);
    locksLost = false;
    // The fence `handle` checks before a side effect: the lease still ours, and the batch's job locks too.
    const fence: HeldLease = {
      ...current,
      assertHeld: async () => {
        if (locksLost) throw new LeaseLostError(opts.owner, current.fence);
        await current.assertHeld();
      },
    };
    const results = await opts.handle(
      valid.map((v) => v.data),
      fence,
      valid.map((v) => ({ attemptsMade: v.fetched.job.attemptsMade, failedReason: v.fetched.job.failedReason || undefined, addedAt: v.fetched.job.timestamp })),
      { drained },
    );
    if (results.length !== valid.length) throw new Error(`${opts.owner}: handle returned ${results.length} results for ${valid.length} jobs`);
    if (!opts.holds && results.includes(HOLD)) throw new Error(`${opts.owner}: handle held jobs, but the consumer was not told it holds`);
    // The side effects are done: from here on the jobs are finished (or held), whatever else happens.
    held = valid.filter((_, i) => results[i] === HOLD);
    inHand = held.map((v) => v.fetched);
    onlyHeld = held.length === valid.length;
    await Promise.all(
      valid.map(async ({ fetched: { job, token }, data }, i) => {
        const result = results[i];
        if (result === HOLD) return;
        if (result instanceof JobFailure) return job.moveToFailed(result.error, token, false);
        await job.moveToCompleted(result, token, false);
        const slim = opts.slimCompleted?.(data);
        // A job already removed by its retention (count 0) has nothing left to slim.
        if (slim !== undefined) await job.updateData(slim).catch((err: unknown) => log.debug({ err, job: job.id }, `${opts.owner}: could not slim a completed job`));
      }),
    );
  }

  /** After a failed batch: back to the head of the queue, in order (see the top of this file). */
  async function recover(err: unknown, pending: Fetched[]): Promise<void> {
    backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(500, backoffMs * 2));
    if (opts.isTransient(err)) {
      log.warn({ err, events: pending.length, retryInMs: backoffMs }, `${opts.owner}: batch handed back`);
      await handBack(pending);
      return;
    }
    // An unexpected error: failing the jobs into BullMQ's retries would put them behind later events.
    // The batch waits at the head instead; only when the same first job fails MAX_BATCH_FAILURES times
    // in a row does that one job go to the dead letters, and the rest go on.
    const head = pending[0];
    streak = head && streak.jobId === head.job.id ? { jobId: streak.jobId, count: streak.count + 1 } : { jobId: head?.job.id, count: 1 };
    if (head && streak.count >= MAX_BATCH_FAILURES) {
      log.error({ err, job: head.job.id }, `${opts.owner}: the first job of the batch failed ${streak.count} times; it goes to the failed jobs`);
      await head.job.moveToFailed(new UnrecoverableError(`failed ${streak.count} times as the first of its batch: ${(err as Error).message}`), head.token, false);
      await handBack(pending.slice(1));
      backoffMs = 0;
      return;
    }
    log.error({ err, events: pending.length, failures: streak.count, retryInMs: backoffMs }, `${opts.owner}: batch failed; it waits at the head of the queue`);
    await handBack(pending);
  }

  async function loop(): Promise<void> {
    await worker.startStalledCheckTimer();
    while (!stopping) {
      try {
        if (!lease && !(await acquire())) {
          await pause(Math.floor(opts.leaseTtlMs / 3 + Math.random() * 200));
          continue;
        }
        if (backoffMs) await pause(backoffMs);
        if (stopping) break;
        // A lease lost while jobs were held: they go back to the head of the queue, for the next holder.
        if (!lease && held.length > 0) {
          await handBack(held.map((v) => v.fetched));
          held = [];
          inHand = [];
          continue;
        }
        // Held jobs only, nothing new last time: give new jobs and the clock a moment before asking again.
        if (onlyHeld && held.length > 0) await pause(opts.holds?.recheckMs ?? 100);
        if (stopping) break;
        const { batch, drained } = await fetchBatch();
        if (batch.length === 0 && held.length === 0) continue;
        inHand = [...held.map((v) => v.fetched), ...batch];
        try {
          await processBatch(batch, drained);
          backoffMs = 0;
          streak = { count: 0 };
          continue;
        } catch (err) {
          const pending = inHand;
          inHand = [];
          held = [];
          if (err instanceof LeaseLostError) dropLease();
          await recover(err, pending);
        }
        // A job that could not be handed back (its lock was gone) is still active and returns only through
        // a stalled check: fetching behind it now would reorder. Same wait as a new lease holder's.
        if (lease) await awaitPredecessorBatch(lease);
      } catch (err) {
        // Valkey unreachable and the like: keep the loop alive, clients reconnect on their own.
        log.error({ err }, `${opts.owner}: consumer loop error`);
        await pause(500);
        // Whatever was in hand may not have gone back: never fetch behind jobs that are still active.
        if (lease) await awaitPredecessorBatch(lease).catch(() => undefined);
      }
    }
  }

  const running = loop();

  return {
    async stop() {
      stopping = true;
      wake?.();
      await running;
      // Held jobs go back to the head of the queue in their order, for whoever takes over.
      if (held.length > 0) await handBack(held.map((v) => v.fetched)).catch((err: unknown) => log.warn({ err }, `${opts.owner}: could not hand back held jobs`));
      held = [];
      inHand = [];
      clearInterval(renewTimer);
      clearInterval(lockTimer);
      // Not released (Valkey away): the lease simply expires after its TTL.
      if (lease) await lease.release().catch((err: unknown) => log.warn({ err }, `${opts.owner}: could not release the lease; it expires after ${opts.leaseTtlMs} ms`));
      lease = null;
      await worker.close();
    },
  };
}
