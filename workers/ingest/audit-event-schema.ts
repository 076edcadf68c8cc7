// Validates what a kube-apiserver audit webhook POSTs (audit.k8s.io/v1 Event / EventList) before
// anything is queued. The body comes from the network, so it is checked field by field, and the
// first bad field is named with its path so an operator can find it. Names that later become file
// path segments are checked here too: input that could escape the repository is refused at the door
// (invariant 6), not discovered in the git writer.
import { z } from 'zod';

export const AUDIT_API_VERSION = 'audit.k8s.io/v1';

/** Longest name Kubernetes allows (DNS subdomain); anything longer is not a real object name. */
export const MAX_NAME_LENGTH = 253;

/** auditID becomes part of a BullMQ job id (`${clusterId}_${auditID}`), which may not contain ':'. */
export const AUDIT_ID_PATTERN = /^[A-Za-z0-9-]{1,128}$/;

// C0 controls, DEL and C1 controls.
 
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Why `value` cannot be used as one segment of a repository path, or null when it can.
 * Empty strings are allowed here (apiGroup "" is the core group); path layout rejects empty
 * segments where one is required.
 */
export function pathSegmentProblem(value: string): string | null {
  if (value === '.' || value === '..' || value.includes('/') || value.includes('\\') || CONTROL_CHARS.test(value)) {
    return `${JSON.stringify(value)} would escape the repository path`;
  }
  if (value.length > MAX_NAME_LENGTH) {
    return `${JSON.stringify(value.slice(0, 40))}… is ${value.length} characters, longer than ${MAX_NAME_LENGTH}`;
  }
  return null;
}

const safeSegment = z.string().superRefine((value, ctx) => {
  const problem = pathSegmentProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const ObjectReferenceSchema = z.looseObject({
  resource: safeSegment.optional(),
  namespace: safeSegment.optional(),
  name: safeSegment.optional(),
  uid: z.string().optional(),
  apiGroup: safeSegment.optional(),
  apiVersion: safeSegment.optional(),
  resourceVersion: z.string().optional(),
  subresource: z.string().optional(),
});
export type AuditObjectReference = z.infer<typeof ObjectReferenceSchema>;

const UserInfoSchema = z.looseObject({
  username: z.string(),
  uid: z.string().optional(),
  groups: z.array(z.string()).optional(),
  extra: z.record(z.string(), z.array(z.string())).optional(),
});

/** responseObject is usually the object itself; its metadata name/namespace may also become a path. */
const ResponseObjectSchema = z.looseObject({
  metadata: z
    .looseObject({
      name: safeSegment.optional(),
      namespace: safeSegment.optional(),
    })
    .optional(),
});

const eventFields = {
  level: z.enum(['None', 'Metadata', 'Request', 'RequestResponse']),
  auditID: z.string().regex(AUDIT_ID_PATTERN, {
    message: `expected 1-128 letters, digits or '-' (${AUDIT_ID_PATTERN.source})`,
  }),
  stage: z.enum(['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic']),
  requestURI: z.string(),
  verb: z.string(),
  user: UserInfoSchema,
  impersonatedUser: UserInfoSchema.optional(),
  sourceIPs: z.array(z.string()).optional(),
  userAgent: z.string().optional(),
  objectRef: ObjectReferenceSchema.optional(),
  responseStatus: z
    .looseObject({
      code: z.number().int().optional(),
      status: z.string().optional(),
      reason: z.string().optional(),
      message: z.string().optional(),
    })
    .optional(),
  // A patch's requestObject is the patch itself, which may be a JSON array: anything JSON goes.
  requestObject: z.unknown().optional(),
  responseObject: ResponseObjectSchema.optional(),
  requestReceivedTimestamp: z.string().optional(),
  stageTimestamp: z.string().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
};

/** A single Event, as sent on its own (kind and apiVersion required). */
export const AuditEventSchema = z.looseObject({
  kind: z.literal('Event'),
  apiVersion: z.literal(AUDIT_API_VERSION),
  ...eventFields,
});

/** An item of an EventList: the API server may leave kind/apiVersion out of list items. */
const AuditEventItemSchema = z.looseObject({
  kind: z.literal('Event').optional(),
  apiVersion: z.literal(AUDIT_API_VERSION).optional(),
  ...eventFields,
});

export const AuditEventListSchema = z.looseObject({
  kind: z.literal('EventList'),
  apiVersion: z.literal(AUDIT_API_VERSION),
  items: z.array(AuditEventItemSchema),
});

export type AuditEvent = z.infer<typeof AuditEventItemSchema>;

export type ParseAuditResult = { ok: true; events: AuditEvent[] } | { ok: false; error: string };

/** `['items', 3, 'auditID']` → `items[3].auditID`; the root is `(root)`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? 'an' : 'a';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${article(issue.expected)} ${issue.expected}`;
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
    case 'invalid_format':
    case 'custom':
      return issue.message;
    default:
      return issue.message;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses a webhook body: an EventList (the normal batch) or a single Event. The error names the
 * first offending field with its path, e.g. `items[3].auditID: expected a string`.
 */
export function parseAuditPayload(body: unknown): ParseAuditResult {
  if (!isRecord(body)) return { ok: false, error: '(root): expected an object' };
  if (body.kind !== 'EventList' && body.kind !== 'Event') return { ok: false, error: 'kind: expected "EventList" or "Event"' };

  if (body.kind === 'EventList') {
    const result = AuditEventListSchema.safeParse(body);
    return result.success ? { ok: true, events: result.data.items } : failure(result.error);
  }
  const result = AuditEventSchema.safeParse(body);
  return result.success ? { ok: true, events: [result.data] } : failure(result.error);
}

function failure(error: z.ZodError): { ok: false; error: string } {
  const first = error.issues[0];
  if (!first) return { ok: false, error: '(root): invalid audit payload' };
  return { ok: false, error: `${formatIssuePath(first.path)}: ${describeIssue(first)}` };
}
