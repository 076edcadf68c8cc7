// Job options per queue: attempts, backoff and how long finished jobs are kept. Completed jobs are kept
// for the window in which a sender may retry, because a custom jobId deduplicates only while the job
// with that id still exists; the writer's content and resourceVersion checks cover what comes later.
// A shorter completed age (or a smaller count, under a high event rate) shortens that window.
import type { JobsOptions, QueueOptions } from 'bullmq';

const HOUR = 3600;
/** Seconds in a week: how long failed jobs (the dead letters) are kept, here and in the reconcile flow. */
export const WEEK = 7 * 24 * HOUR;

/** What Valkey keeps of finished work: bounds its memory under a steady event rate. */
export interface Retention {
  /** Completed jobs are removed once older than this (the jobId dedup window). @defaultValue 3600 */
  completedSeconds: number;
  /** …and beyond the newest this many, per queue. @defaultValue 20000 (ingest 50000 without a retention) */
  completedCount: number;
  /** Failed jobs (the dead letters, for an operator to read and replay). @defaultValue 604800 (7 days) */
  failedSeconds: number;
  /** …and beyond the newest this many, per queue: dead letters cannot fill Valkey. @defaultValue 10000 */
  failedCount: number;
  /** Approximate length each queue's events stream is trimmed to (XTRIM MAXLEN ~). @defaultValue 1000 */
  eventsMaxLen: number;
}

export const DEFAULT_RETENTION: Retention = { completedSeconds: HOUR, completedCount: 20_000, failedSeconds: WEEK, failedCount: 10_000, eventsMaxLen: 1000 };

function keep(r: Retention): Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'> {
  return { removeOnComplete: { age: r.completedSeconds, count: r.completedCount }, removeOnFail: { age: r.failedSeconds, count: r.failedCount } };
}

export function ingestJobOptions(retention: Retention = { ...DEFAULT_RETENTION, completedCount: 50_000 }): JobsOptions {
  return { attempts: 10, backoff: { type: 'exponential', delay: 1000 }, ...keep(retention) };
}

/** Attempts of a write the remote refuses before it is a dead letter (WRITE_ATTEMPTS). */
export const DEFAULT_WRITE_ATTEMPTS = 5;
/** The first retry delay of such a write, doubling per attempt (WRITE_BACKOFF_MS). */
export const DEFAULT_WRITE_BACKOFF_MS = 2000;

export function writeJobOptions(retention: Retention = DEFAULT_RETENTION): JobsOptions {
  return { attempts: DEFAULT_WRITE_ATTEMPTS, backoff: { type: 'exponential', delay: DEFAULT_WRITE_BACKOFF_MS }, ...keep(retention) };
}

/**
 * The `streams` option of every Queue the service creates. BullMQ keeps it in the queue's meta hash
 * (`opts.maxLenEvents`), where the scripts of Workers and FlowProducers read it too (Workers take no such
 * option); a queue without it is trimmed at BullMQ's default of 10000.
 */
export function queueStreams(retention: Pick<Retention, 'eventsMaxLen'> = DEFAULT_RETENTION): QueueOptions['streams'] {
  return { events: { maxLen: retention.eventsMaxLen } };
}

/**
 * A completed job whose object or content is larger than this keeps only its size: the data is in Git by
 * then, and a completed job is kept only so that its id deduplicates (so retention holds ids, not objects).
 */
export const SLIM_COMPLETED_BYTES = 16 * 1024;

export const INGEST_JOB_OPTIONS: JobsOptions = ingestJobOptions();
export const WRITE_JOB_OPTIONS: JobsOptions = writeJobOptions();
