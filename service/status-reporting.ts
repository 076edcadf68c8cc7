// Status of the configuration objects (conditions, last commit, backlog): written by one replica at a
// time, the holder of the status lease, which also probes the repositories.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import type { ServiceMetrics } from '../observability/metrics.js';
import { startStatusReporter, type StatusReporter } from '../kube/status/status-reporter.js';
import { startLeaderElection } from '../queues/leader.js';
import { statusKeys } from '../queues/names.js';

export interface StatusReportingOptions {
  kubeConfig: KubeConfig;
  connection: Valkey;
  prefix: string;
  logger: Logger;
  metrics: ServiceMetrics;
  replicaId: string;
  leaseTtlMs: number;
  /** Unset: the status reporter's defaults. */
  intervals: { intervalMs?: number; minIntervalMs?: number };
  queues: (queueName: string) => Queue | undefined;
  watchedResources: () => ReadonlyMap<string, number | null>;
}

export interface StatusReporting {
  reporter: StatusReporter;
  /** Steps down (releasing the lease, so another replica reports at once), then stops reporting. */
  stop(): Promise<void>;
}

export function startStatusReporting(opts: StatusReportingOptions): StatusReporting {
  const { connection, prefix, logger, replicaId, leaseTtlMs } = opts;
  const reporter = startStatusReporter({
    kubeConfig: opts.kubeConfig,
    connection,
    prefix,
    logger,
    metrics: opts.metrics,
    queues: opts.queues,
    intervalMs: opts.intervals.intervalMs,
    writer: { minIntervalMs: opts.intervals.minIntervalMs },
    watchedResources: opts.watchedResources,
    // Asked before each round, never while starting: the election below exists by then.
    leader: () => leader.isLeader(),
  });
  const leader = startLeaderElection({
    connection,
    keys: statusKeys(prefix),
    replicaId,
    leaseTtlMs,
    logger,
    role: 'status reporter',
    onChange: (leads) => reporter.leadershipChanged(leads),
  });
  return {
    reporter,
    async stop() {
      await leader.stop();
      await reporter.stop();
    },
  };
}
