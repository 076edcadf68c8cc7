// Decides, per audit event, whether it is a change worth committing, and if so trims it to the
// IngestJob that the ingest queue stores. Everything that did not change an object in etcd (other
// stages, reads, failures, dry runs, no-op updates, status writes) and every request that carries
// credentials is dropped here with a named reason, so the webhook can count what it skipped and why.
// An event that cannot be what it claims (a body that disagrees with its objectRef, an object past the
// bounds of object-limits.ts) is refused instead: the webhook answers 400 naming it and stores the rest.
import { MUTATING_VERBS, type IngestJob, type MutatingVerb } from '../../core/contracts.js';
import type { AuditEvent } from '../../core/audit-event-schema.js';
import { isCredentialRequest } from './credential-requests.js';
import { identityRefusal, isNamespaceRef, type IdentityRefusalReason } from './identity-check.js';
import { DEFAULT_OBJECT_LIMITS, measureObject, type ObjectLimitReason, type ObjectLimits } from '../../core/object-limits.js';
import { deletedNamesOf, requestSelectors } from './deleted-names.js';
import { canonicalGroup, storableObject } from '../../core/redact-secret.js';
import { builtInScope, type ResourceScope } from '../../core/resource-scope.js';
import { isRecord, nonEmptyString } from '../../core/json.js';
import { secretValuesOf, type SecretValues } from '../../core/sealed-values.js';

export type SkipReason =
  | 'not-response-complete'
  | 'not-mutating'
  | 'failed'
  | 'dry-run'
  | 'no-op'
  | 'subresource'
  | 'no-object-ref'
  | 'credential-request'
  | 'namespace-not-allowed'
  | 'not-selected';

/** Why an event is refused (400 for it): it cannot be stored as it is. */
export type RefusalReason = ObjectLimitReason | IdentityRefusalReason;

export type FilterResult =
  /** secretValues: with keepSecretValues, the values of a Secret object, for the caller to seal (never to store). */
  | { keep: true; job: IngestJob; secretValues?: SecretValues }
  | { keep: false; reason: SkipReason }
  | { keep: false; refused: true; reason: RefusalReason; error: string };

export interface FilterOptions {
  /** When given, namespaced events outside these namespaces are dropped. Cluster-scoped events pass. */
  allowedNamespaces?: string[];
  /**
   * When given, an event no rule of its cluster selects is dropped here: a cluster's noise never reaches
   * Valkey. (The rules in force when it arrives decide; the router decides again with those in force then.)
   */
  selected?: (job: IngestJob) => boolean;
  /** Bounds on the kept object. @defaultValue DEFAULT_OBJECT_LIMITS */
  limits?: ObjectLimits;
  /** The scope of a type the built-in table does not know (the cluster's API discovery); undefined: unknown. */
  scopeOf?: (group: string, resource: string) => ResourceScope | undefined;
  /** Also return a Secret object's values (a GitTarget encrypts): the caller seals them before storing. */
  keepSecretValues?: boolean;
}

/**
 * Subresources whose writes change the parent object as stored in Git. `scale` sets spec.replicas;
 * `status` and the rest (binding, eviction, exec, …) touch nothing we keep.
 */
export const KEPT_SUBRESOURCES: ReadonlySet<string> = new Set(['scale']);

/** The uid a Status names in its details (the answer to a delete that removed the object at once). */
function statusUid(body: unknown): string | undefined {
  if (!isRecord(body) || body.kind !== 'Status' || !isRecord(body.details)) return undefined;
  return nonEmptyString(body.details.uid);
}

function isMutatingVerb(verb: string): verb is MutatingVerb {
  return (MUTATING_VERBS as readonly string[]).includes(verb);
}

function metadataOf(obj: unknown): Record<string, unknown> | undefined {
  return isRecord(obj) && isRecord(obj.metadata) ? obj.metadata : undefined;
}

/** A body that is the object itself: it has a name and is not a Status (or a List without one). */
function isObjectItself(obj: unknown): obj is Record<string, unknown> {
  if (!isRecord(obj)) return false;
  const name = metadataOf(obj)?.name;
  return typeof name === 'string' && name !== '' && obj.kind !== 'Status';
}

/** `?dryRun=All` on the request URI. The API server refuses any other value, so presence is enough. */
export function isDryRun(requestURI: string): boolean {
  const q = requestURI.indexOf('?');
  if (q < 0) return false;
  return new URLSearchParams(requestURI.slice(q + 1)).has('dryRun');
}

/**
 * An update/patch that the API server answered without writing: the resourceVersion the client
 * sent equals the one it got back.
 */
function isNoOp(ev: AuditEvent): boolean {
  if (ev.verb !== 'update' && ev.verb !== 'patch') return false;
  const before = metadataOf(ev.requestObject)?.resourceVersion;
  const after = metadataOf(ev.responseObject)?.resourceVersion;
  return typeof before === 'string' && typeof after === 'string' && before !== '' && before === after;
}

/** The object after the change, as far as the event carries it. See the rules in toIngestJob. */
function objectOf(ev: AuditEvent, subresource: string | undefined): Record<string, unknown> | undefined {
  if (subresource === 'scale') return undefined; // the body is a Scale, not the parent
  if (isObjectItself(ev.responseObject)) return ev.responseObject;
  // A patch's requestObject is only the patch; for create/update it is the whole object.
  if ((ev.verb === 'create' || ev.verb === 'update') && isRecord(ev.requestObject)) return ev.requestObject;
  return undefined;
}

