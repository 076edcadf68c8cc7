// Requests whose bodies carry credentials, or that the API server never stores: nothing of them belongs
// in Git, and their bodies must never reach Valkey or Bull Board. A TokenReview holds a bearer token in
// `spec.token`, a TokenRequest (serviceaccounts/token) a fresh token in `status.token`, the access reviews
// a user's `extra` (which can hold credentials of an authenticating proxy). A wildcard audit rule sends them
// all; the ingest filter drops them here (`credential-request`) before anything is stored, by the request's
// resource and by the body's kind, whichever says so.
import { canonicalGroup } from '../../core/redact-secret.js';

/** `group/resource` of the review APIs: created, answered, never persisted. */
export const NEVER_STORED_RESOURCES: ReadonlySet<string> = new Set([
  'authentication.k8s.io/tokenreviews',
  'authentication.k8s.io/selfsubjectreviews',
  'authorization.k8s.io/subjectaccessreviews',
  'authorization.k8s.io/localsubjectaccessreviews',
  'authorization.k8s.io/selfsubjectaccessreviews',
  'authorization.k8s.io/selfsubjectrulesreviews',
]);

/** Subresources whose request or response is a credential (serviceaccounts/token: a TokenRequest). */
export const CREDENTIAL_SUBRESOURCES: ReadonlySet<string> = new Set(['token']);

/** Kinds (lower case) of those bodies, for a body sent under another resource name. */
const CREDENTIAL_KINDS: ReadonlySet<string> = new Set([
  'tokenreview',
  'tokenrequest',
  'selfsubjectreview',
  'subjectaccessreview',
  'localsubjectaccessreview',
  'selfsubjectaccessreview',
  'selfsubjectrulesreview',
]);

function kindOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const kind = (body as { kind?: unknown }).kind;
  return typeof kind === 'string' ? kind.toLowerCase() : undefined;
}

export interface CredentialRequestParts {
  resource?: string;
  apiGroup?: string;
  subresource?: string;
  requestObject?: unknown;
  responseObject?: unknown;
}

/** Whether an audit event is such a request (by resource, subresource, or either body's kind). */
export function isCredentialRequest(parts: CredentialRequestParts): boolean {
  if (NEVER_STORED_RESOURCES.has(`${canonicalGroup(parts.apiGroup)}/${(parts.resource ?? '').toLowerCase()}`)) return true;
  if (parts.subresource !== undefined && CREDENTIAL_SUBRESOURCES.has(parts.subresource.toLowerCase())) return true;
  return [parts.requestObject, parts.responseObject].some((body) => {
    const kind = kindOf(body);
    return kind !== undefined && CREDENTIAL_KINDS.has(kind);
  });
}
