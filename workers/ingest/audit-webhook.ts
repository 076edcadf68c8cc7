// POST /audit-webhook/:clusterProvider — where API servers send their audit batches.
//
// Checks run cheapest and least trusting first: the cluster must be known (404) and its bearer token or
// client certificate right (401) before the body is even read; then content type (415), size (413), JSON
// and the envelope of the batch (400, nothing stored); then each event on its own: its schema, whether its
// body agrees with its objectRef, the bounds on its object (object-limits.ts). An event that fails those is
// refused alone; the others go on. Then the backlog, the cluster's rate limit and its storage budget
// (429/503). Only then are the kept events stored, with one addBulk, and the answer comes only once Valkey
// has them: 200, or 400 naming the refused events when some were (the API server does not retry a 400, so
// the kept events are not sent twice; an API server that sees a 5xx retries the batch, and the job ids make
// that retry add nothing twice).
import type { JobsOptions, Queue } from 'bullmq';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import type { ClusterSource } from '../../config/resolved-config.js';
import type { IngestJob } from '../../core/contracts.js';
import { budgetField, type ClusterBudget } from '../../queues/cluster-budget.js';
import { INGEST_JOB_OPTIONS } from '../../queues/job-options.js';
import { eventJobId, INGEST_QUEUE } from '../../queues/names.js';
import { parseAuditPayload } from '../../core/audit-event-schema.js';
import { toIngestJob, type RefusalReason, type SkipReason } from './filter-audit-event.js';
import type { ObjectLimits } from '../../core/object-limits.js';
import type { ScopeLookup } from '../../core/resource-scope.js';
import type { Refusal } from './backpressure.js';
import type { ClusterRateLimit, RateLimitRefusal } from './cluster-rate-limit.js';
import type { ServiceMetrics } from '../../observability/metrics.js';
import { ValkeyTimeoutError, withTimeout } from '../../queues/valkey-timeout.js';
import { listedIds, requestIdOf } from '../../core/log-ids.js';
import { authenticateCluster, peerCertificate } from './webhook-auth.js';
import { sealSecretValues, type SecretValues } from '../../core/sealed-values.js';

export const WEBHOOK_PATH = '/audit-webhook/:clusterProvider';

export interface AuditWebhookOptions {
  clusters: () => ReadonlyMap<string, ClusterSource>;
  ingestQueue: Queue<IngestJob>;
  /** Attempts, backoff and retention of the stored events' jobs. @defaultValue INGEST_JOB_OPTIONS */
  ingestJobOptions?: JobsOptions;
  bodyLimitBytes: number;
  logger: Logger;
  metrics: ServiceMetrics;
  /**
   * How long to wait for Valkey before answering 503. Connections queue commands through a Valkey
   * restart, so a store may still land after the 503: the API server's retry then adds nothing twice.
   * @defaultValue DEFAULT_STORE_TIMEOUT_MS (10000)
   */
  storeTimeoutMs?: number;
  /** Refuses a batch (429/503 with Retry-After) when the backlog or Valkey memory is past its bound. */
  backpressure?: (incoming: number) => Promise<Refusal | null>;
  /** Takes a batch's events from its cluster's token bucket (clusters with spec.rateLimit); 429 when empty. */
  rateLimit?: ClusterRateLimit;
  /**
   * For clusters also in watch mode: remembers who made each stored change (by uid and resourceVersion),
   * so the watch event of the same change can name its author. Best effort, after the events are stored.
   */
  recordAuthors?: (cluster: ClusterSource, jobs: IngestJob[]) => Promise<void>;
  /** Whether some rule of the event's cluster selects it; events none selects are skipped (`not-selected`). */
  selects?: (job: IngestJob) => boolean;
  /** Bounds on each event's object; past one, the event is refused. @defaultValue DEFAULT_OBJECT_LIMITS */
  objectLimits?: ObjectLimits;
  /** The scope of custom resource types, from the cluster's API discovery (built-in types are known). */
  scopeOf?: ScopeLookup;
  /** Each cluster's storage budget: bytes of its events in flight; past the limit, batches get 429. */
  budget?: { budget: ClusterBudget; limitBytes: number };
  /**
   * The age recipients a Secret's values are sealed for before its event is stored (the service identities
   * of the GitTargets with encryption); empty or undefined: they are REDACTED only, as without encryption.
   */
  sealRecipients?: () => readonly string[];
}

type Rejection = { status: number; reason: string; error: string };

/** A batch refused because its cluster's storage budget is spent. */
interface BudgetRefusal {
  status: 429;
  reason: 'storage-budget';
  error: string;
  retryAfterSeconds: number;
}

/** What the webhook answers about one event it refused. */
interface EventRefusal {
  index: number;
  auditID?: string;
  reason: RefusalReason | 'not-audit-event';
  error: string;
}

/** The refused events named in an answer (all are counted). */
const NAMED_REFUSALS = 20;

/** Bytes an ingest job costs in Valkey beyond its object: ids, user, objectRef, BullMQ's own fields. */
const JOB_OVERHEAD_BYTES = 512;

