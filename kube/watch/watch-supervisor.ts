// Keeps one watch adapter (watch-ingest.ts) per cluster in watch mode, in step with the configuration:
// a cluster that enters watch mode gets one, one that leaves it (or is removed) has its adapter stopped,
// and one whose credentials, limits or join settings changed gets a new adapter, which resumes from the
// stored checkpoints. A change of rules only re-plans the running adapter (no API call, no restart).
import type { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../../config/resolved-config.js';
import type { ServiceMetrics } from '../../observability/metrics.js';
import type { IngestJob } from '../../core/contracts.js';
import { watchCountsKey } from '../../queues/names.js';
import type { ClusterClients } from '../cluster-clients.js';
import { planWatches } from './watch-plan.js';
import { startWatchIngest, watchIngestSettings, type WatchIngest, type WatchIngestOptions } from './watch-ingest.js';

export interface WatchSupervisorOptions {
  connection: Valkey;
  prefix: string;
  ingestQueue: Pick<Queue<IngestJob>, 'addBulk'>;
  clusterClients: ClusterClients;
  logger: Logger;
  replicaId: string;
  leaseTtlMs: number;
  metrics?: Pick<ServiceMetrics, 'eventsIngested' | 'eventsSkipped'>;
  /** Attempts, backoff and retention of the ingest jobs. @defaultValue INGEST_JOB_OPTIONS */
  ingestJobOptions?: WatchIngestOptions['ingestJobOptions'];
  /** How often the watch counts are published and read. @defaultValue 5000 */
  countsIntervalMs?: number;
  /** Tests shorten discovery and watch timings. */
  tuning?: Pick<WatchIngestOptions, 'rediscoverIntervalMs' | 'flushIntervalMs' | 'watchTuning'>;
}

export interface WatchSupervisor {
  /** Starts, replans, restarts and stops adapters for this configuration. Calls must not overlap. */
  apply(config: ResolvedConfig): Promise<void>;
  /**
   * Per ClusterProvider, for its status: how many watches its watching replica runs (whichever replica
   * that is: each publishes its counts in Valkey), null for a cluster not in watch mode; a cluster whose
   * count is not known (yet) is left out.
   */
  watchedResources(config: ResolvedConfig): Map<string, number | null>;
  stop(): Promise<void>;
}

export function startWatchSupervisor(opts: WatchSupervisorOptions): WatchSupervisor {
  const adapters = new Map<string, { adapter: WatchIngest; fingerprint: string }>();
  // Read by the adapters' planFor at call time: re-planning always sees the rules in force.
  let current: ResolvedConfig | undefined;

  const start = (name: string): WatchIngest | undefined => {
    const source = current?.clusters.get(name);
    const client = opts.clusterClients.get(name);
    if (!source || !client) {
      opts.logger.warn({ cluster: name, why: opts.clusterClients.whyNoClient(name) }, 'cannot watch this cluster: no API client');
      return undefined;
    }
    return startWatchIngest({
      connection: opts.connection,
      prefix: opts.prefix,
      ingestQueue: opts.ingestQueue,
      ingestJobOptions: opts.ingestJobOptions,
      kubeConfig: client.kubeConfig,
      limiter: client.limiter,
      logger: opts.logger,
      replicaId: opts.replicaId,
      leaseTtlMs: opts.leaseTtlMs,
      metrics: opts.metrics,
      ...opts.tuning,
      ...watchIngestSettings(source),
      planFor: (resources) =>
        current ? planWatches({ cluster: name, config: current, resources, allowedNamespaces: current.clusters.get(name)?.allowedNamespaces }) : [],
    });
  };

  // Every few seconds the watching replica publishes its counts and every replica reads them all: the
  // status reporter may run on another replica than the one that watches.
  const countsKey = watchCountsKey(opts.prefix);
  let counts = new Map<string, number>();
  const COUNT_FRESH_MS = 30_000;
  const publishCounts = async (): Promise<void> => {
    const now = Date.now();
    const mine = [...adapters].filter(([, { adapter }]) => adapter.holdsLease()).map(([name, { adapter }]) => [name, JSON.stringify({ n: adapter.watched().length, at: now })]);
    if (mine.length > 0) await opts.connection.hset(countsKey, Object.fromEntries(mine));
    const all = await opts.connection.hgetall(countsKey);
    const fresh = new Map<string, number>();
    for (const [name, value] of Object.entries(all)) {
      const parsed = JSON.parse(value) as { n?: unknown; at?: unknown };
      if (typeof parsed.n === 'number' && typeof parsed.at === 'number' && now - parsed.at < COUNT_FRESH_MS) fresh.set(name, parsed.n);
    }
    counts = fresh;
  };
  const countsTimer = setInterval(() => {
    publishCounts().catch((err: unknown) => opts.logger.debug({ err }, 'could not publish the watch counts'));
  }, opts.countsIntervalMs ?? 5000);
  countsTimer.unref();

  return {
    async apply(config) {
      current = config;
      for (const [name, { adapter }] of adapters) {
        if (!config.clusters.get(name)?.watch) {
          adapters.delete(name);
          await adapter.stop();
          opts.logger.info({ cluster: name }, 'stopped watching a cluster that left watch mode');
        }
      }
      for (const source of config.clusters.values()) {
        if (!source.watch) continue;
        const client = opts.clusterClients.get(source.name);
        // Whatever the adapter was started with: credentials (by identity of the client), limits, join settings.
        const fingerprint = JSON.stringify([watchIngestSettings(source), client?.credentials, source.kubeConfig ?? null, source.qps, source.burst]);
        const running = adapters.get(source.name);
        if (running?.fingerprint === fingerprint) {
          running.adapter.replan();
          continue;
        }
        if (running) await running.adapter.stop();
        const adapter = start(source.name);
        if (adapter) adapters.set(source.name, { adapter, fingerprint });
        else adapters.delete(source.name);
      }
    },
    watchedResources(config) {
      const out = new Map<string, number | null>();
      for (const source of config.clusters.values()) {
        const running = adapters.get(source.name)?.adapter;
        if (!source.watch) out.set(source.name, null);
        else if (running?.holdsLease()) out.set(source.name, running.watched().length);
        else if (counts.has(source.name)) out.set(source.name, counts.get(source.name)!);
      }
      return out;
    },
    async stop() {
      clearInterval(countsTimer);
      await Promise.all([...adapters.values()].map(({ adapter }) => adapter.stop()));
      adapters.clear();
    },
  };
}
