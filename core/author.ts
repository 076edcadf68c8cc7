// Who a change is by, in Git's terms: the commit author made from the Kubernetes user (always a valid git
// ident), and the rule operation a verb stands for. Pure; the router, the writer's checks and reconcile use it.
import type { GitAuthor, IngestJob, Operation } from './contracts.js';

/** The rule operation of a verb: what a WatchRule's `operations` select. */
export function operationOf(verb: IngestJob['verb']): Operation {
  return verb === 'deletecollection' ? 'DELETE' : OPERATION_BY_VERB[verb];
}

const OPERATION_BY_VERB: Record<Exclude<IngestJob['verb'], 'deletecollection'>, Operation> = {
  create: 'CREATE',
  update: 'UPDATE',
  patch: 'UPDATE',
  delete: 'DELETE',
};

/** Characters kept in an email local part; everything else becomes '-'. A conservative dot-atom. */
const INVALID_LOCAL_PART_CHARS = /[^A-Za-z0-9._+-]/g;
const MAX_LOCAL_PART = 64;

/** Git idents may not contain '<', '>' or line breaks; other control characters are dropped too. */
const INVALID_NAME_CHARS = /[<>\u0000-\u001f\u007f]/g;

/** A DNS-label-ish form of the cluster id, for the email domain. */
function domainLabel(clusterId: string): string {
  const label = clusterId
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label || 'unknown';
}

/**
 * The Git author for a Kubernetes user: name is the username, email is
 * `<username made email-safe>@<clusterId>.cluster.local` (e.g. system:serviceaccount:ns:sa →
 * system-serviceaccount-ns-sa@prod.cluster.local). Always a valid git ident.
 */
export function authorFor(username: string, clusterId: string): GitAuthor {
  const name = username.replace(INVALID_NAME_CHARS, '').trim() || 'unknown';
  const local =
    username
      .replace(INVALID_LOCAL_PART_CHARS, '-')
      .replace(/\.{2,}/g, '.')
      .replace(/^\.+|\.+$/g, '')
      .slice(0, MAX_LOCAL_PART)
      .replace(/\.+$/, '') || 'unknown';
  return { name, email: `${local}@${domainLabel(clusterId)}.cluster.local` };
}

/** What a watch event's commit says when no audit event named the user (a watch event carries none). */
export const UNKNOWN_WATCH_AUTHOR_NAME = 'unknown (watch event, no audit event joined)';