/**
 * Turns one audit event into an ingest job, or says why not. Rules, in order:
 * stage ResponseComplete; a mutating verb; an objectRef with a resource; not a request that carries
 * credentials; a 2xx response code (a missing code counts as failed: the API server always sets it at
 * ResponseComplete, so its absence means the event is not one we can trust); not a dry run; no subresource
 * but `scale`; objectRef, body and the type's scope agree (else refused); the namespace allowed; not a
 * no-op; the object within its bounds (else refused). The job's object is what may be stored of it
 * (storableObject: Secrets redacted, no managedFields).
 */
export function toIngestJob(clusterId: string, ev: AuditEvent, opts: FilterOptions = {}): FilterResult {
  if (ev.stage !== 'ResponseComplete') return { keep: false, reason: 'not-response-complete' };
  const verb = ev.verb;
  if (!isMutatingVerb(verb)) return { keep: false, reason: 'not-mutating' };
  const ref = ev.objectRef;
  if (!ref || !ref.resource) return { keep: false, reason: 'no-object-ref' };
  const subresource = ref.subresource || undefined;
  if (isCredentialRequest({ ...ref, subresource, requestObject: ev.requestObject, responseObject: ev.responseObject })) {
    return { keep: false, reason: 'credential-request' };
  }
  const code = ev.responseStatus?.code;
  if (code === undefined || code < 200 || code >= 300) return { keep: false, reason: 'failed' };
  if (isDryRun(ev.requestURI)) return { keep: false, reason: 'dry-run' };
  if (subresource !== undefined && !KEPT_SUBRESOURCES.has(subresource)) return { keep: false, reason: 'subresource' };

  const group = canonicalGroup(ref.apiGroup);
  const raw = objectOf(ev, subresource);
  const mismatch = identityRefusal({ ...ref, resource: ref.resource }, raw, builtInScope(group, ref.resource) ?? opts.scopeOf?.(group, ref.resource));
  if (mismatch) return { keep: false, refused: true, ...mismatch };
  let name = ref.name || undefined;
  if (name === undefined && raw) {
    const fromObject = metadataOf(raw)?.name;
    if (typeof fromObject === 'string' && fromObject !== '') name = fromObject;
  }
  // A Namespace lies in itself: its own name is what allowedNamespaces speaks of.
  const namespace = isNamespaceRef({ resource: ref.resource, apiGroup: ref.apiGroup }) ? name : ref.namespace || undefined;
  if (opts.allowedNamespaces && namespace !== undefined && !opts.allowedNamespaces.includes(namespace)) {
    return { keep: false, reason: 'namespace-not-allowed' };
  }
  if (isNoOp(ev)) return { keep: false, reason: 'no-op' };

  let objectBytes: number | undefined;
  if (raw !== undefined) {
    const measured = measureObject(raw, opts.limits ?? DEFAULT_OBJECT_LIMITS);
    if (!measured.ok) return { keep: false, refused: true, reason: measured.reason, error: measured.error };
    objectBytes = measured.bytes;
  }
  const object = raw === undefined ? undefined : storableObject(raw, ref);
  // A deletecollection names no object: what it deleted is its answer's list, of which only names are kept.
  const deleted = verb === 'deletecollection' ? deletedNamesOf(ev.responseObject, ref.namespace ?? '') : undefined;
  if (deleted && !deleted.ok) return { keep: false, refused: true, reason: 'identity-mismatch', error: deleted.error };

  const objectRef: IngestJob['objectRef'] = { resource: ref.resource };
  if (ref.namespace) objectRef.namespace = ref.namespace;
  if (name !== undefined) objectRef.name = name;
  if (ref.apiGroup !== undefined) objectRef.apiGroup = group;
  if (ref.apiVersion !== undefined) objectRef.apiVersion = ref.apiVersion;
  if (subresource !== undefined) objectRef.subresource = subresource;
  // A delete answered with a Status carries no object; its uid is the one thing the watch join needs of it.
  const uid = object ? undefined : (nonEmptyString(ref.uid) ?? statusUid(ev.responseObject));
  if (uid !== undefined && uid.length <= 128) objectRef.uid = uid;

  const job: IngestJob = {
    clusterId,
    auditID: ev.auditID,
    verb,
    stageTimestamp: ev.stageTimestamp ?? ev.requestReceivedTimestamp ?? '',
    user: { username: ev.user.username },
    objectRef,
    responseCode: code,
  };
  if (ev.impersonatedUser) job.impersonatedUser = { username: ev.impersonatedUser.username };
  if (object) {
    job.object = object;
    job.objectBytes = objectBytes;
  }
  if (deleted?.ok && deleted.names) {
    job.deletedNames = deleted.names;
    job.objectBytes = deleted.bytes;
  }
  const selectors = verb === 'deletecollection' ? requestSelectors(ev.requestURI) : undefined;
  if (selectors) job.selectors = selectors;
  if (opts.selected && !opts.selected(job)) return { keep: false, reason: 'not-selected' };
  const secretValues = opts.keepSecretValues && raw !== undefined && verb !== 'deletecollection' ? secretValuesOf(raw, ref) : undefined;
  return secretValues ? { keep: true, job, secretValues } : { keep: true, job };
}
