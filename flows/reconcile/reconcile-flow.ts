// The reconcile flow of one GitTarget, as a BullMQ flow: a parent job `reconcile <namespace/name>` in the
// `reconcile` queue and one child per (resource type, namespace) of the target's scope in `reconcile-list`.
// Each child lists its pair and records what the live path would write (list-child.ts); the parent runs
// only once every child completed (BullMQ moves it out of waiting-children then), reads the findings and
// the target's tree in Git and computes the diff (diff.ts).
//
// A child that fails for good fails the parent without running it (failParentOnFailure): an incomplete
// listing never reaches the diff, so nothing is deleted on its strength. BullMQ records that failure as
// "child <key> failed"; the parent's worker adds the child's own error, so the flow's failure says why.
import { Job, UnrecoverableError, Worker, type ConnectionOptions, type FlowJob, type FlowProducer, type JobNode, type Span, type WorkerOptions } from 'bullmq';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Valkey } from 'iovalkey';
import type { ResolvedTarget } from '../../config/resolved-config.js';
import type { RequestLimiter } from '../../kube/kube-get-json.js';
import { WEEK } from '../../queues/job-options.js';
import { RECONCILE_LIST_QUEUE, RECONCILE_QUEUE, reconcileJobId, reconcileKeys, reconcileListJobId, type Partition } from '../../queues/names.js';
import { diffTree, type DeleteEntry, type Finding, type PruneMode, type ReconcileDiff } from './diff.js';
import { compareResourceVersions } from '../../workers/write/plan-commits.js';
import { readTargetTree, type TargetTree } from './git-tree.js';
import { listChild, ReconcileListError, type ListChildResult } from './list-child.js';
import type { ScopeEntry } from './scope.js';
import { CLUSTER_SCOPED_DIR, objectFilePath, validateBasePath } from '../../core/path-layout.js';

// Named in queues/names.ts with every other key and queue; still importable from the module that uses them.
export { RECONCILE_LIST_QUEUE, RECONCILE_QUEUE, reconcileJobId };

export interface ReconcileParentData {
  runId: string;
  targetKey: string;
  cluster: string;
  basePath: string;
  prune: PruneMode;
  /** No credentials: those are looked up when the parent runs (they never go into Valkey). */
  partition: Pick<Partition, 'id' | 'repoURL' | 'branch'>;
  /** Children added; with none, nothing was listed and nothing is deleted. */
  children: number;
  /** What started the run ('start', 'schedule', 'config-change,on-demand' for collapsed requests…), for Bull Board. */
  reason?: string;
}

export interface ReconcileChildData {
  runId: string;
  targetKey: string;
  cluster: string;
  basePath: string;
  spec: ScopeEntry;
  allowedNamespaces?: string[];
}

export interface AddReconcileFlowInput {
  target: Pick<ResolvedTarget, 'key' | 'clusterProvider' | 'path' | 'prune' | 'partition'>;
  runId: string;
  scope: readonly ScopeEntry[];
  /** The cluster's allowedNamespaces (objects outside are dropped, as the live path drops them). */
  allowedNamespaces?: readonly string[];
  /** Attempts of each child (network errors, 5xx and 429 are retried; 4xx refusals fail at once). @defaultValue 3 */
  childAttempts?: number;
  /** What started the run, recorded in the parent's data. */
  reason?: string;
}

