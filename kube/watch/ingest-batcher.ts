// Collects the ingest jobs of all watches of one cluster and stores them with one addBulk per flush
// (every ~100 ms, or at once when 500 are waiting), in the order they were added. A caller's promise
// resolves only once its jobs are in Valkey, which is what lets a watch move its checkpoint; a failed
// addBulk rejects every caller of that flush, whose watches then deliver the same jobs again.
import type { JobsOptions, Queue } from 'bullmq';
import type { IngestJob } from '../../core/contracts.js';
import { INGEST_JOB_OPTIONS } from '../../queues/job-options.js';
import { eventJobId } from '../../queues/names.js';

export interface IngestBatcherOptions {
  ingestQueue: Pick<Queue<IngestJob>, 'addBulk'>;
  /** Attempts, backoff and retention (jobId is always set here). @defaultValue INGEST_JOB_OPTIONS */
  jobOptions?: JobsOptions;
  /** @defaultValue 100 */
  flushIntervalMs?: number;
  /** @defaultValue 500 */
  maxJobs?: number;
}

export interface IngestBatcher {
  add(jobs: IngestJob[]): Promise<void>;
  /** Stores what is waiting and resolves once every flush is done. */
  close(): Promise<void>;
}

interface Pending {
  jobs: IngestJob[];
  resolve(): void;
  reject(err: unknown): void;
}

export function createIngestBatcher(opts: IngestBatcherOptions): IngestBatcher {
  const interval = opts.flushIntervalMs ?? 100;
  const maxJobs = opts.maxJobs ?? 500;
  let waiting: Pending[] = [];
  let count = 0;
  let timer: NodeJS.Timeout | undefined;
  /** Flushes run one after another, so the queue receives jobs in the order they were added. */
  let chain: Promise<void> = Promise.resolve();

  const store = async (batch: Pending[]): Promise<void> => {
    const jobs = batch.flatMap((p) => p.jobs);
    try {
      for (let i = 0; i < jobs.length; i += maxJobs) {
        await opts.ingestQueue.addBulk(
          jobs.slice(i, i + maxJobs).map((job) => ({ name: job.verb, data: job, opts: { ...(opts.jobOptions ?? INGEST_JOB_OPTIONS), jobId: eventJobId(job.clusterId, job.auditID) } })),
        );
      }
      for (const p of batch) p.resolve();
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  };

  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    const batch = waiting;
    waiting = [];
    count = 0;
    if (batch.length > 0) chain = chain.then(() => store(batch));
    return chain;
  };

  return {
    add(jobs) {
      if (jobs.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiting.push({ jobs, resolve, reject });
        count += jobs.length;
        if (count >= maxJobs) void flush();
        else timer ??= setTimeout(() => void flush(), interval);
      });
    },
    close: flush,
  };
}
