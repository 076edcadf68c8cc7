// Job options per queue: attempts, backoff and how long finished jobs are kept. Completed jobs are kept
// for the window in which a sender may retry, because a custom jobId deduplicates only while the job
// with that id still exists; the writer's content and resourceVersion checks cover what comes later.
// A shorter completed age (or a smaller count, under a high event rate) shortens that window.
import type { JobsOptions, QueueOptions } from 'bullmq';
import { DEFAULT_RETENTION, DEFAULT_WRITE_ATTEMPTS, DEFAULT_WRITE_BACKOFF_MS, type Retention } from '../config/defaults.js';

export { DEFAULT_RETENTION, DEFAULT_WRITE_ATTEMPTS, DEFAULT_WRITE_BACKOFF_MS, WEEK, type Retention } from '../config/defaults.js';

function keep(r: Retention): Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'> {
  return { removeOnComplete: { age: r.completedSeconds, count: r.completedCount }, removeOnFail: { age: r.failedSeconds, count: r.failedCount } };
}

export function ingestJobOptions(retention: Retention = { ...DEFAULT_RETENTION, completedCount: 50_000 }): JobsOptions {
  return { attempts: 10, backoff: { type: 'exponential', delay: 1000 }, ...keep(retention) };
}

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
