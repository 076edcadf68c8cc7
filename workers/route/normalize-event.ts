// Turns one kept audit event (an IngestJob) into the change the rest of the pipeline works with:
// who changed which object, how, and the sanitized YAML it should have in Git. It does not fetch
// anything: when the audit level carried no body, it says so (no-object-body) and the caller
// decides whether to fetch the object from the cluster.
import { WATCH_UNKNOWN_USER, type GitAuthor, type IngestJob, type ObjectIdentity, type Operation, type SealedValues } from '../../core/contracts.js';
import { eventJobId } from '../../queues/names.js';
import { storableObject } from '../../core/redact-secret.js';
import { terminating } from '../../core/object-state.js';
import { identityOf } from '../../core/identity.js';
import { sanitizeObject, toCanonicalYaml } from '../../core/sanitize.js';
import { isRecord } from '../../core/json.js';
import { authorFor, operationOf, UNKNOWN_WATCH_AUTHOR_NAME } from '../../core/author.js';

export { authorFor, operationOf, UNKNOWN_WATCH_AUTHOR_NAME } from '../../core/author.js';

export interface NormalizedEvent {
  /** `${clusterId}_${auditID}`: the same id the ingest job has, for dedup downstream. */
  eventKey: string;
  clusterId: string;
  auditID: string;
  identity: ObjectIdentity;
  operation: Operation;
  /** Canonical YAML of the sanitized object; null for a delete. */
  content: string | null;
  /** From the object's metadata; '' when the event carried none. */
  resourceVersion: string;
  author: GitAuthor;
  stageTimestamp: string;
  /** A Secret's values sealed at the webhook (some target encrypts); only a change with content has them. */
  sealedValues?: SealedValues;
}

export type NormalizeOutcome = { kind: 'change'; event: NormalizedEvent } | { kind: 'no-object-body'; reason: string };

function authorOf(job: IngestJob): GitAuthor {
  if (job.source === 'watch' && job.user.username === WATCH_UNKNOWN_USER) {
    return { name: UNKNOWN_WATCH_AUTHOR_NAME, email: authorFor(WATCH_UNKNOWN_USER, job.clusterId).email };
  }
  return authorFor(job.impersonatedUser?.username ?? job.user.username, job.clusterId);
}

function resourceVersionOf(object: Record<string, unknown> | undefined): string {
  const metadata = object && isRecord(object.metadata) ? object.metadata : undefined;
  const rv = metadata?.resourceVersion;
  return typeof rv === 'string' ? rv : '';
}

/**
 * For an event that normalizeEvent answers with no-object-body only because the audit event carried no
 * body (level Metadata, a patch whose response was not recorded, a scale event whose body is a Scale):
 * the identity and operation of the object to read back from the cluster instead. Undefined for every
 * other event: a delete needs no body, a deletecollection and a nameless event name no one object.
 */
export function missingBody(job: IngestJob): { identity: ObjectIdentity; operation: Operation } | undefined {
  if (job.verb === 'deletecollection' || job.verb === 'delete' || job.object) return undefined;
  const identity = identityOf(job);
  return identity.name === '' ? undefined : { identity, operation: operationOf(job.verb) };
}

export function normalizeEvent(job: IngestJob): NormalizeOutcome {
  if (job.verb === 'deletecollection') {
    return { kind: 'no-object-body', reason: 'deletecollection carries no per-object body' };
  }
  // An object marked for deletion (metadata.deletionTimestamp: it waits for its finalizers or a grace
  // period) is gone as far as Git goes: its file went with the delete that marked it, and no later write
  // to it (a finalizer removed, a status, a controller's update, the final removal) brings the file back.
  const operation = terminating(job.object) ? 'DELETE' : operationOf(job.verb);
  const identity = identityOf(job);
  if (identity.name === '') {
    return { kind: 'no-object-body', reason: `${job.verb} of ${job.objectRef.resource}: neither objectRef nor the object names it` };
  }

  let content: string | null = null;
  if (operation !== 'DELETE') {
    if (!job.object) {
      const reason =
        job.objectRef.subresource === 'scale'
          ? `${job.verb} of ${job.objectRef.resource}/scale: the audit event carries a Scale, not the object`
          : `${job.verb} of ${job.objectRef.resource} has no object body: the audit policy level must be RequestResponse` +
            (job.verb === 'patch' ? '' : ' (or Request)') +
            ' for this resource';
      return { kind: 'no-object-body', reason };
    }
    // Defensive: ingest already redacted, but a job in Valkey is input, not trusted memory.
    content = toCanonicalYaml(sanitizeObject(storableObject(job.object, job.objectRef)));
  }

  return {
    kind: 'change',
    event: {
      eventKey: eventJobId(job.clusterId, job.auditID),
      clusterId: job.clusterId,
      auditID: job.auditID,
      identity,
      operation,
      content,
      resourceVersion: resourceVersionOf(job.object),
      author: authorOf(job),
      stageTimestamp: job.stageTimestamp,
      ...(content !== null && job.sealedValues ? { sealedValues: job.sealedValues } : {}),
    },
  };
}
