// Reading objects back from a source cluster through real HTTP: against the real API server (the run's
// control plane, or a cluster of your own with KUBECONFIG) for found, gone, paths it does not serve, refused credentials,
// Secrets and the limiter; and against a small misbehaving server of this file for retries, 403, 404s
// that are not "gone", credentials that could not be prepared, refused kubeconfigs, timeouts and dead ports.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterSource } from '../../config/resolved-config.js';
import type { ClusterClient } from '../../kube/cluster-clients.js';
import { fetchObject, type FetchOutcome } from '../../kube/fetch-object.js';
import { createObjectFetcher } from '../../kube/object-fetcher.js';
import { TokenBucket, type Clock } from '../../kube/token-bucket.js';
import { REDACTED_VALUE } from '../../core/redact-secret.js';
import { kubeSkipReason, startKubeTarget, type KubeTarget } from '../support/kube-target.js';

// client-node must load for KubeConfig; where it cannot, the file skips, saying why.
const skipReason = await kubeSkipReason();
if (skipReason) console.warn(`skipping object-fetch.test.ts: ${skipReason}`);
const k8s = skipReason ? undefined : await import('@kubernetes/client-node');
const { ClusterClients } = skipReason ? ({} as typeof import('../../kube/cluster-clients.js')) : await import('../../kube/cluster-clients.js');

/** A clock that stands still: limiter waits are recorded, never waited for. */
function frozenClock() {
  const sleeps: number[] = [];
  const clock: Clock = {
    now: () => 0,
    sleep: async (ms) => void sleeps.push(ms),
  };
  return { clock, sleeps };
}

const noSleep = async () => undefined;
const source = (extra: Partial<ClusterSource> = {}): ClusterSource => ({ name: 'c1', qps: 100, burst: 100, ...extra });

