// Secrets never reach Valkey, a log line or Git in plaintext. This is the one place that
// knows where a Secret's values can hide, and what of any object may be stored at all:
// - a core v1 Secret, recognised by the request's objectRef (resource `secrets` of the core group, however
//   spelled: `Secrets`, group `core`) or by the body's own kind (`Secret`, `secret`; apiVersion `v1`,
//   `core/v1` or none), wherever it sits: the body itself, an item of a `List` or `SecretList`, an object
//   embedded in another (a template);
// - of such a Secret only the fields a Secret has are kept, every `data`/`stringData` value becomes
//   REDACTED (keys stay, so Git shows which exist), and every annotation is dropped but a short allow-list:
//   last-applied-configuration, kapp's `kapp.k14s.io/original` and whatever other tools write hold copies
//   of the whole Secret;
// - a CertificateSigningRequest's `spec.request` (a PKCS#10 request may carry a challenge password);
// - `metadata.managedFields` of any object: never needed downstream, and the one place a body can hide
//   values Git never shows.
// Ingest applies it before a job is stored, the watch and object-fetch paths before theirs, normalize
// again before YAML and Bull Board before showing job data: a job in Valkey is input, not trusted memory.
import { isRecord, putOwn } from './json.js';

/** What every Secret value becomes. Keys are kept, so Git still shows which keys exist. */
export const REDACTED_VALUE = 'REDACTED';

export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/** The only annotations a Secret keeps: names and ownership, never content. */
export const SECRET_ANNOTATIONS_KEPT: ReadonlySet<string> = new Set([
  'kubernetes.io/service-account.name',
  'kubernetes.io/description',
  'meta.helm.sh/release-name',
  'meta.helm.sh/release-namespace',
]);

/** The top-level fields of a core Secret; anything else in a body that is one is dropped. */
const SECRET_FIELDS: ReadonlySet<string> = new Set(['apiVersion', 'kind', 'metadata', 'type', 'immutable', 'data', 'stringData']);

/** Deeper than this, an object is refused rather than walked (the webhook bounds depth far below it). */
const MAX_WALK_DEPTH = 1000;

/** The parts of an audit objectRef that say which resource a request touched. */
export interface SecretRefLike {
  resource?: string | undefined;
  apiGroup?: string | undefined;
}

/** The core group is '' in the API; `core` is how people (and hostile senders) spell it. */
export function canonicalGroup(group: string | undefined): string {
  const g = (group ?? '').toLowerCase();
  return g === 'core' ? '' : g;
}

/** True when the request addressed core secrets (resource "secrets" of the core group, in any case). */
export function isSecretRef(objectRef: SecretRefLike | undefined | null): boolean {
  if (!objectRef) return false;
  return (objectRef.resource ?? '').toLowerCase() === 'secrets' && canonicalGroup(objectRef.apiGroup) === '';
}

/** apiVersion of the core group: `v1`, `core/v1`, or none at all (to fail safe). */
function isCoreApiVersion(apiVersion: unknown): boolean {
  if (apiVersion === undefined) return true;
  if (typeof apiVersion !== 'string') return false;
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 || canonicalGroup(apiVersion.slice(0, slash)) === '';
}

function kindIs(obj: Record<string, unknown>, kind: string): boolean {
  return typeof obj.kind === 'string' && obj.kind.toLowerCase() === kind;
}

/** The object says it is a core Secret (kind in any case; apiVersion v1, core/v1 or missing). */
export function isSecretObject(obj: Record<string, unknown>): boolean {
  return kindIs(obj, 'secret') && isCoreApiVersion(obj.apiVersion);
}

function isSecretList(obj: Record<string, unknown>): boolean {
  return kindIs(obj, 'secretlist') && isCoreApiVersion(obj.apiVersion);
}

function isCertificateRequest(obj: Record<string, unknown>, ref: SecretRefLike | undefined | null): boolean {
  if (ref && (ref.resource ?? '').toLowerCase() === 'certificatesigningrequests' && canonicalGroup(ref.apiGroup) === 'certificates.k8s.io') return true;
  return kindIs(obj, 'certificatesigningrequest') && typeof obj.apiVersion === 'string' && obj.apiVersion.toLowerCase().startsWith('certificates.k8s.io/');
}

