// What a page on another site can make a logged-in operator's browser do to /admin: nothing. Every
// state-changing request (Bull Board's API, replay, reconcile) from another site or origin gets 403
// {reason: "cross-site"}; one with a form or text body (what a cross-site form sends without a CORS
// preflight) gets 415; Bull Board's own buttons (a PUT without a body, from the same origin) still work.
// Every answer carries the anti-framing, no-sniff and no-referrer headers, and none says X-Powered-By.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, OPERATOR, startDashboardFixture, VIEWER, type DashboardFixture } from '../support/dashboard-app.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const SECURITY_HEADERS = {
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

let valkey: TestValkey;
let fixture: DashboardFixture;
beforeAll(async () => {
  valkey = await startTestValkey();
  fixture = await startDashboardFixture(valkey.url);
});
afterAll(async () => {
  await fixture?.close();
  await valkey?.stop();
});

const headersOf = (res: Response) => Object.fromEntries([...res.headers].filter(([k]) => k in SECURITY_HEADERS || k === 'x-powered-by'));

describe('security headers', () => {
  it('are on every answer, Bull Board, the overview and errors included, and none says X-Powered-By', async () => {
    const url = await fixture.serve({
      overview: async () => ({ generatedAt: new Date().toISOString(), countsScope: 'this-replica', ingest: { queue: 'ingest', backlog: 0, deadLetters: 0 }, targets: [], clusters: [], rejectedUnknownCluster: {} }),
    });
    const broken = await fixture.serve({ overview: () => Promise.reject(new Error('Valkey is away')) });
    const { queue } = fixture;
    // Bull Board's page names its static files: they are answered by its own inner Express app.
    const page = await fetch(`${url}/admin/queues`, { headers: basic(VIEWER) });
    const script = /src="([^"]+\.js)"/.exec(await page.text())?.[1];
    expect(script).toBeDefined();
    const requests: [string, RequestInit?][] = [
      ['/admin/queues', { headers: basic(VIEWER) }],
      [new URL(script!, `${url}/admin/queues/`).pathname, { headers: basic(VIEWER) }],
      [`/admin/queues/api/queues?activeQueue=${queue.name}`, { headers: basic(VIEWER) }],
      [`/admin/queues/api/queues/${queue.name}/none/retry`, { method: 'PUT', headers: basic(OPERATOR) }],
      ['/admin/overview', { headers: basic(VIEWER) }],
      ['/admin/api/overview', { headers: basic(VIEWER) }],
      [`${broken}/admin/overview`, { headers: basic(VIEWER) }],
      [`${broken}/admin/api/overview`, { headers: basic(VIEWER) }],
      ['/admin/queues'],
      ['/healthz'],
      ['/metrics'],
      ['/nothing'],
      ['/audit-webhook/c1', { method: 'POST', body: '{}' }],
    ];
    for (const [path, init] of requests) {
      const res = await fetch(path.startsWith('http') ? path : `${url}${path}`, init);
      await res.arrayBuffer();
      const headers = headersOf(res);
      // A page may tighten the policy (the overview allows nothing but its inline style); never drop frame-ancestors.
      const csp = headers['content-security-policy'] ?? '';
      expect({ path, headers: { ...headers, 'content-security-policy': csp.split(/;\s*/).includes("frame-ancestors 'none'") ? "frame-ancestors 'none'" : csp } }).toEqual({ path, headers: SECURITY_HEADERS });
    }
  });
});

