// Typed contracts for every job payload that crosses a queue. Producers build them, consumers
// re-validate them with these schemas: a payload in Valkey is input, not trusted memory.
import { z } from 'zod';
import { MAX_SELECTOR_LENGTH, selectorProblem } from './selectors.js';
import { pathSegmentProblem } from './audit-event-schema.js';

/** Verbs the ingest stage keeps; everything else is filtered out before anything is queued. */
export const MUTATING_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection'] as const;
export type MutatingVerb = (typeof MUTATING_VERBS)[number];

/** Rule operations, as WatchRule / ClusterWatchRule spell them. */
export const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE'] as const;
export type Operation = (typeof OPERATIONS)[number];

const jsonObject = z.record(z.string(), z.unknown());

/** The most names a deletecollection's answer may give an ingest job (more: the router lists the cluster instead). */
export const MAX_DELETED_NAMES = 10_000;
/** The most names a collection write may keep (the objects still in the cluster after a deletecollection). */
export const MAX_KEPT_NAMES = 100_000;

/** An object name that may become a file name: checked like objectRef names (never `/`, `..`, control characters). */
const objectName = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    const problem = pathSegmentProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** A label or field selector of a request, as the API server reads it (core/selectors.ts). */
const selector = (kind: 'label' | 'field') =>
  z
    .string()
    .max(MAX_SELECTOR_LENGTH)
    .superRefine((value, ctx) => {
      const problem = selectorProblem(kind, value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

/** The most characters of a sealed envelope (base64 of an age file around an object of at most a few MiB). */
export const MAX_SEALED_CHARS = 16 * 1024 * 1024;

/**
 * A Secret's values sealed where they enter (the webhook), so that a job in Valkey never holds them in
 * plaintext: an age file (binary, base64) whose plaintext is the JSON `{"data": {...}, "stringData": {...}}`
 * of the Secret's string values, sealed to the recipients of the service identities of the GitTargets that
 * encrypt (`spec.encryption.sops.keySecretRef`). The job's `object` keeps REDACTED values beside it, so
 * everything that reads objects (routing, normalizing, Bull Board) sees what it saw before. Only a writer
 * of a target with encryption opens it, with that target's identity (core/sealed-values.ts).
 */
export const SealedValuesSchema = z.strictObject({
  format: z.literal('age-json-v1'),
  /** Who can open it (age public keys): a label for operators, not what decides who can. */
  recipients: z.array(z.string().min(1).max(2048)).min(1).max(64),
  ciphertext: z.string().min(1).max(MAX_SEALED_CHARS).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64'),
});
export type SealedValues = z.infer<typeof SealedValuesSchema>;

/**
 * One kept audit event, as the webhook stores it in the ingest queue (jobId = `${clusterId}_${auditID}`).
 * It is the audit event trimmed to what later stages need; Secret values are already redacted.
 */
export const IngestJobSchema = z.object({
  clusterId: z.string().min(1),
  auditID: z.string().min(1),
  verb: z.enum(MUTATING_VERBS),
  stageTimestamp: z.string(),
  user: z.object({ username: z.string() }),
  impersonatedUser: z.object({ username: z.string() }).optional(),
  objectRef: z.object({
    resource: z.string().min(1),
    namespace: z.string().optional(),
    name: z.string().optional(),
    apiGroup: z.string().optional(),
    apiVersion: z.string().optional(),
    subresource: z.string().optional(),
    /**
     * The object's uid, when the event says it and carries no object that does: a delete answered with a
     * Status (its details.uid). Watch mode joins the DELETED event of that object with this event's user.
     */
    uid: z.string().max(128).optional(),
  }),
  responseCode: z.number().int(),
  /** The object after the change: responseObject, or for create/update without one, requestObject. */
  object: jsonObject.optional(),
  /**
   * The size of `object` (of a deletecollection: of `deletedNames`) as JSON when the webhook measured it: its
   * share of the cluster's storage budget.
   */
  objectBytes: z.number().int().nonnegative().optional(),
  /**
   * Set instead of `object` on a completed job whose object was large (its size): the object is in Git and
   * its write job, and a completed job is kept only to deduplicate a resent batch. A job retried from here
   * reads its object back from the cluster, as an event that carried none.
   */
  objectOmitted: z.number().int().nonnegative().optional(),
  /** Where the event came from: the audit webhook (the default) or a watch of a cluster in watch mode. */
  source: z.enum(['audit', 'watch']).optional(),
  /**
   * A deletecollection whose answer was recorded (audit level RequestResponse): the names of the objects it
   * deleted, the items of the answer's list (only their names: a SecretList holds plaintext Secrets). Absent
   * when the answer was not recorded or held more than MAX_DELETED_NAMES items: the router lists the cluster.
   */
  deletedNames: z.array(objectName).max(MAX_DELETED_NAMES).optional(),
  /** A deletecollection's `labelSelector` and `fieldSelector`, from its requestURI. */
  selectors: z.object({ labelSelector: selector('label').optional(), fieldSelector: selector('field').optional() }).optional(),
  /** The values of a Secret `object`, sealed (its own values read REDACTED); only while some GitTarget encrypts. */
  sealedValues: SealedValuesSchema.optional(),
});
export type IngestJob = z.infer<typeof IngestJobSchema>;

/**
 * The username of a watch event whose audit event was not found (or never comes: a cluster without an
 * audit webhook). A watch event itself carries no user; normalize names such an author as unknown.
 */
export const WATCH_UNKNOWN_USER = 'unknown';

/** How the auditID of a watch event begins (`watch-<uid>-<resourceVersion>`): a watch event is no audit event. */
export const WATCH_AUDIT_ID_PREFIX = 'watch-';

/** The canonical identity of an object; every key and path is built from it. namespace is '' when cluster-scoped. */
export const ObjectIdentitySchema = z.object({
  cluster: z.string(),
  group: z.string(),
  version: z.string(),
  resource: z.string(),
  namespace: z.string(),
  name: z.string(),
});
export type ObjectIdentity = z.infer<typeof ObjectIdentitySchema>;

export const GitAuthorSchema = z.object({ name: z.string().min(1), email: z.string().min(1) });
export type GitAuthor = z.infer<typeof GitAuthorSchema>;

/**
 * The files one event removes together, in one commit: a deletecollection, or a deleted namespace. The write
 * job's `filePath` is then the folder they are in, `operation` DELETE and `content` null; exactly one of
 * `names`, `keep` and `everythingBelow` says which files (workers/write/collection-files.ts).
 */
export const CollectionSchema = z
  .object({
    /** The deleted objects (the deletecollection's answer): their files `{folder}/{name}.yaml`, where present. */
    names: z.array(objectName).max(MAX_DELETED_NAMES).optional(),
    /**
     * The objects still in the cluster when the router listed it (answer not recorded): every `*.yaml` directly
     * in the folder whose object is not one of these and that the selectors select goes.
     */
    keep: z.array(objectName).max(MAX_KEPT_NAMES).optional(),
    /** With `keep`: the request's selectors, evaluated against each file (its labels, its name and namespace). */
    labelSelector: selector('label').optional(),
    fieldSelector: selector('field').optional(),
    /** A deleted namespace: every file below the folder `{target path}/{namespace}`, of every type. */
    everythingBelow: z.literal(true).optional(),
    /** With everythingBelow: the deleted Namespace's own file (objectFilePath of the job's identity) goes too. */
    objectFile: z.string().min(1).optional(),
  })
  .refine((c) => [c.names, c.keep, c.everythingBelow].filter((x) => x !== undefined).length === 1, {
    message: 'exactly one of names, keep and everythingBelow',
  })
  .refine((c) => c.keep !== undefined || (c.labelSelector === undefined && c.fieldSelector === undefined), { message: 'selectors only with keep' })
  .refine((c) => c.everythingBelow !== undefined || c.objectFile === undefined, { message: 'objectFile only with everythingBelow' });
export type Collection = z.infer<typeof CollectionSchema>;

/** One write into one partition {repoURL, branch}: the file to put (content) or remove (content null). */
export const WriteJobSchema = z.object({
  eventKey: z.string().min(1),
  clusterId: z.string(),
  auditID: z.string(),
  target: z.string().min(1),
  identity: ObjectIdentitySchema,
  operation: z.enum(OPERATIONS),
  filePath: z.string().min(1),
  /**
   * The file's content; null for a delete. A completed write of a large file keeps `contentOmitted` (its
   * length) instead: such a job cannot be retried (its payload is invalid then); replay its ingest event.
   */
  content: z.string().nullable(),
  contentOmitted: z.number().int().nonnegative().optional(),
  resourceVersion: z.string(),
  author: GitAuthorSchema,
  stageTimestamp: z.string(),
  /**
   * Set on the writes of a reconcile run (flows/reconcile/feed-writes.ts), absent on live events. The
   * writer makes the writes of one run that share a batch ONE commit, `reconcile <target>: N created,
   * M updated, K deleted`, whose trailers name the run (Reconcile-Run) and its writes (Reconcile-Writes)
   * instead of an audit ID. `index` is the write's place in the run (its auditID is
   * reconcileAuditID(runId, index)); the counts are the whole diff's, for the message.
   */
  reconcile: z
    .object({
      runId: z.string().min(1),
      target: z.string().min(1),
      index: z.number().int().nonnegative(),
      created: z.number().int().nonnegative(),
      updated: z.number().int().nonnegative(),
      deleted: z.number().int().nonnegative(),
    })
    .optional(),
  /** Set on the write of a deletecollection or a deleted namespace: the files it removes (filePath is their folder). */
  collection: CollectionSchema.optional(),
  /**
   * A Secret's values for a target with encryption (`filePath` is then its `.sops.yaml` file): `content`
   * keeps REDACTED values, the writer puts these in and writes the SOPS file.
   */
  sealedValues: SealedValuesSchema.optional(),
});
export type WriteJob = z.infer<typeof WriteJobSchema>;

/** What a write job returns; shown in Bull Board as the job's outcome. */
export type WriteResult =
  /** filesDeleted: set for a collection write, the files its commit removed. */
  | { outcome: 'committed'; commit: string; pushedAs: string; filesDeleted?: number }
  | { outcome: 'unchanged'; reason: 'same-content' | 'stale' | 'already-absent' | 'already-applied'; head: string };

/** What an ingest job returns: where the event went. */
export type IngestResult =
  /** fetched: the event carried no body; what was written is the object as read back from its cluster. */
  | { outcome: 'routed'; writes: { target: string; queue: string; filePath: string }[]; fetched?: true }
  | { outcome: 'unrouted' }
  /**
   * The event carried no body and none was read back: the router reads none (no fetcher), the object is
   * gone from its cluster, or the objectRef addresses no object. A read that failed otherwise fails the
   * job instead (retried, at last a dead letter to replay): it is never recorded as this.
   */
  | { outcome: 'no-object-body'; reason: string };