function redactValues(values: unknown): unknown {
  // A malformed data field (not a map) is replaced whole: nothing in it may survive.
  if (!isRecord(values)) return REDACTED_VALUE;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(values)) putOwn(out, key, REDACTED_VALUE);
  return out;
}

function secretMetadata(metadata: unknown): unknown {
  if (!isRecord(metadata)) return metadata === undefined ? undefined : {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (key === 'managedFields') continue;
    if (key === 'annotations') {
      if (!isRecord(value)) continue;
      const kept: Record<string, unknown> = {};
      for (const [name, text] of Object.entries(value)) if (SECRET_ANNOTATIONS_KEPT.has(name)) putOwn(kept, name, text);
      putOwn(out, key, kept);
      continue;
    }
    putOwn(out, key, value);
  }
  return out;
}

/** A Secret as it may be stored: its own fields only, values redacted, annotations allow-listed. */
function redactSecretRecord(secret: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(secret)) {
    if (!SECRET_FIELDS.has(key)) continue;
    if (key === 'data' || key === 'stringData') putOwn(out, key, redactValues(value));
    else if (key === 'metadata') putOwn(out, key, secretMetadata(value));
    else putOwn(out, key, value);
  }
  return out;
}

/** The thrown error when an object is too deep to walk; the caller fails that one event. */
export class ObjectTooDeepError extends Error {
  override readonly name = 'ObjectTooDeepError';
  constructor() {
    super(`the object is nested deeper than ${MAX_WALK_DEPTH} levels and is not processed`);
  }
}

/** Returns `value` itself when nothing in it is a Secret; otherwise a copy with every Secret redacted. */
function visit(value: unknown, depth: number, asSecret: boolean): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_WALK_DEPTH) throw new ObjectTooDeepError();
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, i) => {
      const next = visit(item, depth + 1, asSecret);
      if (next !== item) (copy ??= [...value])[i] = next;
    });
    return copy ?? value;
  }
  const record = value as Record<string, unknown>;
  if (asSecret || isSecretObject(record)) return redactSecretRecord(record);
  const itemsAreSecrets = isSecretList(record);
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(record)) {
    const child = record[key];
    const next = visit(child, depth + 1, itemsAreSecrets && key === 'items');
    if (next === child) continue;
    if (!copy) {
      copy = {};
      for (const k of Object.keys(record)) putOwn(copy, k, record[k]);
    }
    putOwn(copy, key, next);
  }
  return copy ?? record;
}

/**
 * Returns a redacted copy when `obj` is a Secret — by its own kind/apiVersion, or because the caller's
 * objectRef says the request was on core secrets (a body may lack kind) — or holds one anywhere (a List,
 * an embedded template). Anything else is returned as is (same reference). Throws ObjectTooDeepError for
 * an object nested deeper than it walks.
 */
export function redactSecret<T extends Record<string, unknown>>(obj: T, objectRef?: SecretRefLike | null): T {
  return visit(obj, 1, isSecretRef(objectRef)) as T;
}

/**
 * What of an object may be stored anywhere (Valkey, Git, Bull Board): every Secret in it redacted (see
 * redactSecret), a CertificateSigningRequest's request redacted, and no `metadata.managedFields`. The same
 * reference when nothing had to change.
 */
export function storableObject<T extends Record<string, unknown>>(obj: T, objectRef?: SecretRefLike | null): T {
  let out = redactSecret(obj, objectRef) as Record<string, unknown>;
  if (isRecord(out.metadata) && 'managedFields' in out.metadata) {
    const { managedFields: _dropped, ...metadata } = out.metadata;
    out = copyWith(out, 'metadata', metadata);
  }
  if (isCertificateRequest(out, objectRef) && isRecord(out.spec) && 'request' in out.spec) {
    out = copyWith(out, 'spec', copyWith(out.spec, 'request', REDACTED_VALUE));
  }
  return out as T;
}

function copyWith(record: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const k of Object.keys(record)) putOwn(copy, k, record[k]);
  putOwn(copy, key, value);
  return copy;
}