/** Adds the flow; returns the job tree (the parent's id: `reconcileJobId(target.key, runId)`). */
export function addReconcileFlow(flowProducer: FlowProducer, input: AddReconcileFlowInput): Promise<JobNode> {
  const { target, runId } = input;
  const parentId = reconcileJobId(target.key, runId);
  const children: FlowJob[] = input.scope.map((spec, i) => ({
    name: `list ${spec.key}`,
    queueName: RECONCILE_LIST_QUEUE,
    data: {
      runId,
      targetKey: target.key,
      cluster: target.clusterProvider,
      basePath: target.path,
      spec,
      ...(input.allowedNamespaces ? { allowedNamespaces: [...input.allowedNamespaces] } : {}),
    } satisfies ReconcileChildData,
    opts: {
      jobId: reconcileListJobId(parentId, i),
      failParentOnFailure: true,
      attempts: input.childAttempts ?? 3,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: WEEK, count: 10_000 },
      removeOnFail: { age: WEEK },
    },
  }));
  const partition = { id: target.partition.id, repoURL: target.partition.repoURL, branch: target.partition.branch };
  return flowProducer.add({
    name: `reconcile ${target.key}`,
    queueName: RECONCILE_QUEUE,
    data: { runId, targetKey: target.key, cluster: target.clusterProvider, basePath: target.path, prune: target.prune, partition, children: children.length, ...(input.reason ? { reason: input.reason } : {}) } satisfies ReconcileParentData,
    opts: {
      jobId: parentId,
      // The remote may be away for a moment; the children's findings stay a day.
      attempts: 3,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: WEEK, count: 1000 },
      removeOnFail: { age: WEEK },
    },
    children,
  });
}

/** One path of the summary: where, and the resourceVersion the write will carry. */
export interface SummaryEntry {
  path: string;
  rv: string;
}

export interface ReconcileSummary {
  runId: string;
  target: string;
  /** The commit of the target's branch the diff was computed against; null: the branch does not exist. */
  baseCommit: string | null;
  /** Objects listed, over all children. */
  listed: number;
  /** List pages read, over all children (restarted lists included). */
  pages: number;
  created: number;
  updated: number;
  deleted: number;
  createdFiles: SummaryEntry[];
  updatedFiles: SummaryEntry[];
  deletedFiles: DeleteEntry[];
}

export interface ClusterAccess {
  kubeConfig: KubeConfig;
  limiter?: RequestLimiter;
}

export interface ReconcileWorkersOptions {
  /** For BullMQ (its own duplicated connections). */
  connection: ConnectionOptions;
  /** For the findings (may be the same server; not a blocking connection). */
  valkey: Valkey;
  /** The service prefix: BullMQ's and the project's own keys. */
  prefix: string;
  dataDir: string;
  /** The cluster's client; throws (naming why) when it has none. */
  clusterAccess(cluster: string): ClusterAccess;
  /** The Secret data of a partition's GitProvider; undefined for none. */
  gitCredentials(partitionId: string): Record<string, string> | undefined;
  /**
   * Told of each computed diff (contents included) before the parent completes; a throw fails the parent
   * (retried). Where the lead feeds the diff into the write path.
   */
  onDiff?(diff: ReconcileDiff, summary: ReconcileSummary, job: Job<ReconcileParentData>): Promise<void>;
  /** @defaultValue 500 */
  pageSize?: number;
  /** Children listed at once by this process. @defaultValue 4 */
  listConcurrency?: number;
  /** Extra Worker options (autorun: false in tests, for instance). */
  worker?: Partial<WorkerOptions>;
}

export interface ReconcileWorkers {
  parent: Worker<ReconcileParentData, ReconcileSummary>;
  list: Worker<ReconcileChildData, ListChildResult>;
  close(): Promise<void>;
}

/** The run's findings: path → {rv, content}, read with HSCAN so a large run does not block the server. */
export async function readFindings(valkey: Valkey, key: string): Promise<Map<string, Finding>> {
  const findings = new Map<string, Finding>();
  let cursor = '0';
  do {
    const [next, flat] = await valkey.hscan(key, cursor, 'COUNT', 1000);
    cursor = next;
    for (let i = 0; i + 1 < flat.length; i += 2) findings.set(flat[i]!, JSON.parse(flat[i + 1]!) as Finding);
  } while (cursor !== '0');
  return findings;
}