describe.skipIf(skipReason !== undefined)('fetchObject against the API server', () => {
  let target: KubeTarget;
  let ns: string;

  beforeAll(async () => {
    target = await startKubeTarget();
    ns = await target.namespace();
  });
  afterAll(async () => {
    await target?.stop();
  });

  /** The client of cluster c1, built by ClusterClients from `extra` (default: the target's own credentials). */
  function clientFor(extra: Partial<ClusterSource> = {}, clock?: Clock): ClusterClient {
    const clients = new ClusterClients({ defaultKubeConfig: target.kubeConfig(), ...(clock ? { clock } : {}) });
    clients.update(new Map([['c1', source(extra)]]));
    const client = clients.get('c1');
    if (!client) throw new Error(clients.whyNoClient('c1'));
    return client;
  }

  /**
   * The target's kubeconfig as text, as a kubeconfig Secret holds it (inline data only: a CA file is
   * inlined), with its token replaced when asked. Undefined when its credentials are not inline (a real
   * cluster's exec plugin or certificate files), which a Secret's kubeconfig may not use.
   */
  function kubeConfigText(token?: string): string | undefined {
    const base = target.kubeConfig();
    const { caFile, ...cluster } = base.getCurrentCluster()!;
    const caData = cluster.caData ?? (caFile ? readFileSync(caFile).toString('base64') : undefined);
    const own = base.getCurrentUser();
    const user = token !== undefined ? { name: 'u', token } : own && { name: 'u', token: own.token, username: own.username, password: own.password, certData: own.certData, keyData: own.keyData };
    if (!user || (token === undefined && (own?.exec || own?.authProvider || own?.certFile || own?.keyFile))) return undefined;
    const kc = new k8s!.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ ...cluster, ...(caData ? { caData } : {}) }],
      users: [user],
      contexts: [{ name: 'secret', cluster: cluster.name, user: 'u' }],
      currentContext: 'secret',
    });
    return kc.exportConfig();
  }

  const configMapRef = (name: string) => ({ resource: 'configmaps', namespace: ns, name, apiGroup: '', apiVersion: 'v1' });

  it('finds a namespaced core object, as the server stores it now', async () => {
    const created = await target.create<KubernetesObject & { data: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: ns }, data: { color: 'blue' } });
    const outcome = await fetchObject(clientFor(), configMapRef('settings'));
    expect(outcome).toMatchObject({ kind: 'found', object: { kind: 'ConfigMap', metadata: { name: 'settings', namespace: ns, resourceVersion: created.metadata?.resourceVersion }, data: { color: 'blue' } } });
  });

  it('finds the parent of a scale event, and a cluster-scoped Namespace', async () => {
    await target.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns },
      spec: { replicas: 0, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } } },
    });
    const client = clientFor();
    const scale = await fetchObject(client, { resource: 'deployments', subresource: 'scale', namespace: ns, name: 'web', apiGroup: 'apps', apiVersion: 'v1' });
    expect(scale).toMatchObject({ kind: 'found', object: { kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 0 } } });
    const namespace = await fetchObject(client, { resource: 'namespaces', namespace: ns, name: ns, apiGroup: '', apiVersion: 'v1' });
    expect(namespace).toMatchObject({ kind: 'found', object: { kind: 'Namespace', metadata: { name: ns } } });
  });

  it('says gone for an object deleted since the event (404)', async () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'short-lived', namespace: ns }, data: {} };
    await target.create(cm);
    await target.remove(cm);
    expect(await fetchObject(clientFor(), configMapRef('short-lived'))).toEqual({ kind: 'gone' });
    expect(await fetchObject(clientFor(), configMapRef('never-existed'))).toEqual({ kind: 'gone' });
  });

  it('fails, naming the path, for a 404 from a path the server does not serve (an unknown resource or API version)', async () => {
    await target.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'exists', namespace: ns }, data: {} });
    const client = clientFor();
    const resource = await fetchObject(client, { ...configMapRef('exists'), resource: 'configmapz' }, { sleep: noSleep });
    expect(resource).toEqual({
      kind: 'failed',
      transient: false,
      reason: expect.stringMatching(new RegExp(`^cluster c1 answered 404.* reading configmapz ${ns}/exists at /api/v1/namespaces/${ns}/configmapz/exists: it does not serve that path \\(is v1 served there, with the resource configmapz\\?\\)$`)),
    });
    const version = await fetchObject(client, { ...configMapRef('exists'), apiVersion: 'v9' }, { sleep: noSleep });
    expect(version).toMatchObject({ kind: 'failed', transient: false, reason: expect.stringContaining(`at /api/v9/namespaces/${ns}/configmaps/exists: it does not serve that path`) });
    const group = await fetchObject(client, { resource: 'deployments', namespace: ns, name: 'exists', apiGroup: 'nonexistent.example.com', apiVersion: 'v1' }, { sleep: noSleep });
    expect(group).toMatchObject({ kind: 'failed', transient: false, reason: expect.stringContaining('at /apis/nonexistent.example.com/v1/') });
  });

  it("reads with a kubeconfig Secret's text", async (ctx) => {
    const text = kubeConfigText();
    if (text === undefined) {
      const why = "the cluster's own credentials are not inline (exec or files), which a Secret's kubeconfig may not use";
      console.info(`skipped: ${why}`);
      ctx.skip(why);
    }
    await target.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'via-secret', namespace: ns }, data: { a: '1' } });
    const client = clientFor({ kubeConfig: text });
    expect(client.credentials).toBe('the kubeconfig of spec.kubeConfigSecretRef');
    expect(await fetchObject(client, configMapRef('via-secret'))).toMatchObject({ kind: 'found', object: { data: { a: '1' } } });
  });

  it('fails, not transiently, when the cluster refuses the credentials (401), naming cluster, resource and permission', async () => {
    const outcome = await fetchObject(clientFor({ kubeConfig: kubeConfigText('wrong-t0ken') }), configMapRef('settings'), { sleep: noSleep });
    expect(outcome).toMatchObject({ kind: 'failed', transient: false });
    const reason = (outcome as Extract<FetchOutcome, { kind: 'failed' }>).reason;
    expect(reason).toContain('cluster c1 does not accept the kubeconfig of spec.kubeConfigSecretRef (401');
    expect(reason).toContain(`configmaps ${ns}/settings`);
    expect(reason).toContain(`get configmaps in namespace ${ns}`);
    expect(reason).not.toContain('wrong-t0ken');
  });

  it('hands a Secret back redacted', async () => {
    await target.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: ns, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"password":"aHVudGVyMg=="}}' } },
      data: { password: Buffer.from('hunter2').toString('base64') },
    });
    const outcome = await fetchObject(clientFor(), { resource: 'secrets', namespace: ns, name: 'db', apiGroup: '', apiVersion: 'v1' });
    expect(outcome).toMatchObject({ kind: 'found', object: { kind: 'Secret', data: { password: REDACTED_VALUE } } });
    expect(JSON.stringify(outcome)).not.toContain('aHVudGVyMg==');
  });

  it('makes every read wait on the cluster limiter: qps 2, burst 3', async () => {
    for (let i = 0; i < 10; i++) await target.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `many-${i}`, namespace: ns }, data: {} });
    const { clock, sleeps } = frozenClock();
    const client = clientFor({ qps: 2, burst: 3 }, clock);
    const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => fetchObject(client, configMapRef(`many-${i}`))));
    expect(outcomes.every((o) => o.kind === 'found')).toBe(true);
    // All ask at the same instant: the burst goes at once, the 7 others are due 500 ms apart.
    expect(client.limiter.waits).toBe(7);
    expect([...sleeps].sort((a, b) => a - b)).toEqual([500, 1000, 1500, 2000, 2500, 3000, 3500]);
  });
});

