// Secrets never reach Valkey, a log line or Git in plaintext (invariant 7). This is the one place
// that knows where a core v1 Secret keeps its values: `data`, `stringData`, and the
// `kubectl.kubernetes.io/last-applied-configuration` annotation, which repeats the whole object.
// Ingest calls it before a job is stored; normalize calls it again, defensively, before YAML.

/** What every Secret value becomes. Keys are kept, so Git still shows which keys exist. */
export const REDACTED_VALUE = 'REDACTED';

export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/** The parts of an audit objectRef that say which resource a request touched. */
export interface SecretRefLike {
  resource?: string | undefined;
  apiGroup?: string | undefined;
}

/** True when the request addressed core v1 secrets (resource "secrets", core group). */
export function isSecretRef(objectRef: SecretRefLike | undefined | null): boolean {
  if (!objectRef) return false;
  return objectRef.resource === 'secrets' && (objectRef.apiGroup === undefined || objectRef.apiGroup === '');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object says it is a core Secret (apiVersion v1; a missing apiVersion counts, to fail safe). */
export function isSecretObject(obj: Record<string, unknown>): boolean {
  return obj.kind === 'Secret' && (obj.apiVersion === 'v1' || obj.apiVersion === undefined);
}

function redactValues(values: unknown): unknown {
  // A malformed data field (not a map) is replaced whole: nothing in it may survive.
  if (!isRecord(values)) return REDACTED_VALUE;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(values)) {
    Object.defineProperty(out, key, { value: REDACTED_VALUE, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Returns a redacted deep copy when `obj` is a Secret — by its own kind/apiVersion, or because the
 * caller's objectRef says the request was on core secrets (a body may lack kind). Anything else is
 * returned as is (same reference).
 */
export function redactSecret<T extends Record<string, unknown>>(obj: T, objectRef?: SecretRefLike | null): T {
  if (!isSecretObject(obj) && !isSecretRef(objectRef)) return obj;
  const copy = structuredClone(obj) as Record<string, unknown>;
  if ('data' in copy) copy.data = redactValues(copy.data);
  if ('stringData' in copy) copy.stringData = redactValues(copy.stringData);
  const metadata = copy.metadata;
  if (isRecord(metadata) && isRecord(metadata.annotations)) {
    delete metadata.annotations[LAST_APPLIED_ANNOTATION];
  }
  return copy as T;
}
