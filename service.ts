// The composition root: wires configuration, Valkey, queues, workers and the HTTP app into one running
// service. main.ts calls it for `npm start`; tests and benchmarks call it to run the real thing in-process.
import { Queue } from 'bullmq';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ResolvedConfig } from './config/resolved-config.js';
import { createServiceApps } from './dashboard/app.js';
import { collectOverview } from './dashboard/overview.js';
import { createClusterRateLimit } from './dashboard/cluster-rate-limit.js';
import { listenService, type TlsFiles } from './dashboard/listen.js';
import { createBackpressure } from './dashboard/backpressure.js';
import type { DashboardCredentials, TrustedHeaderOptions } from './dashboard/basic-auth.js';
import { createQueueDashboard } from './dashboard/bull-board.js';
import { PLAIN_HTTP_TOKEN_WARNING, tokenClustersOverPlainHttp } from './dashboard/webhook-auth.js';
import { createMetrics, observeBatchPushed, registerBudgetGauge, registerQueueGauges, type ServiceMetrics } from './dashboard/metrics.js';
import { createHealth } from './dashboard/health.js';
import { openConnection } from './queues/connection.js';
import type { ValkeyClientOptions } from './queues/valkey-client-options.js';
import type { GitAuthor, IngestJob, WriteJob } from './queues/contracts.js';
import { DEFAULT_RETENTION, ingestJobOptions, queueStreams, writeJobOptions as writeOptions, type Retention } from './queues/job-options.js';
import { INGEST_QUEUE, statusKeys, writeJobId, type Partition } from './queues/names.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { ClusterClients } from './kube/cluster-clients.js';
import { fixedConfigSource, type ConfigSnapshot, type ConfigSource } from './kube/config-snapshot.js';
import { startLeaderElection, type LeaderElection } from './queues/leader.js';
import { createCollectionLister } from './kube/list-object-names.js';
import { createObjectFetcher } from './kube/object-fetcher.js';
import { startStatusReporter, type StatusReporter } from './kube/status/status-reporter.js';
import { startDiscoveryCache } from './kube/discovery-cache.js';
import { recordAuditAuthors } from './kube/watch/audit-join.js';
import { startWatchSupervisor } from './kube/watch/watch-supervisor.js';
import { startReconcileService } from './flows/reconcile/reconcile-service.js';
import { rulesSelectingNothing } from './config/resolve-config.js';
import { recordTargetProgress } from './workers/git-writer/target-progress.js';
import { startPartitionWriter, type PartitionWriter } from './workers/git-writer/partition-writer.js';
import { eventSelected } from './workers/route/collection-writes.js';
import { compileRules } from './workers/route/compile-rules.js';
import { operationOf } from './workers/normalize/normalize-event.js';
import { startRouter } from './workers/router.js';
import { budgetField, createClusterBudget, DEFAULT_CLUSTER_INFLIGHT_LIMIT_BYTES, startBudgetSweeper } from './queues/cluster-budget.js';
import { JobFailure } from './queues/exclusive-batch-consumer.js';
import type { ObjectLimits } from './workers/ingest/object-limits.js';

