// Watch events carry no user. When a cluster in watch mode also sends audit events, the webhook records
// who made each change it stored, under the object's uid and the resourceVersion the change produced
// (the response object of the audit event); a watch event of that change waits a grace period for the
// audit event to arrive, then looks its author up. Found: the commit names that user. Not found (or the
// cluster has no audit webhook, and then without any wait): the commit says the author is unknown.
//
// When the audit event carried the object, its job was queued before the watch event's (the watch event
// waited for it), so the watch event is the same content and the writer commits nothing for it (it skips
// same-content and stale writes). The join matters for audit events without a body (level Metadata).
import type { Valkey } from 'iovalkey';
import type { IngestJob } from '../../core/contracts.js';
import { auditAuthorKey } from '../../queues/names.js';
import { nowMs, type WatchChange } from './resumable-watch.js';
import { isRecord } from '../../core/json.js';
import { terminating } from '../../core/object-state.js';

/** Long enough for any grace period and a slow watch; short enough that the keys stay few. */
export const AUDIT_AUTHOR_TTL_SECONDS = 600;

/** The version part of the key of a delete's author: a watch DELETED event has a resourceVersion of its own. */
const DELETED = 'deleted';


function uidAndVersion(object: Record<string, unknown> | undefined): { uid: string; rv: string } | undefined {
  const metadata = object && isRecord(object.metadata) ? object.metadata : undefined;
  const uid = metadata?.uid;
  const rv = metadata?.resourceVersion;
  return typeof uid === 'string' && uid !== '' && typeof rv === 'string' && rv !== '' ? { uid, rv } : undefined;
}


/**
 * Records the author of every stored audit job whose object has a uid and a resourceVersion, in one
 * pipeline. A delete is recorded as the uid's delete (the DELETED watch event, whose resourceVersion is
 * its own); under its resourceVersion too only when it merely marked the object (a MODIFIED event
 * follows): the answer to an immediate delete repeats the object's last resourceVersion, whose change
 * someone else may have made.
 */
export async function recordAuditAuthors(connection: Valkey, prefix: string, clusterId: string, jobs: readonly IngestJob[]): Promise<void> {
  const pipeline = connection.pipeline();
  let n = 0;
  for (const job of jobs) {
    const author = job.impersonatedUser?.username ?? job.user.username;
    // A delete answered with a Status: no object, its uid from the Status (objectRef.uid).
    if (job.verb === 'delete' && !job.object && job.objectRef.uid) {
      pipeline.set(auditAuthorKey(prefix, clusterId, job.objectRef.uid, DELETED), author, 'EX', AUDIT_AUTHOR_TTL_SECONDS);
      n++;
      continue;
    }
    const ids = uidAndVersion(job.object);
    if (!ids) continue;
    if (job.verb !== 'delete' || terminating(job.object)) pipeline.set(auditAuthorKey(prefix, clusterId, ids.uid, ids.rv), author, 'EX', AUDIT_AUTHOR_TTL_SECONDS);
    if (job.verb === 'delete') pipeline.set(auditAuthorKey(prefix, clusterId, ids.uid, DELETED), author, 'EX', AUDIT_AUTHOR_TTL_SECONDS);
    n++;
  }
  if (n === 0) return;
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
}

export interface AuditJoinOptions {
  connection: Valkey;
  prefix: string;
  clusterId: string;
  /** How long a watch event waits for its audit event; undefined: the cluster sends none, nobody waits. */
  graceMs?: number;
}

export interface AuditJoiner {
  /**
   * The audit author of each change (undefined: none found), after the changes that just arrived on a
   * stream have waited the grace period. Changes a re-list found are old: their audit events, if any,
   * arrived long ago, so they do not wait. Rejects when the signal aborts the wait.
   */
  authorsOf(changes: readonly WatchChange[], signal: AbortSignal): Promise<(string | undefined)[]>;
}

function waitUntil(at: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('stopped'));
    const ms = at - nowMs();
    if (ms <= 0) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('stopped'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function createAuditJoiner(opts: AuditJoinOptions): AuditJoiner {
  return {
    async authorsOf(changes, signal) {
      const graceMs = opts.graceMs;
      if (graceMs === undefined || changes.length === 0) return changes.map(() => undefined);
      // Changes come in arrival order: the last fresh one waits longest.
      const fresh = changes.filter((c) => c.origin === 'watch').map((c) => c.receivedAt);
      if (fresh.length > 0) await waitUntil(Math.max(...fresh) + graceMs, signal);
      const keys = changes.map((c) => {
        const ids = uidAndVersion(c.object);
        return ids && auditAuthorKey(opts.prefix, opts.clusterId, ids.uid, c.type === 'DELETED' ? DELETED : ids.rv);
      });
      const wanted = keys.filter((k): k is string => k !== undefined);
      if (wanted.length === 0) return changes.map(() => undefined);
      const found = await opts.connection.mget(...wanted);
      const byKey = new Map(wanted.map((k, i) => [k, found[i] ?? undefined]));
      return keys.map((k) => (k === undefined ? undefined : (byKey.get(k) ?? undefined)));
    },
  };
}
