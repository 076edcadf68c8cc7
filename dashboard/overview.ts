// The overview behind /admin/overview: "is it working", per GitTarget and per cluster, in words a platform
// team reads without knowing BullMQ. Everything is read when asked (no state of its own): the resolved
// configuration, each target's progress and each partition's write lease from Valkey, the queue counts
// from BullMQ, and the event counters from this replica's Prometheus registry.
import type { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Registry } from 'prom-client';
import type { ResolvedConfig } from '../config/resolved-config.js';
import { ownKeys } from '../queues/names.js';
import { redactURL } from '../git/git-remote.js';
import { readTargetProgress } from '../queues/target-progress.js';

export interface QueueOverview {
  /** The BullMQ queue's name (Bull Board shows it under that name). */
  queue: string;
  /** Events not handled yet: waiting, being handled, or waiting to be retried. null: the queue is unknown here. */
  backlog: number | null;
  /** Events that failed every attempt and wait for an operator (Bull Board's "failed"). */
  deadLetters: number | null;
}

export type TargetHealth = 'failing' | 'needs attention' | 'catching up' | 'ok' | 'no commits yet';

export interface TargetOverview extends QueueOverview {
  /** `namespace/name` of the GitTarget. */
  target: string;
  /** The repository URL, without credentials. */
  repository: string;
  branch: string;
  /** The folder in the repository ('' for the root). */
  path: string;
  /** The ClusterProvider whose changes the target records. */
  cluster: string;
  /** The partition ({repository, branch}) the target writes through; every target of one pair shares it. */
  partition: string;
  health: TargetHealth;
  lastCommit: { sha: string; time: string } | null;
  lastError: { message: string; time: string } | null;
  /** The replica holding the partition's write lease: the one writing it now; null: nobody holds it. */
  writer: string | null;
  /**
   * Seconds from the newest change of this target written so far (its audit stageTimestamp) to the end of
   * the batch that wrote it (recorded by the writer); null before the first write.
   */
  lagSeconds: number | null;
  /** Events that arrived after a newer version of their object was committed: versions missing from the history. */
  outOfOrder: number;
}

export interface ClusterOverview {
  cluster: string;
  /** Audit events kept and stored for writing. */
  accepted: number;
  /** Audit events received and filtered out on purpose (read-only verb, not selected, …), by reason. */
  skipped: Record<string, number>;
  /** Audit events refused for their own sake (400 for them: past a bound, a body that disagrees with its objectRef, …), by reason. */
  refused: Record<string, number>;
  /** Webhook requests refused (authentication, malformed, backpressure, …), by reason: requests, not events. */
  rejectedRequests: Record<string, number>;
  /** Audit events refused because the cluster was over its rate limit. */
  rateLimited: number;
  /** Files removed from Git by one event each, by reason: `deletecollection`, `namespace` (a deleted namespace). */
  filesDeleted: Record<string, number>;
}

export interface Overview {
  generatedAt: string;
  /** The event counts per cluster are this replica's, since it started (the others count their own). */
  countsScope: 'this-replica';
  ingest: QueueOverview;
  targets: TargetOverview[];
  clusters: ClusterOverview[];
  /** Webhook requests refused before their cluster was known (an unknown cluster name), by reason. */
  rejectedUnknownCluster: Record<string, number>;
}

export interface OverviewDeps {
  config: () => ResolvedConfig;
  connection: Valkey;
  prefix: string;
  /** The queue of a name (a partition's write queue), or undefined when this replica has none. */
  queues: (name: string) => Queue | undefined;
  ingestQueue: Queue;
  metrics: { registry: Registry };
  now?: () => Date;
}

/** Metrics by the end of their name: the name's start is the metric prefix, which the registry knows. */
const METRIC = {
  ingested: '_events_ingested_total',
  skipped: '_events_skipped_total',
  refused: '_events_refused_total',
  rejected: '_webhook_requests_rejected_total',
  rateLimited: '_events_rate_limited_total',
  filesDeleted: '_files_deleted_total',
} as const;

type Sample = { labels: Partial<Record<string, string | number>>; value: number };

async function samples(registry: Registry, suffix: string): Promise<Sample[]> {
  const name = registry.getMetricsAsArray().find((m) => m.name.endsWith(suffix))?.name;
  const metric = name ? registry.getSingleMetric(name) : undefined;
  if (!metric) return [];
  return (await metric.get()).values as Sample[];
}

function addTo(record: Record<string, number>, key: string, n: number): void {
  if (n > 0) record[key] = (record[key] ?? 0) + n;
}

async function queueCounts(queue: Queue | undefined): Promise<{ backlog: number | null; deadLetters: number | null }> {
  if (!queue) return { backlog: null, deadLetters: null };
  const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
  return { backlog: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.active ?? 0) + (c.delayed ?? 0), deadLetters: c.failed ?? 0 };
}

