// The overview after a real run: the service takes audit events and pushes them; the overview (the app's
// router, fed by the running service's configuration, queues and counters) then shows that run's numbers:
// the remote's head as the last commit, nothing waiting or failed, every event accepted, the writer
// replica and a lag. Its page shows the same numbers, behind the dashboard's basic auth, with a hostile
// target path escaped.
import type { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../dashboard/app.js';
import { createQueueDashboard } from '../../dashboard/bull-board.js';
import { listen } from '../../dashboard/listen.js';
import { collectOverview, type Overview } from '../../dashboard/overview.js';
import { openConnection } from '../../queues/connection.js';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, git, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const HOSTILE = `clusters/<img src=x onerror="alert('x')">&c1`;
const AUTH = { authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}` };
const cm = (name: string, v: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v } } });

describe('overview page after a run', () => {
  let valkey: TestValkey;
  let service: TestService;
  let connection: Valkey;
  let server: Server;
  let url = '';
  let remote = '';

  beforeAll(async () => {
    valkey = await startTestValkey();
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir)), HOSTILE), { replicaId: 'replica-a' });
    // startService does not pass `overview` to its app yet: the same app, built here from the service's pieces.
    connection = openConnection(valkey.url);
    const queues = () => [service.ingestQueue as Queue, ...(service.writeQueues.values() as Iterable<Queue>)];
    const overview = () =>
      collectOverview({
        config: () => service.currentConfig(),
        connection,
        prefix: service.prefix,
        queues: (name) => queues().find((q) => q.name === name),
        ingestQueue: service.ingestQueue as Queue,
        metrics: service.metrics,
      });
    const app = createApp({
      clusters: () => service.currentConfig().clusters,
      ingestQueue: service.ingestQueue,
      bodyLimitBytes: 1024 * 1024,
      logger: pino({ level: 'silent' }),
      metrics: service.metrics,
      board: createQueueDashboard(queues(), true),
      dashboardCredentials: { username: 'admin', password: 'pw' },
      dashboardReadOnly: true,
      queues,
      ping: () => connection.ping(),
      overview,
    });
    server = await listen(app, { port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await connection?.quit();
    await service?.close();
    await valkey?.stop();
  });

  it('shows the numbers of the run that just happened', async () => {
    const events = [
      auditEvent('create', cm('a', '1'), { user: 'alice' }),
      auditEvent('create', cm('b', '1'), { user: 'bob' }),
      auditEvent('update', cm('a', '2'), { user: 'alice' }),
    ];
    expect((await postToC1(service.url, events)).status).toBe(200);
    await waitFor(async () => (await commitLog(remote)).length === 3, 'three commits pushed');
    const head = (await git(remote, 'rev-parse', 'main')).trim();

    // The last commit is recorded right after the push; the overview reads it when it is there.
    let overview: Overview | undefined;
    await waitFor(async () => {
      const res = await fetch(`${url}/admin/api/overview`, { headers: AUTH });
      overview = (await res.json()) as Overview;
      return overview.targets[0]?.lastCommit?.sha === head && overview.targets[0]?.backlog === 0;
    }, 'the overview shows the pushed head');

    expect(overview!.clusters).toEqual([{ cluster: 'c1', accepted: 3, skipped: {}, refused: {}, rejectedRequests: {}, rateLimited: 0, filesDeleted: {} }]);
    expect(overview!.ingest).toMatchObject({ backlog: 0, deadLetters: 0 });
    const [target] = overview!.targets;
    expect(target).toMatchObject({
      target: 'gitops-reverser/c1',
      repository: remote,
      branch: 'main',
      path: HOSTILE,
      cluster: 'c1',
      backlog: 0,
      deadLetters: 0,
      lastError: null,
      writer: 'replica-a',
      health: 'ok',
      lastCommit: { sha: head },
    });
    expect(target!.lagSeconds).toBeGreaterThanOrEqual(0);
    expect(target!.lagSeconds).toBeLessThan(30);

    const page = await fetch(`${url}/admin/overview`, { headers: AUTH });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<meta http-equiv="refresh" content="10">');
    expect(html).toContain(head.slice(0, 12));
    expect(html).toContain('replica-a');
    expect(html).toMatch(/<td>c1<\/td><td>3<\/td>/);
    expect(html).toContain(`href="/admin/queues/queue/${target!.queue}?status=failed">0</a>`);
    expect(html).toContain('this replica');
    // The hostile path shows as text, never as markup.
    expect(html).not.toContain('<img');
    expect(html).toContain('clusters/&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;c1');

    // Both sit behind the dashboard's authentication.
    expect((await fetch(`${url}/admin/overview`)).status).toBe(401);
    expect((await fetch(`${url}/admin/api/overview`)).status).toBe(401);
  });
});
