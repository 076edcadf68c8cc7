// Feeds a reconcile run's diff into the ordered write path of live events: one write job per file, added
// to the target's partition queue with ONE addBulk, so the run's writes are contiguous in the queue and
// the partition writer (workers/write) commits them like any event: in order, idempotently, after the
// stale check, and, because each job carries the `reconcile` marker, all of one run that share a batch
// as ONE commit `reconcile <target>: N created, M updated, K deleted` (plan-commits.ts).
//
// Job ids are deterministic (run + place in the run + target): a parent that is retried after it fed
// its diff adds nothing twice while the first jobs are kept (WRITE_JOB_OPTIONS), and after that the
// writer's content and resourceVersion checks make the repeat change nothing.
import type { JobsOptions, Queue } from 'bullmq';
import type { ResolvedTarget } from '../../config/resolved-config.js';
import type { GitAuthor, Operation, WriteJob } from '../../core/contracts.js';
import { WRITE_JOB_OPTIONS } from '../../queues/job-options.js';
import { reconcileEventKey, writeJobId } from '../../queues/names.js';
import { reconcileAuditID } from '../../workers/write/commit-message.js';
import type { ReconcileDiff } from './diff.js';

/** The author of reconcile commits: the service itself, with its committer email (GIT_COMMITTER_EMAIL). */
export function reconcileAuthor(email: string): GitAuthor {
  return { name: 'GitOps Reverser (reconcile)', email };
}

export interface ReconcileWritesInput {
  target: Pick<ResolvedTarget, 'key' | 'clusterProvider' | 'partition'>;
  runId: string;
  diff: ReconcileDiff;
  /** Who the commit is by: reconcileAuthor(<the service's committer email>). */
  author: GitAuthor;
  /** The writes' stageTimestamp (their place in change order among live events). @defaultValue new Date() */
  now?: Date;
  /** Attempts, backoff, retention (jobId is always set here). @defaultValue WRITE_JOB_OPTIONS */
  jobOptions?: JobsOptions;
}

export interface ReconcileWriteJob {
  name: string;
  data: WriteJob;
  opts: JobsOptions;
}

/**
 * The write jobs of one run, in a stable order: created, updated, then deleted (each sorted by path, as
 * the diff gives them). Write `n` has the auditID reconcileAuditID(runId, n), which the commit's
 * `Reconcile-Writes` trailer names, so a writer restarted between push and completion finds it applied.
 *
 * A reconcile write knows its file, not its object (the findings keep path, resourceVersion and content):
 * its `identity` names the target's cluster and, as name, the file path; nothing on the write path reads
 * more of it for a reconcile write (the commit message is the run's).
 */
export function reconcileWriteJobs(input: ReconcileWritesInput): ReconcileWriteJob[] {
  const { target, runId, diff, author } = input;
  if (!runId) throw new Error('reconcileWriteJobs: runId is empty');
  const stageTimestamp = (input.now ?? new Date()).toISOString();
  const counts = { created: diff.created.length, updated: diff.updated.length, deleted: diff.deleted.length };
  const entries: { operation: Operation; path: string; content: string | null; rv: string }[] = [
    ...diff.created.map((e) => ({ operation: 'CREATE' as const, path: e.path, content: e.content, rv: e.rv })),
    ...diff.updated.map((e) => ({ operation: 'UPDATE' as const, path: e.path, content: e.content, rv: e.rv })),
    ...diff.deleted.map((e) => ({ operation: 'DELETE' as const, path: e.path, content: null, rv: e.rv })),
  ];
  return entries.map((e, index) => {
    const eventKey = reconcileEventKey(runId, index);
    const data: WriteJob = {
      eventKey,
      clusterId: target.clusterProvider,
      auditID: reconcileAuditID(runId, index),
      target: target.key,
      identity: { cluster: target.clusterProvider, group: '', version: '', resource: '', namespace: '', name: e.path },
      operation: e.operation,
      filePath: e.path,
      content: e.content,
      // Created/updated: the listed object's resourceVersion; deleted: the run's oldest list revision.
      // The writer skips the write when the file's applied version is newer (a live event overtook it).
      resourceVersion: e.rv,
      author,
      stageTimestamp,
      reconcile: { runId, target: target.key, index, ...counts },
    };
    return { name: 'reconcile', data, opts: { ...(input.jobOptions ?? WRITE_JOB_OPTIONS), jobId: writeJobId(eventKey, target.key) } };
  });
}

export interface FeedReconcileInput extends ReconcileWritesInput {
  /** The target's partition queue (its name must be target.partition.queueName). */
  queue: Pick<Queue<WriteJob>, 'name' | 'addBulk'>;
}

/**
 * Adds the run's writes to the target's partition queue with one addBulk (nothing for an empty diff) and
 * says how many. A throw (Valkey away) should fail the caller, the reconcile parent, to be retried: the
 * job ids make the retry add only what is missing.
 */
export async function feedReconcile(input: FeedReconcileInput): Promise<{ queued: number }> {
  const { queue, target } = input;
  if (queue.name !== target.partition.queueName) {
    throw new Error(`feedReconcile: target ${target.key} writes to queue ${target.partition.queueName}, not ${queue.name}`);
  }
  const jobs = reconcileWriteJobs(input);
  if (jobs.length > 0) await queue.addBulk(jobs);
  return { queued: jobs.length };
}
