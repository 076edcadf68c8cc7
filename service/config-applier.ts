// Makes a configuration snapshot the one in force, at start and on every change of the source: the
// partitions' queues and writers, the clusters, the routes, the watches, discovery, the status reported,
// the reconciles a change calls for, and the retirement of partitions no longer configured.
import type { Logger } from 'pino';
import { rulesSelectingNothing } from '../config/resolve-config.js';
import type { ResolvedConfig } from '../config/resolved-config.js';
import type { TlsFiles } from '../dashboard/listen.js';
import type { ReconcileService } from '../flows/reconcile/reconcile-service.js';
import type { ClusterClients } from '../kube/cluster-clients.js';
import type { ConfigSnapshot, ConfigSource } from '../config/sources/config-snapshot.js';
import type { DiscoveryCache } from '../kube/discovery-cache.js';
import type { StatusReporter } from '../kube/status/status-reporter.js';
import type { WatchSupervisor } from '../kube/watch/watch-supervisor.js';
import { compileRules, type CompiledRoutes } from '../workers/route/compile-rules.js';
import { clusterAuthWarnings } from './auth-warnings.js';
import type { Partitions } from './partitions.js';

/** How long a change that could not be applied completely waits before it is tried again. */
const RETRY_MS = 5000;

export interface ConfigApplierOptions {
  configSource: ConfigSource;
  logger: Logger;
  partitions: Partitions;
  clusterClients: ClusterClients;
  watches: WatchSupervisor;
  /** Where status is reported: tracks the configured clusters (rules that select nothing they serve). */
  discovery?: DiscoveryCache;
  /** The status reporter, once started (after the first configuration is applied); undefined: none. */
  status: () => StatusReporter | undefined;
  /** The listener's TLS: what the warnings about clusters that will be refused are based on. */
  tls?: TlsFiles;
  /** How often partitions no longer configured are checked for retirement. */
  retireCheckMs: number;
}

export interface ConfigApplier {
  /** The configuration whose routes are in force right now. */
  config(): ResolvedConfig;
  routes(): CompiledRoutes;
  /** False while a configuration change could not be applied completely (readiness says so). */
  applied(): boolean;
  /** Applies the source's current configuration: the first one, at start. */
  applyInitial(): Promise<void>;
  /** Reports the snapshot in force as status, with what only discovery can tell. */
  reportStatus(): void;
  /**
   * Follows the source's changes from now on (re-reconciling the targets a change affects) and starts the
   * retirement checks. Returns how to stop: the source stops, and what was being applied is waited for.
   */
  follow(reconcile: ReconcileService | undefined): () => Promise<void>;
}

export function createConfigApplier(opts: ConfigApplierOptions): ConfigApplier {
  const { configSource, logger, partitions, discovery } = opts;
  const warnAboutAuth = clusterAuthWarnings(opts.tls, logger);
  let snapshot = configSource.current();
  let latest = snapshot;
  let config = snapshot.config;
  let routes = compileRules(config);
  let configApplied = true;
  /** Applies and retirement checks run one at a time, in the order they were asked for. */
  let applying = Promise.resolve();
  let retryApply: NodeJS.Timeout | undefined;

  /**
   * The part of a change that takes effect at once, synchronously on its arrival: the queues and writers of
   * new partitions exist BEFORE the new routes do, so the router never routes to a partition that has nowhere
   * to go: an event is routed by the old rules or by the new ones, and lost by neither. The webhook's
   * `not-selected` filter and the router read clusters and routes, so a rule is in force on this replica
   * from the moment its change arrives. A partition no longer configured keeps its writer until its queue
   * has drained (retireDrained).
   */
  const switchTo = (next: ResolvedConfig): void => {
    partitions.ensure(next);
    opts.clusterClients.update(next.clusters);
    warnAboutAuth(next.clusters);
    config = next;
    routes = compileRules(next);
    partitions.configured();
  };
  /** The part that waits: writers whose credentials changed (after the routes switched), watches, discovery. */
  const apply = async (next: ResolvedConfig): Promise<void> => {
    await partitions.renewCredentials(next);
    // After the routes: what a new watch delivers is routed by the rules that asked for it.
    await opts.watches.apply(next);
    discovery?.track(next.clusters.keys());
  };

  /** The snapshot with the problems only discovery can tell (rules that select nothing the cluster serves). */
  const forStatus = (s: ConfigSnapshot): ConfigSnapshot => {
    const known = discovery ? rulesSelectingNothing(s.config, discovery.resourcesOf) : [];
    return known.length > 0 ? { ...s, problems: [...s.problems, ...known] } : s;
  };
  const reportStatus = (): void => opts.status()?.update(forStatus(snapshot));

  // Whatever failed is tried again (with the newest configuration by then), not left until the next change.
  const retryLater = (): void => {
    clearTimeout(retryApply);
    retryApply = setTimeout(() => {
      switchToLatest();
      applyLatest();
    }, RETRY_MS);
    retryApply.unref();
  };
  const switchToLatest = (): void => {
    try {
      switchTo(latest.config);
    } catch (err) {
      logger.error({ err }, 'could not switch to the changed configuration; trying again in 5 s');
      retryLater();
    }
  };
  const applyLatest = (): void => {
    const next = latest;
    applying = applying
      .then(() => apply(next.config))
      .then(() => {
        configApplied = true;
        snapshot = next;
        reportStatus();
        logger.info({ targets: next.config.targets.size, partitions: partitions.writerCount(), problems: next.problems.length }, 'configuration changed; routes switched');
      })
      .catch((err: unknown) => {
        configApplied = false;
        logger.error({ err }, 'could not apply the changed configuration completely; trying again in 5 s');
        retryLater();
      });
  };

  return {
    config: () => config,
    routes: () => routes,
    applied: () => configApplied,
    async applyInitial() {
      switchTo(config);
      await apply(config);
    },
    reportStatus,
    follow(reconcile) {
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
        opts.status()?.observe(forStatus(snapshot));
      });
      const retireTimer = setInterval(() => {
        applying = applying.then(() => partitions.retireDrained(() => config)).catch((err: unknown) => logger.warn({ err }, 'retiring unconfigured partitions failed'));
      }, opts.retireCheckMs);
      retireTimer.unref();
      return async () => {
        await configSource.stop();
        clearInterval(retireTimer);
        clearTimeout(retryApply);
        await applying;
      };
    },
  };
}
