// Commit messages that people can read and machines can parse. The subject says what happened to which
// object; git trailers carry the event's identity (Audit-ID, Cluster, …), so a writer recovering after a
// crash can read back from the history which events are already in Git, and
// `git log --format='%(trailers:key=Audit-ID)'` finds an event's commit. A reconcile run's commit carries
// `Reconcile-Run` and `Reconcile-Writes` instead of `Audit-ID` (one commit stands for many writes).
import type { WriteJob } from '../../core/contracts.js';

export type CommitMessageInput = Pick<WriteJob, 'operation' | 'identity' | 'auditID' | 'clusterId' | 'resourceVersion' | 'target'>;

/** Trailer keys, in the order they are written. */
export const TRAILER_KEYS = ['Audit-ID', 'Cluster', 'Resource-Version', 'Target'] as const;

/** Trailer values and subject parts are one line each: newlines (and other control characters) become spaces. */
function oneLine(value: string): string {
  return value.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/**
 * `UPDATE apps/v1 deployments team-a/web` (core group shown as `v1`; `name` alone when cluster-scoped),
 * a blank line, then the trailers `Audit-ID`, `Cluster`, `Resource-Version`, `Target`.
 */
export function commitMessage(w: CommitMessageInput): string {
  const { group, version, resource, namespace, name } = w.identity;
  const groupVersion = group === '' ? version : `${group}/${version}`;
  const object = namespace === '' ? name : `${namespace}/${name}`;
  const subject = oneLine(`${w.operation} ${groupVersion} ${resource} ${object}`);
  const trailers: Record<(typeof TRAILER_KEYS)[number], string> = {
    'Audit-ID': w.auditID,
    Cluster: w.clusterId,
    'Resource-Version': w.resourceVersion,
    Target: w.target,
  };
  const lines = TRAILER_KEYS.map((k) => `${k}: ${oneLine(trailers[k])}`);
  return `${subject}\n\n${lines.join('\n')}\n`;
}

/**
 * The message of a collection write's commit (one event that removes several files): a deleted namespace,
 * `DELETE namespace team-a: 4 files`; a deletecollection, `DELETECOLLECTION v1 configmaps team-a: 3 deleted`
 * (`DELETECOLLECTION rbac.authorization.k8s.io/v1 clusterroles: 2 deleted` for a cluster-scoped type). The
 * same trailers as commitMessage.
 */
export function collectionCommitMessage(w: CommitMessageInput & Pick<WriteJob, 'collection'>, files: number): string {
  const { group, version, resource, namespace, name } = w.identity;
  const subject = w.collection?.everythingBelow
    ? oneLine(`DELETE namespace ${name}: ${files} ${files === 1 ? 'file' : 'files'}`)
    : oneLine(`DELETECOLLECTION ${group === '' ? version : `${group}/${version}`} ${resource}${namespace === '' ? '' : ` ${namespace}`}: ${files} deleted`);
  const trailers: Record<(typeof TRAILER_KEYS)[number], string> = {
    'Audit-ID': w.auditID,
    Cluster: w.clusterId,
    'Resource-Version': w.resourceVersion,
    Target: w.target,
  };
  return `${subject}\n\n${TRAILER_KEYS.map((k) => `${k}: ${oneLine(trailers[k])}`).join('\n')}\n`;
}

/** Trailer keys of a reconcile commit, in the order they are written: the run instead of an audit ID. */
export const RECONCILE_TRAILER_KEYS = ['Reconcile-Run', 'Reconcile-Writes', 'Cluster', 'Target'] as const;

/**
 * The auditID of write `index` of reconcile run `runId`: what a reconcile write carries where a live
 * write carries its audit ID, so appliedKey (applied-events.ts) tells the writes of a run apart.
 */
export function reconcileAuditID(runId: string, index: number): string {
  return `reconcile:${runId}:${index}`;
}

export interface ReconcileMessageInput {
  runId: string;
  clusterId: string;
  target: string;
  /** What this commit changes (files whose content was already equal, or stale, are not counted). */
  created: number;
  updated: number;
  deleted: number;
  /** The run's writes this commit stands for (its place in the run), changed or not. */
  indices: readonly number[];
  /** The whole diff of the run, when this commit holds only part of it. */
  ofRun?: { created: number; updated: number; deleted: number };
}

/** `0-3,7,9-10`: sorted, without repeats. */
export function formatIndexRanges(indices: readonly number[]): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * The indices of `formatIndexRanges`. A malformed part is ignored, and at most `limit` indices are
 * returned: the text comes from the remote's history, which anyone with push access can write.
 */
export function parseIndexRanges(text: string, limit = 100_000): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d{1,9})(?:-(\d{1,9}))?\s*$/.exec(part);
    if (!m) continue;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let n = from; n <= to; n++) {
      if (out.length >= limit) return out;
      out.push(n);
    }
  }
  return out;
}

/**
 * `reconcile ops/prod: 3 created, 1 updated, 0 deleted`, when the commit holds only part of the run's
 * diff a line saying so, and the trailers `Reconcile-Run`, `Reconcile-Writes` (the run's writes the commit
 * stands for, as ranges of their index), `Cluster`, `Target`.
 */
export function reconcileCommitMessage(r: ReconcileMessageInput): string {
  const subject = oneLine(`reconcile ${r.target}: ${r.created} created, ${r.updated} updated, ${r.deleted} deleted`);
  const run = r.ofRun;
  const partial =
    run && (run.created !== r.created || run.updated !== r.updated || run.deleted !== r.deleted)
      ? `\n\nThe run's diff: ${run.created} created, ${run.updated} updated, ${run.deleted} deleted; the rest was already in Git, older than a live change, or is in another commit of the run.`
      : '';
  const trailers: Record<(typeof RECONCILE_TRAILER_KEYS)[number], string> = {
    'Reconcile-Run': r.runId,
    'Reconcile-Writes': formatIndexRanges(r.indices),
    Cluster: r.clusterId,
    Target: r.target,
  };
  const lines = RECONCILE_TRAILER_KEYS.map((k) => `${k}: ${oneLine(trailers[k])}`);
  return `${subject}${partial}\n\n${lines.join('\n')}\n`;
}

/**
 * The trailers of a commit message: `Key: value` lines of its last paragraph (when that paragraph is
 * not the subject and every line in it is a trailer). Keys are kept as written; a repeated key keeps the last value.
 */
export function parseTrailers(message: string): Record<string, string> {
  const paragraphs = message.replace(/\r\n/g, '\n').trim().split(/\n[ \t]*\n/);
  const result: Record<string, string> = {};
  if (paragraphs.length < 2) return result;
  const lines = paragraphs[paragraphs.length - 1]!.split('\n');
  const parsed: [string, string][] = [];
  for (const line of lines) {
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]?(.*)$/.exec(line);
    if (!m) return result;
    parsed.push([m[1]!, m[2]!.trim()]);
  }
  for (const [k, v] of parsed) result[k] = v;
  return result;
}
