// Reconciliation inside the running service: the flow's workers (list children, diff parent), the
// triggers (start, configuration change of the affected targets, a schedule per target, on demand), and
// the hand-over of each diff to the target's partition queue, the same ordered write path as live events.
import { FlowProducer, Queue, type JobsOptions, type QueueOptions } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import type { ResolvedConfig, ResolvedTarget } from '../../config/resolved-config.js';
import type { ClusterClients } from '../../kube/cluster-clients.js';
import { discoverResources } from '../../kube/discovery.js';
import type { WriteJob } from '../../core/contracts.js';
import { RECONCILE_LIST_QUEUE } from '../../queues/names.js';
import { observeReconcile, type ServiceMetrics } from '../../observability/metrics.js';
import { feedReconcile, reconcileAuthor } from './feed-writes.js';
import { startReconcileWorkers, type ReconcileWorkers } from './reconcile-flow.js';
import { reconcileScope } from './scope.js';
import { startReconcileTriggers, type ReconcileReason, type ReconcileTriggers, type RequestOutcome } from './triggers.js';

export interface ReconcileServiceOptions {
  connection: Valkey;
  prefix: string;
  dataDir: string;
  logger: Logger;
  /** The configuration in force, read at the moment it is needed. */
  config: () => ResolvedConfig;
  clusterClients: ClusterClients;
  /** The partition queues by name (the service creates them before routes use them). */
  writeQueues: ReadonlyMap<string, Queue<WriteJob>>;
  /** The committer's email; reconcile commits are authored "GitOps Reverser (reconcile)". */
  committerEmail: string;
  /** Children listed at once by this replica. @defaultValue 4 */
  listConcurrency?: number;
  /** `…_reconcile_duration_seconds`: from the flow's creation to its diff being queued. */
  metrics?: Pick<ServiceMetrics, 'reconcileDuration'>;
  /** Attempts, backoff and retention of the diff's write jobs. @defaultValue WRITE_JOB_OPTIONS */
  writeJobOptions?: JobsOptions;
  /** The events streams' trimming of the reconcile queues (queueStreams). @defaultValue BullMQ's */
  streams?: QueueOptions['streams'];
}

export interface ReconcileService {
  /** reconcile, reconcile-list, reconcile-schedule: for Bull Board (flows show as parent and children). */
  queues: Queue[];
  request(targetKey: string, reason: ReconcileReason): Promise<RequestOutcome>;
  /** Every target once (service start), and the schedules. */
  start(): Promise<void>;
  /** The targets a configuration change affects are reconciled again; the schedules follow the change. */
  configChanged(previous: ResolvedConfig, next: ResolvedConfig): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A target's cluster has no API client (no spec.kubeConfigSecretRef and no credentials of the service's
 * own, or a kubeconfig that cannot be used): there is nothing to list it with. The message says which.
 */
export class ClusterUnreadableError extends Error {
  override name = 'ClusterUnreadableError';
  constructor(
    readonly cluster: string,
    message: string,
  ) {
    super(message);
  }
}

/** What makes a target's reconcile differ: its own spec, the rules that select for it, its cluster's namespaces. */
function targetFingerprint(config: ResolvedConfig, target: ResolvedTarget): string {
  return JSON.stringify({
    target: { ...target, provider: { url: target.provider.url } },
    rules: config.rules.filter((r) => r.targetKey === target.key),
    namespaces: config.clusters.get(target.clusterProvider)?.allowedNamespaces ?? null,
  });
}

