// Turns one watched change into the IngestJob the audit webhook would have stored for it, so the rest
// of the pipeline (router → normalize → route → git writer) cannot tell the two apart but by `source`.
// Secrets are redacted here, before the job is stored; namespaces outside allowedNamespaces are dropped
// as filter-audit-event.ts drops them.
import { createHash } from 'node:crypto';
import { WATCH_AUDIT_ID_PREFIX, WATCH_UNKNOWN_USER, type IngestJob } from '../../core/contracts.js';
import { storableObject } from '../../core/redact-secret.js';
import type { WatchChange } from './resumable-watch.js';
import type { WatchSpec } from './watch-plan.js';
import { isRecord, stringOrEmpty } from '../../core/json.js';

const VERB_BY_TYPE = { ADDED: 'create', MODIFIED: 'update', DELETED: 'delete' } as const;

/**
 * An audit-style timestamp with microseconds (`2026-11-25T15:00:00.123456Z`), the precision change
 * order sorts by (core/change-order.ts).
 */
export function auditTimestamp(epochMs: number): string {
  const micros = Math.floor(epochMs * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  const fraction = String(micros - seconds * 1_000_000).padStart(6, '0');
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${fraction}Z`;
}

export type WatchJobResult = { keep: true; job: IngestJob } | { keep: false; reason: 'namespace-not-allowed' | 'unnamed' };

export interface WatchJobInput {
  clusterId: string;
  spec: WatchSpec;
  change: WatchChange;
  /** The user the audit join found; undefined: unknown. */
  username?: string;
  allowedNamespaces?: readonly string[];
}

export function watchChangeToJob(input: WatchJobInput): WatchJobResult {
  const { spec, change } = input;
  const metadata = isRecord(change.object.metadata) ? change.object.metadata : {};
  const name = stringOrEmpty(metadata.name);
  if (!name) return { keep: false, reason: 'unnamed' };
  const namespace = spec.namespaced ? stringOrEmpty(metadata.namespace) : '';
  if (input.allowedNamespaces && namespace && !input.allowedNamespaces.includes(namespace)) return { keep: false, reason: 'namespace-not-allowed' };

  const objectRef: IngestJob['objectRef'] = { resource: spec.resource, name, apiVersion: spec.version };
  if (namespace) objectRef.namespace = namespace;
  // As in audit events: the core group has no apiGroup.
  if (spec.group) objectRef.apiGroup = spec.group;
  const rv = stringOrEmpty(metadata.resourceVersion);
  // uid + resourceVersion name one change of one object: a re-delivery, or a second replica during a
  // takeover, gets the same job id and adds nothing twice.
  const uid = stringOrEmpty(metadata.uid) || `name-${createHash('sha256').update(`${spec.key}\n${namespace}/${name}`).digest('hex').slice(0, 16)}`;

  return {
    keep: true,
    job: {
      clusterId: input.clusterId,
      auditID: `${WATCH_AUDIT_ID_PREFIX}${uid}-${rv}`,
      verb: VERB_BY_TYPE[change.type],
      stageTimestamp: auditTimestamp(change.receivedAt),
      user: { username: input.username ?? WATCH_UNKNOWN_USER },
      objectRef,
      responseCode: 200,
      object: storableObject(change.object, objectRef),
      source: 'watch',
    },
  };
}
