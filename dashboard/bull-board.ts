// Bull Board at /admin/queues for every queue, the per-partition ones included; read-only unless
// configured otherwise (readOnlyMode refuses writes; allowRetries=false would only hide a button).
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { Router } from 'express';

export const BULL_BOARD_PATH = '/admin/queues';

const DESCRIPTIONS: Record<string, string> = {
  ingest: 'Audit and watch events to normalize and route',
  reconcile: 'Reconcile flows: one parent per run of a GitTarget (its children list the cluster)',
  'reconcile-list': 'Reconcile children: one (resource type, namespace) listed per job',
  'reconcile-schedule': 'Scheduled reconciles, one job scheduler per GitTarget',
};

export interface BullBoard {
  router: Router;
  /** For partition queues that appear at run time. */
  addQueue(queue: Queue): void;
  /** For partitions retired at run time. */
  removeQueue(name: string): void;
}

export function createQueueDashboard(queues: Queue[], readOnly: boolean): BullBoard {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  const adapt = (q: Queue) =>
    new BullMQAdapter(q, {
      readOnlyMode: readOnly,
      description: DESCRIPTIONS[q.name] ?? (q.name.startsWith('write-') ? 'Git writes of one {repository, branch}, in order' : q.name),
    });
  const board = createBullBoard({
    queues: queues.map(adapt),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'GitOps Reverser' } },
  });
  return { router: serverAdapter.getRouter() as Router, addQueue: (q) => board.addQueue(adapt(q)), removeQueue: (name) => board.removeQueue(name) };
}