/** The oldest snapshot of the run: deletes are guarded by it ('' when a child's is unknown). */
function oldestListRv(results: readonly ListChildResult[]): string {
  let oldest: string | undefined;
  for (const r of results) {
    if (!r.listRv) return '';
    if (oldest === undefined) oldest = r.listRv;
    else {
      const c = compareResourceVersions(r.listRv, oldest);
      if (c === undefined) return '';
      if (c < 0) oldest = r.listRv;
    }
  }
  return oldest ?? '';
}

/**
 * The folders this run listed completely, as a test on a file path: a (type, namespace) child covers
 * `{base}/{namespace}/{group}/{resource}/`, a child of all namespaces any one namespace folder there, a
 * cluster-scoped type `{base}/_cluster/{group}/{resource}/`. Built with the live path's own layout.
 */
export function listedDirectories(basePath: string, results: readonly ListChildResult[]): (path: string) => boolean {
  const exact = new Set<string>();
  const anyNamespace = new Set<string>();
  const dirOf = (p: string) => p.slice(0, p.lastIndexOf('/'));
  for (const r of results) {
    if (!r.listed) continue;
    const { group, resource, namespace, namespaced } = r.listed;
    if (namespaced && namespace === '') {
      // The folder below the namespace segment: `{group}/{resource}` with the namespace cut out.
      const probe = dirOf(objectFilePath(basePath, { cluster: '', group, version: '', resource, namespace: 'ns', name: 'x' }));
      const base = validateBasePath(basePath);
      anyNamespace.add(probe.slice(base === '' ? 'ns'.length + 1 : base.length + 'ns'.length + 2));
    } else {
      exact.add(dirOf(objectFilePath(basePath, { cluster: '', group, version: '', resource, namespace: namespaced ? namespace : '', name: 'x' })));
    }
  }
  const base = validateBasePath(basePath);
  return (path) => {
    const dir = dirOf(path);
    if (exact.has(dir)) return true;
    const rel = base === '' ? dir : dir.slice(base.length + 1);
    const slash = rel.indexOf('/');
    // One namespace segment (not the cluster-scoped folder), then a listed {group}/{resource}.
    return slash > 0 && rel.slice(0, slash) !== CLUSTER_SCOPED_DIR && anyNamespace.has(rel.slice(slash + 1));
  };
}

/** The parent's work once every child completed: findings and tree in, diff and summary out. */
export async function computeReconcile(
  data: ReconcileParentData,
  childResults: readonly ListChildResult[],
  findings: ReadonlyMap<string, Finding>,
  tree: TargetTree,
): Promise<{ diff: ReconcileDiff; summary: ReconcileSummary }> {
  const listed = childResults.reduce((n, r) => n + r.count, 0);
  if (childResults.length !== data.children) {
    throw new Error(`reconcile ${data.targetKey}: ${childResults.length} of ${data.children} children reported a result; nothing is diffed on an incomplete listing`);
  }
  if (findings.size !== listed) {
    throw new Error(`reconcile ${data.targetKey}: the children listed ${listed} objects but ${findings.size} findings are stored (expired?); nothing is diffed on an incomplete listing`);
  }
  // With no child, nothing was listed: a file not seen proves nothing, so nothing is pruned.
  const prune = data.children === 0 ? 'Never' : data.prune;
  const diff = diffTree({
    findings,
    tree: tree.files,
    basePath: data.basePath,
    prune,
    snapshotRv: oldestListRv(childResults),
    listedDirectory: listedDirectories(data.basePath, childResults),
  });
  const entry = (e: { path: string; rv: string }): SummaryEntry => ({ path: e.path, rv: e.rv });
  return {
    diff,
    summary: {
      runId: data.runId,
      target: data.targetKey,
      baseCommit: tree.commit,
      listed,
      pages: childResults.reduce((n, r) => n + r.pages, 0),
      created: diff.created.length,
      updated: diff.updated.length,
      deleted: diff.deleted.length,
      createdFiles: diff.created.map(entry),
      updatedFiles: diff.updated.map(entry),
      deletedFiles: diff.deleted,
    },
  };
}

