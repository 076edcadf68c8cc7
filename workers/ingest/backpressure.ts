// Backpressure at the webhook: when the ingest backlog or Valkey's memory passes its bound, refuse new
// batches with 429/503 and Retry-After (the API server's audit webhook backend retries them) instead of
// accepting what cannot be kept. BullMQ needs `noeviction`, so a full Valkey would refuse writes anyway,
// and mid-batch; refusing before storing keeps every acknowledged event safe.
import type { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';

export interface BackpressureOptions {
  ingestQueue: Queue;
  connection: Valkey;
  /** Most events waiting in the ingest queue before batches are refused. @defaultValue 200000 */
  backlogLimit: number;
  /** Share of Valkey's maxmemory above which batches are refused. @defaultValue 0.9 */
  memoryRatio: number;
  /** How long a reading is reused, so busy webhooks do not ask Valkey on every request. @defaultValue 500 */
  cacheMs?: number;
}

export interface Refusal {
  status: 429 | 503;
  reason: 'backlog' | 'memory';
  error: string;
  retryAfterSeconds: number;
}

interface Reading {
  at: number;
  backlog: number;
  usedMemory: number;
  maxMemory: number;
}

function infoField(info: string, name: string): number {
  const m = new RegExp(`^${name}:(\\d+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
}

export function createBackpressure(opts: BackpressureOptions): (incoming: number) => Promise<Refusal | null> {
  let reading: Promise<Reading> | undefined;
  let readingAt = 0;
  const read = async (): Promise<Reading> => {
    const [counts, info] = await Promise.all([
      opts.ingestQueue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'),
      opts.connection.info('memory'),
    ]);
    const backlog = Object.values(counts).reduce((a, b) => a + b, 0);
    return { at: Date.now(), backlog, usedMemory: infoField(info, 'used_memory'), maxMemory: infoField(info, 'maxmemory') };
  };
  return async (incoming) => {
    if (!reading || Date.now() - readingAt > (opts.cacheMs ?? 500)) {
      readingAt = Date.now();
      reading = read();
      reading.catch(() => (reading = undefined));
    }
    const r = await reading;
    if (r.backlog + incoming > opts.backlogLimit) {
      return {
        status: 429,
        reason: 'backlog',
        error: `the ingest backlog is full (${r.backlog} events waiting, limit ${opts.backlogLimit}); retry later`,
        retryAfterSeconds: 10,
      };
    }
    if (r.maxMemory > 0 && r.usedMemory > r.maxMemory * opts.memoryRatio) {
      const pct = Math.round((100 * r.usedMemory) / r.maxMemory);
      return {
        status: 503,
        reason: 'memory',
        error: `Valkey memory is at ${pct}% of maxmemory (limit ${Math.round(opts.memoryRatio * 100)}%); retry later`,
        retryAfterSeconds: 30,
      };
    }
    return null;
  };
}
