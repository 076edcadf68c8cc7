// The composition root: wires configuration, Valkey, queues, workers and the HTTP app into one running
// service. main.ts calls it for `npm start`; tests and benchmarks call it to run the real thing in-process.
// Each part pushes how to release it as it starts (service/releasers.ts): stop() releases them last-started
// first, and a start that fails halfway releases what did start before it rethrows.
import { Queue } from 'bullmq';
import type { ResolvedConfig } from './config/resolved-config.js';
import { sealRecipientsInForce } from './config/resolve-config.js';
import { createServiceApps } from './dashboard/app.js';
import { createBackpressure } from './workers/ingest/backpressure.js';
import { createQueueDashboard } from './dashboard/bull-board.js';
import { createClusterRateLimit } from './workers/ingest/cluster-rate-limit.js';
import { createHealth } from './dashboard/health.js';
import { listenService } from './dashboard/listen.js';
import { createMetrics, registerBudgetGauge, registerQueueGauges, type ServiceMetrics } from './observability/metrics.js';
import { collectOverview } from './dashboard/overview.js';
import { startReconcileService } from './flows/reconcile/reconcile-service.js';
import { ClusterClients } from './kube/cluster-clients.js';
import { startDiscoveryCache } from './kube/discovery-cache.js';
import { createCollectionLister } from './kube/list-object-names.js';
import { createObjectFetcher } from './kube/object-fetcher.js';
import { recordAuditAuthors } from './kube/watch/audit-join.js';
import { startWatchSupervisor } from './kube/watch/watch-supervisor.js';
import { createClusterBudget, startBudgetSweeper } from './queues/cluster-budget.js';
import { openConnection } from './queues/connection.js';
import type { IngestJob, WriteJob } from './core/contracts.js';
import { ingestJobOptions, queueStreams, writeJobOptions } from './queues/job-options.js';
import { INGEST_QUEUE } from './queues/names.js';
import { operationOf } from './workers/route/normalize-event.js';
import { eventSelected } from './workers/route/collection-writes.js';
import { startRouter } from './workers/route/router.js';
import { createConfigApplier } from './service/config-applier.js';
import { withDefaults, type ServiceOptions } from './service/options.js';
import { createPartitions } from './service/partitions.js';
import { withReleasers } from './service/releasers.js';
import { writerStarter } from './service/start-writer.js';
import { startStatusReporting, type StatusReporting } from './service/status-reporting.js';

export type { ServiceOptions, ServiceSettings } from './service/options.js';

export interface RunningService {
  url: string;
  port: number;
  /** Where /admin is served: the admin port's URL, or `url` without one. */
  adminUrl: string;
  adminPort: number;
  metrics: ServiceMetrics;
  ingestQueue: Queue<IngestJob>;
  writeQueues: Map<string, Queue<WriteJob>>;
  /** The configuration whose routes are in force right now. */
  currentConfig(): ResolvedConfig;
  /** Releases everything the service started, last-started first; once (a second call gets the same promise). */
  stop(): Promise<void>;
}

