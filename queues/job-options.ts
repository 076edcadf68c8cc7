// Job options per queue: attempts, backoff and how long finished jobs are kept. Completed jobs are kept
// for the window in which a sender may retry, because a custom jobId deduplicates only while the job
// with that id still exists; the writer's content and resourceVersion checks cover what comes later.
import type { JobsOptions } from 'bullmq';

const HOUR = 3600;
const WEEK = 7 * 24 * HOUR;

export const INGEST_JOB_OPTIONS: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: HOUR, count: 50_000 },
  // Failed jobs are the dead letters: kept a week for an operator to read and replay.
  removeOnFail: { age: WEEK },
};

export const WRITE_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: { age: HOUR, count: 20_000 },
  removeOnFail: { age: WEEK },
};