function reject(res: Response, metrics: ServiceMetrics, r: Rejection): void {
  // The cluster label is set only once the name is found in the configuration (bounded cardinality).
  metrics.webhookRejected.inc({ cluster: (res.locals.clusterName as string | undefined) ?? '', reason: r.reason });
  res.status(r.status).json({ error: r.error, reason: r.reason });
}

/** How long a store into Valkey may take before the batch is answered 503. */
const DEFAULT_STORE_TIMEOUT_MS = 10_000;

export function auditWebhookRouter(opts: AuditWebhookOptions): Router {
  const storeTimeoutMs = opts.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const router = express.Router();
  const { metrics } = opts;

  const authenticate = (req: Request, res: Response, next: NextFunction) => {
    const name = String(req.params.clusterProvider);
    const cluster = opts.clusters().get(name);
    // A watch-only cluster has no webhook: to a sender it is as unknown as a cluster never registered.
    if (!cluster || (cluster.token === undefined && cluster.clientCommonName === undefined)) return reject(res, metrics, { status: 404, reason: 'unknown-cluster', error: `unknown cluster provider "${name.slice(0, 253)}"` });
    res.locals.clusterName = cluster.name;
    const failure = authenticateCluster(cluster, req.get('authorization'), peerCertificate(req.socket));
    if (failure) return reject(res, metrics, { status: 401, ...failure });
    res.locals.cluster = cluster;
    next();
  };

  const requireJson = (req: Request, res: Response, next: NextFunction) => {
    if (!/^application\/json\s*(;|$)/i.test(req.get('content-type') ?? '')) {
      return reject(res, metrics, { status: 415, reason: 'content-type', error: `content type must be application/json, got "${req.get('content-type') ?? 'none'}"` });
    }
    next();
  };

  const readBody = express.raw({ type: () => true, limit: opts.bodyLimitBytes });

  const bodyErrors = (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.too.large') {
      return reject(res, metrics, { status: 413, reason: 'too-large', error: `request body exceeds the limit of ${opts.bodyLimitBytes} bytes` });
    }
    if (e.status && e.status >= 400 && e.status < 500) {
      return reject(res, metrics, { status: 400, reason: 'unreadable-body', error: `could not read the request body: ${e.message}` });
    }
    next(err);
  };

  const ingest = async (req: Request, res: Response) => {
    const cluster = res.locals.cluster as ClusterSource;
    const requestId = requestIdOf(req.get('x-request-id'));
    res.set('X-Request-Id', requestId);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '');
    } catch (err) {
      return reject(res, metrics, { status: 400, reason: 'malformed-json', error: `malformed JSON: ${(err as Error).message}` });
    }
    const parsed = parseAuditPayload(body);
    if (!parsed.ok) return reject(res, metrics, { status: 400, reason: 'not-audit-event', error: `not an audit event: ${parsed.error}` });

    const jobs: IngestJob[] = [];
    const skipped: Partial<Record<SkipReason, number>> = {};
    const refusals: EventRefusal[] = parsed.refused.map((r) => ({ ...r, reason: 'not-audit-event', error: `not an audit event: ${r.error}` }));
    const scopeOf = opts.scopeOf;
    // Read once per batch: every Secret of one batch is sealed for the same recipients.
    const recipients = opts.sealRecipients?.() ?? [];
    const toSeal: { job: IngestJob; values: SecretValues }[] = [];
    parsed.events.forEach((event, i) => {
      const kept = toIngestJob(cluster.name, event, {
        allowedNamespaces: cluster.allowedNamespaces,
        selected: opts.selects,
        limits: opts.objectLimits,
        scopeOf: scopeOf && ((group, resource) => scopeOf(cluster.name, group, resource)),
        keepSecretValues: recipients.length > 0,
      });
      if (kept.keep) {
        jobs.push(kept.job);
        if (kept.secretValues) toSeal.push({ job: kept.job, values: kept.secretValues });
      }
      else if ('refused' in kept) {
        const index = parsed.indices[i]!;
        refusals.push({ index, auditID: event.auditID, reason: kept.reason, error: `items[${index}] (auditID ${event.auditID}): ${kept.error}` });
      } else skipped[kept.reason] = (skipped[kept.reason] ?? 0) + 1;
    });
    // The values exist in plaintext only in this request's memory: sealed before anything is stored.
    // A seal that fails (a recipient the age library refuses) fails the batch with a 500: storing the
    // event REDACTED would lose the values for good without anyone noticing.
    for (const { job, values } of toSeal) job.sealedValues = await sealSecretValues(values, recipients);
    refusals.sort((a, b) => a.index - b.index);
    const received = parsed.events.length + parsed.refused.length;
    metrics.eventsReceived.inc({ cluster: cluster.name }, received);
    for (const [reason, n] of Object.entries(skipped)) metrics.eventsSkipped.inc({ cluster: cluster.name, reason }, n);
    const refused: Partial<Record<EventRefusal['reason'], number>> = {};
    for (const r of refusals) refused[r.reason] = (refused[r.reason] ?? 0) + 1;
    for (const [reason, n] of Object.entries(refused)) metrics.eventsRefused.inc({ cluster: cluster.name, reason }, n);
    if (refusals.length > 0) {
      opts.logger.warn({ requestId, cluster: cluster.name, refused, first: refusals[0]!.error.slice(0, 500) }, 'audit events refused');
    }

    if (jobs.length > 0) {
      let refusal: Refusal | RateLimitRefusal | BudgetRefusal | null = null;
      // Backpressure first: it only reads, so a batch it refuses costs the cluster no tokens.
      const { backpressure, rateLimit } = opts;
      const limit = cluster.rateLimit;
      const checks: { failed: string; check: () => Promise<Refusal | RateLimitRefusal | BudgetRefusal | null> }[] = [];
      if (backpressure) checks.push({ failed: 'could not read the backlog and memory of Valkey; accepting the batch', check: () => backpressure(jobs.length) });
      if (rateLimit && limit) checks.push({ failed: 'could not take rate limit tokens in Valkey; accepting the batch', check: () => rateLimit(cluster.name, limit, jobs.length) });
      const entries = jobs.map((job) => ({ field: budgetField(INGEST_QUEUE, eventJobId(job.clusterId, job.auditID)), bytes: (job.objectBytes ?? 0) + JOB_OVERHEAD_BYTES }));
      if (opts.budget) {
        const { budget, limitBytes } = opts.budget;
        checks.push({
          failed: "could not reserve the cluster's storage budget in Valkey; accepting the batch",
          check: async () => {
            const reserved = await budget.reserve(cluster.name, entries, limitBytes);
            if (reserved.taken) return null;
            return {
              status: 429,
              reason: 'storage-budget',
              error:
                `cluster provider "${cluster.name}" has ${reserved.inFlight} bytes of events in flight (stored, not yet in Git); ` +
                `this batch would pass its storage budget of ${limitBytes} bytes (CLUSTER_INFLIGHT_LIMIT_BYTES): retry later`,
              retryAfterSeconds: 5,
            };
          },
        });
      }
      for (const { failed, check } of checks) {
        if (refusal) break;
        try {
          refusal = await withTimeout(check(), storeTimeoutMs);
        } catch (err) {
          if (err instanceof ValkeyTimeoutError) {
            res.set('Retry-After', '5');
            return reject(res, metrics, { status: 503, reason: 'store-failed', error: `could not store the events, retry later: ${err.message}` });
          }
          opts.logger.warn({ err, cluster: cluster.name }, failed);
        }
      }
      if (refusal) {
        res.set('Retry-After', String(refusal.retryAfterSeconds));
        opts.logger.warn({ cluster: cluster.name, events: jobs.length, reason: refusal.reason }, refusal.error);
        if (refusal.reason === 'rate-limited' || refusal.reason === 'batch-exceeds-burst') metrics.eventsRateLimited.inc({ cluster: cluster.name }, jobs.length);
        return reject(res, metrics, { status: refusal.status, reason: refusal.reason, error: refusal.error });
      }
      try {
        await withTimeout(
          opts.ingestQueue.addBulk(
            jobs.map((job) => ({ name: job.verb, data: job, opts: { ...(opts.ingestJobOptions ?? INGEST_JOB_OPTIONS), jobId: eventJobId(job.clusterId, job.auditID) } })),
          ),
          storeTimeoutMs,
        );
      } catch (err) {
        opts.logger.error({ err, cluster: cluster.name, events: jobs.length }, 'could not store audit events');
        // What was reserved for them is released (the retry reserves again); a release that fails too is swept.
        if (opts.budget) await opts.budget.budget.release(cluster.name, entries.map((e) => e.field)).catch(() => undefined);
        res.set('Retry-After', '5');
        return reject(res, metrics, { status: 503, reason: 'store-failed', error: `could not store the events, retry later: ${(err as Error).message}` });
      }
      metrics.eventsIngested.inc({ cluster: cluster.name }, jobs.length);
      if (cluster.watch && opts.recordAuthors) {
        await withTimeout(opts.recordAuthors(cluster, jobs), storeTimeoutMs).catch((err: unknown) =>
          opts.logger.warn({ err, cluster: cluster.name }, 'could not record the authors of audit events for the watch join; watch events may name no author'),
        );
      }
    }
    opts.logger.info(
      { requestId, cluster: cluster.name, received, accepted: jobs.length, skipped, refused, auditIDs: listedIds(jobs.map((j) => j.auditID)) },
      'audit batch stored',
    );
    if (refusals.length > 0) {
      const first = refusals[0]!;
      metrics.webhookRejected.inc({ cluster: cluster.name, reason: 'events-refused' });
      res.status(400).json({
        error: first.error,
        reason: first.reason,
        received,
        accepted: jobs.length,
        skipped,
        refused,
        refusals: refusals.slice(0, NAMED_REFUSALS),
      });
      return;
    }
    res.status(200).json({ received, accepted: jobs.length, skipped });
  };

  router.post(WEBHOOK_PATH, authenticate, requireJson, readBody, bodyErrors, ingest);
  return router;
}
