// How every row of `npm run bench` starts the service: the same limits and committer, and per phase its
// own key prefix, data directory and replica id, so that one phase's state never meets another's.
import { join } from 'node:path';
import type { Logger } from 'pino';

export interface BenchEnv {
  root: string;
  valkeyUrl: string;
  prefixBase: string;
  logger: Logger;
}

/** Who the bench's commits are by, the service's and the naive baseline's alike. */
export const BENCH_COMMITTER = { name: 'GitOps Reverser Bench', email: 'bench@localhost' };

/** startService's options for bench phase `phase`, but for what the phase configures itself. */
export function benchServiceOptions(env: BenchEnv, phase: string) {
  return {
    valkeyUrl: env.valkeyUrl,
    prefix: `${env.prefixBase}-${phase}`,
    dataDir: join(env.root, `${phase}-data`),
    port: 0,
    host: '127.0.0.1',
    logger: env.logger,
    bodyLimitBytes: 10 * 1024 * 1024,
    leaseTtlMs: 5000,
    batchSize: 500,
    committer: { ...BENCH_COMMITTER },
    replicaId: `bench-${phase}`,
    // The service's own variable: REORDER_WINDOW_MS=0 npm run bench shows the throughput without the window's
    // fixed hold of the last events (a latency, not work).
    ...(process.env.REORDER_WINDOW_MS !== undefined ? { reorderWindowMs: Number(process.env.REORDER_WINDOW_MS) } : {}),
  };
}
