// How the service starts a partition's writer: the writer's options, and what each batch it writes or
// hands back is reported to (metrics, the clusters' storage budgets, the targets' progress for status).
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/resolved-config.js';
import { observeBatchPushed, type ServiceMetrics } from '../observability/metrics.js';
import { budgetField, type ClusterBudget } from '../queues/cluster-budget.js';
import type { WriteJob } from '../core/contracts.js';
import { JobFailure } from '../queues/exclusive-batch-consumer.js';
import { writeJobId } from '../queues/names.js';
import { startPartitionWriter, type PartitionWriterOptions } from '../workers/write/partition-writer.js';
import { recordTargetProgress } from '../queues/target-progress.js';
import type { StartWriter } from './partitions.js';

/** What every partition's writer shares: the writer's own options but those of one partition, and more. */
export interface WriterDeps extends Pick<PartitionWriterOptions, 'connection' | 'prefix' | 'dataDir' | 'replicaId' | 'leaseTtlMs' | 'batchSize' | 'committer'> {
  logger: Logger;
  metrics: ServiceMetrics;
  budget: ClusterBudget;
  /** The configuration in force, read for every batch. */
  config: () => ResolvedConfig;
}

/** A batch's writes that are in Git (or found there) no longer count against their clusters' budgets. */
function releaseWritten(deps: WriterDeps, queueName: string, jobs: readonly WriteJob[], results: readonly unknown[]): void {
  const byCluster = new Map<string, string[]>();
  jobs.forEach((job, i) => {
    if (job.reconcile || results[i] instanceof JobFailure) return;
    const fields = byCluster.get(job.clusterId) ?? byCluster.set(job.clusterId, []).get(job.clusterId)!;
    fields.push(budgetField(queueName, writeJobId(job.eventKey, job.target)));
  });
  for (const [cluster, fields] of byCluster) {
    void deps.budget.release(cluster, fields).catch((err: unknown) => deps.logger.warn({ err, cluster }, 'could not release the storage budget of written events'));
  }
}

export function writerStarter(deps: WriterDeps): StartWriter {
  const { connection, prefix, logger, metrics } = deps;
  return (partition, credentials) =>
    startPartitionWriter({
      connection,
      prefix,
      partition,
      credentials,
      dataDir: deps.dataDir,
      replicaId: deps.replicaId,
      leaseTtlMs: deps.leaseTtlMs,
      batchSize: deps.batchSize,
      committer: deps.committer,
      logger,
      metrics,
      // Every write job is checked against the targets in force (a job in Valkey is input; validate-write.ts).
      targets: () => deps.config().targets,
      // Last commit and last error per target, for the GitTargets' status (read by whichever replica reports).
      onProgress: (progress) => {
        observeBatchPushed(metrics, partition.id, progress);
        if ('results' in progress) releaseWritten(deps, partition.queueName, progress.jobs, progress.results);
        void recordTargetProgress(connection, prefix, progress).catch((err: unknown) => logger.warn({ err }, 'recording target progress failed'));
      },
    });
}
