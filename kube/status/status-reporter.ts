// Keeps the status of every configuration object in the cluster up to date: on every configuration
// snapshot and every few seconds, it computes what each object should show (conditions from its problems,
// a GitTarget's progress from Valkey and backlog from its partition queue, a GitProvider's probe) and
// hands that to the status writer, which writes only what changed.
//
// Rounds never overlap: update() and the interval only ask for a round; one runs at a time, with the
// latest snapshot, so a thousand updates in a burst cost a round or two.
//
// One replica reports (`leader`, from queues/leader.ts): on the others a round does nothing at all (no
// Valkey or queue read, no probe, no write), so a busy GitTarget is patched by one replica, not by each,
// and each GitProvider is probed by one. The leader keeps its snapshot current without a round through
// observe() (status-only changes of the objects: the cluster shows our own writes).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import type { ConfigProblem } from '../../config/resolve-config.js';
import type { ResolvedGitProvider } from '../../config/resolved-config.js';
import { readPartitionBacklog, readTargetProgress, type TargetProgress } from '../../queues/target-progress.js';
import type { ConfigSnapshot } from '../../config/sources/config-snapshot.js';
import { desiredStatus } from './conditions.js';
import { startProbeSchedule, type ProbeScheduleOptions } from './probe-schedule.js';
import type { StatusMetrics } from '../../observability/status-metrics.js';
import { startStatusWriter, type StatusWriterOptions } from './status-writer.js';

export interface StatusReporterOptions {
  /** The cluster that holds the configuration objects. */
  kubeConfig: KubeConfig;
  connection: Valkey;
  prefix: string;
  logger: Logger;
  /** The write queue of a partition, by name; undefined when this replica has none (backlog then unknown). */
  queues: (queueName: string) => Pick<Queue, 'getJobCounts'> | undefined;
  /** A round this often besides on every update. @defaultValue 5000 */
  intervalMs?: number;
  /** Status writes: minIntervalMs, concurrency, settleMs; patchStatus for tests. */
  writer?: Pick<StatusWriterOptions, 'minIntervalMs' | 'concurrency' | 'settleMs' | 'patchStatus'>;
  /** Provider probes: intervalMs (default 60 s), timeoutMs (default 15 s), concurrency. */
  probes?: Pick<ProbeScheduleOptions, 'intervalMs' | 'timeoutMs' | 'concurrency' | 'probe'>;
  metrics?: StatusMetrics;
  /** Read every round, for watches that start and stop between configuration changes (see StatusExtra). */
  watchedResources?: () => ReadonlyMap<string, number | null>;
  /**
   * Whether this replica reports now (the status leader election's isLeader). Asked before every round;
   * undefined: always. Call leadershipChanged() when it changes, for a round at once.
   */
  leader?: () => boolean;
}

export interface StatusExtra {
  /**
   * Watches running per cluster (ClusterProvider name): a number sets the field, null removes it (not in
   * watch mode), a cluster not in the map keeps what the cluster shows (another replica watches it).
   */
  watchedResources?: ReadonlyMap<string, number | null>;
}

export interface StatusReporter {
  /** The configuration changed (or something the statuses depend on): the latest snapshot, and a round. */
  update(snapshot: ConfigSnapshot, extra?: StatusExtra): void;
  /**
   * Only the statuses the cluster shows changed (our own writes coming back, another replica's): the
   * latest snapshot, compared with by the next round, without asking for one.
   */
  observe(snapshot: ConfigSnapshot): void;
  /**
   * The status leadership changed: on true a round at once (the statuses may be out of date since the last
   * leader stopped); on false the pending writes and the probe results are dropped (the new leader writes,
   * and a result kept until this replica leads again would be stale).
   */
  leadershipChanged(leader: boolean): void;
  /**
   * Each GitProvider of the latest snapshot with its last probe (for /readyz): reachable undefined when not
   * probed yet, and always on a replica that does not report (only the status leader probes).
   */
  providers(): { key: string; reachable: boolean | undefined; message?: string }[];
  /** Resolves when the round asked for so far ran and its writes are done (tests). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

export function startStatusReporter(opts: StatusReporterOptions): StatusReporter {
  const log = opts.logger.child({ component: 'status' });
  const writer = startStatusWriter({ ...opts.writer, kubeConfig: opts.kubeConfig, logger: log, metrics: opts.metrics });
  const probes = startProbeSchedule({ ...opts.probes, onResult: () => request() });
  let snapshot: ConfigSnapshot | undefined;
  /** Kept across updates: an update without extra does not forget what the last one said. */
  let watched: ReadonlyMap<string, number | null> | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  /** Whether the last look at `leader` said this replica reports. */
  let leading = true;

