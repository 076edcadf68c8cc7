// The service's HTTP app (dashboard/app.ts) on its own, for webhook tests that need what startService does
// not wire yet (the cluster rate limit, TLS): the real app and ingest queue on a real Valkey, no workers,
// so whatever the webhook accepts stays in the queue to be counted.
import { Queue } from 'bullmq';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { ClusterSource } from '../../config/resolved-config.js';
import { createApp } from '../../dashboard/app.js';
import { createQueueDashboard } from '../../dashboard/bull-board.js';
import { createClusterRateLimit } from '../../workers/ingest/cluster-rate-limit.js';
import { listen, type TlsFiles } from '../../dashboard/listen.js';
import { createMetrics, type ServiceMetrics } from '../../observability/metrics.js';
import { openConnection } from '../../queues/connection.js';
import type { IngestJob } from '../../core/contracts.js';
import { INGEST_QUEUE } from '../../queues/names.js';

export interface WebhookApp {
  url: string;
  port: number;
  ingestQueue: Queue<IngestJob>;
  metrics: ServiceMetrics;
  /** Events in the ingest queue. */
  queued(): Promise<number>;
  close(): Promise<void>;
}

/** A ClusterSource with the defaults resolve-config gives; `overrides` set the audit credentials and limits. */
export function clusterSource(name: string, overrides: Partial<ClusterSource>): ClusterSource {
  return { name, qps: 20, burst: 40, ...overrides };
}

export async function startWebhookApp(opts: { valkeyUrl: string; prefix: string; clusters: ClusterSource[]; tls?: TlsFiles }): Promise<WebhookApp> {
  const connection = openConnection(opts.valkeyUrl);
  const ingestQueue = new Queue<IngestJob>(INGEST_QUEUE, { connection, prefix: opts.prefix });
  const metrics = createMetrics(opts.prefix.replace(/[{}]/g, ''));
  const clusters = new Map(opts.clusters.map((c) => [c.name, c]));
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const app = createApp({
    clusters: () => clusters,
    ingestQueue,
    bodyLimitBytes: 10 * 1024 * 1024,
    rateLimit: createClusterRateLimit({ connection, prefix: opts.prefix }),
    logger,
    metrics,
    board: createQueueDashboard([ingestQueue as Queue], true),
    dashboardReadOnly: true,
    queues: () => [ingestQueue as Queue],
    ping: () => connection.ping(),
  });
  const server = await listen(app, { port: 0, host: '127.0.0.1', tls: opts.tls });
  const { port } = server.address() as AddressInfo;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    ingestQueue,
    metrics,
    async queued() {
      const counts = await ingestQueue.getJobCounts();
      return Object.values(counts).reduce((a, b) => a + b, 0);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ingestQueue.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
