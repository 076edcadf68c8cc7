// Watch mode of one cluster: the clusters that cannot send audit events (EKS, AKS, GKE) are watched
// instead, and every change becomes an IngestJob in the same ingest queue, so router → normalize → route
// → git writer work as for audit events.
//
// One replica watches a cluster at a time: the holder of the cluster's watch lease (queues/lease.ts).
// Each replica runs this; the others wait for the lease, and when its holder stops or dies one of them
// takes it and resumes every watch from its checkpoint in Valkey (resumable-watch.ts). A holder that
// loses the lease stops its watches, and its writes of progress are fenced off (watch-state.ts).
//
// What is watched is a plan of (type, namespace) watches (watch-plan.ts). Either the caller sets it with
// update(), or, given `planFor`, the holder derives it from discovery: at once on taking the lease, every
// minute, and when a CustomResourceDefinition changes (crd-trigger.ts).
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import type { ClusterSource } from '../../config/resolved-config.js';
import type { ServiceMetrics } from '../../observability/metrics.js';
import type { IngestJob } from '../../core/contracts.js';
import { tryAcquireLease, type HeldLease } from '../../queues/lease.js';
import { watchKeys } from '../../queues/names.js';
import { discoverApi, type ApiResourceInfo, type Discovery } from '../discovery.js';
import type { RequestLimiter } from '../kube-get-json.js';
import { createAuditJoiner } from './audit-join.js';
import { startCrdTrigger, type CrdTrigger } from './crd-trigger.js';
import { createIngestBatcher, type IngestBatcherOptions } from './ingest-batcher.js';
import { startResumableWatch, type ResumableWatch, type WatchChange } from './resumable-watch.js';
import { watchChangeToJob } from './watch-change-job.js';
import type { WatchSpec } from './watch-plan.js';
import { openWatchState } from './watch-state.js';
import { wakeablePause } from '../../queues/wakeable-pause.js';

export interface WatchIngestOptions {
  connection: Valkey;
  prefix: string;
  ingestQueue: Pick<Queue<IngestJob>, 'addBulk'>;
  /** Attempts, backoff and retention of the ingest jobs. @defaultValue INGEST_JOB_OPTIONS */
  ingestJobOptions?: IngestBatcherOptions['jobOptions'];
  clusterName: string;
  kubeConfig: KubeConfig;
  logger: Logger;
  replicaId: string;
  /** Another replica takes over a dead holder's watches after at most this long. */
  leaseTtlMs: number;
  /** Set when the cluster also sends audit events: how long a watch event waits for its author. */
  auditJoinGraceMs?: number;
  /** The ClusterProvider's allowedNamespaces; undefined: all. */
  allowedNamespaces?: readonly string[];
  /** The plan for what discovery found; given, the holder plans (and re-plans) by itself. */
  planFor?: (resources: ApiResourceInfo[]) => WatchSpec[];
  /** The cluster's client-side request limit (qps/burst). */
  limiter?: RequestLimiter;
  metrics?: Pick<ServiceMetrics, 'eventsIngested' | 'eventsSkipped'>;
  /** @defaultValue 60000 */
  rediscoverIntervalMs?: number;
  /** Ingest jobs are stored with one addBulk per flush: this often, or at once at flushMaxJobs. @defaultValue 100 */
  flushIntervalMs?: number;
  /** @defaultValue 500 */
  flushMaxJobs?: number;
  /** Tuning of each watch (tests shorten them). */
  watchTuning?: { pageSize?: number; backoff?: { initialMs: number; maxMs: number }; watchTimeoutSeconds?: () => number };
}

export interface WatchIngest {
  /** Sets the watches: starts the new ones and stops the removed ones (each by its key), if holding the lease. */
  update(plan: WatchSpec[]): void;
  /** Keys of the watches running on this replica (empty unless it holds the lease), sorted. */
  watched(): string[];
  /** Discovers the cluster's types and, with planFor, re-plans. Runs by itself while holding the lease. */
  rediscover(): Promise<void>;
  /**
   * With planFor: plans again for the types found last (the rules changed, the types did not); discovers
   * first when nothing was discovered yet.
   */
  replan(): void;
  /** Whether this replica holds the cluster's watch lease now. */
  holdsLease(): boolean;
  /** Stops every watch, stores what is waiting, releases the lease. */
  stop(): Promise<void>;
}

