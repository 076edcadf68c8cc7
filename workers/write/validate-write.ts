// The partition writer's check of every write job before it is planned. A write job in Valkey is input like
// any other: the router and a reconcile run add them, but so can anyone who can write to the partition
// queue (Bull Board's `add`, a Valkey client). A job is written only when it is exactly what the router or
// a reconcile run would have made for a GitTarget configured on this partition now:
// - its `target` is a GitTarget of this partition {repoURL, branch};
// - `clusterId` and `identity.cluster` are the target's cluster (spec.clusterProviderRef);
// - a live write: `filePath` is objectFilePath(target.path, identity), which is inside the target's folder
//   and never holds `..`, `.git` or any segment beginning with `.` below it; its author's email is one
//   normalize gives a user of that cluster (`…@<cluster>.cluster.local`);
// - a reconcile write (flows/reconcile/feed-writes.ts): `reconcile.target` is `target`, `identity` is the
//   one a reconcile write carries ({cluster, name: filePath}, the rest empty), `filePath` is an object
//   file in the target's folder ({folder}/{namespace}/[{group}/]{resource}/{name}.yaml, no segment below
//   the folder beginning with `.`), and its author is the service (the committer's email);
// - a collection write (a deletecollection or a deleted namespace, route/collection-writes.ts): a DELETE
//   without content whose `filePath` is exactly the target's folder of that (group, resource, namespace)
//   (typeFolderPath; identity.name empty), or for a deleted Namespace (`everythingBelow`) exactly
//   `{target path}/{encoded namespace}` (namespaceFolderPath), its `objectFile`, if any, exactly the
//   Namespace's own file; its author's email one of that cluster's users, as for a live write.
// Anything else fails alone, at once, as a dead letter (WriteRefusedError is an UnrecoverableError) whose
// error names what is wrong; the other jobs of the batch are written. Except a job whose target is not
// configured on this partition here: with several replicas a configuration change reaches each a moment
// apart, so the router of a replica that already knows a new GitTarget can queue its writes before the
// writer's replica knows it. That job fails alone with a TargetNotConfiguredError, an ordinary error, and
// goes through its BullMQ attempts with backoff (the write job options: WRITE_ATTEMPTS from
// WRITE_BACKOFF_MS, about 30 s by default); checked again at each, it is written once the target is
// known here, and is a dead letter only after its last attempt. What the check cannot tell is the
// author NAME of a live write (the Kubernetes user): a forged job that passes every check above can still
// claim any user of the target's cluster, so writing to partition queues stays an operator's privilege.
//
// A target deleted (or moved to another repository or branch) while its writes were queued: those writes
// are retried the same way and then become dead letters that say so; replayed once the target is
// configured again, they are checked again and written. (Moved to another folder or cluster: refused at
// once, their paths or clusters are not the target's any more.)
import { UnrecoverableError } from 'bullmq';
import type { WriteJob, WriteResult } from '../../core/contracts.js';
import { JobFailure, type JobHistory } from '../../queues/exclusive-batch-consumer.js';
import type { HeldLease } from '../../queues/lease.js';
import type { Partition } from '../../queues/names.js';
import { authorFor } from '../../core/author.js';
import { isSecretIdentity, namespaceFolderPath, objectFilePath, typeFolderPath, UnsafePathError, validateBasePath } from '../../core/path-layout.js';

/** What the check needs of a GitTarget (config/resolved-config.ts ResolvedTarget has it). */
export interface WriteTarget {
  /** `namespace/name` of the GitTarget. */
  key: string;
  /** Normalised base folder ('' for the root). */
  path: string;
  /** The target's cluster (spec.clusterProviderRef.name). */
  clusterProvider: string;
  partition: Pick<Partition, 'id' | 'branch'>;
  /** Set when the target writes Secrets as SOPS files (spec.encryption.sops). */
  encryption?: { identity: string; recipients: readonly string[] };
}

export interface WriteCheckContext {
  /** The writer's own partition. */
  partition: Pick<Partition, 'id' | 'branch'>;
  /** The GitTargets configured now, by key (all of them, or only this partition's). */
  targets: ReadonlyMap<string, WriteTarget>;
  /** The service's committer email: the author email of every reconcile write (reconcileAuthor). */
  committerEmail: string;
}

/** Every error message of a refused write begins so (Bull Board's failed list, the target's lastError). */
export const WRITE_REFUSED_PREFIX = 'write refused:';

/** A write job that is not what the router or a reconcile run would make: a dead letter without retries. */
export class WriteRefusedError extends UnrecoverableError {
  constructor(
    /** The job's target (as the job names it). */
    readonly target: string,
    /** What is wrong, one sentence each. */
    readonly problems: readonly string[],
  ) {
    super(`${WRITE_REFUSED_PREFIX} ${problems.join('; ')}`);
    this.name = 'WriteRefusedError';
  }
}

