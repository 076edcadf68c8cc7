// Each GitTarget's write progress, kept in Valkey so that the status reporter of any replica can show it:
// the last commit pushed with a change of the target, and the last write error until the next successful
// push. The partition writer reports every batch it finished or gave back (withBatchProgress); recording
// is fire-and-forget for the writer: progress is shown to people, and it never slows or fails a write.
//
// The backlog is read from BullMQ itself: it is the backlog of the target's partition queue, which every
// target of one repository and branch shares.
import type { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { WriteJob, WriteResult } from '../core/contracts.js';
import { JobFailure } from './exclusive-batch-consumer.js';
import { LeaseLostError } from './lease.js';
import { targetProgressKey } from './names.js';
import { changeOrder } from '../core/change-order.js';
import { OutOfOrderError } from './out-of-order-error.js';

export interface TargetProgress {
  lastCommit?: { sha: string; time: string };
  lastError?: { message: string; time: string };
  /** The newest change written so far (its time in the cluster) and how long after it its batch finished. */
  lag?: { eventTime: string; seconds: number };
  /** Events that arrived after a newer version of their object was committed (out-of-order.ts), in all. */
  outOfOrder?: number;
}

/** A batch the partition writer finished (one result per job, in the jobs' order) or gave back (error). */
export type BatchProgress =
  | { jobs: readonly WriteJob[]; results: readonly (WriteResult | JobFailure)[] }
  | { jobs: readonly WriteJob[]; error: unknown };

/** What one batch changes of one target: a new last commit, and the error set (string) or cleared (null). */
export interface TargetUpdate {
  commit?: string;
  error?: string | null;
  /** Epoch ms of the newest change of the target this batch wrote (failed writes excluded). */
  newestEvent?: number;
  /** Its events of this batch that arrived after a newer version (dead letters, not write errors). */
  outOfOrder?: number;
}

/** An error message fits a condition message and a log line; git's stderr can be long. */
const MAX_ERROR = 1024;

const FIELDS = {
  commitSha: 'commitSha',
  commitTime: 'commitTime',
  errorMessage: 'errorMessage',
  errorTime: 'errorTime',
  eventAtMs: 'eventAtMs',
  eventLagMs: 'eventLagMs',
  outOfOrder: 'outOfOrder',
} as const;

/**
 * Sets the lag only for a change newer than the one recorded: a replayed dead letter finishes late with an
 * old event, which says nothing about how far behind the pipeline is.
 */
const NEWER_LAG = `
local current = tonumber(redis.call('HGET', KEYS[1], '${FIELDS.eventAtMs}') or '0')
if tonumber(ARGV[1]) > current then
  redis.call('HSET', KEYS[1], '${FIELDS.eventAtMs}', ARGV[1], '${FIELDS.eventLagMs}', ARGV[2])
end
return 0`;

/** One line (git's stderr has several), short enough for a condition message. */
function errorText(err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ').trim();
  return text.length <= MAX_ERROR ? text : `${text.slice(0, MAX_ERROR - 1)}…`;
}

/**
 * Per target of the batch, what changed. A lost lease is nobody's write error (another replica goes on
 * with the batch), so it changes nothing. A batch handed back fails each of its targets; a finished one
 * clears their errors, except a target whose own event failed (a commit the remote refused).
 */
export function progressUpdates(batch: BatchProgress): Map<string, TargetUpdate> {
  const updates = new Map<string, TargetUpdate>();
  if ('error' in batch) {
    if (batch.error instanceof LeaseLostError) return updates;
    const message = errorText(batch.error);
    for (const job of batch.jobs) updates.set(job.target, { error: message });
    return updates;
  }
  // Jobs arrive in queue order; their commits were made in change order, so the newest change's commit wins.
  const order = changeOrder(batch.jobs, (j) => ({ stageTimestamp: j.stageTimestamp, cluster: j.clusterId, resourceVersion: j.resourceVersion }));
  for (const i of order) {
    const job = batch.jobs[i]!;
    const update = updates.get(job.target) ?? { error: null };
    updates.set(job.target, update);
    const result = batch.results[i];
    if (result instanceof JobFailure && result.error instanceof OutOfOrderError) {
      // Counted, not a failed write: the target's writes go on.
      update.outOfOrder = (update.outOfOrder ?? 0) + 1;
      continue;
    }
    if (result instanceof JobFailure) {
      update.error = errorText(result.error);
      continue;
    }
    if (result?.outcome === 'committed') update.commit = result.commit;
    const at = Date.parse(job.stageTimestamp);
    if (!Number.isNaN(at) && at > (update.newestEvent ?? 0)) update.newestEvent = at;
  }
  return updates;
}

/** Records the progress of one batch; one round trip for all its targets. */
export async function recordTargetProgress(connection: Valkey, prefix: string, batch: BatchProgress, now = new Date()): Promise<void> {
  const updates = progressUpdates(batch);
  if (updates.size === 0) return;
  const time = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const tx = connection.multi();
  for (const [target, update] of updates) {
    const key = targetProgressKey(prefix, target);
    const set: Record<string, string> = {};
    if (update.commit !== undefined) Object.assign(set, { [FIELDS.commitSha]: update.commit, [FIELDS.commitTime]: time });
    if (typeof update.error === 'string') Object.assign(set, { [FIELDS.errorMessage]: update.error, [FIELDS.errorTime]: time });
    if (Object.keys(set).length > 0) tx.hset(key, set);
    if (update.error === null) tx.hdel(key, FIELDS.errorMessage, FIELDS.errorTime);
    if (update.outOfOrder) tx.hincrby(key, FIELDS.outOfOrder, update.outOfOrder);
    if (update.newestEvent !== undefined) tx.eval(NEWER_LAG, 1, key, String(update.newestEvent), String(Math.max(0, now.getTime() - update.newestEvent)));
  }
  await tx.exec();
}

/**
 * Wraps a partition writer's batch handler so that every batch it finishes or gives back is reported to
 * `onProgress`. The handler's result and error pass through unchanged; a throwing callback is ignored.
 */
export function withBatchProgress<Rest extends unknown[]>(
  handle: (jobs: WriteJob[], ...rest: Rest) => Promise<(WriteResult | JobFailure)[]>,
  onProgress: (progress: BatchProgress) => void,
): (jobs: WriteJob[], ...rest: Rest) => Promise<(WriteResult | JobFailure)[]> {
  const report = (progress: BatchProgress) => {
    try {
      onProgress(progress);
    } catch {
      // Progress is for people to see; it never decides the fate of a batch.
    }
  };
  return async (jobs, ...rest) => {
    let results: (WriteResult | JobFailure)[];
    try {
      results = await handle(jobs, ...rest);
    } catch (err) {
      report({ jobs, error: err });
      throw err;
    }
    report({ jobs, results });
    return results;
  };
}

/** The progress of each target (absent: nothing recorded yet). One round trip. */
export async function readTargetProgress(connection: Valkey, prefix: string, targetKeys: Iterable<string>): Promise<Map<string, TargetProgress>> {
  const keys = [...new Set(targetKeys)];
  const out = new Map<string, TargetProgress>();
  if (keys.length === 0) return out;
  const pipeline = connection.pipeline();
  for (const key of keys) pipeline.hgetall(targetProgressKey(prefix, key));
  const replies = (await pipeline.exec()) ?? [];
  keys.forEach((key, i) => {
    const [err, value] = replies[i] ?? [null, null];
    if (err) throw err;
    const hash = (value ?? {}) as Partial<Record<string, string>>;
    const progress: TargetProgress = {};
    const [sha, commitTime, message, errorTime] = [hash[FIELDS.commitSha], hash[FIELDS.commitTime], hash[FIELDS.errorMessage], hash[FIELDS.errorTime]];
    if (sha && commitTime) progress.lastCommit = { sha, time: commitTime };
    if (message !== undefined && errorTime) progress.lastError = { message, time: errorTime };
    const [eventAt, lagMs] = [Number(hash[FIELDS.eventAtMs]), Number(hash[FIELDS.eventLagMs])];
    const outOfOrder = Number(hash[FIELDS.outOfOrder] ?? 0);
    if (outOfOrder > 0) progress.outOfOrder = outOfOrder;
    if (eventAt > 0 && Number.isFinite(lagMs)) progress.lag = { eventTime: new Date(eventAt).toISOString(), seconds: Math.round(lagMs / 100) / 10 };
    out.set(key, progress);
  });
  return out;
}

/** Jobs of a partition queue not written yet: waiting (also prioritized), active (being written), delayed (retrying). */
export async function readPartitionBacklog(queue: Pick<Queue, 'getJobCounts'>): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}
