// The composition root: wires configuration, Valkey, queues, workers and the HTTP app into one running
// service. main.ts calls it for `npm start`; tests and benchmarks call it to run the real thing in-process.
import { Queue } from 'bullmq';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ResolvedConfig } from './config/resolved-config.js';
import { createApp } from './dashboard/app.js';
import { createBackpressure } from './dashboard/backpressure.js';
import type { DashboardCredentials } from './dashboard/basic-auth.js';
import { createQueueDashboard } from './dashboard/bull-board.js';
import { createMetrics, registerQueueGauges, type ServiceMetrics } from './dashboard/metrics.js';
import { openConnection } from './queues/connection.js';
import type { GitAuthor, IngestJob, WriteJob } from './queues/contracts.js';
import { WRITE_JOB_OPTIONS } from './queues/job-options.js';
import { INGEST_QUEUE } from './queues/names.js';
import { startPartitionWriter, type PartitionWriter } from './workers/git-writer/partition-writer.js';
import { compileRules } from './workers/route/compile-rules.js';
import { startRouter } from './workers/router.js';

export interface ServiceOptions {
  config: ResolvedConfig;
  valkeyUrl: string;
  prefix: string;
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  host?: string;
  logger: Logger;
  bodyLimitBytes: number;
  leaseTtlMs: number;
  batchSize: number;
  committer: GitAuthor;
  dashboardReadOnly: boolean;
  /** Basic auth for Bull Board; undefined = none. */
  dashboardCredentials?: DashboardCredentials;
  replicaId?: string;
  /** How long the webhook waits for Valkey before answering 503. @defaultValue 10000 */
  storeTimeoutMs?: number;
  /** Attempts of a write job that the remote refuses, before it is a dead letter. @defaultValue 5 */
  writeAttempts?: number;
  /** First retry delay of such a job (doubling). @defaultValue 2000 */
  writeBackoffMs?: number;
  /** Events waiting in the ingest queue above which batches get 429. @defaultValue 200000 */
  ingestBacklogLimit?: number;
  /** Share of Valkey's maxmemory above which batches get 503. @defaultValue 0.9 */
  valkeyMemoryRatio?: number;
}

export interface RunningService {
  url: string;
  port: number;
  metrics: ServiceMetrics;
  ingestQueue: Queue<IngestJob>;
  writeQueues: Map<string, Queue<WriteJob>>;
  stop(): Promise<void>;
}

export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const { config, logger, prefix } = opts;
  const replicaId = opts.replicaId ?? `${hostname()}-${process.pid}`;
  const connection = openConnection(opts.valkeyUrl);
  connection.on('error', (err) => logger.warn({ err: err.message }, 'Valkey connection error (reconnecting)'));
  // Metric names take the prefix without a Valkey Cluster hash tag's braces.
  const metricPrefix = prefix.replace(/[{}]/g, '');
  const metrics = createMetrics(metricPrefix);

  const ingestQueue = new Queue<IngestJob>(INGEST_QUEUE, { connection, prefix });
  const writeQueues = new Map<string, Queue<WriteJob>>();
  for (const { partition } of config.partitions.values()) {
    writeQueues.set(partition.queueName, new Queue<WriteJob>(partition.queueName, { connection, prefix }));
  }
  const allQueues = () => [ingestQueue, ...writeQueues.values()] as Queue[];
  registerQueueGauges(metrics, metricPrefix, allQueues);
  const board = createQueueDashboard(allQueues(), opts.dashboardReadOnly);

  const writeJobOptions = {
    ...WRITE_JOB_OPTIONS,
    attempts: opts.writeAttempts ?? WRITE_JOB_OPTIONS.attempts,
    backoff: { type: 'exponential', delay: opts.writeBackoffMs ?? 2000 },
  };
  const routes = compileRules(config);
  const router = startRouter({ connection, prefix, routes: () => routes, writeQueues, replicaId, leaseTtlMs: opts.leaseTtlMs, logger, metrics, writeJobOptions });
  const writers: PartitionWriter[] = [...config.partitions.values()].map(({ partition, credentials }) =>
    startPartitionWriter({
      connection,
      prefix,
      partition,
      credentials,
      dataDir: opts.dataDir,
      replicaId,
      leaseTtlMs: opts.leaseTtlMs,
      batchSize: opts.batchSize,
      committer: opts.committer,
      logger,
      metrics,
    }),
  );

  const app = createApp({
    clusters: () => config.clusters,
    ingestQueue,
    bodyLimitBytes: opts.bodyLimitBytes,
    storeTimeoutMs: opts.storeTimeoutMs,
    backpressure: createBackpressure({
      ingestQueue: ingestQueue as Queue,
      connection,
      backlogLimit: opts.ingestBacklogLimit ?? 200_000,
      memoryRatio: opts.valkeyMemoryRatio ?? 0.9,
    }),
    logger,
    metrics,
    board,
    dashboardCredentials: opts.dashboardCredentials,
    dashboardReadOnly: opts.dashboardReadOnly,
    queues: allQueues,
    ping: () => connection.ping(),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  logger.info({ port, replica: replicaId, partitions: writers.length, clusters: [...config.clusters.keys()] }, 'GitOps Reverser is running');

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    metrics,
    ingestQueue,
    writeQueues,
    async stop() {
      // Stop taking requests, and at the same time finish (or hand back) the batches in hand and release
      // the leases, so another replica takes over at once instead of after the lease TTL.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // A request in flight gets a moment to finish; a keep-alive client must not hold the shutdown.
      const drainRequests = setTimeout(() => server.closeAllConnections(), 2000);
      await Promise.all([router.stop(), ...writers.map((w) => w.stop())]);
      await closed;
      clearTimeout(drainRequests);
      await Promise.all(allQueues().map((q) => q.close()));
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