/** How long a request in flight may take to finish at stop: a keep-alive client must not hold the shutdown. */
const REQUEST_GRACE_MS = 2000;

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const opts = withDefaults(options);
  const { logger, prefix, replicaId, configSource } = opts;
  const onReleaseError = (err: unknown) => logger.error({ err }, 'releasing what the failed start had started failed too');
  return withReleasers(async (releasers) => {
    const connection = openConnection(opts.valkeyUrl, opts.valkeyOptions);
    connection.on('error', (err) => logger.warn({ err: err.message }, 'Valkey connection error (reconnecting)'));
    releasers.push(() => connection.quit().catch(() => connection.disconnect()));
    // Metric names take the prefix without a Valkey Cluster hash tag's braces.
    const metricPrefix = prefix.replace(/[{}]/g, '');
    const metrics = createMetrics(metricPrefix);

    const streams = queueStreams(opts.retention);
    const ingestOptions = ingestJobOptions(opts.retention);
    const ingestQueue = new Queue<IngestJob>(INGEST_QUEUE, { connection, prefix, streams });
    const board = createQueueDashboard([ingestQueue as Queue], opts.dashboardReadOnly);
    // The configuration in force, held by the applier (created below; nothing reads it before).
    const config = (): ResolvedConfig => applier.config();
    // Each cluster's share of Valkey: reserved at the webhook, moved by the router, released once in Git.
    const budget = createClusterBudget(connection, prefix);
    const { dataDir, leaseTtlMs, batchSize, committer } = opts;
    const startWriter = writerStarter({ connection, prefix, dataDir, replicaId, leaseTtlMs, batchSize, committer, logger, metrics, budget, config });
    const partitions = createPartitions({ connection, prefix, streams, board, logger, startWriter });
    const { writeQueues } = partitions;
    const allQueues = () => [ingestQueue, ...writeQueues.values()] as Queue[];
    registerQueueGauges(metrics, metricPrefix, allQueues);
    registerBudgetGauge(metrics, metricPrefix, () => budget.inFlight([...config().clusters.keys()]));
    releasers.push(() => Promise.all(allQueues().map((q) => q.close())));
    // Requests in flight get their grace while everything below stops: the listeners' release (the first to
    // run) starts closing them, and this one, run after the writers stopped, waits for it.
    let closing: Promise<void> | undefined;
    releasers.push(() => closing);
    releasers.push(() => partitions.stopWriters());

    const clusterClients = new ClusterClients({ defaultKubeConfig: opts.kubeConfig });
    const watches = startWatchSupervisor({ connection, prefix, ingestQueue, clusterClients, logger, replicaId, leaseTtlMs, metrics, ingestJobOptions: ingestOptions });
    releasers.push(() => watches.stop());
    // Status is reported only where the configuration comes from the cluster; discovery of the source
    // clusters serves it (the "rule selects nothing" condition).
    const statusKubeConfig = opts.reportStatus && opts.kubeConfig;
    const discovery = statusKubeConfig ? startDiscoveryCache({ clients: clusterClients, logger, onChange: () => applier.reportStatus() }) : undefined;
    if (discovery) releasers.push(() => discovery.stop());
    let status: StatusReporting | undefined;
    const applier = createConfigApplier({ configSource, logger, partitions, clusterClients, watches, discovery, status: () => status?.reporter, tls: opts.tls, retireCheckMs: opts.retireCheckMs });
    const { routes } = applier;
    await applier.applyInitial();
    if (statusKubeConfig) {
      const reporting = startStatusReporting({
        kubeConfig: statusKubeConfig,
        connection,
        prefix,
        logger,
        metrics,
        replicaId,
        leaseTtlMs,
        intervals: opts.reportStatus ?? {},
        queues: (name) => writeQueues.get(name),
        watchedResources: () => watches.watchedResources(config()),
      });
      status = reporting;
      releasers.push(() => reporting.stop());
    }
    applier.reportStatus();
    const writeRetention = writeJobOptions(opts.retention);
    const reconcile = opts.reconcile
      ? await startReconcileService({ connection, prefix, dataDir, logger, config, clusterClients, writeQueues, committerEmail: committer.email, metrics, writeJobOptions: writeRetention, streams })
      : undefined;
    if (reconcile) releasers.push(() => reconcile.stop());
    for (const queue of reconcile?.queues ?? []) board.addQueue(queue);
    releasers.push(applier.follow(reconcile));

    const router = startRouter({
      connection,
      prefix,
      routes,
      writeQueues,
      replicaId,
      leaseTtlMs,
      logger,
      metrics,
      budget,
      writeJobOptions: { ...writeRetention, attempts: opts.writeAttempts, backoff: { type: 'exponential', delay: opts.writeBackoffMs } },
      objectLimits: opts.objectLimits,
      reorderWindowMs: opts.reorderWindowMs,
      // Audit events without a body (Metadata level, unrecorded patch responses) are read back from their cluster.
      fetchObject: createObjectFetcher(clusterClients),
      // A deletecollection whose answer was not recorded: its (type, namespace) is listed to tell what went.
      listNames: createCollectionLister(clusterClients),
    });
    releasers.push(() => router.stop());

    const health = createHealth({ connection, prefix, configLoaded: () => applier.applied(), providers: () => status?.reporter.providers() ?? [] });
    const apps = createServiceApps({
      separateAdmin: opts.adminPort !== undefined,
      clusters: () => config().clusters,
      ingestQueue,
      ingestJobOptions: ingestOptions,
      bodyLimitBytes: opts.bodyLimitBytes,
      storeTimeoutMs: opts.storeTimeoutMs,
      backpressure: createBackpressure({ ingestQueue: ingestQueue as Queue, connection, backlogLimit: opts.ingestBacklogLimit, memoryRatio: opts.valkeyMemoryRatio }),
      logger,
      metrics,
      board,
      dashboardCredentials: opts.dashboardCredentials,
      dashboardOperatorCredentials: opts.dashboardOperatorCredentials,
      dashboardTrustedHeaders: opts.dashboardTrustedHeaders,
      dashboardReadOnly: opts.dashboardReadOnly,
      queues: () => [...allQueues(), ...(reconcile?.queues ?? [])],
      reconcileRequest: reconcile?.request,
      readiness: health.readiness,
      health: health.health,
      overview: () => collectOverview({ config, connection, prefix, queues: (name) => allQueues().find((q) => q.name === name), ingestQueue: ingestQueue as Queue, metrics }),
      ping: () => connection.ping(),
      recordAuthors: (cluster, jobs) => recordAuditAuthors(connection, prefix, cluster.name, jobs),
      selects: (job) => eventSelected(routes(), job, operationOf(job.verb)),
      // Per-cluster rate limits are kept in Valkey: exact over all replicas.
      rateLimit: createClusterRateLimit({ connection, prefix }),
      objectLimits: opts.objectLimits,
      scopeOf: discovery && ((cluster, group, resource) => discovery.scopeOf(cluster, group, resource)),
      budget: { budget, limitBytes: opts.clusterInflightLimitBytes },
      sealRecipients: sealRecipientsInForce(config),
    });
    const budgetSweeper = startBudgetSweeper({
      connection,
      prefix,
      budget,
      replicaId,
      clusters: () => [...config().clusters.keys()],
      intervalMs: opts.budgetSweepMs,
      onError: (err) => logger.warn({ err }, 'could not sweep the storage budgets'),
    });
    releasers.push(() => budgetSweeper.stop());
    const listeners = await listenService(apps, {
      port: opts.port,
      adminPort: opts.adminPort,
      host: opts.host,
      tls: opts.tls,
      tlsReloadMs: opts.tlsReloadMs,
      onTlsReload: (err) => (err ? logger.warn({ err }, 'TLS files changed but could not be loaded') : logger.info({ certFile: opts.tls?.certFile }, 'TLS certificate reloaded')),
    });
    // Stop taking requests first; the ones in flight finish while the workers hand back their batches and
    // release their leases, so another replica takes over at once instead of after the lease TTL.
    releasers.push(() => {
      closing = listeners.close(REQUEST_GRACE_MS);
    });
    const { port } = listeners;
    logger.info({ port, ...(opts.adminPort !== undefined ? { adminPort: listeners.adminPort } : {}), replica: replicaId, partitions: partitions.writerCount(), clusters: [...config().clusters.keys()] }, 'GitOps Reverser is running');
    // Every target is reconciled once at start: what changed while no replica listened is caught up.
    void reconcile?.start().catch((err: unknown) => logger.warn({ err }, 'could not start the reconciles at start'));

    return {
      url: listeners.url,
      port,
      adminUrl: listeners.adminUrl,
      adminPort: listeners.adminPort,
      metrics,
      ingestQueue,
      writeQueues,
      currentConfig: config,
      stop: () => releasers.releaseAll(),
    };
  }, onReleaseError);
}
