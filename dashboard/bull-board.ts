// Bull Board at /admin/queues for every queue, the per-partition ones included. Bull Board's readOnlyMode
// is per queue adapter, not per user, so there are two boards over the same queues: a read-only one for
// viewers (readOnlyMode refuses writes; allowRetries=false would only hide a button) and a writable one
// for operators; the app picks one per request by the authenticated role (dashboard/app.ts).
// Job data is shown as stored (Secret values are redacted at ingest; the data formatter redacts again,
// defensively), and a committed write's outcome carries a `commitUrl` where the Git host is known.
// Viewers see a failed job's reason but not its stack trace (it names the service's files; Bull Board has
// no formatter for it, so the viewers' queue adapter empties it). Errors inside Bull Board are not answered
// by its own handler but passed on to the app's (dashboard/http-errors.ts: JSON, logged), and its inner
// Express app sends no X-Powered-By.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Job, Queue } from 'bullmq';
import type { Router } from 'express';
import { isRecord } from '../core/json.js';
import { INGEST_QUEUE, RECONCILE_LIST_QUEUE, RECONCILE_QUEUE, RECONCILE_SCHEDULE_QUEUE } from '../queues/names.js';
import { storableObject, type SecretRefLike } from '../core/redact-secret.js';
import { commitUrl } from './commit-url.js';
import type { DashboardRole } from './basic-auth.js';

export const BULL_BOARD_PATH = '/admin/queues';

const DESCRIPTIONS: Record<string, string> = {
  [INGEST_QUEUE]: 'Audit and watch events to normalize and route',
  [RECONCILE_QUEUE]: 'Reconcile flows: one parent per run of a GitTarget (its children list the cluster)',
  [RECONCILE_LIST_QUEUE]: 'Reconcile children: one (resource type, namespace) listed per job',
  [RECONCILE_SCHEDULE_QUEUE]: 'Scheduled reconciles, one job scheduler per GitTarget',
};

export interface BullBoard {
  /** The board of the global setting (read-only unless DASHBOARD_READ_ONLY=false), for callers without roles. */
  router: Router;
  /** The board for a role: read-only for viewers, writable for operators. */
  routerFor(role: DashboardRole): Router;
  /**
   * For partition queues that appear at run time. `repoURL`, for a write queue, is its partition's
   * repository: committed jobs then link to their commit where the host is known.
   */
  addQueue(queue: Queue, repoURL?: string): void;
  /** For partitions retired at run time. */
  removeQueue(name: string): void;
  /** The queue the board shows under this name. */
  queue(name: string): Queue | undefined;
}

/** Job data as shown: any object in it that is a Secret (an ingest job's `object`) has its values redacted. */
export function redactJobData(data: unknown): unknown {
  if (!isRecord(data)) return data;
  let shown = data;
  // A Secret's sealed values: ciphertext only its target's writer opens. Shown as its size, not its bytes,
  // so the page neither carries a copy to save for later nor pages of base64.
  if (isRecord(data.sealedValues)) {
    const sealed = data.sealedValues;
    const size = typeof sealed.ciphertext === 'string' ? sealed.ciphertext.length : 0;
    shown = { ...shown, sealedValues: { ...sealed, ciphertext: `(sealed: ${size} base64 characters)` } };
  }
  if (!isRecord(shown.object)) return shown;
  const ref = isRecord(shown.objectRef) ? (shown.objectRef as SecretRefLike) : undefined;
  const object = storableObject(shown.object, ref);
  return object === shown.object ? shown : { ...shown, object };
}

/** A write job's result as shown: with `commitUrl` when it committed to a repository on a known host. */
export function withCommitUrl(returnValue: unknown, repoURL: string | undefined): unknown {
  if (!repoURL || !isRecord(returnValue) || returnValue.outcome !== 'committed' || typeof returnValue.commit !== 'string') return returnValue;
  const url = commitUrl(repoURL, returnValue.commit);
  return url ? { ...returnValue, commitUrl: url } : returnValue;
}

/** A job as viewers see it: without its stack trace. The instance is Bull Board's copy, read for display only. */
function withoutStack(job: Job): Job {
  job.stacktrace = [];
  return job;
}

/** The viewers' queue adapter: every job it hands Bull Board (lists, single jobs) comes without its stack trace. */
class ViewerQueueAdapter extends BullMQAdapter {
  override async getJob(id: string): Promise<Job | undefined> {
    const job = await super.getJob(id);
    return job && withoutStack(job);
  }

  override async getJobs(...args: Parameters<BullMQAdapter['getJobs']>): Promise<Job[]> {
    return (await super.getJobs(...args)).map(withoutStack);
  }
}

/** Bull Board's Express adapter without X-Powered-By, whose errors go on to the app's error handler. */
class BoardExpressAdapter extends ExpressAdapter {
  constructor() {
    super();
    this.app.disable('x-powered-by');
  }

  /** createBullBoard installs Bull Board's own error answer here; ours throws, so Express passes the error on. */
  override setErrorHandler(_bullBoards: Parameters<ExpressAdapter['setErrorHandler']>[0]): this {
    return super.setErrorHandler((error) => {
      throw error;
    });
  }
}

export function createQueueDashboard(queues: Queue[], readOnly: boolean): BullBoard {
  const shown = new Map(queues.map((q) => [q.name, q]));
  const adapt = (q: Queue, readOnlyMode: boolean, repoURL?: string) => {
    const Adapter = readOnlyMode ? ViewerQueueAdapter : BullMQAdapter;
    const adapter = new Adapter(q, {
      readOnlyMode,
      description: DESCRIPTIONS[q.name] ?? (q.name.startsWith('write-') ? 'Git writes of one {repository, branch}, in order' : q.name),
    });
    adapter.setFormatter('data', redactJobData);
    if (repoURL) adapter.setFormatter('returnValue', (value: unknown) => withCommitUrl(value, repoURL));
    return adapter;
  };
  const board = (readOnlyMode: boolean) => {
    const serverAdapter = new BoardExpressAdapter();
    serverAdapter.setBasePath(BULL_BOARD_PATH);
    const api = createBullBoard({
      queues: queues.map((q) => adapt(q, readOnlyMode)),
      serverAdapter,
      options: { uiConfig: { boardTitle: 'GitOps Reverser' } },
    });
    return {
      router: serverAdapter.getRouter() as Router,
      add: (q: Queue, repoURL?: string) => api.addQueue(adapt(q, readOnlyMode, repoURL)),
      remove: (name: string) => api.removeQueue(name),
    };
  };
  const viewer = board(true);
  const operator = board(false);
  return {
    router: readOnly ? viewer.router : operator.router,
    routerFor: (role) => (role === 'operator' ? operator.router : viewer.router),
    addQueue: (q, repoURL) => {
      shown.set(q.name, q);
      viewer.add(q, repoURL);
      operator.add(q, repoURL);
    },
    removeQueue: (name) => {
      shown.delete(name);
      viewer.remove(name);
      operator.remove(name);
    },
    queue: (name) => shown.get(name),
  };
}