export async function startReconcileService(opts: ReconcileServiceOptions): Promise<ReconcileService> {
  const { connection, prefix, logger } = opts;
  const flowProducer = new FlowProducer({ connection, prefix });
  const listQueue = new Queue(RECONCILE_LIST_QUEUE, { connection, prefix, streams: opts.streams });

  const clientOf = (cluster: string) => {
    const client = opts.clusterClients.get(cluster);
    if (!client) throw new ClusterUnreadableError(cluster, opts.clusterClients.whyNoClient(cluster) ?? `cluster ${cluster} has no API client`);
    return client;
  };

  const workers: ReconcileWorkers = startReconcileWorkers({
    connection,
    valkey: connection,
    prefix,
    dataDir: opts.dataDir,
    listConcurrency: opts.listConcurrency,
    clusterAccess: (cluster) => {
      const client = clientOf(cluster);
      return { kubeConfig: client.kubeConfig, limiter: client.limiter };
    },
    gitCredentials: (partitionId) => opts.config().partitions.get(partitionId)?.credentials,
    async onDiff(diff, _summary, job) {
      const target = opts.config().targets.get(job.data.targetKey);
      // A target removed, or changed (path, prune mode, repository, cluster), while its flow ran: what was
      // planned for the old one is not written; the change's own reconcile (queued behind this one) redoes it.
      const d = job.data;
      if (!target || target.path !== d.basePath || target.prune !== d.prune || target.partition.id !== d.partition.id || target.clusterProvider !== d.cluster) {
        logger.info({ target: d.targetKey, runId: d.runId }, 'the target changed while its reconcile ran; its diff is not written');
        return;
      }
      const queue = opts.writeQueues.get(target.partition.queueName);
      if (!queue) throw new Error(`no write queue for partition ${target.partition.id} of target ${target.key}`);
      // Per attempt: a parent retried after feeding computes a new diff, whose writes must not take the ids
      // (and so the applied-writes trailers) of the first attempt's.
      const runId = job.attemptsMade > 0 ? `${d.runId}.${job.attemptsMade}` : d.runId;
      const { queued } = await feedReconcile({ queue, target, runId, diff, author: reconcileAuthor(opts.committerEmail), jobOptions: opts.writeJobOptions });
      if (opts.metrics) observeReconcile(opts.metrics, 'succeeded', (Date.now() - job.timestamp) / 1000);
      logger.info({ target: target.key, runId: job.data.runId, created: diff.created.length, updated: diff.updated.length, deleted: diff.deleted.length, queued }, 'reconcile diff queued for writing');
    },
  });

  // A failed run is in Bull Board (the parent's error names the child that failed and why), and here: a
  // reconcile that cannot list (RBAC, credentials, an API server away) must not fail without a word.
  workers.parent.on('failed', (job, err) => {
    if (opts.metrics && job) observeReconcile(opts.metrics, 'failed', (Date.now() - job.timestamp) / 1000);
    logger.warn({ target: job?.data.targetKey, runId: job?.data.runId, err: err.message }, 'reconcile failed; nothing of it was written');
  });
  workers.list.on('failed', (job, err) => {
    logger.warn({ target: job?.data.targetKey, runId: job?.data.runId, type: job?.data.spec.key, err: err.message }, 'reconcile listing failed');
  });

  const triggers: ReconcileTriggers = await startReconcileTriggers({
    connection,
    prefix,
    streams: opts.streams,
    flowProducer,
    logger,
    async scopeFor(key) {
      const config = opts.config();
      const target = config.targets.get(key);
      if (!target) return undefined;
      const client = clientOf(target.clusterProvider);
      const allowedNamespaces = config.clusters.get(target.clusterProvider)?.allowedNamespaces;
      const resources = await discoverResources(client.kubeConfig, { limiter: client.limiter });
      return {
        target,
        scope: reconcileScope({ target, config, resources, ...(allowedNamespaces ? { allowedNamespaces } : {}) }),
        ...(allowedNamespaces ? { allowedNamespaces } : {}),
      };
    },
  });

  const scheduleAll = (config: ResolvedConfig) =>
    triggers.schedule([...config.targets.values()].map((t) => ({ key: t.key, intervalSeconds: t.reconcileIntervalSeconds })));
  const requestAll = async (keys: string[], reason: ReconcileReason) => {
    const config = opts.config();
    for (const key of keys) {
      const cluster = config.targets.get(key)?.clusterProvider;
      // A cluster the service cannot read (outside a cluster, no kubeconfig Secret) has nothing to list.
      if (cluster === undefined || !opts.clusterClients.get(cluster)) {
        logger.debug({ target: key, why: cluster && opts.clusterClients.whyNoClient(cluster) }, 'no reconcile: the cluster cannot be read');
        continue;
      }
      await triggers.request(key, reason).catch((err: unknown) => logger.warn({ target: key, reason, err: err instanceof Error ? err.message : String(err) }, 'could not start a reconcile'));
    }
  };

  return {
    queues: [...triggers.queues, listQueue],
    request: (key, reason) => triggers.request(key, reason),
    async start() {
      const config = opts.config();
      await requestAll([...config.targets.keys()], 'start');
      await scheduleAll(config);
    },
    async configChanged(previous, next) {
      const affected = [...next.targets.values()]
        .filter((t) => {
          const before = previous.targets.get(t.key);
          return !before || targetFingerprint(previous, before) !== targetFingerprint(next, t);
        })
        .map((t) => t.key);
      await requestAll(affected, 'config-change');
      await scheduleAll(next);
    },
    async stop() {
      await triggers.stop();
      await workers.close();
      await flowProducer.close();
      await listQueue.close();
    },
  };
}
