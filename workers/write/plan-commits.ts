// Turns a batch of write jobs into the commits to make, on top of a known tree, without touching Git:
// the idempotent, order-safe apply. A job whose content the tree already holds, a delete of a file that
// is not there, and an event older than what was already applied for that file all plan no commit. The
// writes of one reconcile run plan one commit together (with the counts of what it changes). A collection
// write (a deletecollection, a deleted namespace: collection-files.ts) removes its files in one commit.
import type { GitAuthor, WriteJob } from '../../core/contracts.js';
import type { PlannedCommit } from '../../git/fast-import-committer.js';
import { appliedKey } from './applied-events.js';
import { collectionFiles, type ContentOf } from './collection-files.js';
import { collectionCommitMessage, commitMessage, reconcileCommitMessage } from './commit-message.js';
import { blobSha } from '../../git/git-objects.js';

export type PlannedOutcome =
  /** removed: the files a collection write's commit removes. */
  | { kind: 'commit'; commitIndex: number; removed?: string[] }
  | { kind: 'unchanged'; reason: 'same-content' | 'stale' | 'already-absent' | 'already-applied' };

export interface CommitPlan {
  commits: PlannedCommit[];
  /** One per job, in the jobs' order. */
  outcomes: PlannedOutcome[];
  /** The tree after the plan (path → blob sha). */
  tree: Map<string, string>;
  /** path → the newest resourceVersion seen in this batch, to store once the push succeeded. */
  versions: Map<string, string>;
}

/**
 * Compares two resourceVersions. Kubernetes calls them opaque, but every API server backed by etcd
 * gives the etcd revision, a number that grows with every write; ordering by it is what makes a stale
 * event harmless. Non-numeric versions are not ordered (undefined): then only content decides.
 */
