// Queue names and the project's own Valkey keys, built in one place (as BullMQ's queue-keys.ts does),
// so that every key lives under one prefix and no two modules spell a key differently.
import { createHash } from 'node:crypto';

export { DEFAULT_PREFIX } from '../config/defaults.js';

export const INGEST_QUEUE = 'ingest';

/** The parents of the reconcile flows, one a run (flows/reconcile/reconcile-flow.ts). */
export const RECONCILE_QUEUE = 'reconcile';
/** The children of the reconcile flows, one a (resource type, namespace) of the target's scope. */
export const RECONCILE_LIST_QUEUE = 'reconcile-list';
/** The job schedulers that request a reconcile run per target (flows/reconcile/triggers.ts). */
export const RECONCILE_SCHEDULE_QUEUE = 'reconcile-schedule';

export interface Partition {
  /** Stable short id of {repoURL, branch}. */
  id: string;
  repoURL: string;
  branch: string;
  /** The BullMQ queue holding this partition's writes, in order. */
  queueName: string;
}

/** One partition per {repoURL, branch}: the unit of ordering and of exclusive writing. */
export function partitionOf(repoURL: string, branch: string): Partition {
  const id = createHash('sha256').update(`${canonicalRemote(repoURL)}\n${branch}`).digest('hex').slice(0, 12);
  const repoName = repoURL.replace(/\/+$/, '').split(/[/:]/).pop()?.replace(/\.git$/, '') ?? 'repo';
  // Readable in Bull Board, never containing ':' (BullMQ refuses it), unique through the id.
  const slug = `${repoName}-${branch}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 40);
  return { id, repoURL, branch, queueName: `write-${slug}-${id}` };
}

/**
 * One spelling per repository, so that `https://host/org/repo`, `…/repo.git`, `…/repo/`,
 * `ssh://git@host/org/repo` and `git@host:org/repo` are one partition (Git hosts serve them as one
 * repository; two partitions would mean two writers on one branch), and `file:///srv/r.git` is the local
 * path `/srv/r.git`. Local paths are otherwise left alone: there `repo` and `repo.git` are two directories.
 */
export function canonicalRemote(repoURL: string): string {
  if (/^file:\/\//i.test(repoURL)) return decodeURIComponent(repoURL.replace(/^file:\/\/(localhost)?/i, '')).replace(/\/+$/, '');
  const url = /^[a-z][a-z0-9+.-]*:\/\/(?:[^/@]*@)?([^/:]+)(?::\d+)?\/(.*)$/i.exec(repoURL);
  const scp = url ? undefined : /^(?:[^/@]+@)?([^/:]+):(?!\/\/)(.*)$/.exec(repoURL);
  const parts = url ?? scp;
  if (!parts) return repoURL.replace(/\/+$/, '');
  // Host names are case-insensitive; repository paths may not be.
  return `${parts[1]!.toLowerCase()}/${parts[2]!.replace(/\/+$/, '').replace(/\.git$/, '')}`;
}

/** Keys of the project's own state (not BullMQ's), all under the prefix. */
export function ownKeys(prefix: string, partitionId: string) {
  const base = `${prefix}:partition:${partitionId}`;
  return {
    ...leaseKeys(base),
    /** Hash file path → last applied resourceVersion, the stale-event guard. */
    versions: `${base}:versions`,
  };
}

/**
 * Hash of one GitTarget's write progress (`namespace/name`): the last pushed commit and the last write
 * error, recorded by the partition writers and read by the status reporter on any replica.
 */
export function targetProgressKey(prefix: string, targetKey: string): string {
  return `${prefix}:target:${targetKey}:progress`;
}

/** The hash of one target's reconcile trigger state: running (runId), since (ms), reason, pending (reasons). */
export function reconcileTriggerKey(prefix: string, targetKey: string): string {
  return `${prefix}:reconcile-trigger:${targetKey}`;
}

/** The key /readyz writes (with a TTL) to prove Valkey takes writes. */
export function readinessKey(prefix: string): string {
  return `${prefix}:readyz`;
}

/** The hash of how many watches each watched cluster has (cluster → JSON {n, at}), published by its watching replica. */
export function watchCountsKey(prefix: string): string {
  return `${prefix}:watch:counts`;
}

/** The lease of the router, the one consumer of the ingest queue at a time. */
export function routerKeys(prefix: string) {
  return leaseKeys(`${prefix}:router`);
}

/** The lease of the status reporter: one replica computes and writes the configuration objects' statuses. */
export function statusKeys(prefix: string) {
  return leaseKeys(`${prefix}:status`);
}

function leaseKeys(base: string) {
  return {
    /** Holder of the lease: `${replicaId}:${fence}`, with a TTL. */
    lease: `${base}:lease`,
    /** Monotonic fencing token counter, incremented on every acquisition. */
    fence: `${base}:fence`,
  };
}

/**
 * Watch mode of one cluster: the lease that lets one replica watch it, and per watch (`watchKey`:
 * `group/version/resource@namespace`, never 'lease' or 'fence') the resourceVersion it resumes from
 * and the hash of the objects it knows (`namespace/name` → `resourceVersion uid`), compared on a re-list.
 */
export function watchKeys(prefix: string, cluster: string) {
  const base = `${prefix}:watch:${cluster}`;
  return {
    ...leaseKeys(base),
    state: (watchKey: string) => ({ checkpoint: `${base}:${watchKey}:checkpoint`, index: `${base}:${watchKey}:index` }),
  };
}

/**
 * Who made one change of a watched cluster, as its audit event said: `version` is the resourceVersion
 * the change produced, or `deleted` for the author of a delete (whose watch event carries another one).
 */
export function auditAuthorKey(prefix: string, cluster: string, uid: string, version: string): string {
  return `${prefix}:audit-author:${cluster}:${uid}:${version}`;
}

/** The token bucket of one cluster's audit webhook rate limit, shared by every replica. */
export function rateLimitKey(prefix: string, cluster: string): string {
  return `${prefix}:ratelimit:${cluster}`;
}

/**
 * The storage budget of one cluster: `entries`, a hash of the jobs holding its events in Valkey
 * (`<queue>:<job id>` → `bytes:reserved at ms`), and `bytes`, their sum (queues/cluster-budget.ts).
 */
export function clusterBudgetKeys(prefix: string, cluster: string) {
  const base = `${prefix}:budget:${cluster}`;
  return { entries: `${base}:entries`, bytes: `${base}:bytes` };
}

/** The lock that lets one replica at a time sweep the storage budgets. */
export function budgetSweepKey(prefix: string): string {
  return `${prefix}:budget-sweep`;
}

/** BullMQ job id of an ingested event: unique per cluster and audit ID ('_' never occurs in either). */
export function eventJobId(clusterId: string, auditID: string): string {
  return `${clusterId}_${auditID}`;
}

/** BullMQ job id of one write of an event to one target. */
export function writeJobId(eventKey: string, targetKey: string): string {
  return `${eventKey}_${targetKey.replace('/', '.')}`;
}

/**
 * One reconcile run of one GitTarget (`namespace/name`): the hash of what its children found in the
 * cluster (file path → JSON {rv, content}), and per child the set of paths it wrote there (so a list that
 * restarts, or a retried child, first takes back what an earlier, incomplete listing recorded).
 */
export function reconcileKeys(prefix: string, targetKey: string, runId: string) {
  const base = `${prefix}:reconcile:${targetKey}:${runId}`;
  return {
    findings: `${base}:findings`,
    written: (childKey: string) => `${base}:written:${childKey}`,
  };
}

/** BullMQ job ids may not contain ':'; target keys are `namespace/name`. */
const idPart = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '.');

const RECONCILE_JOB_ID_PREFIX = 'reconcile_';

/** BullMQ job id of the parent of one reconcile run of one GitTarget (`namespace/name`). */
export function reconcileJobId(targetKey: string, runId: string): string {
  return `${RECONCILE_JOB_ID_PREFIX}${idPart(targetKey)}_${idPart(runId)}`;
}

/** Whether a job id of the reconcile queue is a run's parent (reconcileJobId). */
export function isReconcileJobId(jobId: string): boolean {
  return jobId.startsWith(RECONCILE_JOB_ID_PREFIX);
}

/** BullMQ job id of child `index` of the reconcile run whose parent is `parentJobId`. */
export function reconcileListJobId(parentJobId: string, index: number): string {
  return `${parentJobId}_${index}`;
}

/** The eventKey of write `index` of a reconcile run (its job id is writeJobId(eventKey, target)). */
export function reconcileEventKey(runId: string, index: number): string {
  return `reconcile_${idPart(runId)}_${index}`;
}