export interface ServiceOptions {
  /** A fixed configuration (a CONFIG_FILE, the demo); or give `configSource`. */
  config?: ResolvedConfig;
  /** A live configuration (the cluster's CRDs): routes, partitions and clusters follow its changes. */
  configSource?: ConfigSource;
  /**
   * The service's own Kubernetes credentials (KUBECONFIG or in-cluster): used for source clusters whose
   * ClusterProvider names no kubeconfig Secret. Undefined outside a cluster.
   */
  kubeConfig?: KubeConfig;
  /**
   * Write each configuration object's status (conditions, last commit, backlog) through `kubeConfig`:
   * when the configuration comes from the cluster.
   */
  reportStatus?: { intervalMs?: number; minIntervalMs?: number };
  /** Reconcile targets with their clusters (start, change, schedule, on demand). @defaultValue true */
  reconcile?: boolean;
  /** How often partitions no longer configured are checked for retirement (two empty checks in a row). @defaultValue 60000 */
  retireCheckMs?: number;
  /** Serve HTTPS (and ask for client certificates when a client CA is given). */
  tls?: TlsFiles;
  /** How often changed TLS files are picked up (renewed certificates). @defaultValue 30000 */
  tlsReloadMs?: number;
  valkeyUrl: string;
  /** Credentials and TLS trust that VALKEY_URL does not carry (see queues/valkey-client-options.ts). */
  valkeyOptions?: ValkeyClientOptions;
  prefix: string;
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  /** The address both ports listen on (LISTEN_ADDRESS). @defaultValue 0.0.0.0 */
  host?: string;
  /**
   * Serve /admin (Bull Board, overview, replay and reconcile APIs) on this port only, with the same TLS
   * (ADMIN_PORT); `port` then answers 404 for /admin. 0 picks a free port. @defaultValue undefined: on `port`
   */
  adminPort?: number;
  logger: Logger;
  bodyLimitBytes: number;
  leaseTtlMs: number;
  batchSize: number;
  committer: GitAuthor;
  dashboardReadOnly: boolean;
  /** Basic auth for Bull Board; undefined = none. */
  dashboardCredentials?: DashboardCredentials;
  /** Basic auth of the operator role; undefined = none (with dashboardReadOnly=false the viewer operates, as before). */
  dashboardOperatorCredentials?: DashboardCredentials;
  /** Trust an SSO proxy's user/groups headers; undefined = never. */
  dashboardTrustedHeaders?: TrustedHeaderOptions;
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
  /**
   * How long and how many finished jobs are kept, and the events streams' length. Unset: today's job
   * options (ingest keeps 50000 completed) and events streams of DEFAULT_RETENTION.eventsMaxLen.
   */
  retention?: Partial<Retention>;
  /** Bounds on each event's object (refused at the webhook past them). @defaultValue DEFAULT_OBJECT_LIMITS */
  objectLimits?: ObjectLimits;
  /** Bytes of one cluster's events in flight before its batches get 429. @defaultValue 128 MiB */
  clusterInflightLimitBytes?: number;
  /** How often storage budget entries of finished jobs are swept. @defaultValue 60000 */
  budgetSweepMs?: number;
  /** How long the router holds events for older ones that may still arrive. @defaultValue DEFAULT_REORDER_WINDOW_MS */
  reorderWindowMs?: number;
}

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
  stop(): Promise<void>;
}

