// Typed contracts for every job payload that crosses a queue. Producers build them, consumers
// re-validate them with these schemas: a payload in Valkey is input, not trusted memory.
import { z } from 'zod';

/** Verbs the ingest stage keeps; everything else is filtered out before anything is queued. */
export const MUTATING_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection'] as const;
export type MutatingVerb = (typeof MUTATING_VERBS)[number];

/** Rule operations, as WatchRule / ClusterWatchRule spell them. */
export const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE'] as const;
export type Operation = (typeof OPERATIONS)[number];

const jsonObject = z.record(z.string(), z.unknown());

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
  }),
  responseCode: z.number().int(),
  /** The object after the change: responseObject, or for create/update without one, requestObject. */
  object: jsonObject.optional(),
  /** The size of `object` as JSON when the webhook measured it: its share of the cluster's storage budget. */
  objectBytes: z.number().int().nonnegative().optional(),
  /**
   * Set instead of `object` on a completed job whose object was large (its size): the object is in Git and
   * its write job, and a completed job is kept only to deduplicate a resent batch. A job retried from here
   * reads its object back from the cluster, as an event that carried none.
   */
  objectOmitted: z.number().int().nonnegative().optional(),
  /** Where the event came from: the audit webhook (the default) or a watch of a cluster in watch mode. */
  source: z.enum(['audit', 'watch']).optional(),
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
});
export type WriteJob = z.infer<typeof WriteJobSchema>;

/** What a write job returns; shown in Bull Board as the job's outcome. */
export type WriteResult =
  | { outcome: 'committed'; commit: string; pushedAs: string }
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
