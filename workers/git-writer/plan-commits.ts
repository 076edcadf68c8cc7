// Turns a batch of write jobs into the commits to make, on top of a known tree, without touching Git:
// the idempotent, order-safe apply. A job whose content the tree already holds, a delete of a file that
// is not there, and an event older than what was already applied for that file all plan no commit.
import type { GitAuthor, WriteJob } from '../../queues/contracts.js';
import type { PlannedCommit } from './fast-import-committer.js';
import { appliedKey } from './applied-events.js';
import { commitMessage } from './commit-message.js';
import { blobSha } from './git-objects.js';

export type PlannedOutcome =
  | { kind: 'commit'; commitIndex: number }
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

export function planCommits(
  jobs: WriteJob[],
  tree: ReadonlyMap<string, string>,
  appliedVersions: ReadonlyMap<string, string>,
  committer: GitAuthor,
  now: Date = new Date(),
  /** Writes the remote already holds (appliedKey), e.g. pushed by a writer that died before completing them. */
  alreadyApplied: ReadonlySet<string> = new Set(),
): CommitPlan {
  const next = new Map(tree);
  const versions = new Map<string, string>();
  const commits: PlannedCommit[] = [];
  const record = (job: WriteJob) => keepNewestVersion(versions, job.filePath, job.resourceVersion);
  const outcomes: PlannedOutcome[] = jobs.map((job) => {
    if (alreadyApplied.has(appliedKey(job))) {
      record(job);
      return { kind: 'unchanged', reason: 'already-applied' };
    }
    const known = versions.get(job.filePath) ?? appliedVersions.get(job.filePath);
    if (known && job.resourceVersion && (compareResourceVersions(job.resourceVersion, known) ?? 0) < 0) {
      return { kind: 'unchanged', reason: 'stale' };
    }
    record(job);
    if (job.content === null) {
      if (!next.has(job.filePath)) return { kind: 'unchanged', reason: 'already-absent' };
      next.delete(job.filePath);
    } else {
      const sha = blobSha(job.content);
      if (next.get(job.filePath) === sha) return { kind: 'unchanged', reason: 'same-content' };
      next.set(job.filePath, sha);
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
      changes: [{ path: job.filePath, content: job.content }],
    });
    return { kind: 'commit', commitIndex: commits.length - 1 };
  });
  return { commits, outcomes, tree: next, versions };
}

function validDate(text: string): Date | undefined {
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