export function compareResourceVersions(a: string, b: string): number | undefined {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Records `rv` for `path` unless a newer one is already there ('' records nothing). */
export function keepNewestVersion(versions: Map<string, string>, path: string, rv: string): void {
  if (!rv) return;
  const known = versions.get(path);
  if (!known || (compareResourceVersions(rv, known) ?? 1) > 0) versions.set(path, rv);
}

/** Whether a write is older than `known`, the newest version applied to its file (the stale guard below). */
export function isStale(job: Pick<WriteJob, 'resourceVersion'>, known: string | undefined): boolean {
  return known !== undefined && known !== '' && job.resourceVersion !== '' && (compareResourceVersions(job.resourceVersion, known) ?? 0) < 0;
}

/**
 * The version a write leaves on its file: its own resourceVersion; for a delete that names none (answered
 * with a Status, a deletecollection that listed no versions) the newest applied one + 1, since the delete
 * came after it: a version of the deleted object delivered again afterwards (its watch event, a retried
 * audit event) is then stale and cannot bring the file back, while a new object of the same name gets a
 * higher revision than the delete's and is written.
 */
export function versionLeft(job: Pick<WriteJob, 'content' | 'resourceVersion'>, known: string | undefined): string {
  if (job.resourceVersion || job.content !== null || !known || !/^\d+$/.test(known)) return job.resourceVersion;
  return (BigInt(known) + 1n).toString();
}

export function planCommits(
  jobs: WriteJob[],
  tree: ReadonlyMap<string, string>,
  appliedVersions: ReadonlyMap<string, string>,
  committer: GitAuthor,
  now: Date = new Date(),
  /** Writes the remote already holds (appliedKey), e.g. pushed by a writer that died before completing them. */
  alreadyApplied: ReadonlySet<string> = new Set(),
  /** File contents by blob id, for the label selectors of collection writes (collection-files.ts). */
  contentOf?: ContentOf,
): CommitPlan {
  const next = new Map(tree);
  const versions = new Map<string, string>();
  const commits: PlannedCommit[] = [];
  const groups: ReconcileGroup[] = [];
  const record = (job: WriteJob) => keepNewestVersion(versions, job.filePath, job.resourceVersion);
  const outcomes: PlannedOutcome[] = jobs.map((job) => {
    if (alreadyApplied.has(appliedKey(job))) {
      record(job);
      return { kind: 'unchanged', reason: 'already-applied' };
    }
    if (job.collection) {
      // Its filePath is a folder, so no stale guard of its own; the files it removes take its resourceVersion
      // (a deleted namespace's), so that an older event of one of them arriving late cannot bring it back.
      const removed = collectionFiles(job, next, contentOf);
      if (removed.length === 0) return { kind: 'unchanged', reason: 'already-absent' };
      for (const path of removed) {
        next.delete(path);
        keepNewestVersion(versions, path, versionLeft(job, versions.get(path) ?? appliedVersions.get(path)));
      }
      commits.push({
        author: job.author,
        authorDate: validDate(job.stageTimestamp) ?? now,
        committer,
        commitDate: now,
        message: collectionCommitMessage(job, removed.length),
        changes: removed.map((path) => ({ path, content: null })),
      });
      return { kind: 'commit', commitIndex: commits.length - 1, removed };
    }
    // The stale guard, for live events and reconcile writes alike: a write whose resourceVersion is older
    // than the newest one applied to its file (in this batch or before: the partition's `versions` hash)
    // is skipped. resourceVersion is etcd's global revision, so within one cluster (a file's path names
    // its cluster) it orders every change of every object, whatever queue or path it came through, and
    // survives restarts; queue order and timestamps do not (a snapshot is listed at one moment and queued
    // at another). So a reconcile write of an object listed before a live event changed it again never
    // overwrites that event's content, whichever reaches the writer first; and a reconcile delete carries
    // the run's oldest list revision, so a file a live event wrote after the listing (applied version
    // newer than the delete's) is not deleted.
    const known = versions.get(job.filePath) ?? appliedVersions.get(job.filePath);
    if (isStale(job, known)) return { kind: 'unchanged', reason: 'stale' };
    keepNewestVersion(versions, job.filePath, versionLeft(job, known));
    const existed = next.has(job.filePath);
    if (job.content === null) {
      if (!existed) return { kind: 'unchanged', reason: 'already-absent' };
      next.delete(job.filePath);
    } else {
      const sha = blobSha(job.content);
      if (next.get(job.filePath) === sha) return { kind: 'unchanged', reason: 'same-content' };
      next.set(job.filePath, sha);
    }
    const change = { path: job.filePath, content: job.content };
    if (job.reconcile) {
      // The writes of one run become one commit while nothing else commits between them (a live event
      // in between closes it, so the history keeps the order of the changes); a run that spans batches
      // gets one commit per batch.
      const key = `${job.target}\n${job.reconcile.runId}`;
      let group = groups.at(-1);
      if (!group || group.key !== key || group.commitIndex !== commits.length - 1 || group.paths.has(job.filePath)) {
        group = { key, commitIndex: commits.length, first: job, paths: new Set(), indices: [], created: 0, updated: 0, deleted: 0 };
        groups.push(group);
        commits.push({ author: job.author, authorDate: validDate(job.stageTimestamp) ?? now, committer, commitDate: now, message: '', changes: [] });
      }
      group.paths.add(job.filePath);
      group.indices.push(job.reconcile.index);
      if (job.content === null) group.deleted++;
      else if (existed) group.updated++;
      else group.created++;
      commits[group.commitIndex]!.changes.push(change);
      return { kind: 'commit', commitIndex: group.commitIndex };
    }
    commits.push({
      author: job.author,
      authorDate: validDate(job.stageTimestamp) ?? now,
      committer,
      commitDate: now,
      message: commitMessage({
        operation: job.operation,
        identity: job.identity,
        auditID: job.auditID,
        clusterId: job.clusterId,
        resourceVersion: job.resourceVersion,
        target: job.target,
      }),
      changes: [change],
    });
    return { kind: 'commit', commitIndex: commits.length - 1 };
  });
  for (const g of groups) {
    const run = g.first.reconcile!;
    commits[g.commitIndex]!.message = reconcileCommitMessage({
      runId: run.runId,
      clusterId: g.first.clusterId,
      target: g.first.target,
      created: g.created,
      updated: g.updated,
      deleted: g.deleted,
      indices: g.indices,
      ofRun: { created: run.created, updated: run.updated, deleted: run.deleted },
    });
  }
  return { commits, outcomes, tree: next, versions };
}

/** The commit of a reconcile run's writes being planned. */
interface ReconcileGroup {
  /** target + runId. */
  key: string;
  commitIndex: number;
  first: WriteJob;
  paths: Set<string>;
  /** The run's writes in the commit (their `reconcile.index`). */
  indices: number[];
  created: number;
  updated: number;
  deleted: number;
}

function validDate(text: string): Date | undefined {
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