describe('cross-site requests to /admin', () => {
  let url = '';
  const host = () => new URL(url).host;
  beforeAll(async () => {
    url = await fixture.serve();
  });

  const retry = (id: string, headers: Record<string, string>, init: RequestInit = {}) =>
    fetch(`${url}/admin/queues/api/queues/${fixture.queue.name}/${id}/retry`, { method: 'PUT', ...init, headers: { ...basic(OPERATOR), ...headers } });
  const replay = (headers: Record<string, string>, body: string) =>
    fetch(`${url}/admin/api/replay`, { method: 'POST', headers: { ...basic(OPERATOR), ...headers }, body });

  it('refuses a change from another site or origin with 403, and changes nothing', async () => {
    const id = await fixture.failedJob();
    const refusals: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'https://evil.example' },
      { origin: `http://${host()}.evil.example` },
      { origin: `http://127.0.0.1:1` },
      { origin: 'null' },
      { origin: `http://${host()}`, 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of refusals) {
      const res = await retry(id, headers);
      expect({ headers, status: res.status, body: await res.json() }).toEqual({ headers, status: 403, body: { error: expect.stringContaining('another'), reason: 'cross-site' } });
    }
    expect(await fixture.queue.getJobState(id)).toBe('failed');
    const json = { 'content-type': 'application/json' };
    for (const res of [
      await replay({ ...json, origin: 'https://evil.example' }, JSON.stringify({ queue: fixture.queue.name })),
      await fetch(`${url}/admin/api/reconcile/team-a/prod`, { method: 'POST', headers: { ...basic(OPERATOR), ...json, 'sec-fetch-site': 'cross-site' } }),
      await fetch(`${url}/admin/queues/api/queues/${fixture.queue.name}/add`, { method: 'POST', headers: { ...basic(OPERATOR), ...json, origin: 'https://evil.example' }, body: JSON.stringify({ name: 'x', data: {} }) }),
    ]) {
      expect(res.status).toBe(403);
      expect(((await res.json()) as { reason: string }).reason).toBe('cross-site');
    }
    expect(await fixture.queue.getJobState(id)).toBe('failed');
  });

  it('refuses form and text bodies with 415, and changes nothing', async () => {
    const id = await fixture.failedJob();
    const bodies: [string | undefined, string][] = [
      ['text/plain', '{}'],
      ['application/x-www-form-urlencoded', 'a=b'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n'],
      [undefined, 'a body without a type'],
    ];
    for (const [type, body] of bodies) {
      const headers: Record<string, string> = type ? { 'content-type': type } : {};
      const res = await retry(id, headers, { body: type ? body : new Blob([body]) });
      expect({ type, status: res.status, body: await res.json() }).toEqual({ type, status: 415, body: { error: expect.stringContaining('JSON'), reason: 'content-type' } });
      const replayed = await replay(headers, type ? body : 'x');
      expect({ type, status: replayed.status }).toEqual({ type, status: 415 });
    }
    expect(await fixture.queue.getJobState(id)).toBe('failed');
  });

  it("lets the dashboard's own requests through: same origin, no body or a JSON one", async () => {
    const first = await fixture.failedJob();
    // Bull Board's Retry button: a PUT without a body from its own page.
    const button = await retry(first, { origin: `http://${host()}`, 'sec-fetch-site': 'same-origin', 'content-length': '0' });
    expect(button.status).toBe(204);
    const second = await fixture.failedJob();
    expect((await retry(second, { 'content-type': 'application/json' }, { body: '{}' })).status).toBe(204);
    // A client that is no browser (no Origin, no Sec-Fetch-Site): curl, scripts.
    const replayed = await replay({ 'content-type': 'application/json' }, JSON.stringify({ queue: fixture.queue.name, jobs: ['none'] }));
    expect(replayed.status).toBe(200);
  });

  it('accepts the origin a trusted proxy names in X-Forwarded-Host, and only from a trusted proxy', async () => {
    const id = await fixture.failedJob();
    const viaProxy = { origin: 'https://dash.example.com', 'x-forwarded-host': 'dash.example.com', 'x-forwarded-user': 'alice', 'x-forwarded-groups': 'ops' };
    const untrusted = await fixture.serve();
    const refused = await fetch(`${untrusted}/admin/queues/api/queues/${fixture.queue.name}/${id}/retry`, { method: 'PUT', headers: { ...basic(OPERATOR), ...viaProxy } });
    expect(refused.status).toBe(403);
    const trusted = await fixture.serve({ dashboardTrustedHeaders: { operatorGroup: 'ops' } });
    const other = await fetch(`${trusted}/admin/queues/api/queues/${fixture.queue.name}/${id}/retry`, { method: 'PUT', headers: { ...viaProxy, origin: 'https://evil.example' } });
    expect(other.status).toBe(403);
    expect(await fixture.queue.getJobState(id)).toBe('failed');
    const accepted = await fetch(`${trusted}/admin/queues/api/queues/${fixture.queue.name}/${id}/retry`, { method: 'PUT', headers: viaProxy });
    expect(accepted.status).toBe(204);
  });
});