/**
 * The parent's worker. A parent whose child failed is failed by BullMQ before any processor runs, with
 * "child <key> failed"; this adds that child's own failedReason, so the flow's failure names the error.
 */
class ReconcileParentWorker extends Worker<ReconcileParentData, ReconcileSummary> {
  /** Reads the failed child's job hash (same server as BullMQ's). */
  valkey: Valkey | undefined;

  protected override async handleFailed(err: Error, job: Job<ReconcileParentData, ReconcileSummary>, token: string, fetchNextCallback?: () => boolean, span?: Span): Promise<Job<ReconcileParentData, ReconcileSummary>> {
    let error = err;
    if (job.deferredFailure && err.message === job.deferredFailure) {
      error = new UnrecoverableError(`${job.deferredFailure}: ${await failedChildReason(this.valkey, err.message).catch(() => 'its error could not be read')}`);
    }
    return super.handleFailed(error, job, token, fetchNextCallback, span);
  }
}

/** The failedReason of the child a deferred failure ("child <prefix>:<queue>:<id> failed") names. */
async function failedChildReason(valkey: Valkey | undefined, message: string): Promise<string> {
  // BullMQ's job key: `<prefix>:<queue>:<id>`, a hash whose failedReason is the child's last error.
  const childKey = /^child (.+) failed$/.exec(message)?.[1];
  if (!childKey || !valkey) return 'unknown child';
  return (await valkey.hget(childKey, 'failedReason')) || 'no reason recorded';
}

export function startReconcileWorkers(opts: ReconcileWorkersOptions): ReconcileWorkers {
  const workerOpts: WorkerOptions = { connection: opts.connection, prefix: opts.prefix, ...opts.worker };

  const list = new Worker<ReconcileChildData, ListChildResult>(
    RECONCILE_LIST_QUEUE,
    async (job, _token, signal) => {
      const d = job.data;
      const keys = reconcileKeys(opts.prefix, d.targetKey, d.runId);
      try {
        const access = opts.clusterAccess(d.cluster);
        return await listChild({
          kubeConfig: access.kubeConfig,
          ...(access.limiter ? { limiter: access.limiter } : {}),
          cluster: d.cluster,
          spec: d.spec,
          basePath: d.basePath,
          ...(d.allowedNamespaces ? { allowedNamespaces: d.allowedNamespaces } : {}),
          connection: opts.valkey,
          findingsKey: keys.findings,
          writtenKey: keys.written(d.spec.key),
          ...(opts.pageSize ? { pageSize: opts.pageSize } : {}),
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        const error = err instanceof ReconcileListError ? err : new ReconcileListError(d.cluster, d.spec, err);
        // A refusal (403 on one type) will not pass by retrying: fail the child, and so the flow, now.
        throw error.permanent ? new UnrecoverableError(error.message) : error;
      }
    },
    { concurrency: opts.listConcurrency ?? 4, ...workerOpts },
  );

  const parent = new ReconcileParentWorker(
    RECONCILE_QUEUE,
    async (job) => {
      const d = job.data;
      const children = Object.values(await job.getChildrenValues<ListChildResult>());
      const findings = await readFindings(opts.valkey, reconcileKeys(opts.prefix, d.targetKey, d.runId).findings);
      const credentials = opts.gitCredentials(d.partition.id);
      const tree = await readTargetTree({ dataDir: opts.dataDir, partition: d.partition, basePath: d.basePath, ...(credentials ? { credentials } : {}) });
      const { diff, summary } = await computeReconcile(d, children, findings, tree);
      await opts.onDiff?.(diff, summary, job);
      return summary;
    },
    { concurrency: 1, ...workerOpts },
  );
  parent.valkey = opts.valkey;

  return {
    parent,
    list,
    async close() {
      await Promise.all([parent.close(), list.close()]);
    },
  };
}
