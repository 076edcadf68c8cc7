// POST /admin/api/replay {"queue": "<name>", "jobs": ["<id>", …]}: replays dead letters of one queue
// (all of them when `jobs` is absent). An operator action: refused (403) for a viewer, or, used without
// the dashboard's authentication in front, while the dashboard is read-only. Errors are {error, reason}
// (a body that is not JSON: dashboard/same-origin.ts and dashboard/http-errors.ts).
import type { Queue } from 'bullmq';
import express, { type Router } from 'express';
import { mayOperate } from './basic-auth.js';
import { z } from 'zod';
import { replayFailed } from '../queues/replay-failed.js';

const ReplayRequest = z.object({ queue: z.string().min(1), jobs: z.array(z.string().min(1)).optional() });

export function replayRouter(opts: { queues: () => Queue[]; readOnly: boolean }): Router {
  const router = express.Router();
  router.post('/admin/api/replay', express.json({ limit: '1mb' }), async (req, res) => {
    if (!mayOperate(res, opts.readOnly)) {
      res.status(403).json({ error: 'the dashboard is read-only for you: replaying jobs needs the operator role (operator credentials, or DASHBOARD_READ_ONLY=false)', reason: 'read-only' });
      return;
    }
    const parsed = ReplayRequest.safeParse(req.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      res.status(400).json({ error: `${issue?.path.join('.') || '(body)'}: ${issue?.message}`, reason: 'bad-request' });
      return;
    }
    const queue = opts.queues().find((q) => q.name === parsed.data.queue);
    if (!queue) {
      res.status(404).json({ error: `no queue named "${parsed.data.queue}"`, reason: 'not-found' });
      return;
    }
    res.json(await replayFailed(queue, parsed.data.jobs));
  });
  return router;
}
