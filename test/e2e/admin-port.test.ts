// /admin on a port of its own (ADMIN_PORT), so a NetworkPolicy can keep the dashboard to an SSO proxy
// while API servers and Prometheus reach the main port: Bull Board, the overview and the replay and
// reconcile APIs answer there only, over the same TLS as the main port; the main port answers 404 JSON
// for /admin, and the admin port serves nothing else. LISTEN_ADDRESS binds both to one address.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../queues/embedded-valkey.js';
import { basic, OPERATOR, VIEWER } from '../support/dashboard-app.js';
import { createBareRemote, waitFor } from '../support/git-repos.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { createTestPki, type TestPki } from '../support/test-pki.js';
import { fingerprintOf, servedFingerprint } from '../support/tls.js';
import { singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

/** A request over HTTPS trusting the test CA: status, content type and body. */
function httpsRequest(url: string, ca: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const json = init.body === undefined ? {} : { 'content-type': 'application/json' };
    const req = request(url, { ca, method: init.method ?? 'GET', headers: { ...json, ...init.headers } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end(init.body === undefined ? undefined : JSON.stringify(init.body));
  });
}
const httpsGet = (url: string, ca: string, headers: Record<string, string> = {}) => httpsRequest(url, ca, { headers });

let valkey: TestValkey;
beforeAll(async () => {
  valkey = await startTestValkey();
});
afterAll(async () => {
  await valkey?.stop();
});

describe('ADMIN_PORT in the running service', () => {
  let service: TestService;
  let pki: TestPki;
  let dir = '';
  let ca = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gr-admin-port-'));
    pki = await createTestPki(dir);
    ca = await readFile(pki.ca.cert, 'utf8');
    service = await startTestService(valkey.url, async (d) => singleClusterConfig(await createBareRemote(d)), {
      adminPort: 0,
      tls: { certFile: pki.server.cert, keyFile: pki.server.key },
      dashboardCredentials: VIEWER,
      dashboardOperatorCredentials: OPERATOR,
    });
  });
  afterAll(async () => {
    await service?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves /admin on the admin port only, over the same TLS', async () => {
    expect(service.adminPort).not.toBe(service.port);
    expect(service.adminUrl).toBe(`https://127.0.0.1:${service.adminPort}`);
    expect(await servedFingerprint(service.adminPort)).toBe(await fingerprintOf(pki.server.cert));
    for (const path of ['/admin/queues', '/admin/overview', '/admin/api/overview', '/admin/queues/api/queues']) {
      expect({ path, status: (await httpsGet(`${service.adminUrl}${path}`, ca, basic(VIEWER))).status }).toEqual({ path, status: 200 });
      expect({ path, status: (await httpsGet(`${service.adminUrl}${path}`, ca)).status }).toEqual({ path, status: 401 });
      const main = await httpsGet(`${service.url}${path}`, ca, basic(VIEWER));
      expect({ path, ...main }).toEqual({ path, status: 404, type: expect.stringMatching(/^application\/json/), body: JSON.stringify({ error: 'not found', reason: 'not-found' }) });
    }
  });

  it("takes the operator's replay and reconcile on the admin port, and refuses them on the main port", async () => {
    const post = async (base: string, path: string, body?: unknown) => (await httpsRequest(`${base}${path}`, ca, { method: 'POST', headers: { ...basic(OPERATOR), 'content-type': 'application/json' }, body })).status;
    expect(await post(service.adminUrl, '/admin/api/replay', { queue: 'ingest' })).toBe(200);
    // The demo cluster has no credentials to list it with: the API answers, naming why (409).
    expect(await post(service.adminUrl, '/admin/api/reconcile/gitops-reverser/c1')).toBe(409);
    expect(await post(service.url, '/admin/api/replay', { queue: 'ingest' })).toBe(404);
    expect(await post(service.url, '/admin/api/reconcile/gitops-reverser/c1')).toBe(404);
  });

  it('keeps the webhook, metrics and health on the main port, and off the admin port', async () => {
    for (const path of ['/healthz', '/metrics']) {
      expect({ path, status: (await httpsGet(`${service.url}${path}`, ca)).status }).toEqual({ path, status: 200 });
      expect({ path, status: (await httpsGet(`${service.adminUrl}${path}`, ca)).status }).toEqual({ path, status: 404 });
    }
    const webhook = (base: string) => httpsRequest(`${base}/audit-webhook/c1`, ca, { method: 'POST', headers: { authorization: 'Bearer wrong' }, body: {} });
    expect((await webhook(service.url)).status).toBe(401);
    expect((await webhook(service.adminUrl)).status).toBe(404);
  });
});

describe('npm start with LISTEN_ADDRESS and ADMIN_PORT', () => {
  let svc: ServiceProcess | undefined;
  let dataDir = '';
  afterAll(async () => {
    svc?.kill();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('listens on that address only, /admin on the admin port', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gr-listen-'));
    const [port, adminPort] = [await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, VALKEY_URL: valkey.url, KEY_PREFIX: `gr-listen-${port}`, PORT: String(port), ADMIN_PORT: String(adminPort), LISTEN_ADDRESS: '127.0.0.2' };
    delete env.CONFIG_FILE;
    delete env.CONFIG_SOURCE;
    delete env.KUBERNETES_SERVICE_HOST;
    const started = (svc = startServiceProcess(env));
    await started.alive(waitFor(async () => started.output().includes('"msg":"ready"'), 'the service to be ready', 30_000));
    expect(started.output()).toContain(`"dashboard":"http://127.0.0.2:${adminPort}/admin/queues"`);
    expect((await fetch(`http://127.0.0.2:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.2:${adminPort}/admin/queues`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.2:${port}/admin/queues`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.2:${adminPort}/healthz`)).status).toBe(404);
    for (const p of [port, adminPort]) {
      const refused = await fetch(`http://127.0.0.1:${p}/healthz`).then(
        () => 'answered',
        (err: Error & { cause?: { code?: string } }) => err.cause?.code,
      );
      expect({ port: p, refused }).toEqual({ port: p, refused: 'ECONNREFUSED' });
    }
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(0);
  });
});
