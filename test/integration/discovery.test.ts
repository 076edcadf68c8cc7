// Discovery over real HTTP: the real API server's types at their preferred versions, and, from a hand-written
// server, a group's preferred version among several, subresources and unwatchable types left out, and
// an aggregated API that answers 503 reported as failed instead of failing the whole discovery.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { discoverApi, discoverResources, resourceNamesOf } from '../../kube/discovery.js';
import { loadClientNode } from '../support/kube-api-stand-in.js';
import { kubeSkipReason, startKubeTarget, type KubeTarget } from '../support/kube-target.js';

const skipReason = await kubeSkipReason();
if (skipReason) console.warn(`skipping discovery.test.ts: ${skipReason}`);

const DOCS: Record<string, unknown> = {
  '/api': { kind: 'APIVersions', versions: ['v1'] },
  '/api/v1': {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [
      { name: 'pods', kind: 'Pod', namespaced: true, verbs: ['get', 'list', 'watch', 'create'] },
      { name: 'pods/log', kind: 'Pod', namespaced: true, verbs: ['get'] },
      { name: 'bindings', kind: 'Binding', namespaced: true, verbs: ['create'] },
    ],
  },
  '/apis': {
    kind: 'APIGroupList',
    groups: [
      { name: 'autoscaling', versions: [{ groupVersion: 'autoscaling/v2', version: 'v2' }, { groupVersion: 'autoscaling/v1', version: 'v1' }], preferredVersion: { groupVersion: 'autoscaling/v2', version: 'v2' } },
      { name: 'metrics.k8s.io', versions: [{ groupVersion: 'metrics.k8s.io/v1beta1', version: 'v1beta1' }] },
    ],
  },
  // Served at v1 too: taken once, at the preferred version.
  '/apis/autoscaling/v1': {
    kind: 'APIResourceList',
    resources: [{ name: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', namespaced: true, verbs: ['list', 'watch', 'get'] }],
  },
  '/apis/autoscaling/v2': {
    kind: 'APIResourceList',
    resources: [
      { name: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', namespaced: true, verbs: ['list', 'watch', 'get'] },
      { name: 'horizontalpodautoscalers/status', kind: 'HorizontalPodAutoscaler', namespaced: true, verbs: ['get', 'patch'] },
    ],
  },
};

describe.skipIf(skipReason)('discovery', () => {
  let target: KubeTarget;
  let server: Server;
  let url: string;
  beforeAll(async () => {
    target = await startKubeTarget();
    server = createServer((req, res) => {
      const doc = DOCS[req.url ?? ''];
      // An aggregated API whose backend is down, as metrics-server often is.
      const [code, body] = doc ? [200, doc] : [503, { kind: 'Status', code: 503, reason: 'ServiceUnavailable', message: 'the server is currently unable to handle the request' }];
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await target?.stop();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  it('lists the watchable types of every group at its preferred version, or at the first version that serves them', async () => {
    const resources = await discoverResources(target.kubeConfig());
    const names = resourceNamesOf(resources);
    for (const n of ['/configmaps', '/namespaces', 'apps/deployments', 'gitopsreverser.io/gittargets']) expect(names.has(n)).toBe(true);
    expect([...names].some((n) => n.includes('/status'))).toBe(false);
    expect(resources.find((r) => r.resource === 'deployments')).toMatchObject({ group: 'apps', version: 'v1', kind: 'Deployment', namespaced: true });
    expect(resources.find((r) => r.resource === 'namespaces')).toMatchObject({ group: '', version: 'v1', namespaced: false });
    // A type the preferred version does not serve is there at a version that does: CronJobs are batch/v1beta1
    // only on a 1.20 server, whose preferred batch version (v1) serves Jobs alone.
    const cronJobs = resources.filter((r) => r.group === 'batch' && r.resource === 'cronjobs');
    expect(cronJobs).toHaveLength(1);
    expect(['v1', 'v1beta1']).toContain(cronJobs[0]!.version);
    expect(resources.filter((r) => r.group === 'batch' && r.resource === 'jobs')).toMatchObject([{ version: 'v1' }]);
    expect(names.size).toBe(resources.length);
  });

  it('takes preferred versions, leaves out subresources and unwatchable types, and reports a group that fails', async () => {
    const k8s = await loadClientNode();
    if (k8s instanceof Error) throw k8s;
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const found = await discoverApi(kc);
    expect(found.resources).toEqual([
      { group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true, verbs: ['get', 'list', 'watch', 'create'] },
      { group: 'autoscaling', version: 'v2', resource: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', namespaced: true, verbs: ['list', 'watch', 'get'] },
    ]);
    expect(found.failed).toEqual([{ groupVersion: 'metrics.k8s.io/v1beta1', error: expect.stringContaining('503 ServiceUnavailable') }]);
    expect([...resourceNamesOf(found.resources)]).toEqual(['/pods', 'autoscaling/horizontalpodautoscalers']);
  });
});
