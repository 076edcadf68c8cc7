// Every error the HTTP surface answers is JSON {error, reason} with a fitting status, never Express's HTML
// page with a stack and the service's install path: a bad URL encoding (webhook, dashboard, Bull Board's
// API and pages), malformed or oversized JSON (the dashboard's own APIs and Bull Board's), a reconcile of a
// target whose cluster the service cannot read (409, naming what to set), and an unexpected failure (500,
// its message and stack in the log only). Viewers see a dead letter's reason in Bull Board, not its stack.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, OPERATOR, POISON_ERROR, startDashboardFixture, VIEWER, type DashboardFixture } from '../support/dashboard-app.js';
import { createBareRemote } from '../support/git-repos.js';
import { singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

/** The answer is JSON {error, reason} with this status, and shows nothing of a stack or a file path. */
async function expectJsonError(res: Response, status: number, reason: string): Promise<{ error: string; reason: string }> {
  const text = await res.text();
  expect({ status: res.status, type: res.headers.get('content-type') }, text).toEqual({ status, type: expect.stringMatching(/^application\/json/) });
  const body = JSON.parse(text) as { error: string; reason: string };
  expect(body).toEqual({ error: expect.any(String), reason });
  expect(text).not.toMatch(/\bat \S+ \(|node_modules|\/work\/|\.ts:\d+|<html|<pre/i);
  return body;
}

let valkey: TestValkey;
beforeAll(async () => {
  valkey = await startTestValkey();
});
afterAll(async () => {
  await valkey?.stop();
});

describe('errors of the running service', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig(await createBareRemote(dir)), {
      dashboardCredentials: VIEWER,
      dashboardOperatorCredentials: OPERATOR,
    });
  });
  afterAll(async () => {
    await service?.close();
  });

  it('answers a bad URL encoding with 400 JSON, in the webhook, the dashboard and Bull Board', async () => {
    const webhook = await fetch(`${service.url}/audit-webhook/%ff`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer t0ken-c1' }, body: '{}' });
    expect((await expectJsonError(webhook, 400, 'bad-url-encoding')).error).toContain('%ff');
    for (const path of ['/admin/queues/api/queues/%ff/1', '/admin/queues/queue/%ff', '/admin/queues/api/queues/ingest/%E0%A4%A/logs']) {
      await expectJsonError(await fetch(`${service.url}${path}`, { headers: basic(VIEWER) }), 400, 'bad-url-encoding');
    }
    await expectJsonError(await fetch(`${service.url}/admin/api/reconcile/%ff/x`, { method: 'POST', headers: { ...basic(OPERATOR), 'content-type': 'application/json' } }), 400, 'bad-url-encoding');
  });

  it('answers malformed JSON with 400 and an oversized body with 413, in the dashboard APIs and Bull Board', async () => {
    const json = { ...basic(OPERATOR), 'content-type': 'application/json' };
    await expectJsonError(await fetch(`${service.url}/admin/api/replay`, { method: 'POST', headers: json, body: '{"queue": ' }), 400, 'malformed-json');
    await expectJsonError(await fetch(`${service.url}/admin/api/replay`, { method: 'POST', headers: json, body: JSON.stringify({ queue: 'x'.repeat(2 * 1024 * 1024) }) }), 413, 'too-large');
    await expectJsonError(await fetch(`${service.url}/admin/queues/api/queues/ingest/1/retry`, { method: 'PUT', headers: json, body: '{"a": ' }), 400, 'malformed-json');
  });

  it('refuses a reconcile of a target whose cluster has no credentials with 409, naming what to set', async () => {
    const res = await fetch(`${service.url}/admin/api/reconcile/gitops-reverser/c1`, { method: 'POST', headers: { ...basic(OPERATOR), 'content-type': 'application/json' } });
    const body = await expectJsonError(res, 409, 'cluster-unreadable');
    expect(body.error).toContain('GitTarget gitops-reverser/c1 cannot be reconciled');
    expect(body.error).toContain('cluster c1 has no spec.kubeConfigSecretRef');
  });

  it('answers an unknown path with 404 JSON', async () => {
    await expectJsonError(await fetch(`${service.url}/nothing/here`), 404, 'not-found');
    await expectJsonError(await fetch(`${service.url}/admin/nothing`, { headers: basic(VIEWER) }), 404, 'not-found');
  });
});

describe('errors of the dashboard app', () => {
  let fixture: DashboardFixture;
  beforeAll(async () => {
    fixture = await startDashboardFixture(valkey.url);
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it('answers an unexpected failure with 500 JSON without its message, and logs its stack', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) }));
    const url = await fixture.serve({ logger, reconcileRequest: () => Promise.reject(new Error('boom in /srv/secret/place')) });
    const res = await fetch(`${url}/admin/api/reconcile/team-a/prod`, { method: 'POST', headers: { ...basic(OPERATOR), 'content-type': 'application/json' } });
    const body = await expectJsonError(res, 500, 'internal');
    expect(JSON.stringify(body)).not.toContain('boom');
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; err?: { stack?: string }; path?: string }).find((l) => l.err);
    expect(logged).toMatchObject({ path: '/admin/api/reconcile/team-a/prod', err: { stack: expect.stringContaining('boom in /srv/secret/place') } });
  });

  it("shows viewers a dead letter's reason but not its stack trace (the service's file paths)", async () => {
    const id = await fixture.failedJob();
    const url = await fixture.serve();
    const { queue } = fixture;
    expect(((await queue.getJob(id))!.stacktrace ?? []).join('\n')).toContain('dashboard-app.ts');
    const list = (await (await fetch(`${url}/admin/queues/api/queues?activeQueue=${queue.name}&status=failed`, { headers: basic(VIEWER) })).json()) as {
      queues: { name: string; jobs: { id: string; failedReason: string; stacktrace: string[] }[] }[];
    };
    const shown = list.queues.find((q) => q.name === queue.name)!.jobs.find((j) => j.id === id)!;
    expect(shown).toMatchObject({ failedReason: POISON_ERROR, stacktrace: [] });
    const one = (await (await fetch(`${url}/admin/queues/api/queues/${queue.name}/${id}`, { headers: basic(VIEWER) })).json()) as { job: { failedReason: string; stacktrace: string[] } };
    expect(one.job).toMatchObject({ failedReason: POISON_ERROR, stacktrace: [] });
    // The operator, who may retry it, still sees where it failed.
    const asOperator = (await (await fetch(`${url}/admin/queues/api/queues/${queue.name}/${id}`, { headers: basic(OPERATOR) })).json()) as { job: { stacktrace: string[] } };
    expect(asOperator.job.stacktrace.join('\n')).toContain(POISON_ERROR);
  });
});
