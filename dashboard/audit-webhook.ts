// POST /audit-webhook/:clusterProvider — where API servers send their audit batches.
//
// Checks run cheapest and least trusting first: the cluster must be known (404) and its bearer token or
// client certificate right (401) before the body is even read; then content type (415), size (413), JSON
// and the audit schema (400); then the backlog and the cluster's rate limit (429/503). Only then are the
// kept events stored, with one addBulk, and the answer is 2xx only once Valkey has them: an API server
// that sees an error retries the batch, and the job ids make that retry add nothing twice.
import type { JobsOptions, Queue } from 'bullmq';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import type { ClusterSource } from '../config/resolved-config.js';
import type { IngestJob } from '../queues/contracts.js';
import { INGEST_JOB_OPTIONS } from '../queues/job-options.js';
import { eventJobId } from '../queues/names.js';
import { parseAuditPayload } from '../workers/ingest/audit-event-schema.js';
import { toIngestJob, type SkipReason } from '../workers/ingest/filter-audit-event.js';
import type { Refusal } from './backpressure.js';
import type { ClusterRateLimit, RateLimitRefusal } from './cluster-rate-limit.js';
import type { ServiceMetrics } from './metrics.js';
import { ValkeyTimeoutError, withTimeout } from './valkey-timeout.js';
import { listedIds, requestIdOf } from './log-ids.js';
import { authenticateCluster, peerCertificate } from './webhook-auth.js';

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
   * @defaultValue 10000
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
}

type Rejection = { status: number; reason: string; error: string };

function reject(res: Response, metrics: ServiceMetrics, r: Rejection): void {
  // The cluster label is set only once the name is found in the configuration (bounded cardinality).
  metrics.webhookRejected.inc({ cluster: (res.locals.clusterName as string | undefined) ?? '', reason: r.reason });
  res.status(r.status).json({ error: r.error, reason: r.reason });
}

export function auditWebhookRouter(opts: AuditWebhookOptions): Router {
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
    for (const event of parsed.events) {
      const kept = toIngestJob(cluster.name, event, { allowedNamespaces: cluster.allowedNamespaces, selected: opts.selects });
      if (kept.keep) jobs.push(kept.job);
      else skipped[kept.reason] = (skipped[kept.reason] ?? 0) + 1;
    }
    metrics.eventsReceived.inc({ cluster: cluster.name }, parsed.events.length);
    for (const [reason, n] of Object.entries(skipped)) metrics.eventsSkipped.inc({ cluster: cluster.name, reason }, n);

    if (jobs.length > 0) {
      let refusal: Refusal | RateLimitRefusal | null = null;
      // Backpressure first: it only reads, so a batch it refuses costs the cluster no tokens.
      const { backpressure, rateLimit } = opts;
      const limit = cluster.rateLimit;
      const checks: { failed: string; check: () => Promise<Refusal | RateLimitRefusal | null> }[] = [];
      if (backpressure) checks.push({ failed: 'could not read the backlog and memory of Valkey; accepting the batch', check: () => backpressure(jobs.length) });
      if (rateLimit && limit) checks.push({ failed: 'could not take rate limit tokens in Valkey; accepting the batch', check: () => rateLimit(cluster.name, limit, jobs.length) });
      for (const { failed, check } of checks) {
        if (refusal) break;
        try {
          refusal = await withTimeout(check(), opts.storeTimeoutMs ?? 10_000);
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
          opts.storeTimeoutMs ?? 10_000,
        );
      } catch (err) {
        opts.logger.error({ err, cluster: cluster.name, events: jobs.length }, 'could not store audit events');
        res.set('Retry-After', '5');
        return reject(res, metrics, { status: 503, reason: 'store-failed', error: `could not store the events, retry later: ${(err as Error).message}` });
      }
      metrics.eventsIngested.inc({ cluster: cluster.name }, jobs.length);
      if (cluster.watch && opts.recordAuthors) {
        await withTimeout(opts.recordAuthors(cluster, jobs), opts.storeTimeoutMs ?? 10_000).catch((err: unknown) =>
          opts.logger.warn({ err, cluster: cluster.name }, 'could not record the authors of audit events for the watch join; watch events may name no author'),
        );
      }
    }
    opts.logger.info(
      { requestId, cluster: cluster.name, received: parsed.events.length, accepted: jobs.length, skipped, auditIDs: listedIds(jobs.map((j) => j.auditID)) },
      'audit batch stored',
    );
    res.status(200).json({ received: parsed.events.length, accepted: jobs.length, skipped });
  };

  router.post(WEBHOOK_PATH, authenticate, requireJson, readBody, bodyErrors, ingest);
  return router;
}