/** A server answering each GET with what `answer` says, counting requests. */
async function startFakeApiServer(answer: (n: number, req: IncomingMessage, res: ServerResponse) => void) {
  let requests = 0;
  const server: Server = createServer((req, res) => answer(++requests, req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests: () => requests,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const json = (res: ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });

describe.skipIf(skipReason !== undefined)('fetchObject against a misbehaving API server', () => {
  const ref = { resource: 'configmaps', namespace: 'shop', name: 'settings', apiGroup: '', apiVersion: 'v1' };

  function client(server: string, burst = 10, token = 'tok'): ClusterClient & { sleeps: number[] } {
    const kc = new k8s!.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server, skipTLSVerify: true }],
      users: [{ name: 'u', token }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }],
      currentContext: 'fake',
    });
    const { clock, sleeps } = frozenClock();
    return { cluster: 'c1', kubeConfig: kc, limiter: new TokenBucket(1, burst, clock), credentials: 'test credentials', sleeps };
  }

  it('retries 503 and 429 with a doubling backoff, each retry waiting on the limiter, and sends the token', async () => {
    const auth: (string | undefined)[] = [];
    const server = await startFakeApiServer((n, req, res) => {
      auth.push(req.headers.authorization);
      if (n === 1) return json(res, 503, status(503, 'ServiceUnavailable', 'etcd is busy'));
      if (n === 2) return json(res, 429, status(429, 'TooManyRequests', 'slow down'));
      json(res, 200, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'shop' }, data: { a: '1' } });
    });
    try {
      const c = client(server.url, 1);
      const backoffs: number[] = [];
      const outcome = await fetchObject(c, ref, { sleep: async (ms) => void backoffs.push(ms) });
      expect(outcome).toMatchObject({ kind: 'found', object: { data: { a: '1' } } });
      expect(server.requests()).toBe(3);
      expect(backoffs).toEqual([200, 400]);
      expect(c.limiter.waits).toBe(2);
      expect(auth).toEqual(['Bearer tok', 'Bearer tok', 'Bearer tok']);
    } finally {
      await server.stop();
    }
  });

  it('gives up after 3 retries, transiently, with the last answer', async () => {
    const server = await startFakeApiServer((_n, _req, res) => json(res, 500, status(500, 'InternalError', 'etcdserver: request timed out')));
    try {
      const outcome = await fetchObject(client(server.url), ref, { sleep: noSleep });
      expect(server.requests()).toBe(4);
      expect(outcome).toEqual({ kind: 'failed', transient: true, reason: 'cluster c1 answered 500: etcdserver: request timed out reading configmaps shop/settings (4 attempts)' });
    } finally {
      await server.stop();
    }
  });

  it('fails at once on 403, naming the missing permission', async () => {
    const server = await startFakeApiServer((_n, _req, res) =>
      json(res, 403, status(403, 'Forbidden', 'configmaps "settings" is forbidden: User "system:serviceaccount:gr:reader" cannot get resource "configmaps" in API group "" in the namespace "shop"')),
    );
    try {
      const outcome = await fetchObject(client(server.url), ref, { sleep: noSleep });
      expect(server.requests()).toBe(1);
      expect(outcome).toMatchObject({ kind: 'failed', transient: false });
      expect((outcome as Extract<FetchOutcome, { kind: 'failed' }>).reason).toMatch(
        /^cluster c1: missing permission to get configmaps in namespace shop for test credentials, reading configmaps shop\/settings \(403: configmaps "settings" is forbidden: User "system:serviceaccount:gr:reader"/,
      );
    } finally {
      await server.stop();
    }
  });

  it('times out a server that does not answer, and retries it', async () => {
    const server = await startFakeApiServer(() => undefined);
    try {
      const outcome = await fetchObject(client(server.url), ref, { sleep: noSleep, timeoutMs: 100, retries: 1 });
      expect(server.requests()).toBe(2);
      expect(outcome).toEqual({ kind: 'failed', transient: true, reason: 'cluster c1 could not be reached reading configmaps shop/settings: no answer within 0.1 s (2 attempts)' });
    } finally {
      await server.stop();
    }
  });

  it('fails transiently when nothing listens', async () => {
    const server = await startFakeApiServer(() => undefined);
    await server.stop();
    const outcome = await fetchObject(client(server.url), ref, { sleep: noSleep });
    expect(outcome).toMatchObject({ kind: 'failed', transient: true, reason: expect.stringMatching(/^cluster c1 could not be reached reading configmaps shop\/settings: .*ECONNREFUSED.*\(4 attempts\)$/) });
  });

  it('says gone only for a 404 whose NotFound Status names the object; any other 404 fails, naming the path', async () => {
    const server = await startFakeApiServer((n, _req, res) => {
      if (n === 1) return json(res, 404, { ...status(404, 'NotFound', 'configmaps "settings" not found'), details: { name: 'settings', kind: 'configmaps' } });
      if (n === 2) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        return res.end('404 page not found\n');
      }
      if (n === 3) return json(res, 404, { ...status(404, 'NotFound', 'the server could not find the requested resource'), details: {} });
      json(res, 404, { ...status(404, 'Gone', 'gone elsewhere'), details: { name: 'settings' } });
    });
    try {
      const c = client(server.url);
      expect(await fetchObject(c, ref, { sleep: noSleep })).toEqual({ kind: 'gone' });
      const path = '/api/v1/namespaces/shop/configmaps/settings';
      expect(await fetchObject(c, ref, { sleep: noSleep })).toEqual({
        kind: 'failed',
        transient: false,
        reason: `cluster c1 answered 404 reading configmaps shop/settings at ${path}: it does not serve that path (is v1 served there, with the resource configmaps?)`,
      });
      expect(await fetchObject(c, ref, { sleep: noSleep })).toMatchObject({ kind: 'failed', transient: false, reason: expect.stringContaining(`404: the server could not find the requested resource reading configmaps shop/settings at ${path}`) });
      expect(await fetchObject(c, ref, { sleep: noSleep })).toMatchObject({ kind: 'failed', transient: false, reason: expect.stringContaining(`at ${path}`) });
      expect(server.requests()).toBe(4);
    } finally {
      await server.stop();
    }
  });

  it('retries credentials that could not be prepared, as transient, without repeating what the exec plugin wrote', async () => {
    const server = await startFakeApiServer((_n, _req, res) => json(res, 200, {}));
    try {
      const kc = new k8s!.KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'fake', server: server.url, skipTLSVerify: true }],
        users: [
          {
            name: 'u',
            exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', 'process.stderr.write("token s3cr3t-from-stderr expired"); process.exit(1)'] },
          },
        ],
        contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }],
        currentContext: 'fake',
      });
      const { clock } = frozenClock();
      const c: ClusterClient = { cluster: 'c1', kubeConfig: kc, limiter: new TokenBucket(1, 10, clock), credentials: "the service's own credentials" };
      const outcome = await fetchObject(c, ref, { sleep: noSleep, retries: 1 });
      expect(outcome).toEqual({
        kind: 'failed',
        transient: true,
        reason: "cluster c1, reading configmaps shop/settings with the service's own credentials: the exec plugin of the kubeconfig failed (2 attempts)",
      });
      expect(server.requests()).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it("never sends anything with a Secret's kubeconfig that names a token file, and says why", async () => {
    const server = await startFakeApiServer((_n, _req, res) => json(res, 403, status(403, 'Forbidden', 'no')));
    const dir = mkdtempSync(join(tmpdir(), 'fetch-token-'));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'service-account-t0ken');
    try {
      const text = JSON.stringify({
        clusters: [{ name: 'evil', cluster: { server: server.url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { tokenFile } }],
        contexts: [{ name: 'evil', context: { cluster: 'evil', user: 'u' } }],
        'current-context': 'evil',
      });
      const clients = new ClusterClients();
      clients.update(new Map([['c1', source({ kubeConfig: text })]]));
      const outcome = await createObjectFetcher(clients)({
        clusterId: 'c1',
        auditID: 'a1',
        verb: 'update',
        stageTimestamp: '',
        user: { username: 'u' },
        objectRef: ref,
        responseCode: 200,
      });
      expect(outcome).toMatchObject({ kind: 'failed', transient: false, reason: expect.stringMatching(/^cannot read configmaps shop\/settings: cluster c1: the kubeconfig of spec.kubeConfigSecretRef is refused: users\[0\]\.user\.tokenFile/) });
      expect(JSON.stringify(outcome)).not.toContain(tokenFile);
      expect(server.requests()).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it("keeps the client's own token out of a reason, should the server echo it", async () => {
    const server = await startFakeApiServer((_n, req, res) => json(res, 403, status(403, 'Forbidden', `denied for ${req.headers.authorization ?? ''}`)));
    try {
      const outcome = await fetchObject(client(server.url, 10, 'echoed-t0ken'), ref, { sleep: noSleep });
      expect(outcome).toMatchObject({ kind: 'failed', reason: expect.stringContaining('(403: denied for Bearer [redacted])') });
      expect(JSON.stringify(outcome)).not.toContain('echoed-t0ken');
    } finally {
      await server.stop();
    }
  });

  it('fails at once on an answer that is not an object', async () => {
    const server = await startFakeApiServer((_n, _req, res) => json(res, 200, ['not', 'an', 'object']));
    try {
      const outcome = await fetchObject(client(server.url), ref, { sleep: noSleep });
      expect(outcome).toEqual({ kind: 'failed', transient: false, reason: 'cluster c1 answered reading configmaps shop/settings with something that is not an object' });
    } finally {
      await server.stop();
    }
  });
});