  /** Forgets what only the reporting replica acts on: its pending writes and its probe results. */
  const stepDown = (): void => {
    leading = false;
    writer.discard();
    probes.retain(new Set());
  };
  /** Asks `leader`; a step-down noticed here (before leadershipChanged(false), or without it) steps down. */
  const leads = (): boolean => {
    const now = opts.leader?.() ?? true;
    if (now) leading = true;
    else if (leading) stepDown();
    return now;
  };

  const round = async (current: ConfigSnapshot): Promise<void> => {
    if (!leads()) return;
    const targets = current.observed.filter((o) => o.kind === 'GitTarget').map((o) => o.key);
    let progress: Map<string, TargetProgress> | undefined;
    try {
      progress = await readTargetProgress(opts.connection, opts.prefix, targets);
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cannot read the targets\' progress; their statuses keep what they show');
    }
    const backlogs = await readBacklogs(current);
    // Stepped down while reading: the new leader reports, and nothing is probed here any more.
    if (!leads()) return;

    const providers: ReadonlyMap<string, ResolvedGitProvider> = current.config.providers;
    probes.retain(new Set(providers.keys()));

    const problems = new Map<string, ConfigProblem[]>();
    for (const p of current.problems) {
      const id = `${p.kind}\0${p.key}`;
      problems.set(id, [...(problems.get(id) ?? []), p]);
    }
    const now = new Date();
    for (const obj of current.observed) {
      const target = obj.kind === 'GitTarget' ? current.config.targets.get(obj.key) : undefined;
      const provider = obj.kind === 'GitProvider' ? providers.get(obj.key) : undefined;
      const desired = desiredStatus(obj, {
        problems: problems.get(`${obj.kind}\0${obj.key}`) ?? [],
        now,
        progress: obj.kind === 'GitTarget' && progress ? (progress.get(obj.key) ?? {}) : undefined,
        backlog: target ? backlogs.get(target.partition.queueName) : undefined,
        probe: provider ? probes.want(provider) : undefined,
        watchedResources: obj.kind === 'ClusterProvider' ? (opts.watchedResources?.() ?? watched)?.get(obj.name) : undefined,
        ...(target ? { secrets: target.encryption ? { encryptedFor: target.encryption.recipients.length } : 'redacted' } : {}),
      });
      writer.set(obj, desired);
    }
  };

  /** Backlog per partition queue, each queue counted once however many targets share it. */
  const readBacklogs = async (current: ConfigSnapshot): Promise<Map<string, number>> => {
    const names = new Set([...current.config.targets.values()].map((t) => t.partition.queueName));
    const out = new Map<string, number>();
    await Promise.all(
      [...names].map(async (name) => {
        const queue = opts.queues(name);
        if (!queue) return;
        try {
          out.set(name, await readPartitionBacklog(queue));
        } catch (err) {
          log.warn({ queue: name, err: err instanceof Error ? err.message : String(err) }, 'cannot count the partition backlog');
        }
      }),
    );
    return out;
  };

  /** Asks for a round; one runs at a time, and one more follows if asked for meanwhile. */
  const request = (): void => {
    if (stopped || !snapshot || !leads()) return;
    if (running) {
      again = true;
      return;
    }
    const current = snapshot;
    running = round(current)
      .catch((err: unknown) => log.error({ err }, 'computing the statuses failed'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          request();
        }
      });
  };

  const interval = setInterval(request, opts.intervalMs ?? 5000);
  interval.unref();

  return {
    update(next, extra) {
      snapshot = next;
      if (extra?.watchedResources) watched = extra.watchedResources;
      request();
    },
    observe(next) {
      snapshot = next;
    },
    leadershipChanged(leader) {
      if (leader) request();
      else stepDown();
    },
    providers() {
      if (!snapshot) return [];
      return [...snapshot.config.providers.values()].map((provider) => {
        const result = leading ? probes.peek(provider) : undefined;
        return result ? { key: provider.key, reachable: result.reachable, message: result.message } : { key: provider.key, reachable: undefined };
      });
    },
    async settled() {
      while (running) await running;
      await writer.idle();
    },
    async stop() {
      stopped = true;
      clearInterval(interval);
      await running;
      await Promise.all([probes.stop(), writer.stop()]);
    },
  };
}