/** The replica id of each lease holder (`${replicaId}:${fence}`; a replica id may contain ':'). */
async function leaseHolders(connection: Valkey, prefix: string, partitionIds: string[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  if (partitionIds.length === 0) return out;
  const values = await connection.mget(...partitionIds.map((id) => ownKeys(prefix, id).lease));
  partitionIds.forEach((id, i) => {
    const v = values[i];
    out.set(id, v ? v.replace(/:\d+$/, '') : null);
  });
  return out;
}

function healthOf(t: Pick<TargetOverview, 'lastError' | 'deadLetters' | 'backlog' | 'lastCommit'>): TargetHealth {
  if (t.lastError) return 'failing';
  if (t.deadLetters) return 'needs attention';
  if (t.backlog) return 'catching up';
  return t.lastCommit ? 'ok' : 'no commits yet';
}

export async function collectOverview(deps: OverviewDeps): Promise<Overview> {
  const config = deps.config();
  const targets = [...config.targets.values()].sort((a, b) => a.key.localeCompare(b.key));
  const partitionIds = [...new Set(targets.map((t) => t.partition.id))];
  const partitionQueue = new Map(targets.map((t) => [t.partition.id, deps.queues(t.partition.queueName)]));

  const [progress, holders, perPartition, ingest, ingested, skipped, refused, rejected, rateLimited, filesDeleted] = await Promise.all([
    readTargetProgress(deps.connection, deps.prefix, targets.map((t) => t.key)),
    leaseHolders(deps.connection, deps.prefix, partitionIds),
    Promise.all(
      partitionIds.map(async (id) => {
        const queue = partitionQueue.get(id);
        return [id, await queueCounts(queue)] as const;
      }),
    ).then((entries) => new Map(entries)),
    queueCounts(deps.ingestQueue),
    samples(deps.metrics.registry, METRIC.ingested),
    samples(deps.metrics.registry, METRIC.skipped),
    samples(deps.metrics.registry, METRIC.refused),
    samples(deps.metrics.registry, METRIC.rejected),
    samples(deps.metrics.registry, METRIC.rateLimited),
    samples(deps.metrics.registry, METRIC.filesDeleted),
  ]);

  const targetRows: TargetOverview[] = targets.map((t) => {
    const p = progress.get(t.key) ?? {};
    const q = perPartition.get(t.partition.id)!;
    const row = {
      target: t.key,
      repository: redactURL(t.provider.url),
      branch: t.branch,
      path: t.path,
      cluster: t.clusterProvider,
      partition: t.partition.id,
      queue: t.partition.queueName,
      backlog: q.backlog,
      deadLetters: q.deadLetters,
      lastCommit: p.lastCommit ?? null,
      lastError: p.lastError ?? null,
      writer: holders.get(t.partition.id) ?? null,
      lagSeconds: p.lag?.seconds ?? null,
      outOfOrder: p.outOfOrder ?? 0,
    };
    return { ...row, health: healthOf(row) };
  });

  // Label values come from configuration only (metrics.ts); a cluster removed since keeps no row.
  const clusters = new Map<string, ClusterOverview>(
    [...config.clusters.keys()].sort().map((name) => [name, { cluster: name, accepted: 0, skipped: {}, refused: {}, rejectedRequests: {}, rateLimited: 0, filesDeleted: {} }]),
  );
  const rejectedUnknownCluster: Record<string, number> = {};
  const row = (s: Sample) => clusters.get(String(s.labels.cluster ?? ''));
  const reason = (s: Sample) => String(s.labels.reason ?? 'unknown');
  const total = (list: readonly Sample[], field: 'accepted' | 'rateLimited') => {
    for (const s of list) {
      const c = row(s);
      if (c) c[field] += s.value;
    }
  };
  const byReason = (list: readonly Sample[], field: 'skipped' | 'refused' | 'filesDeleted') => {
    for (const s of list) {
      const c = row(s);
      if (c) addTo(c[field], reason(s), s.value);
    }
  };
  total(ingested, 'accepted');
  byReason(skipped, 'skipped');
  byReason(refused, 'refused');
  // Requests that name no configured cluster are counted apart, not dropped.
  for (const s of rejected) {
    const c = row(s);
    addTo(c ? c.rejectedRequests : rejectedUnknownCluster, reason(s), s.value);
  }
  total(rateLimited, 'rateLimited');
  byReason(filesDeleted, 'filesDeleted');

  return {
    generatedAt: (deps.now?.() ?? new Date()).toISOString(),
    countsScope: 'this-replica',
    ingest: { queue: deps.ingestQueue.name, ...ingest },
    targets: targetRows,
    clusters: [...clusters.values()],
    rejectedUnknownCluster,
  };
}
