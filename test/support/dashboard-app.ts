// The service's HTTP app (dashboard/app.ts) over one write queue on a real Valkey, for tests of the
// dashboard's HTTP surface: a worker fails jobs named "poison" (a dead letter with an error and its stack)
// and completes every other one; delayed jobs stay delayed (a change not yet in Git). Each `serve` starts
// the app with the given options on a free port.
import { Queue, Worker } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createApp, type AppOptions } from '../../dashboard/app.js';
import type { DashboardCredentials } from '../../dashboard/basic-auth.js';
import { createQueueDashboard } from '../../dashboard/bull-board.js';
import { listen } from '../../dashboard/listen.js';
import { createMetrics } from '../../observability/metrics.js';
import { openConnection } from '../../queues/connection.js';
import { waitFor } from './git-repos.js';
import { uniquePrefix } from './valkey-server.js';

export const VIEWER: DashboardCredentials = { username: 'viewer', password: 'viewer-pw' };
export const OPERATOR: DashboardCredentials = { username: 'operator', password: 'operator-pw' };
export const basic = (c: DashboardCredentials): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` });
/** The error message of a poison job: its stack names this file. */
export const POISON_ERROR = 'refused by the remote';
/** The commit every completed job reports. */
export const COMMIT_SHA = '0123456789abcdef0123456789abcdef01234567';

export interface DashboardFixture {
  queue: Queue;
  connection: Valkey;
  /** Starts the app over the queue (viewer and operator credentials unless `extra` says otherwise); its base URL. */
  serve(extra?: Partial<AppOptions>): Promise<string>;
  /** Adds a job the worker fails, and waits until it has. */
  failedJob(id?: string): Promise<string>;
  /** Adds a job the worker completes, and waits until it has. */
  completedJob(id?: string): Promise<string>;
  /** Adds a job delayed by an hour (waiting to be written). */
  delayedJob(id?: string): Promise<string>;
  close(): Promise<void>;
}

/** `repoURL` is the queue's repository as Bull Board is told it (the commit links are made from it). */
export async function startDashboardFixture(
  valkeyUrl: string,
  { queueName = 'write-fleet-main-abcdef123456', repoURL = 'https://github.com/acme/fleet.git' }: { queueName?: string; repoURL?: string } = {},
): Promise<DashboardFixture> {
  const connection = openConnection(valkeyUrl);
  const workerConnection = openConnection(valkeyUrl);
  const prefix = uniquePrefix('dash');
  const queue = new Queue(queueName, { connection, prefix });
  const worker = new Worker(
    queueName,
    async (job) => {
      if (job.name === 'poison') throw new Error(POISON_ERROR);
      return { outcome: 'committed', commit: COMMIT_SHA };
    },
    { connection: workerConnection, prefix },
  );
  const servers: Server[] = [];
  const settled = async (id: string, state: string) => {
    await waitFor(async () => (await queue.getJobState(id)) === state, `job ${id} ${state}`);
    return id;
  };
  return {
    queue,
    connection,
    async serve(extra = {}) {
      const board = createQueueDashboard([], true);
      board.addQueue(queue, repoURL);
      const app = createApp({
        clusters: () => new Map(),
        ingestQueue: queue as never,
        bodyLimitBytes: 1024 * 1024,
        logger: pino({ level: 'silent' }),
        metrics: createMetrics(uniquePrefix('m')),
        board,
        dashboardReadOnly: true,
        dashboardCredentials: VIEWER,
        dashboardOperatorCredentials: OPERATOR,
        queues: () => [queue],
        ping: () => connection.ping(),
        ...extra,
      });
      const server = await listen(app, { port: 0, host: '127.0.0.1' });
      servers.push(server);
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    failedJob: async (id) => settled((await queue.add('poison', { filePath: 'a.yaml' }, id ? { jobId: id } : {})).id!, 'failed'),
    completedJob: async (id) => settled((await queue.add('write', { filePath: 'b.yaml' }, id ? { jobId: id } : {})).id!, 'completed'),
    delayedJob: async (id) => settled((await queue.add('write', { filePath: 'c.yaml' }, { delay: 3_600_000, ...(id ? { jobId: id } : {}) })).id!, 'delayed'),
    async close() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
      await worker.close();
      await queue.close();
      await connection.quit();
      await workerConnection.quit();
    },
  };
}