/**
 * A write for a target that is not configured on this partition here (not yet, or no longer): a failure
 * BullMQ retries with the job's attempts and backoff (not an UnrecoverableError), then a dead letter.
 */
export class TargetNotConfiguredError extends Error {
  constructor(
    /** The job's target (as the job names it). */
    readonly target: string,
    /** Why the target is not one of this partition, one sentence. */
    readonly problem: string,
  ) {
    super(`${WRITE_REFUSED_PREFIX} ${problem}`);
    this.name = 'TargetNotConfiguredError';
  }
}

/** Why a write job is not written now: refused for good, or retried until its target is configured here. */
export type WriteCheckError = WriteRefusedError | TargetNotConfiguredError;

const q = (s: string) => JSON.stringify(s);
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
/** An object's file below the target's folder: {namespace}/[{group}/]{resource}/{name}.yaml. */
const OBJECT_FILE_SEGMENTS = [3, 4];

/** The email domain normalize gives the users of `cluster` (authorFor): `@<cluster>.cluster.local`. */
function userDomainOf(cluster: string): string {
  const email = authorFor('unknown', cluster).email;
  return email.slice(email.lastIndexOf('@'));
}

/** Why `filePath` cannot be a reconcile write's file under `base` (normalised), or undefined when it can. */
function reconcilePathProblem(filePath: string, base: string): string | undefined {
  if (filePath.includes('\\') || CONTROL_CHARS.test(filePath)) return 'it contains a backslash or a control character';
  if (base !== '' && !filePath.startsWith(`${base}/`)) return "it lies outside the target's folder";
  const below = (base === '' ? filePath : filePath.slice(base.length + 1)).split('/');
  for (const segment of below) {
    if (segment === '') return 'it has an empty segment';
    if (segment.startsWith('.')) return `segment ${q(segment)} begins with "."`;
  }
  if (!OBJECT_FILE_SEGMENTS.includes(below.length)) return `it has ${below.length} segments below the folder, an object file has 3 or 4`;
  if (!filePath.endsWith('.yaml')) return 'it does not end in .yaml';
  return undefined;
}

/** Why `job`, a collection write, is not what the router makes for `target`: one sentence each. */
function collectionProblems(job: WriteJob, target: WriteTarget): string[] {
  const problems: string[] = [];
  const c = job.collection!;
  const where = `target ${q(target.key)}`;
  const id = job.identity;
  if (job.operation !== 'DELETE' || job.content !== null) problems.push(`a collection write is a DELETE without content, not ${job.operation}${job.content === null ? '' : ' with content'}`);
  let expected: string | undefined;
  try {
    if (c.everythingBelow) {
      if (id.group !== '' || id.resource !== 'namespaces' || id.namespace !== '' || id.name === '') {
        problems.push(`identity ${JSON.stringify(id)} of a write that removes a namespace's folder is not a Namespace`);
      } else {
        expected = namespaceFolderPath(target.path, id.name);
        if (c.objectFile !== undefined && c.objectFile !== objectFilePath(target.path, id)) {
          problems.push(`objectFile ${q(c.objectFile)} is not the file of Namespace ${q(id.name)} under ${where} (${q(objectFilePath(target.path, id))})`);
        }
      }
    } else if (id.name !== '' || id.resource === '') {
      problems.push(`identity ${JSON.stringify(id)} of a deletecollection names an object, or no resource`);
    } else {
      expected = typeFolderPath(target.path, id);
    }
  } catch (err) {
    if (!(err instanceof UnsafePathError)) throw err;
    problems.push(`identity ${JSON.stringify(id)} has no folder under ${where}: ${err.message}`);
  }
  if (expected !== undefined && job.filePath !== expected) {
    problems.push(`filePath ${q(job.filePath)} is not the folder of identity ${JSON.stringify(id)} under ${where} (${q(expected)})`);
  }
  return problems;
}

/**
 * Checks one write job against the configuration in force (see the top of this file). Pure: the error to
 * fail the job with (TargetNotConfiguredError: retried; WriteRefusedError: not), or undefined when the
 * job may be written.
 */
