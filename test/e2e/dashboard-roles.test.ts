// The dashboard's roles over HTTP: a viewer reads Bull Board but cannot change a job (403) nor replay;
// an operator retries a failed job; an SSO proxy's identity headers count only when trusted explicitly.
// Job data in Bull Board holds no Secret value (redacted at ingest), and a committed write on a known
// Git host links to its commit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppOptions } from '../../dashboard/app.js';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { basic, COMMIT_SHA, OPERATOR, startDashboardFixture, VIEWER, type DashboardFixture } from '../support/dashboard-app.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const QUEUE = 'write-fleet-main-abcdef123456';

let valkey: TestValkey;
beforeAll(async () => {
  valkey = await startTestValkey();
});
afterAll(async () => {
  await valkey?.stop();
});

describe('dashboard roles', () => {
  let fixture: DashboardFixture;
  let failedId = '';
  let committedId = '';

  /** The app over one write queue of a GitHub repository (its URL with credentials), with only the roles each case gives it. */
  const serve = (extra: Partial<AppOptions>): Promise<string> => fixture.serve({ dashboardCredentials: undefined, dashboardOperatorCredentials: undefined, ...extra });
  const retry = (url: string, headers: Record<string, string>) =>
    fetch(`${url}/admin/queues/api/queues/${QUEUE}/${failedId}/retry`, { method: 'PUT', headers });
  const stateOfFailed = async () => (await fixture.queue.getJob(failedId))!.getState();
  /** Fails the job again (the worker refuses "poison" every time). */
  const failAgain = () => waitFor(async () => (await stateOfFailed()) === 'failed', 'job failed again');

  beforeAll(async () => {
    fixture = await startDashboardFixture(valkey.url, { queueName: QUEUE, repoURL: 'https://x-access-token:s3cr3t-token@github.com/acme/fleet.git' });
    failedId = await fixture.failedJob();
    committedId = await fixture.completedJob();
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it('lets a viewer read but not retry or replay, and an operator retry', async () => {
    const url = await serve({ dashboardCredentials: VIEWER, dashboardOperatorCredentials: OPERATOR });
    const list = await fetch(`${url}/admin/queues/api/queues?activeQueue=${QUEUE}&status=completed`, { headers: basic(VIEWER) });
    expect(list.status).toBe(200);
    const body = (await list.json()) as { queues: { name: string; readOnlyMode: boolean; jobs: { id: string; returnValue: unknown }[] }[] };
    const shown = body.queues.find((q) => q.name === QUEUE)!;
    expect(shown.readOnlyMode).toBe(true);
    // The commit link, without the remote's credentials.
    expect(shown.jobs.find((j) => j.id === committedId)?.returnValue).toMatchObject({ commitUrl: `https://github.com/acme/fleet/commit/${COMMIT_SHA}` });
    expect(JSON.stringify(body)).not.toContain('s3cr3t');

    expect((await retry(url, basic(VIEWER))).status).toBe(403);
    expect(await stateOfFailed()).toBe('failed');
    const replay = await fetch(`${url}/admin/api/replay`, { method: 'POST', headers: { ...basic(VIEWER), 'content-type': 'application/json' }, body: JSON.stringify({ queue: QUEUE }) });
    expect(replay.status).toBe(403);
    expect((await retry(url, basic({ ...OPERATOR, password: 'wrong-pw' }))).status).toBe(401);

    const operatorList = (await (await fetch(`${url}/admin/queues/api/queues`, { headers: basic(OPERATOR) })).json()) as { queues: { readOnlyMode: boolean }[] };
    expect(operatorList.queues.every((q) => !q.readOnlyMode)).toBe(true);
    expect((await retry(url, basic(OPERATOR))).status).toBe(204);
    await failAgain();
    const replayed = await fetch(`${url}/admin/api/replay`, { method: 'POST', headers: { ...basic(OPERATOR), 'content-type': 'application/json' }, body: JSON.stringify({ queue: QUEUE }) });
    expect(replayed.status).toBe(200);
    await failAgain();
  });

  it('keeps DASHBOARD_READ_ONLY=false meaning: the one user is an operator', async () => {
    const url = await serve({ dashboardCredentials: VIEWER, dashboardReadOnly: false });
    expect((await retry(url, basic(VIEWER))).status).toBe(204);
    await failAgain();
  });

  it('ignores proxy identity headers unless trusted, and then maps the operator group', async () => {
    const asOperator = { 'x-forwarded-user': 'alice', 'x-forwarded-groups': 'devs, gitops-operators' };
    const untrusted = await serve({ dashboardCredentials: VIEWER, dashboardOperatorCredentials: OPERATOR });
    expect((await fetch(`${untrusted}/admin/queues/api/queues`, { headers: asOperator })).status).toBe(401);
    expect((await retry(untrusted, asOperator)).status).toBe(401);

    const trusted = await serve({ dashboardTrustedHeaders: { operatorGroup: 'gitops-operators' } });
    expect((await fetch(`${trusted}/admin/queues/api/queues`)).status).toBe(401);
    expect((await fetch(`${trusted}/admin/queues/api/queues`, { headers: { 'x-forwarded-user': 'bob' } })).status).toBe(200);
    expect((await retry(trusted, { 'x-forwarded-user': 'bob', 'x-forwarded-groups': 'devs' })).status).toBe(403);
    expect((await retry(trusted, asOperator)).status).toBe(204);
    await failAgain();
  });
});

describe('job data in Bull Board', () => {
  let service: TestService;
  let remote = '';
  const SECRET = 'hunter2-very-secret';
  const secret: ObjectSpec = { apiVersion: 'v1', kind: 'Secret', resource: 'secrets', namespace: 'shop', name: 'db', body: { type: 'Opaque', data: { password: Buffer.from(SECRET).toString('base64') }, stringData: { token: SECRET } } };

  beforeAll(async () => {
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))), { dashboardCredentials: VIEWER });
  });
  afterAll(async () => {
    await service?.close();
  });

  it('shows no Secret value, in ingest or write jobs', async () => {
    expect((await postToC1(service.url, [auditEvent('create', secret, { user: 'alice' })])).status).toBe(200);
    await waitFor(async () => (await commitLog(remote)).length === 1, 'the Secret committed');
    const [writeQueue] = [...service.writeQueues.keys()];
    // The write job completes once its push landed, a moment after the commit shows on the remote.
    await waitFor(async () => (await service.writeQueues.get(writeQueue!)!.getCompletedCount()) === 1, 'the write job completed');
    // As stored, not only as shown: ingest redacted the values before any job held them.
    const stored = JSON.stringify([await service.ingestQueue.getCompleted(), await service.writeQueues.get(writeQueue!)!.getCompleted()]);
    expect(stored).toContain('REDACTED');
    expect(stored).not.toContain(SECRET);
    expect(stored).not.toContain(Buffer.from(SECRET).toString('base64'));
    for (const name of ['ingest', writeQueue!]) {
      const res = await fetch(`${service.url}/admin/queues/api/queues?activeQueue=${name}&status=completed`, { headers: basic(VIEWER) });
      expect(res.status).toBe(200);
      const text = await res.text();
      const shown = (JSON.parse(text) as { queues: { name: string; jobs: unknown[] }[] }).queues.find((q) => q.name === name)!;
      expect(shown.jobs.length).toBeGreaterThan(0);
      expect(text).toContain('REDACTED');
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(Buffer.from(SECRET).toString('base64'));
    }
  });
});
