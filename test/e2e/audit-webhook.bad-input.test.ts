// Bad input gets a clear JSON error and changes nothing: for each case, the status, the message, and
// how many jobs the ingest queue gained (none for a bad request; for a batch with bad events, only its
// good ones).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, eventList, type ObjectSpec } from '../support/audit-events.js';
import { createBareRemote } from '../support/git-repos.js';
import { singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const cm: ObjectSpec = { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name: 'app', body: { data: { a: '1' } } };
const LIMIT = 64 * 1024;

describe('audit webhook: bad input', () => {
  let valkey: TestValkey;
  let service: TestService;

  beforeAll(async () => {
    valkey = await startTestValkey();
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig(await createBareRemote(dir)), { bodyLimitBytes: LIMIT });
  });
  afterAll(async () => {
    await service?.close();
    await valkey?.stop();
  });

  async function send(opts: { cluster?: string; auth?: string | null; type?: string; body: string }) {
    const headers: Record<string, string> = { 'content-type': opts.type ?? 'application/json' };
    if (opts.auth !== null) headers.authorization = opts.auth ?? 'Bearer t0ken-c1';
    const jobs = async () => Object.values(await service.ingestQueue.getJobCounts()).reduce((a, b) => a + b, 0);
    const before = await jobs();
    const res = await fetch(`${service.url}/audit-webhook/${opts.cluster ?? 'c1'}`, { method: 'POST', headers, body: opts.body });
    const json = (await res.json()) as { error: string; reason: string };
    return { status: res.status, error: json.error, reason: json.reason, queued: (await jobs()) - before };
  }
  const valid = () => JSON.stringify(eventList([auditEvent('create', cm, { user: 'alice' })]));

  it('401 without a bearer token', async () => {
    expect(await send({ auth: null, body: valid() })).toEqual({
      status: 401, reason: 'missing-token', error: 'missing bearer token: send "Authorization: Bearer <token>"', queued: 0,
    });
  });

  it('401 with a wrong token', async () => {
    expect(await send({ auth: 'Bearer t0ken-c2', body: valid() })).toEqual({
      status: 401, reason: 'wrong-token', error: 'wrong bearer token for cluster provider "c1"', queued: 0,
    });
  });

  it('404 for an unknown cluster provider', async () => {
    expect(await send({ cluster: 'c9', body: valid() })).toEqual({
      status: 404, reason: 'unknown-cluster', error: 'unknown cluster provider "c9"', queued: 0,
    });
  });

  it('415 for a body that is not JSON by content type', async () => {
    expect(await send({ type: 'text/plain', body: valid() })).toEqual({
      status: 415, reason: 'content-type', error: 'content type must be application/json, got "text/plain"', queued: 0,
    });
  });

  it('400 for malformed JSON', async () => {
    const r = await send({ body: '{"kind":"EventList","items":[' });
    expect(r).toMatchObject({ status: 400, reason: 'malformed-json', queued: 0 });
    expect(r.error).toMatch(/^malformed JSON: /);
  });

  it('400 for JSON that is not an audit event, naming the first offending field; the valid events of the batch are stored', async () => {
    const items = [auditEvent('create', cm, { user: 'alice' }), { ...auditEvent('create', cm, { user: 'bob' }), auditID: 42 }];
    expect(await send({ body: JSON.stringify(eventList(items)) })).toEqual({
      status: 400, reason: 'not-audit-event', error: 'not an audit event: items[1].auditID: expected a string', queued: 1,
    });
    expect(await send({ body: JSON.stringify({ kind: 'Pod', apiVersion: 'v1' }) })).toMatchObject({
      status: 400, error: 'not an audit event: kind: expected "EventList" or "Event"', queued: 0,
    });
  });

  it('400 for a name that would escape the repository path; that event is refused, the rest of the batch kept', async () => {
    const hostile = auditEvent('create', { ...cm, name: '../../../etc/passwd' }, { user: 'mallory' });
    const body = JSON.stringify(eventList([auditEvent('create', cm, { user: 'alice' }), hostile]));
    expect(await send({ body })).toEqual({
      status: 400, reason: 'not-audit-event', error: 'not an audit event: items[1].objectRef.name: "../../../etc/passwd" would escape the repository path', queued: 1,
    });
  });

  it('413 for a body over the limit', async () => {
    const big = auditEvent('create', { ...cm, body: { data: { blob: 'x'.repeat(LIMIT) } } }, { user: 'alice' });
    expect(await send({ body: JSON.stringify(eventList([big])) })).toEqual({
      status: 413, reason: 'too-large', error: `request body exceeds the limit of ${LIMIT} bytes`, queued: 0,
    });
  });

  it('a valid batch after all that is stored (the checks above did not just refuse everything)', async () => {
    const r = await send({ body: valid() });
    expect(r.status).toBe(200);
    expect(r.queued).toBe(1);
  });
});

describe('dashboard authentication', () => {
  let valkey: TestValkey;
  let service: TestService;
  beforeAll(async () => {
    valkey = await startTestValkey();
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig(await createBareRemote(dir)), {
      dashboardCredentials: { username: 'ops', password: 'correct horse' },
    });
  });
  afterAll(async () => {
    await service?.close();
    await valkey?.stop();
  });

  it('Bull Board refuses requests without the right credentials and serves those with them', async () => {
    const url = `${service.url}/admin/queues/api/queues`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Basic realm="GitOps Reverser queues", charset="UTF-8"');
    const wrong = await fetch(url, { headers: { authorization: `Basic ${Buffer.from('ops:wrong').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    const right = await fetch(url, { headers: { authorization: `Basic ${Buffer.from('ops:correct horse').toString('base64')}` } });
    expect(right.status).toBe(200);
    const names = ((await right.json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
    expect(names[0]).toBe('ingest');
    expect(names.some((n) => n.startsWith('write-'))).toBe(true);
  });
});
