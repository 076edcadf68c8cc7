// What the router lists for a deletecollection whose answer was not recorded (kube/list-object-names.ts),
// through real HTTP against a small API server of this file: pages with continue tokens, a continue token
// that expired (410) restarts the list, Terminating objects count as gone, and a refusal or an unreachable
// server is a failure that names the cluster, the type, the namespace and the permission, never a guess.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterClient } from '../../kube/cluster-clients.js';
import { createCollectionLister, listObjectNames } from '../../kube/list-object-names.js';
import { TokenBucket } from '../../kube/token-bucket.js';
import type { IngestJob } from '../../core/contracts.js';
import { kubeSkipReason } from '../support/kube-target.js';

const skipReason = await kubeSkipReason();
if (skipReason) console.warn(`skipping list-object-names.test.ts: ${skipReason}`);
const k8s = skipReason ? undefined : await import('@kubernetes/client-node');
const { ClusterClients } = skipReason ? ({} as typeof import('../../kube/cluster-clients.js')) : await import('../../kube/cluster-clients.js');

const ref = { group: '', version: 'v1', resource: 'configmaps', namespace: 'shop' };
const noSleep = async () => undefined;

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

/** Serves `answer` for each request (with its URL), on a free port; the client of cluster c1 for it. */
async function serve(answer: (url: URL, n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<{ client: ClusterClient; urls: string[] }> {
  const urls: string[] = [];
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    urls.push(`${url.pathname}${url.search}`);
    answer(url, urls.length, req, res);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const kc = new k8s!.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 's3cr3t-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }],
    currentContext: 'fake',
  });
  return { client: { cluster: 'c1', kubeConfig: kc, limiter: new TokenBucket(1000, 1000), credentials: "the service's own credentials" }, urls };
}

const json = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
const item = (name: string, terminating = false) => ({ metadata: { name, namespace: 'shop', ...(terminating ? { deletionTimestamp: '2026-12-01T10:00:00Z', finalizers: ['x'] } : {}) } });
const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });

describe.skipIf(skipReason !== undefined)('listObjectNames', () => {
  it('reads every page with its continue token, and leaves out what is Terminating', async () => {
    const pages: Record<string, unknown> = {
      '': { kind: 'ConfigMapList', metadata: { resourceVersion: '9', continue: 'p2' }, items: [item('a'), item('b', true)] },
      p2: { kind: 'ConfigMapList', metadata: { resourceVersion: '9' }, items: [item('c')] },
    };
    const { client, urls } = await serve((url, _n, _req, res) => json(res, 200, pages[url.searchParams.get('continue') ?? '']));
    expect(await listObjectNames(client, ref, { pageSize: 2 })).toEqual({ kind: 'listed', names: ['a', 'c'] });
    expect(urls).toEqual(['/api/v1/namespaces/shop/configmaps?limit=2', '/api/v1/namespaces/shop/configmaps?limit=2&continue=p2']);
  });

  it('lists a cluster-scoped type of a group at its own path', async () => {
    const { client, urls } = await serve((_url, _n, _req, res) => json(res, 200, { metadata: {}, items: [item('admin')] }));
    expect(await listObjectNames(client, { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', namespace: '' })).toEqual({ kind: 'listed', names: ['admin'] });
    expect(urls).toEqual(['/apis/rbac.authorization.k8s.io/v1/clusterroles?limit=500']);
  });

  it('starts again when a continue token expired (410), without what the first pages said', async () => {
    const { client, urls } = await serve((url, n, _req, res) => {
      if (url.searchParams.get('continue') === 'old') return json(res, 410, status(410, 'Expired', 'The provided continue parameter is too old'));
      if (n === 1) return json(res, 200, { metadata: { continue: 'old' }, items: [item('gone-meanwhile')] });
      return json(res, 200, { metadata: {}, items: [item('a')] });
    });
    expect(await listObjectNames(client, ref)).toEqual({ kind: 'listed', names: ['a'] });
    expect(urls).toHaveLength(3);
  });

  it('a refusal names the cluster, the type, the namespace and the permission, without the token', async () => {
    const { client } = await serve((_url, _n, _req, res) => json(res, 403, status(403, 'Forbidden', 'configmaps is forbidden: User "system:serviceaccount:gr:gr" cannot list resource "configmaps" (token s3cr3t-token)')));
    const outcome = await listObjectNames(client, ref);
    expect(outcome).toMatchObject({ kind: 'failed', transient: false });
    const reason = outcome.kind === 'failed' ? outcome.reason : '';
    expect(reason).toContain("cluster c1, listing configmaps in namespace shop with the service's own credentials: GET /api/v1/namespaces/shop/configmaps?limit=500: 403 Forbidden");
    expect(reason).toContain('(needs the permission to list configmaps in namespace shop)');
    expect(reason).not.toContain('s3cr3t-token');
    expect(reason).toContain('[redacted]');
  });

  it('retries 5xx and then fails as transient', async () => {
    const { client, urls } = await serve((_url, _n, _req, res) => json(res, 503, status(503, 'ServiceUnavailable', 'etcd is down')));
    const outcome = await listObjectNames(client, ref, { retries: 2, sleep: noSleep });
    expect(outcome).toMatchObject({ kind: 'failed', transient: true });
    expect(urls).toHaveLength(3);
  });
});

describe.skipIf(skipReason !== undefined)('createCollectionLister', () => {
  const job = (over: Partial<IngestJob> = {}): IngestJob => ({
    clusterId: 'c1',
    auditID: 'a',
    verb: 'deletecollection',
    stageTimestamp: '2026-12-01T10:00:00Z',
    user: { username: 'alice' },
    objectRef: { resource: 'configmaps', namespace: 'shop', apiVersion: 'v1' },
    responseCode: 200,
    ...over,
  });

  it('fails, saying why, for a cluster without a client or an event without an API version', async () => {
    const clients = new ClusterClients({});
    clients.update(new Map([['c1', { name: 'c1', qps: 5, burst: 10 }]]));
    const lister = createCollectionLister(clients);
    expect(await lister(job())).toEqual({
      kind: 'failed',
      reason: expect.stringContaining('cannot list configmaps in namespace shop to tell what a deletecollection deleted: cluster c1 has no spec.kubeConfigSecretRef'),
      transient: false,
    });
    expect(await lister(job({ objectRef: { resource: 'configmaps', namespace: 'shop' } }))).toMatchObject({ kind: 'failed', reason: expect.stringContaining('names no API version') });
  });
});