export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const { logger, prefix } = opts;
  const configSource = opts.configSource ?? (opts.config ? fixedConfigSource(opts.config) : undefined);
  if (!configSource) throw new Error('startService needs config or configSource');
  const replicaId = opts.replicaId ?? `${hostname()}-${process.pid}`;
  const connection = openConnection(opts.valkeyUrl, opts.valkeyOptions);
  connection.on('error', (err) => logger.warn({ err: err.message }, 'Valkey connection error (reconnecting)'));
  // Metric names take the prefix without a Valkey Cluster hash tag's braces.
  const metricPrefix = prefix.replace(/[{}]/g, '');
  const metrics = createMetrics(metricPrefix);

  const retention: Retention | undefined = opts.retention && { ...DEFAULT_RETENTION, ...opts.retention };
  const streams = queueStreams(retention);
  const ingestOptions = ingestJobOptions(retention);
  const ingestQueue = new Queue<IngestJob>(INGEST_QUEUE, { connection, prefix, streams });
  const writeQueues = new Map<string, Queue<WriteJob>>();
  const allQueues = () => [ingestQueue, ...writeQueues.values()] as Queue[];
  registerQueueGauges(metrics, metricPrefix, allQueues);
  const board = createQueueDashboard([ingestQueue as Queue], opts.dashboardReadOnly);

  const writeRetention = writeOptions(retention);
  const writeJobOptions = {
    ...writeRetention,
    attempts: opts.writeAttempts ?? writeRetention.attempts,
    backoff: { type: 'exponential', delay: opts.writeBackoffMs ?? 2000 },
  };
  // Each cluster's share of Valkey: reserved at the webhook, moved by the router, released once in Git.
  const budget = createClusterBudget(connection, prefix);
  registerBudgetGauge(metrics, metricPrefix, () => budget.inFlight([...config.clusters.keys()]));
  /** A batch's writes that are in Git (or found there) no longer count against their clusters' budgets. */
  const releaseWritten = (queueName: string, jobs: readonly WriteJob[], results: readonly unknown[]): void => {
    const byCluster = new Map<string, string[]>();
    jobs.forEach((job, i) => {
      if (job.reconcile || results[i] instanceof JobFailure) return;
      const fields = byCluster.get(job.clusterId) ?? byCluster.set(job.clusterId, []).get(job.clusterId)!;
      fields.push(budgetField(queueName, writeJobId(job.eventKey, job.target)));
    });
    for (const [cluster, fields] of byCluster) void budget.release(cluster, fields).catch((err: unknown) => logger.warn({ err, cluster }, 'could not release the storage budget of written events'));
  };
  const writers = new Map<string, { writer: PartitionWriter; credentials: string }>();
  const startWriter = (partition: Partition, credentials: Record<string, string> | undefined): PartitionWriter =>
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
      // Every write job is checked against the targets in force (a job in Valkey is input; validate-write.ts).
      targets: () => config.targets,
      // Last commit and last error per target, for the GitTargets' status (read by whichever replica reports).
      onProgress: (progress) => {
        observeBatchPushed(metrics, partition.id, progress);
        if ('results' in progress) releaseWritten(partition.queueName, progress.jobs, progress.results);
        void recordTargetProgress(connection, prefix, progress).catch((err: unknown) => logger.warn({ err }, 'recording target progress failed'));
      },
    });

  const clusterClients = new ClusterClients({ defaultKubeConfig: opts.kubeConfig });
  let config = configSource.current().config;
  let routes = compileRules(config);
  /** Unconfigured partitions found empty at the last retirement check. */
  const emptyUnconfigured = new Set<string>();
  const ensureQueue = (partition: Partition): void => {
    if (writeQueues.has(partition.queueName)) return;
    const queue = new Queue<WriteJob>(partition.queueName, { connection, prefix, streams });
    writeQueues.set(partition.queueName, queue);
    board.addQueue(queue as Queue, partition.repoURL);
  };
  /**
   * Makes a configuration the one in force. The queues and writers of new partitions exist BEFORE the new
   * routes do, so the router never routes to a partition that has nowhere to go: an event is routed by the
   * old rules or by the new ones, and lost by neither. Clusters and routes switch before a writer whose
   * credentials changed is replaced (that waits for its batch in flight; its queue holds the jobs meanwhile).
   * A partition no longer configured keeps its writer until its queue is drained (retireDrainedPartitions).
   */
  /**
   * The part of a change that takes effect at once (synchronously, on the configuration's arrival): new
   * partitions' queues and writers, then clusters and routes. The webhook's `not-selected` filter and the
   * router read them, so a rule is in force on this replica from the moment its change arrives.
   */
  /** Token clusters already warned about for a plain HTTP listener: a change warns only of the ones it adds. */
  let tokenClustersWarned = new Set<string>();
  const switchTo = (next: ResolvedConfig): void => {
    for (const { partition, credentials } of next.partitions.values()) {
      ensureQueue(partition);
      if (!writers.has(partition.id)) writers.set(partition.id, { writer: startWriter(partition, credentials), credentials: JSON.stringify(credentials ?? null) });
    }
    clusterClients.update(next.clusters);
    const certOnly = [...next.clusters.values()].filter((c) => c.clientCommonName && !c.token).map((c) => c.name);
    if (certOnly.length > 0 && !opts.tls?.clientCaFile) {
      logger.warn({ clusters: certOnly }, 'these clusters authenticate by client certificate only, but TLS_CLIENT_CA_FILE is not set: their audit batches will be refused');
    }
    const overHttp = tokenClustersOverPlainHttp(next.clusters.values(), opts.tls !== undefined);
    const added = overHttp.filter((name) => !tokenClustersWarned.has(name));
    tokenClustersWarned = new Set(overHttp);
    if (added.length > 0) logger.warn({ clusters: added }, PLAIN_HTTP_TOKEN_WARNING);
    config = next;
    routes = compileRules(next);
    // A partition configured again starts its two empty checks anew before it can be retired.
    emptyUnconfigured.clear();
  };
  /** The part that waits: writers whose credentials changed, watches, discovery. */
  const apply = async (next: ResolvedConfig): Promise<void> => {
    for (const { partition, credentials } of next.partitions.values()) {
      const fingerprint = JSON.stringify(credentials ?? null);
      const running = writers.get(partition.id);
      if (!running || running.credentials === fingerprint) continue;
      // New credentials: the writer hands its batch back and releases the lease, a new one takes over.
      await running.writer.stop();
      writers.set(partition.id, { writer: startWriter(partition, credentials), credentials: fingerprint });
    }
    // After the routes: what a new watch delivers is routed by the rules that asked for it.
    await watches.apply(next);
    discovery?.track(next.clusters.keys());
  };
  /**
   * Stops the writer and closes the queue of each partition that is no longer configured and was empty at
   * the previous check too: a router batch routed by the old rules just before the switch has landed by then.
   */
  const retireDrainedPartitions = async (): Promise<void> => {
    const configured = () => new Set([...config.partitions.values()].map((p) => p.partition.queueName));
    for (const [name, queue] of writeQueues) {
      if (configured().has(name)) {
        emptyUnconfigured.delete(name);
        continue;
      }
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
      const empty = Object.values(counts).every((n) => n === 0);
      // The configuration may have changed while Valkey answered (routes switch synchronously).
      if (configured().has(name)) continue;
      if (!empty || !emptyUnconfigured.has(name)) {
        if (empty) emptyUnconfigured.add(name);
        else emptyUnconfigured.delete(name);
        continue;
      }
      const [id, entry] = [...writers.entries()].find(([, w]) => w.writer.partition.queueName === name) ?? [];
      if (id && entry) {
        writers.delete(id);
        await entry.writer.stop();
      }
      writeQueues.delete(name);
      board.removeQueue(name);
      emptyUnconfigured.delete(name);
      await queue.close();
      logger.info({ queue: name }, 'retired the writer of a partition no longer configured, its queue drained');
    }
  };
  const watches = startWatchSupervisor({
    connection,
    prefix,
    ingestQueue,
    clusterClients,
    logger,
    replicaId,
    leaseTtlMs: opts.leaseTtlMs,
    metrics,
    ingestJobOptions: ingestOptions,
  });
  // Discovery of the source clusters, for the "rule selects nothing" condition: only where status is reported.
  const discovery =
    opts.reportStatus && opts.kubeConfig ? startDiscoveryCache({ clients: clusterClients, logger, onChange: () => reportStatus() }) : undefined;
  let snapshot = configSource.current();
  switchTo(config);
  await apply(config);
  const status: StatusReporter | undefined =
    opts.reportStatus && opts.kubeConfig
      ? startStatusReporter({
          kubeConfig: opts.kubeConfig,
          connection,
          prefix,
          logger,
          metrics,
          queues: (name) => writeQueues.get(name),
          intervalMs: opts.reportStatus.intervalMs,
          writer: { minIntervalMs: opts.reportStatus.minIntervalMs },
          watchedResources: () => watches.watchedResources(config),
          leader: (): boolean => statusLeader?.isLeader() ?? false,
        })
      : undefined;
  // One replica reports status (and probes the repositories): the holder of the status lease.
  const statusLeader: LeaderElection | undefined = status
    ? startLeaderElection({
        connection,
        keys: statusKeys(prefix),
        replicaId,
        leaseTtlMs: opts.leaseTtlMs,
        logger,
        role: 'status reporter',
        onChange: (leader) => status.leadershipChanged(leader),
      })
    : undefined;
  /** The snapshot with the problems only discovery can tell (rules that select nothing the cluster serves). */
  const forStatus = (s: ConfigSnapshot): ConfigSnapshot => {
    const known = discovery ? rulesSelectingNothing(s.config, discovery.resourcesOf) : [];
    return known.length > 0 ? { ...s, problems: [...s.problems, ...known] } : s;
  };
  function reportStatus(): void {
    status?.update(forStatus(snapshot));
  }
  reportStatus();
  const reconcile =
    opts.reconcile === false
      ? undefined
      : await startReconcileService({
          connection,
          prefix,
          dataDir: opts.dataDir,
          logger,
          config: () => config,
          clusterClients,
          writeQueues,
          committerEmail: opts.committer.email,
          metrics,
          writeJobOptions: writeRetention,
          streams,
        });
  for (const queue of reconcile?.queues ?? []) board.addQueue(queue);

  /** False while a configuration change could not be applied completely (readiness says so). */
  let configApplied = true;
  let applying = Promise.resolve();
  let latest = snapshot;
  let retryApply: NodeJS.Timeout | undefined;
  function retryLater(): void {
    clearTimeout(retryApply);
    retryApply = setTimeout(() => {
      switchToLatest();
      applyLatest();
    }, 5000);
    retryApply.unref();
  }
  const applyLatest = (): void => {
    const next = latest;
    applying = applying
      .then(() => apply(next.config))
      .then(() => {
        configApplied = true;
        snapshot = next;
        reportStatus();
        logger.info({ targets: next.config.targets.size, partitions: writers.size, problems: next.problems.length }, 'configuration changed; routes switched');
      })
      .catch((err: unknown) => {
        // Whatever failed is tried again (with the newest configuration by then), not left until the next change.
        configApplied = false;
        logger.error({ err }, 'could not apply the changed configuration completely; trying again in 5 s');
        retryLater();
      });
  };
  const switchToLatest = (): void => {
    try {
      switchTo(latest.config);
    } catch (err) {
      logger.error({ err }, 'could not switch to the changed configuration; trying again in 5 s');
      retryLater();
    }
  };
  configSource.onChange((next) => {
    const previous = config;
    latest = next;
    switchToLatest();
    applyLatest();
    // The targets this change affects are reconciled again (their rules may select more now).
    if (config !== previous) {
      void reconcile?.configChanged(previous, config).catch((err: unknown) => logger.warn({ err }, 'could not start the reconciles of a configuration change'));
    }
  });
  configSource.onObserved((next) => {
    latest = next;
    snapshot = { ...snapshot, observed: next.observed };
    status?.observe(forStatus(snapshot));
  });
  const retireTimer = setInterval(() => {
    applying = applying.then(retireDrainedPartitions).catch((err: unknown) => logger.warn({ err }, 'retiring unconfigured partitions failed'));
  }, opts.retireCheckMs ?? 60_000);
  retireTimer.unref();


  const router = startRouter({
    connection,
    prefix,
    routes: () => routes,
    writeQueues,
    replicaId,
    leaseTtlMs: opts.leaseTtlMs,
    logger,
    metrics,
    writeJobOptions,
    objectLimits: opts.objectLimits,
    budget,
    reorderWindowMs: opts.reorderWindowMs,
    // Audit events without a body (Metadata level, unrecorded patch responses) are read back from their cluster.
    fetchObject: createObjectFetcher(clusterClients),
    // A deletecollection whose answer was not recorded: its (type, namespace) is listed to tell what went.
    listNames: createCollectionLister(clusterClients),
  });

  const health = createHealth({ connection, prefix, configLoaded: () => configApplied, providers: () => status?.providers() ?? [] });
  const apps = createServiceApps({
    separateAdmin: opts.adminPort !== undefined,
    clusters: () => config.clusters,
    ingestQueue,
    ingestJobOptions: ingestOptions,
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
    dashboardOperatorCredentials: opts.dashboardOperatorCredentials,
    dashboardTrustedHeaders: opts.dashboardTrustedHeaders,
    dashboardReadOnly: opts.dashboardReadOnly,
    queues: () => [...allQueues(), ...(reconcile?.queues ?? [])],
    reconcileRequest: reconcile?.request,
    readiness: health.readiness,
    health: health.health,
    overview: () => collectOverview({ config: () => config, connection, prefix, queues: (name) => allQueues().find((q) => q.name === name), ingestQueue: ingestQueue as Queue, metrics }),
    ping: () => connection.ping(),
    recordAuthors: (cluster, jobs) => recordAuditAuthors(connection, prefix, cluster.name, jobs),
    selects: (job) => eventSelected(routes, job, operationOf(job.verb)),
    // Per-cluster rate limits are kept in Valkey: exact over all replicas.
    rateLimit: createClusterRateLimit({ connection, prefix }),
    objectLimits: opts.objectLimits,
    scopeOf: discovery && ((cluster, group, resource) => discovery.scopeOf(cluster, group, resource)),
    budget: { budget, limitBytes: opts.clusterInflightLimitBytes ?? DEFAULT_CLUSTER_INFLIGHT_LIMIT_BYTES },
  });
  const budgetSweeper = startBudgetSweeper({
    connection,
    prefix,
    budget,
    clusters: () => [...config.clusters.keys()],
    replicaId,
    intervalMs: opts.budgetSweepMs,
    onError: (err) => logger.warn({ err }, 'could not sweep the storage budgets'),
  });
  const listeners = await listenService(apps, {
    port: opts.port,
    adminPort: opts.adminPort,
    host: opts.host ?? '0.0.0.0',
    tls: opts.tls,
    tlsReloadMs: opts.tlsReloadMs,
    onTlsReload: (err) => (err ? logger.warn({ err }, 'TLS files changed but could not be loaded') : logger.info({ certFile: opts.tls?.certFile }, 'TLS certificate reloaded')),
  });
  const { port } = listeners;
  logger.info({ port, ...(opts.adminPort !== undefined ? { adminPort: listeners.adminPort } : {}), replica: replicaId, partitions: writers.size, clusters: [...config.clusters.keys()] }, 'GitOps Reverser is running');
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
    currentConfig: () => config,
    async stop() {
      // Stop taking requests, and at the same time finish (or hand back) the batches in hand and release
      // the leases, so another replica takes over at once instead of after the lease TTL.
      // A request in flight gets a moment to finish; a keep-alive client must not hold the shutdown.
      const closed = listeners.close(2000);
      await configSource.stop();
      await reconcile?.stop();
      clearInterval(retireTimer);
      budgetSweeper.stop();
      clearTimeout(retryApply);
      await applying;
      discovery?.stop();
      await statusLeader?.stop();
      await status?.stop();
      await watches.stop();
      await Promise.all([router.stop(), ...[...writers.values()].map((w) => w.writer.stop())]);
      await closed;
      await Promise.all(allQueues().map((q) => q.close()));
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
