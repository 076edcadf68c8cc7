// Commit messages that people can read and machines can parse. The subject says what happened to which
// object; git trailers carry the event's identity (Audit-ID, Cluster, …), so a writer recovering after a
// crash can read back from the history which events are already in Git (invariant 4), and
// `git log --format='%(trailers:key=Audit-ID)'` finds an event's commit.
import type { WriteJob } from '../../queues/contracts.js';

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