/** The options of startWatchIngest that follow from a cluster's configuration. */
export function watchIngestSettings(cluster: ClusterSource): Pick<WatchIngestOptions, 'clusterName' | 'auditJoinGraceMs' | 'allowedNamespaces'> {
  const sendsAudit = cluster.token !== undefined || cluster.clientCommonName !== undefined;
  return {
    clusterName: cluster.name,
    auditJoinGraceMs: sendsAudit ? (cluster.watch?.auditJoinGraceMs ?? 0) : undefined,
    allowedNamespaces: cluster.allowedNamespaces,
  };
}

/** A CRD change usually comes in a few events (added, then established): one discovery for them all. */
const REDISCOVER_DEBOUNCE_MS = 200;

export function startWatchIngest(opts: WatchIngestOptions): WatchIngest {
  const cluster = opts.clusterName;
  const log = opts.logger.child({ cluster, component: 'watch' });
  const keys = watchKeys(opts.prefix, cluster);
  const owner = `watch of cluster ${cluster}`;
  // Unique per start: a restarted replica (same hostname-pid in a container) is not its dead predecessor.
  const holder = `${opts.replicaId}:${randomUUID()}`;
  const batcher = createIngestBatcher({ ingestQueue: opts.ingestQueue, jobOptions: opts.ingestJobOptions, flushIntervalMs: opts.flushIntervalMs, maxJobs: opts.flushMaxJobs });
  const joiner = createAuditJoiner({ connection: opts.connection, prefix: opts.prefix, clusterId: cluster, graceMs: opts.auditJoinGraceMs });

  let stopping = false;
  let lease: HeldLease | null = null;
  let desired = new Map<string, WatchSpec>();
  const running = new Map<string, ResumableWatch>();
  /** Watches being stopped: a restart of the same key waits for them, so two never write one checkpoint. */
  const stoppingWatches = new Map<string, Promise<void>>();
  let crdTrigger: CrdTrigger | undefined;
  let rediscoverTimer: NodeJS.Timeout | undefined;
  let debounceTimer: NodeJS.Timeout | undefined;
  let discovering: Promise<void> | undefined;
  let lastDiscovery: Discovery | undefined;
  let rediscoverAgain = false;
  const { pause, wake } = wakeablePause(() => stopping);

  function sinkFor(spec: WatchSpec) {
    return async (changes: WatchChange[], signal: AbortSignal): Promise<void> => {
      const authors = await joiner.authorsOf(changes, signal);
      const jobs: IngestJob[] = [];
      let notAllowed = 0;
      changes.forEach((change, i) => {
        const result = watchChangeToJob({ clusterId: cluster, spec, change, username: authors[i], allowedNamespaces: opts.allowedNamespaces });
        if (result.keep) jobs.push(result.job);
        else if (result.reason === 'namespace-not-allowed') notAllowed++;
      });
      await batcher.add(jobs);
      if (jobs.length > 0) opts.metrics?.eventsIngested.inc({ cluster }, jobs.length);
      if (notAllowed > 0) opts.metrics?.eventsSkipped.inc({ cluster, reason: 'namespace-not-allowed' }, notAllowed);
    };
  }

  function startWatch(spec: WatchSpec): void {
    const held = lease;
    if (!held) return;
    running.set(
      spec.key,
      startResumableWatch({
        kubeConfig: opts.kubeConfig,
        spec,
        state: openWatchState({
          connection: opts.connection,
          keys: keys.state(spec.key),
          fence: () => (lease === held ? { leaseKey: keys.lease, value: held.value, owner, fence: held.fence } : null),
        }),
        sink: sinkFor(spec),
        logger: log,
        limiter: opts.limiter,
        startAfter: stoppingWatches.get(spec.key),
        ...opts.watchTuning,
      }),
    );
  }

  function stopWatch(key: string): Promise<void> {
    const watch = running.get(key);
    if (!watch) return stoppingWatches.get(key) ?? Promise.resolve();
    running.delete(key);
    const done = watch.stop().finally(() => {
      if (stoppingWatches.get(key) === done) stoppingWatches.delete(key);
    });
    stoppingWatches.set(key, done);
    return done;
  }

  /** Makes the running watches the desired ones (none without the lease). */
  function reconcile(): void {
    const want = lease && !stopping ? desired : new Map<string, WatchSpec>();
    for (const key of [...running.keys()]) if (!want.has(key)) void stopWatch(key);
    for (const [key, spec] of want) if (!running.has(key)) startWatch(spec);
  }

  async function discoverOnce(): Promise<void> {
    const found = await discoverApi(opts.kubeConfig, { limiter: opts.limiter });
    if (found.failed.length > 0) log.warn({ failed: found.failed }, 'discovery could not read some API groups; their watches are kept as they are');
    lastDiscovery = found;
    applyPlan(found);
  }

  function applyPlan(found: Discovery): void {
    if (!opts.planFor) return;
    const plan = new Map(opts.planFor(found.resources).map((w) => [w.key, w]));
    // A group that did not answer this time (an aggregated API briefly down) keeps its watches: dropping
    // them would cost a re-list each time it flaps.
    const failed = new Set(found.failed.map((f) => f.groupVersion));
    for (const [key, spec] of desired) {
      if (!plan.has(key) && failed.has(spec.group ? `${spec.group}/${spec.version}` : spec.version)) plan.set(key, spec);
    }
    const before = [...desired.keys()].join(',');
    desired = plan;
    if ([...plan.keys()].join(',') !== before) log.info({ watches: [...plan.keys()] }, 'watch plan changed');
    reconcile();
  }

  /** One discovery at a time; a request during one runs another right after it. */
  function rediscover(): Promise<void> {
    if (discovering) {
      rediscoverAgain = true;
      return discovering;
    }
    discovering = (async () => {
      try {
        do {
          rediscoverAgain = false;
          await discoverOnce();
        } while (rediscoverAgain && !stopping);
      } finally {
        discovering = undefined;
      }
    })();
    return discovering;
  }

  const rediscoverInBackground = (): void => {
    rediscover().catch((err: unknown) => log.warn({ err }, 'discovery failed; the watches stay as they are'));
  };

  function onLeaseAcquired(): void {
    reconcile();
    if (!opts.planFor) return;
    rediscoverInBackground();
    rediscoverTimer = setInterval(rediscoverInBackground, opts.rediscoverIntervalMs ?? 60_000);
    crdTrigger = startCrdTrigger({
      kubeConfig: opts.kubeConfig,
      limiter: opts.limiter,
      logger: log,
      onChange: () => {
        clearTimeout(debounceTimer);
        debounceTimer = setTimeout(rediscoverInBackground, REDISCOVER_DEBOUNCE_MS);
      },
    });
  }

  /** Stops acting for the cluster: no watch runs, nothing more is written under this lease. */
  async function dropLease(): Promise<void> {
    lease = null;
    clearInterval(rediscoverTimer);
    clearTimeout(debounceTimer);
    const trigger = crdTrigger;
    crdTrigger = undefined;
    reconcile();
    await Promise.all([trigger?.stop(), ...stoppingWatches.values()]);
  }

  async function loop(): Promise<void> {
    let lastRenewed = 0;
    while (!stopping) {
      try {
        if (!lease) {
          const held = await tryAcquireLease(opts.connection, keys, owner, holder, opts.leaseTtlMs);
          if (!held) {
            await pause(Math.floor(opts.leaseTtlMs / 3 + Math.random() * 200));
            continue;
          }
          if (stopping) {
            await held.release();
            break;
          }
          lease = held;
          lastRenewed = Date.now();
          log.info({ fence: held.fence, replica: opts.replicaId }, `took the lease of the ${owner}`);
          onLeaseAcquired();
        }
        await pause(Math.max(100, Math.floor(opts.leaseTtlMs / 3)));
        if (stopping || !lease) continue;
        let ours: boolean;
        try {
          ours = await lease.renew();
        } catch (err) {
          // Valkey away: the lease may still be ours until its TTL ran out; every write of progress is
          // fenced anyway.
          ours = Date.now() - lastRenewed < opts.leaseTtlMs;
          log.warn({ err }, `could not renew the lease of the ${owner}`);
        }
        if (ours) lastRenewed = Date.now();
        else {
          log.warn({ fence: lease.fence }, `lost the lease of the ${owner}; stopping its watches`);
          await dropLease();
        }
      } catch (err) {
        log.error({ err }, `${owner}: lease loop error`);
        await pause(500);
      }
    }
  }

  const looping = loop();

  return {
    update(plan) {
      desired = new Map(plan.map((w) => [w.key, w]));
      reconcile();
    },
    watched: () => [...running.keys()].sort(),
    rediscover,
    replan() {
      if (lastDiscovery) applyPlan(lastDiscovery);
      else rediscoverInBackground();
    },
    holdsLease: () => lease !== null,
    async stop() {
      stopping = true;
      wake();
      await looping;
      const held = lease;
      await dropLease();
      await discovering?.catch(() => undefined);
      await batcher.close();
      if (held) await held.release().catch((err: unknown) => log.warn({ err }, `could not release the lease of the ${owner}; it expires after ${opts.leaseTtlMs} ms`));
    },
  };
}