export function checkWrite(job: WriteJob, ctx: WriteCheckContext): WriteCheckError | undefined {
  const target = ctx.targets.get(job.target);
  const refuse = (...problems: string[]) => new WriteRefusedError(job.target, problems);
  if (!target) {
    return new TargetNotConfiguredError(
      job.target,
      `target ${q(job.target)} is not configured (deleted or not ready since the write was queued, or never configured); replay the job once it is configured again`,
    );
  }
  if (target.partition.id !== ctx.partition.id) {
    return new TargetNotConfiguredError(
      job.target,
      `target ${q(job.target)} writes to partition ${target.partition.id} (branch ${target.partition.branch}), not to this partition ${ctx.partition.id} (branch ${ctx.partition.branch}); replay the job once it writes here again`,
    );
  }
  const problems: string[] = [];
  const cluster = target.clusterProvider;
  const where = `target ${q(target.key)}`;
  if (job.clusterId !== cluster) problems.push(`clusterId ${q(job.clusterId)} is not the cluster of ${where} (${q(cluster)})`);
  if (job.identity.cluster !== cluster) problems.push(`identity.cluster ${q(job.identity.cluster)} is not the cluster of ${where} (${q(cluster)})`);

  if (job.reconcile) {
    if (job.collection) problems.push('a reconcile write removes no collection');
    if (job.reconcile.target !== job.target) problems.push(`reconcile.target ${q(job.reconcile.target)} is not the job's target ${q(job.target)}`);
    // (Its cluster is checked above; here the rest.)
    const expected = { cluster: job.identity.cluster, group: '', version: '', resource: '', namespace: '', name: job.filePath };
    if (JSON.stringify(job.identity) !== JSON.stringify(expected)) {
      problems.push(`identity ${JSON.stringify(job.identity)} is not that of a reconcile write of ${q(job.filePath)} (${JSON.stringify(expected)})`);
    }
    const pathProblem = reconcilePathProblem(job.filePath, validateBasePath(target.path));
    if (pathProblem) problems.push(`filePath ${q(job.filePath)} is not an object file under ${where} (${q(target.path)}): ${pathProblem}`);
    if (job.author.email !== ctx.committerEmail) {
      problems.push(`author email ${q(job.author.email)} of a reconcile write is not the service's (${q(ctx.committerEmail)})`);
    }
  } else if (job.collection) {
    problems.push(...collectionProblems(job, target));
    const domain = userDomainOf(cluster);
    if (!job.author.email.endsWith(domain)) problems.push(`author email ${q(job.author.email)} is not of cluster ${q(cluster)} of ${where} (…${domain})`);
  } else {
    let expected: string | undefined;
    try {
      expected = objectFilePath(target.path, job.identity, { encrypted: target.encryption !== undefined });
    } catch (err) {
      if (!(err instanceof UnsafePathError)) throw err;
      problems.push(`identity ${JSON.stringify(job.identity)} has no path under ${where}: ${err.message}`);
    }
    if (expected !== undefined && job.filePath !== expected) {
      problems.push(`filePath ${q(job.filePath)} is not the path of identity ${JSON.stringify(job.identity)} under ${where} (${q(expected)})`);
    }
    const domain = userDomainOf(cluster);
    if (!job.author.email.endsWith(domain)) problems.push(`author email ${q(job.author.email)} is not of cluster ${q(cluster)} of ${where} (…${domain})`);
  }
  if (job.sealedValues) {
    // Sealed values are only ever routed to a target that writes them encrypted, and only with a Secret's content.
    if (!target.encryption) problems.push(`sealedValues on a write for ${where}, which has no spec.encryption`);
    if (job.reconcile || job.collection || job.content === null || !isSecretIdentity(job.identity)) problems.push('sealedValues on a write that is not a Secret with content');
  }
  return problems.length > 0 ? refuse(...problems) : undefined;
}

export type WriteHandler = (jobs: WriteJob[], lease: HeldLease, history: JobHistory[]) => Promise<(WriteResult | JobFailure)[]>;

/**
 * `handle` for the jobs that pass `check`; each refused one becomes its JobFailure (in its place; BullMQ
 * retries it or not by its error), and `handle` is not called at all when every job is refused.
 */
export function withWriteCheck(handle: WriteHandler, check: (job: WriteJob) => WriteCheckError | undefined, onRefused?: (job: WriteJob, err: WriteCheckError) => void): WriteHandler {
  return async (jobs, lease, history) => {
    const refused = jobs.map(check);
    if (refused.every((e) => e === undefined)) return handle(jobs, lease, history);
    const results: (WriteResult | JobFailure)[] = new Array(jobs.length);
    const kept: number[] = [];
    refused.forEach((err, i) => {
      if (!err) return void kept.push(i);
      onRefused?.(jobs[i]!, err);
      results[i] = new JobFailure(err);
    });
    if (kept.length > 0) {
      const written = await handle(kept.map((i) => jobs[i]!), lease, kept.map((i) => history[i]!));
      kept.forEach((i, k) => (results[i] = written[k]!));
    }
    return results;
  };
}
