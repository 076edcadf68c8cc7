// Validates what a kube-apiserver audit webhook POSTs (audit.k8s.io/v1 Event / EventList) before
// anything is queued. The body comes from the network, so it is checked field by field, and the
// first bad field is named with its path so an operator can find it. Names that later become file
// path segments are checked here too: input that could escape the repository is refused at the door,
// not discovered in the git writer. The envelope is all or nothing; the items of an
// EventList are checked one by one, so one bad event is refused without costing the others.
import { z } from 'zod';
import { isRecord } from './json.js';

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

/**
 * A path-safe segment that must also be spelled as Kubernetes spells it: the API server writes resource,
 * group and version names in lower case only, so `Secrets` or `SECRETS` is not a real event (and must not
 * slip past what is redacted or routed by name).
 */
const canonicalName = (pattern: RegExp, what: string) =>
  safeSegment.refine((value) => value === '' || pattern.test(value), { message: `expected ${what}` });

/** Resource and subresource names: a DNS label (plural names of every type, built-in and custom). */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** API groups: a DNS subdomain ('' is the core group). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The longest username or timestamp an event may carry into a job (usernames are emails, SA names). */
export const MAX_USERNAME_LENGTH = 1024;
/** RFC 3339 with up to nanoseconds, as metav1.MicroTime is written. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export const ObjectReferenceSchema = z.looseObject({
  resource: canonicalName(DNS_LABEL, 'a lower-case resource name (a DNS label)').optional(),
  namespace: safeSegment.optional(),
  name: safeSegment.optional(),
  uid: z.string().optional(),
  apiGroup: canonicalName(DNS_SUBDOMAIN, 'a lower-case API group (a DNS subdomain)').optional(),
  apiVersion: canonicalName(DNS_LABEL, 'a lower-case API version (a DNS label)').optional(),
  resourceVersion: z.string().optional(),
  subresource: canonicalName(DNS_LABEL, 'a lower-case subresource name (a DNS label)').optional(),
});
export type AuditObjectReference = z.infer<typeof ObjectReferenceSchema>;

const UserInfoSchema = z.looseObject({
  username: z.string().max(MAX_USERNAME_LENGTH),
  uid: z.string().optional(),
  groups: z.array(z.string()).optional(),
  extra: z.record(z.string(), z.array(z.string())).optional(),
});

/** The object's own metadata name and namespace may also become a path (a create names no object in objectRef). */
const ObjectMetadataSchema = z.looseObject({
  name: safeSegment.optional(),
  namespace: safeSegment.optional(),
});

/** responseObject is usually the object itself. */
const ResponseObjectSchema = z.looseObject({ metadata: ObjectMetadataSchema.optional() });

/**
 * requestObject may be anything JSON (a patch is a JSON array); when it is an object with metadata (a
 * create or update), its names are checked like the response's: a create without responseObject is
 * committed from it.
 */
const RequestObjectSchema = z.unknown().superRefine((value, ctx) => {
  if (!isRecord(value) || value.metadata === undefined) return;
  const parsed = ObjectMetadataSchema.safeParse(value.metadata);
  if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: describeIssue(issue), path: ['metadata', ...issue.path] });
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
  requestObject: RequestObjectSchema.optional(),
  responseObject: ResponseObjectSchema.optional(),
  requestReceivedTimestamp: z.string().regex(TIMESTAMP, { message: 'expected an RFC 3339 timestamp' }).optional(),
  stageTimestamp: z.string().regex(TIMESTAMP, { message: 'expected an RFC 3339 timestamp' }).optional(),
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

/** The envelope of a batch; its items are checked one by one (parseAuditPayload). */
const AuditEventListEnvelopeSchema = z.looseObject({
  kind: z.literal('EventList'),
  apiVersion: z.literal(AUDIT_API_VERSION),
  items: z.array(z.unknown()),
});

export type AuditEvent = z.infer<typeof AuditEventItemSchema>;

/** An item of a batch that is not a valid audit event: refused alone, the others go on. */
export interface ItemRefusal {
  /** Its place in `items`. */
  index: number;
  /** Its auditID, when it had a usable one. */
  auditID?: string;
  /** The first offending field with its path, e.g. `items[3].auditID: expected a string`. */
  error: string;
}

export type ParseAuditResult =
  | {
      ok: true;
      /** The valid events, in batch order. */
      events: AuditEvent[];
      /** The place in `items` of each of `events` (0 for a single Event). */
      indices: number[];
      refused: ItemRefusal[];
    }
  | { ok: false; error: string };

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

/**
 * Parses a webhook body: an EventList (the normal batch) or a single Event. A body that is neither, or a
 * single Event that is not valid, is an error naming the first offending field with its path. The items
 * of an EventList are checked one by one: the valid ones are returned, the others refused with their
 * first offending field (`items[3].auditID: expected a string`).
 */
export function parseAuditPayload(body: unknown): ParseAuditResult {
  if (!isRecord(body)) return { ok: false, error: '(root): expected an object' };
  if (body.kind !== 'EventList' && body.kind !== 'Event') return { ok: false, error: 'kind: expected "EventList" or "Event"' };

  if (body.kind === 'Event') {
    const result = AuditEventSchema.safeParse(body);
    return result.success ? { ok: true, events: [result.data], indices: [0], refused: [] } : { ok: false, error: firstIssue(result.error, []) };
  }
  const envelope = AuditEventListEnvelopeSchema.safeParse(body);
  if (!envelope.success) return { ok: false, error: firstIssue(envelope.error, []) };
  const events: AuditEvent[] = [];
  const indices: number[] = [];
  const refused: ItemRefusal[] = [];
  envelope.data.items.forEach((item, index) => {
    const result = AuditEventItemSchema.safeParse(item);
    if (result.success) {
      events.push(result.data);
      indices.push(index);
      return;
    }
    const auditID = isRecord(item) && typeof item.auditID === 'string' && AUDIT_ID_PATTERN.test(item.auditID) ? item.auditID : undefined;
    refused.push({ index, ...(auditID ? { auditID } : {}), error: firstIssue(result.error, ['items', index]) });
  });
  return { ok: true, events, indices, refused };
}

function firstIssue(error: z.ZodError, prefix: PropertyKey[]): string {
  const first = error.issues[0];
  if (!first) return `${formatIssuePath(prefix)}: invalid audit event`;
  return `${formatIssuePath([...prefix, ...first.path])}: ${describeIssue(first)}`;
}
