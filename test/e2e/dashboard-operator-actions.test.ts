// The operator role is what the README lists, not every power of Bull Board: retry, promote, and clean of
// failed or completed jobs. Every other state-changing Bull Board route (add, edit, empty, pause, resume,
// obliterate, limits, job schedulers, …, and any path it does not know) answers 403 {reason:
// "not-offered"} and changes nothing; cleaning waiting, delayed or active jobs (changes not in Git yet) is
// refused too. Paths are matched as Bull Board routes them (decoded segments, any case), not by substring.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appRoutes } from '@bull-board/api/dist/routes.js';
import { OPERATOR_ACTIONS } from '../../dashboard/operator-actions.js';
import { basic, OPERATOR, startDashboardFixture, type DashboardFixture } from '../support/dashboard-app.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

let valkey: TestValkey;
let fixture: DashboardFixture;
let url = '';
beforeAll(async () => {
  valkey = await startTestValkey();
  fixture = await startDashboardFixture(valkey.url);
  url = await fixture.serve();
});
afterAll(async () => {
  await fixture?.close();
  await valkey?.stop();
});

const call = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${url}/admin/queues/api${path}`, {
    method,
    headers: { ...basic(OPERATOR), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
};

/** What an operator must not be able to change: the queue's jobs (ids, states, data, delays, priorities), pause, limits, schedulers. */
async function snapshot() {
  const { queue } = fixture;
  const jobs = await queue.getJobs(['waiting', 'delayed', 'failed', 'completed', 'active', 'prioritized']);
  return {
    jobs: await Promise.all(jobs.map(async (j) => ({ id: j.id, state: await j.getState(), data: j.data as unknown, delay: j.delay, priority: j.priority }))).then((all) => all.sort((a, b) => String(a.id).localeCompare(String(b.id)))),
    paused: await queue.isPaused(),
    concurrency: await queue.getGlobalConcurrency(),
    rateLimit: await queue.getGlobalRateLimit(),
    schedulers: (await queue.getJobSchedulers()).map((s) => ({ key: s.key, every: s.every })),
  };
}

describe('operator actions in Bull Board', () => {
  let failed = '';
  let delayed = '';
  let completed = '';
  let q = '';

  beforeAll(async () => {
    q = fixture.queue.name;
    // Ids as the service makes them: "<cluster>_<auditID>", with words that name Bull Board's actions.
    failed = await fixture.failedJob('c1_pause-clean-retry');
    completed = await fixture.completedJob('c1_empty_obliterate');
    delayed = await fixture.delayedJob('c1_promote_later');
    await fixture.queue.upsertJobScheduler('nightly', { every: 86_400_000, startDate: Date.now() + 86_400_000 }, { name: 'nightly', data: {} });
  });

  it('refuses every other state-changing route with 403 and changes nothing', async () => {
    const before = await snapshot();
    const forbidden: [string, string, unknown?][] = [
      ['POST', `/queues/${q}/add`, { name: 'forged', data: { filePath: 'x.yaml' } }],
      ['PATCH', `/queues/${q}/${failed}/update-data`, { data: { filePath: '../../etc/passwd' } }],
      ['PATCH', `/queues/${q}/${delayed}/delay`, { delay: 1 }],
      ['PATCH', `/queues/${q}/${delayed}/priority`, { priority: 1 }],
      ['PUT', `/queues/${q}/empty`],
      ['PUT', `/queues/${q}/pause`],
      ['PUT', `/queues/${q}/PAUSE`],
      ['PUT', `/queues/${q}/resume`],
      ['PUT', '/queues/pause'],
      ['PUT', '/queues/resume'],
      ['PUT', `/queues/${q}/obliterate`, { force: true }],
      ['PUT', `/queues/${q}/concurrency`, { concurrency: 5 }],
      ['PUT', `/queues/${q}/rate-limit`, { max: 1, duration: 60_000 }],
      ['PUT', `/queues/${q}/rate-limit/release`],
      ['PUT', `/queues/${q}/job-schedulers/nightly/remove`],
      ['PATCH', `/queues/${q}/job-schedulers/nightly`, { every: 1000 }],
      ['PUT', `/queues/${q}/job-schedulers/nightly/run`],
      ['PUT', `/queues/${q}/${failed}/remove-unprocessed-children`],
      ['POST', '/metrics/history/purge', {}],
      ['PUT', `/queues/${q}/something-new`],
      ['DELETE', `/queues/${q}`],
    ];
    for (const [method, path, body] of forbidden) {
      const res = await call(method, path, body);
      expect({ method, path, ...res }).toEqual({ method, path, status: 403, body: { error: expect.stringContaining('not offered'), reason: 'not-offered' } });
    }
    expect(await snapshot()).toEqual(before);
  });

  it('refuses retrying and cleaning jobs that are not finished: changes not in Git yet', async () => {
    const before = await snapshot();
    for (const status of ['waiting', 'wait', 'delayed', 'active', 'paused', 'prioritized', 'waiting-children', 'anything']) {
      for (const path of [`/queues/${q}/clean/${status}`, `/queues/${q}/retry/${status}`]) {
        const res = await call('PUT', path);
        expect({ path, ...res }).toEqual({ path, status: 403, body: { error: expect.stringContaining(`not "${status}" ones`), reason: 'not-offered' } });
      }
    }
    const one = await call('PUT', `/queues/${q}/${delayed}/clean`);
    expect(one).toEqual({ status: 403, body: { error: `job ${delayed} of queue ${q} is delayed: only failed or completed jobs may be removed, a delayed one holds a change that is not in Git yet`, reason: 'not-offered' } });
    expect(await snapshot()).toEqual(before);
  });

  it('still lets the operator retry, promote and clean finished jobs', async () => {
    const { queue } = fixture;
    // One job: its id holds "pause", "clean" and "retry", its queue name "-": matched as segments, not substrings.
    expect(await call('PUT', `/queues/${q}/${failed}/retry`)).toEqual({ status: 204, body: undefined });
    await expect.poll(() => queue.getJobState(failed)).toBe('failed');
    await fixture.failedJob();
    expect((await call('PUT', `/queues/${q}/retry/failed`)).status).toBe(200);
    await expect.poll(() => queue.getFailedCount()).toBe(2);
    expect((await call('PUT', `/queues/${q}/retry/completed`)).status).toBe(200);
    await expect.poll(() => queue.getJobState(completed)).toBe('completed');

    expect((await call('PUT', `/queues/${q}/${delayed}/promote`)).status).toBe(204);
    await expect.poll(() => queue.getJobState(delayed)).toBe('completed');
    const later = await fixture.delayedJob();
    expect((await call('PUT', `/queues/${q}/promote`)).status).toBe(200);
    await expect.poll(() => queue.getJobState(later)).toBe('completed');

    expect(await call('PUT', `/queues/${q}/${failed}/clean`)).toEqual({ status: 204, body: undefined });
    expect(await queue.getJob(failed)).toBeUndefined();
    expect((await call('PUT', `/queues/${q}/${completed}/clean`)).status).toBe(204);
    expect(await queue.getJob(completed)).toBeUndefined();
    const dead = await fixture.failedJob();
    // Bull Board's clean keeps jobs younger than 5 s (its grace time): wait them out.
    await new Promise((r) => setTimeout(r, 5200));
    expect((await call('PUT', `/queues/${q}/clean/failed`)).status).toBe(200);
    expect(await queue.getJob(dead)).toBeUndefined();
    expect((await call('PUT', `/queues/${q}/clean/completed`)).status).toBe(200);
    expect(await queue.getCompletedCount()).toBe(0);
    // Still there: what was never offered.
    expect((await snapshot()).schedulers).toEqual([{ key: 'nightly', every: 86_400_000 }]);
  });

  it('names only routes Bull Board has, with a reason for each', () => {
    const routes = appRoutes.api.flatMap((r) => [r.method].flat().flatMap((m) => [r.route].flat().map((p) => `${m} ${p}`)));
    for (const [action, { why }] of Object.entries(OPERATOR_ACTIONS)) {
      expect(routes).toContain(action);
      expect(why).not.toBe('');
    }
  });
});
