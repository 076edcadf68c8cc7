// The defaults that more than one layer needs: the environment's schema (env.ts) states them as its
// defaults, and the modules that apply them (queues, the router) take them from here, so each is written once.

/** @defaultValue 'gitops-reverser' — shared by BullMQ keys, own keys and metric names. */
export const DEFAULT_PREFIX = 'gitops-reverser';

/** @defaultValue of CLUSTER_INFLIGHT_LIMIT_BYTES: 128 MiB per cluster. */
export const DEFAULT_CLUSTER_INFLIGHT_LIMIT_BYTES = 128 * 1024 * 1024;

/** @defaultValue of REORDER_WINDOW_MS (the README says how it was measured against a real API server). */
export const DEFAULT_REORDER_WINDOW_MS = 2000;

/** Attempts of a write the remote refuses before it is a dead letter (WRITE_ATTEMPTS). */
export const DEFAULT_WRITE_ATTEMPTS = 5;
/** The first retry delay of such a write, doubling per attempt (WRITE_BACKOFF_MS). */
export const DEFAULT_WRITE_BACKOFF_MS = 2000;

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

