// The service's HTTP surface: the audit webhook, the dashboard under /admin (Bull Board, the overview, the
// replay and reconcile APIs), metrics and health, on one Express app; or, with an admin port (ADMIN_PORT),
// /admin on an app of its own (createAdminApp) and the main app without it (404 there).
//
// On every answer: the security headers (dashboard/security-headers.ts), no X-Powered-By, and for errors
// JSON {error, reason} (dashboard/http-errors.ts). Under /admin: authentication and roles
// (dashboard/basic-auth.ts); changes only from the dashboard's own pages, with a JSON body or none
// (dashboard/same-origin.ts); a viewer changes nothing, an operator only what dashboard/operator-actions.ts
// allows.
import express, { type Express } from 'express';
import type { Queue } from 'bullmq';
import { dashboardAuth, dashboardRole, hasDashboardAuth, type DashboardCredentials, type TrustedHeaderOptions } from './basic-auth.js';
import { replayRouter } from './replay-api.js';
import { reconcileApiRouter } from './reconcile-api.js';
import type { ReconcileReason, RequestOutcome } from '../flows/reconcile/triggers.js';
import { withTimeout } from '../queues/valkey-timeout.js';
import { auditWebhookRouter, type AuditWebhookOptions } from '../workers/ingest/audit-webhook.js';
import { BULL_BOARD_PATH, type BullBoard } from './bull-board.js';
import { jsonErrorHandler } from './http-errors.js';
import { operatorActions } from './operator-actions.js';
import { overviewRouter } from './overview-page.js';
import { sameOriginJson } from './same-origin.js';
import { securityHeaders } from './security-headers.js';
import type { Overview } from './overview.js';
import type { HealthView, ReadinessResult } from './health.js';

export interface AppOptions extends AuditWebhookOptions {
  board: BullBoard;
  /**
   * Basic-auth credentials of the dashboard's viewer (read-only; an operator when dashboardReadOnly is
   * false); undefined with no operator and no trusted headers = no authentication (a proxy in front must add it).
   */
  dashboardCredentials?: DashboardCredentials;
  /** Basic-auth credentials of the operator (retry, promote, clean, replay, reconcile); undefined = none. */
  dashboardOperatorCredentials?: DashboardCredentials;
  /** Trust an SSO proxy's identity headers (X-Forwarded-User/-Groups); undefined (the default) = never. */
  dashboardTrustedHeaders?: TrustedHeaderOptions;
  /** Every queue, for operator actions by queue name. */
  queues: () => Queue[];
  /** Without roles configured, or for the viewer's credentials: refuse operator actions. */
  dashboardReadOnly: boolean;
  /** Starts a reconcile of a target on demand (POST /admin/api/reconcile/:namespace/:name); undefined: off. */
  reconcileRequest?: (targetKey: string, reason: ReconcileReason) => Promise<RequestOutcome>;
  /** Resolves when Valkey answers; /readyz fails while it does not. */
  ping: () => Promise<unknown>;
  /** The numbers of the overview page (GET /admin/overview, /admin/api/overview); undefined: no page. */
  overview?: () => Promise<Overview>;
  /** The full readiness (dashboard/health.ts checkReadiness); when given, /readyz answers with it instead of `ping`. */
  readiness?: () => Promise<ReadinessResult>;
  /** The JSON health view at GET /health (dashboard/health.ts healthView); undefined: no /health. */
  health?: () => Promise<HealthView>;
  /**
   * /admin is served by createAdminApp on a port of its own (ADMIN_PORT): the main app leaves it out and
   * answers 404 there. @defaultValue false
   */
  separateAdmin?: boolean;
}

/** An app with the headers every answer carries and without X-Powered-By. */
function baseApp(): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders());
  return app;
}

/** The last two handlers of an app: 404 for any other path, and JSON for every error. */
function finish(app: Express, opts: AppOptions): Express {
  app.use((_req, res) => {
    res.status(404).json({ error: 'not found', reason: 'not-found' });
  });
  app.use(jsonErrorHandler(opts.logger));
  return app;
}

/** Everything under /admin: authentication, the cross-site and body checks, Bull Board, the overview, the APIs. */
function mountAdmin(app: Express, opts: AppOptions): void {
  const auth = {
    viewer: opts.dashboardCredentials,
    operator: opts.dashboardOperatorCredentials,
    viewerIsOperator: !opts.dashboardReadOnly,
    trustedHeaders: opts.dashboardTrustedHeaders,
  };
  if (!hasDashboardAuth(auth)) opts.logger.warn('Bull Board at /admin/queues has no authentication: set DASHBOARD_USERNAME and DASHBOARD_PASSWORD, or serve it only behind an authenticating proxy');
  app.use('/admin', dashboardAuth(auth, 'GitOps Reverser queues'));
  app.use('/admin', sameOriginJson({ trustForwardedHost: opts.dashboardTrustedHeaders !== undefined }));
  // One Bull Board per role over the same queues: viewers get the read-only one. Their writes are refused
  // here with 403 before reaching it (where they would be refused again: 405 QUEUE_READ_ONLY); an
  // operator's pass the allow-list first.
  const allowList = operatorActions({ queue: (name) => opts.board.queue(name) });
  app.use(BULL_BOARD_PATH, (req, res, next) => {
    const role = dashboardRole(res) ?? 'viewer';
    if (role !== 'operator' && req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(403).json({ error: 'the dashboard is read-only for you: operator credentials are needed to change jobs', reason: 'read-only' });
      return;
    }
    if (role !== 'operator') return opts.board.routerFor(role)(req, res, next);
    allowList(req, res, (err?: unknown) => (err ? next(err) : opts.board.routerFor(role)(req, res, next)));
  });
  app.use(replayRouter({ queues: opts.queues, readOnly: opts.dashboardReadOnly }));
  if (opts.reconcileRequest) app.use(reconcileApiRouter({ request: opts.reconcileRequest, readOnly: opts.dashboardReadOnly }));
  if (opts.overview) app.use(overviewRouter({ overview: opts.overview }));
}

/** The service's app: the webhook, metrics, health and (unless `separateAdmin`) /admin. */
export function createApp(opts: AppOptions): Express {
  const app = baseApp();
  app.use(auditWebhookRouter(opts));
  if (!opts.separateAdmin) mountAdmin(app, opts);
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', opts.metrics.registry.contentType);
    res.send(await opts.metrics.registry.metrics());
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      if (opts.readiness) {
        const result = await opts.readiness();
        res.status(result.status === 'ready' ? 200 : 503).json(result);
        return;
      }
      await withTimeout(opts.ping(), 2000);
      res.json({ status: 'ready' });
    } catch (err) {
      res.status(503).json({ status: 'not ready', error: (err as Error).message });
    }
  });
  const health = opts.health;
  if (health) {
    app.get('/health', async (_req, res) => {
      try {
        res.json(await health());
      } catch (err) {
        res.status(500).json({ status: 'unknown', error: (err as Error).message });
      }
    });
  }
  return finish(app, opts);
}

/** /admin alone (Bull Board, the overview, the replay and reconcile APIs), for the admin port. */
export function createAdminApp(opts: AppOptions): Express {
  const app = baseApp();
  mountAdmin(app, opts);
  return finish(app, opts);
}

/** The service's apps: the main one, and with `separateAdmin` the admin port's. */
export function createServiceApps(opts: AppOptions): { main: Express; admin?: Express } {
  return { main: createApp(opts), ...(opts.separateAdmin ? { admin: createAdminApp(opts) } : {}) };
}
