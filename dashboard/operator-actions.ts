// What the operator role may do in Bull Board: exactly the actions the README lists (retry, promote, and
// clean of finished jobs), not every power Bull Board has. Adding, editing, emptying, pausing or
// obliterating would let an operator drop or forge changes on their way to Git; cleaning waiting, delayed
// or active jobs would drop events that are not in Git yet.
//
// The decision is made on the route Bull Board itself would run: its own route list (appRoutes.api), in
// its order, matched by an Express router like its own (same path syntax, same decoding of the segments,
// same case-insensitivity), so a queue name with "-" or a job id with "_" or "pause" in it is what it is,
// and a path Bull Board would route to `pause` is refused whatever it looks like. Every state-changing
// route not in OPERATOR_ACTIONS, and any state-changing path Bull Board does not know, answers 403
// {reason: "not-offered"}. Viewers never get here: the app refuses their changes before (dashboard/app.ts).
import { appRoutes } from '@bull-board/api/dist/routes.js';
import type { Queue } from 'bullmq';
import express, { type Request, type Response, type Router } from 'express';

/** A job is finished when it is failed (a dead letter) or completed (in Git, or nothing to write). */
const FINISHED_STATES: readonly string[] = ['failed', 'completed'];

interface ActionContext {
  /** The queue Bull Board shows under this name. */
  queue(name: string): Queue | undefined;
}

/** Why this request of an allowed route is refused after all; undefined: it may go on. */
type Check = (req: Request, ctx: ActionContext) => Promise<string | undefined> | string | undefined;

const finishedStatus: Check = (req) => {
  const status = String(req.params.queueStatus);
  if (FINISHED_STATES.includes(status)) return undefined;
  return `only failed or completed jobs are offered here, not "${status}" ones: waiting, delayed, active or paused jobs hold changes that are not in Git yet`;
};

const finishedJob: Check = async (req, ctx) => {
  const queue = ctx.queue(String(req.params.queueName));
  const jobId = String(req.params.jobId);
  // An unknown queue or job: Bull Board answers 404 itself.
  if (!queue) return undefined;
  const state = await queue.getJobState(jobId);
  if (state === 'unknown' || FINISHED_STATES.includes(state)) return undefined;
  return `job ${jobId} of queue ${queue.name} is ${state}: only failed or completed jobs may be removed, a ${state} one holds a change that is not in Git yet`;
};

/** The operator's allow-list: `<method> <Bull Board route>` → why it is offered, and what else it must pass. */
export const OPERATOR_ACTIONS: Readonly<Record<string, { why: string; check?: Check }>> = {
  // A dead letter whose cause is fixed goes through again (Bull Board retries failed or completed jobs only);
  // the writer is idempotent, so a completed job run again changes nothing that is already in Git.
  'put /api/queues/:queueName/:jobId/retry': { why: 'retry one failed (or completed) job' },
  'put /api/queues/:queueName/retry/:queueStatus': { why: 'retry every failed or completed job of a queue', check: finishedStatus },
  // A delayed job is a write waiting out its retry backoff: promoting runs it now, dropping nothing.
  'put /api/queues/:queueName/:jobId/promote': { why: 'run one delayed job now' },
  'put /api/queues/:queueName/promote': { why: 'run every delayed job of a queue now' },
  // Removing finished jobs drops history and dead letters given up on, never a change on its way to Git.
  'put /api/queues/:queueName/clean/:queueStatus': { why: 'remove the failed or completed jobs of a queue', check: finishedStatus },
  'put /api/queues/:queueName/:jobId/clean': { why: 'remove one failed or completed job', check: finishedJob },
};

const SAFE_METHODS = new Set(['GET', 'HEAD']);

function notOffered(res: Response, action: string, why?: string): void {
  res.status(403).json({
    error: why ?? `${action} is not offered by this dashboard: operators may retry, promote, and clean failed or completed jobs`,
    reason: 'not-offered',
  });
}

/**
 * Mounted in front of the operators' Bull Board, at its base path: lets through reads and the allowed
 * actions, answers 403 to every other state-changing request.
 */
export function operatorActions(ctx: ActionContext): Router {
  const router = express.Router();
  for (const route of appRoutes.api) {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const paths = Array.isArray(route.route) ? route.route : [route.route];
    for (const method of methods) {
      if (method === 'get') continue;
      for (const path of paths) {
        const action = OPERATOR_ACTIONS[`${method} ${path}`];
        const name = `${method.toUpperCase()} ${path}`;
        router[method](path, async (req, res, next) => {
          if (!action) return notOffered(res, name);
          const refusal = await action.check?.(req, ctx);
          if (refusal) return notOffered(res, name, refusal);
          // On to Bull Board (past the rest of this router).
          next('router');
        });
      }
    }
  }
  router.use((req, res, next) => {
    if (SAFE_METHODS.has(req.method)) return next();
    notOffered(res, `${req.method} ${req.path}`);
  });
  return router;
}
