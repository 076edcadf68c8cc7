// POST /admin/api/reconcile/<namespace>/<name>: reconciles one GitTarget now (on demand). 202 with
// {"started": runId} when its flow was added, {"queued": "pending"} when one runs already (exactly one more
// follows it); 404 for a target the configuration does not have; 409 when the target's cluster cannot be
// read (no credentials to list it with: the answer names what to set). An operator action: refused (403)
// for a viewer, or, used without the dashboard's authentication in front (dashboard/basic-auth.ts, applied
// by the app to /admin), while the dashboard is read-only. Errors are {error, reason}.
import express, { type Router } from 'express';
import { mayOperate } from './basic-auth.js';
import { ClusterUnreadableError } from '../flows/reconcile/reconcile-service.js';
import type { ReconcileReason, RequestOutcome } from '../flows/reconcile/triggers.js';

/** A Kubernetes object name or namespace (RFC 1123 subdomain); anything else cannot be a target. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function reconcileApiRouter(opts: { request: (targetKey: string, reason: ReconcileReason) => Promise<RequestOutcome>; readOnly: boolean }): Router {
  const router = express.Router();
  router.post('/admin/api/reconcile/:namespace/:name', async (req, res) => {
    if (!mayOperate(res, opts.readOnly)) {
      res.status(403).json({ error: 'the dashboard is read-only for you: starting reconciliations needs the operator role (operator credentials, or DASHBOARD_READ_ONLY=false)', reason: 'read-only' });
      return;
    }
    // A JSON content type makes a cross-site request need a CORS preflight, which this API never grants:
    // a page elsewhere cannot make a logged-in operator's browser start reconciliations.
    if (!/^application\/json\s*(;|$)/i.test(req.get('content-type') ?? '')) {
      res.status(415).json({ error: 'send Content-Type: application/json', reason: 'content-type' });
      return;
    }
    const { namespace, name } = req.params;
    const target = `${namespace}/${name}`;
    if (!NAME.test(namespace) || !NAME.test(name)) {
      res.status(404).json({ error: `no GitTarget ${target}`, reason: 'not-found' });
      return;
    }
    let outcome: RequestOutcome;
    try {
      outcome = await opts.request(target, 'on-demand');
    } catch (err) {
      if (!(err instanceof ClusterUnreadableError)) throw err;
      res.status(409).json({ error: `GitTarget ${target} cannot be reconciled: ${err.message}`, reason: 'cluster-unreadable' });
      return;
    }
    if ('skipped' in outcome) {
      res.status(404).json({ error: `no GitTarget ${target}`, reason: 'not-found' });
      return;
    }
    res.status(202).json({ target, ...outcome });
  });
  return router;
}
