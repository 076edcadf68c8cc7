// The API-server stand-in, driven by the real @kubernetes/client-node over real HTTP: pagination, continue
// tokens after compaction, watch order, 410 Gone, bookmarks, informers, get, status patches, discovery, auth.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type * as K8s from '@kubernetes/client-node';
import { waitFor } from '../support/git-repos.js';
import { loadClientNode, startKubeApiStandIn, type KubeApiStandIn, type KubeObject } from '../support/kube-api-stand-in.js';

// client-node 2.x needs undici 8, which needs Node >= 22.19: on older Node these cases skip, saying why.
const loaded = await loadClientNode();
const skipReason = loaded instanceof Error ? loaded.message : undefined;
if (skipReason) console.warn(`skipping client-node cases of kube-api-stand-in.test.ts: ${skipReason}`);
function k(): typeof K8s {
  if (loaded instanceof Error) throw loaded;
  return loaded;
}

const GROUP = 'gitopsreverser.io';
const VERSION = 'v1alpha1';

let api: KubeApiStandIn;
let kc: K8s.KubeConfig;

beforeEach(async () => {
  api = await startKubeApiStandIn({ bookmarkIntervalMs: 50 });
  if (!skipReason) kc = api.kubeConfig();
});
afterEach(async () => {
  await api.stop();
});

function configMap(name: string, data: Record<string, string> = {}, labels?: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'team-a', ...(labels ? { labels } : {}) }, data };
}

function gitTarget(name: string): KubeObject {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'GitTarget',
    metadata: { name, namespace: 'team-a' },
    spec: { providerRef: { name: 'origin' }, branch: 'main', path: `clusters/${name}` },
  };
}

async function expectStatus(p: Promise<unknown>, code: number, reason: string): Promise<Record<string, unknown>> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(k().ApiException);
  const ex = err as K8s.ApiException<unknown>;
  expect(ex.code).toBe(code);
  const body = (typeof ex.body === 'string' ? JSON.parse(ex.body) : ex.body) as Record<string, unknown>;
  expect(body).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason });
  return body;
}

interface Received {
  type: string;
  object: KubeObject;
}

/** Starts a watch; resolves `done` when the stream ends. */
async function startWatch(path: string, query: Record<string, string | number | boolean | undefined>) {
  const events: Received[] = [];
  let finish: (err: unknown) => void = () => undefined;
  const done = new Promise<unknown>((resolve) => (finish = resolve));
  const controller = await new (k().Watch)(kc).watch(
    path,
    query,
    (type: string, object: KubeObject) => events.push({ type, object }),
    (err: unknown) => finish(err),
  );
  return { events, done, controller };
}

describe.skipIf(skipReason !== undefined)('kube API stand-in through @kubernetes/client-node', () => {
  it('lists with limit/continue across three pages from one consistent resourceVersion', async () => {
    for (let i = 0; i < 7; i++) api.create(configMap(`cm-${i}`));
    const core = kc.makeApiClient(k().CoreV1Api);
    const p1 = await core.listNamespacedConfigMap({ namespace: 'team-a', limit: 3 });
    expect(p1.kind).toBe('ConfigMapList');
    expect(p1.items.map((c) => c.metadata?.name)).toEqual(['cm-0', 'cm-1', 'cm-2']);
    expect(p1.metadata?.remainingItemCount).toBe(4);
    const listRv = p1.metadata?.resourceVersion;
    // A change between pages does not show up: the continuation reads the list's snapshot.
    api.create(configMap('cm-3a'));
    const p2 = await core.listNamespacedConfigMap({ namespace: 'team-a', limit: 3, _continue: p1.metadata?._continue });
    expect(p2.items.map((c) => c.metadata?.name)).toEqual(['cm-3', 'cm-4', 'cm-5']);
    expect(p2.metadata?.resourceVersion).toBe(listRv);
    const p3 = await core.listNamespacedConfigMap({ namespace: 'team-a', limit: 3, _continue: p2.metadata?._continue });
    expect(p3.items.map((c) => c.metadata?.name)).toEqual(['cm-6']);
    expect(p3.metadata?._continue).toBeUndefined();
    // Cluster-wide list and label selectors.
    api.create({ ...configMap('other', {}, { app: 'x' }), metadata: { name: 'other', namespace: 'team-b', labels: { app: 'x' } } });
    const all = await core.listConfigMapForAllNamespaces({});
    expect(all.items).toHaveLength(9);
    const sel = await core.listConfigMapForAllNamespaces({ labelSelector: 'app=x' });
    expect(sel.items.map((c) => c.metadata?.name)).toEqual(['other']);
  });

  it('answers 410 Expired to a continue token older than the compaction point', async () => {
    for (let i = 0; i < 4; i++) api.create(configMap(`cm-${i}`));
    const core = kc.makeApiClient(k().CoreV1Api);
    const p1 = await core.listNamespacedConfigMap({ namespace: 'team-a', limit: 2 });
    api.create(configMap('later'));
    api.compact();
    await expectStatus(core.listNamespacedConfigMap({ namespace: 'team-a', limit: 2, _continue: p1.metadata?._continue }), 410, 'Expired');
  });

  it('streams ADDED, MODIFIED, DELETED in order after a given resourceVersion', async () => {
    api.create(configMap('before'));
    const from = api.resourceVersion();
    api.create(configMap('a', { k: '1' }));
    api.update(configMap('a', { k: '2' }));
    const w = await startWatch('/api/v1/namespaces/team-a/configmaps', { resourceVersion: String(from) });
    api.delete('v1', 'ConfigMap', 'team-a', 'a');
    api.create({ ...configMap('elsewhere'), metadata: { name: 'elsewhere', namespace: 'team-b' } });
    await waitFor(() => w.events.length >= 3, 'three watch events', 5000, 10);
    w.controller.abort();
    expect(w.events.map((e) => [e.type, e.object.metadata?.name])).toEqual([
      ['ADDED', 'a'],
      ['MODIFIED', 'a'],
      ['DELETED', 'a'],
    ]);
    const rvs = w.events.map((e) => Number(e.object.metadata?.resourceVersion));
    expect(rvs).toEqual([...rvs].sort((x, y) => x - y));
    expect(rvs[0]).toBeGreaterThan(from);
  });

  it('sends a single 410 ERROR event to a watch from a compacted resourceVersion', async () => {
    api.create(configMap('a'));
    const old = api.resourceVersion();
    api.update(configMap('a', { k: 'v' }));
    api.compact();
    const w = await startWatch('/api/v1/namespaces/team-a/configmaps', { resourceVersion: String(old) });
    await w.done;
    expect(w.events).toHaveLength(1);
    expect(w.events[0]?.type).toBe('ERROR');
    expect(w.events[0]?.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
  });

  it('sends bookmarks when asked, and ends the stream at timeoutSeconds', async () => {
    api.create(gitTarget('t1'));
    const w = await startWatch(`/apis/${GROUP}/${VERSION}/namespaces/team-a/gittargets`, {
      resourceVersion: String(api.resourceVersion()),
      allowWatchBookmarks: true,
      timeoutSeconds: 1,
    });
    await waitFor(() => w.events.filter((e) => e.type === 'BOOKMARK').length >= 2, 'two bookmarks', 5000, 10);
    const bm = w.events.find((e) => e.type === 'BOOKMARK');
    expect(bm?.object).toMatchObject({ kind: 'GitTarget', apiVersion: `${GROUP}/${VERSION}`, metadata: { resourceVersion: String(api.resourceVersion()) } });
    expect(await w.done).toBeNull();
    expect(api.openWatches()).toBe(0);
  });

  it('feeds a client-node informer: list, then watch sees a later create', async () => {
    api.create(gitTarget('existing'));
    const custom = kc.makeApiClient(k().CustomObjectsApi);
    const path = `/apis/${GROUP}/${VERSION}/namespaces/team-a/gittargets`;
    const informer = k().makeInformer<K8s.KubernetesObject>(
      kc,
      path,
      () => custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team-a', plural: 'gittargets' }) as Promise<K8s.KubernetesListObject<K8s.KubernetesObject>>,
    );
    const added: string[] = [];
    informer.on('add', (o) => added.push(o.metadata?.name ?? ''));
    await informer.start();
    try {
      await waitFor(() => added.includes('existing'), 'existing added', 5000, 10);
      await waitFor(() => api.openWatches() === 1, 'one open watch', 5000, 10);
      api.create(gitTarget('later'));
      await waitFor(() => added.includes('later'), 'later added', 5000, 10);
      expect(informer.list().map((o) => o.metadata?.name).sort()).toEqual(['existing', 'later']);
    } finally {
      await informer.stop();
    }
  });

  it('re-lists an informer whose resourceVersion was compacted away', async () => {
    api.create(gitTarget('a'));
    const custom = kc.makeApiClient(k().CustomObjectsApi);
    let lists = 0;
    const informer = k().makeInformer<K8s.KubernetesObject>(kc, `/apis/${GROUP}/${VERSION}/namespaces/team-a/gittargets`, () => {
      lists++;
      return custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team-a', plural: 'gittargets', timeoutSeconds: 1 }) as Promise<K8s.KubernetesListObject<K8s.KubernetesObject>>;
    });
    const added: string[] = [];
    informer.on('add', (o) => added.push(o.metadata?.name ?? ''));
    await informer.start();
    try {
      await waitFor(() => api.openWatches() === 1, 'one open watch', 5000, 10);
      // Drop the watch and make its resourceVersion too old before it reconnects.
      api.create({ ...gitTarget('b'), metadata: { name: 'b', namespace: 'team-b' } });
      api.compact();
      await api.dropWatches();
      api.create(gitTarget('c'));
      await waitFor(() => added.includes('c'), 'c added', 10_000, 10);
      expect(lists).toBeGreaterThanOrEqual(2);
    } finally {
      await informer.stop();
    }
  });

  it('answers get of a missing object with a 404 Status', async () => {
    const core = kc.makeApiClient(k().CoreV1Api);
    const body = await expectStatus(core.readNamespacedConfigMap({ namespace: 'team-a', name: 'nope' }), 404, 'NotFound');
    expect(body.message).toBe('configmaps "nope" not found');
    api.create(configMap('yes', { a: 'b' }));
    const got = await core.readNamespacedConfigMap({ namespace: 'team-a', name: 'yes' });
    expect(got.data).toEqual({ a: 'b' });
    const custom = kc.makeApiClient(k().CustomObjectsApi);
    await expectStatus(custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'clusterproviders', name: 'x' }), 404, 'NotFound');
  });

  it('patches only status through /status, and never status through the main resource', async () => {
    const created = api.create(gitTarget('t1'));
    const custom = kc.makeApiClient(k().CustomObjectsApi);
    const ref = { group: GROUP, version: VERSION, namespace: 'team-a', plural: 'gittargets', name: 't1' };
    const merge = k().setHeaderOptions('Content-Type', k().PatchStrategy.MergePatch);
    const patched = (await custom.patchNamespacedCustomObjectStatus(
      { ...ref, body: { spec: { branch: 'evil' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } } },
      merge,
    )) as KubeObject;
    expect(patched.status).toEqual({ conditions: [{ type: 'Ready', status: 'True' }] });
    expect(patched.spec).toEqual(created.spec);
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));
    expect(patched.metadata?.generation).toBe(1);

    // JSON patch on status works too.
    const jp = k().setHeaderOptions('Content-Type', k().PatchStrategy.JsonPatch);
    const j = (await custom.patchNamespacedCustomObjectStatus({ ...ref, body: [{ op: 'add', path: '/status/lastCommit', value: 'abc' }] }, jp)) as KubeObject;
    expect(j.status).toMatchObject({ lastCommit: 'abc' });

    // Main resource: spec changes (generation bumps), status is left alone.
    const main = (await custom.patchNamespacedCustomObject({ ...ref, body: { spec: { branch: 'dev' }, status: { hacked: true } } }, merge)) as KubeObject;
    expect(main.spec).toMatchObject({ branch: 'dev' });
    expect(main.status).toEqual(j.status);
    expect(main.metadata?.generation).toBe(2);
    expect(api.get(`${GROUP}/${VERSION}`, 'GitTarget', 'team-a', 't1')?.status).toEqual(j.status);
  });

  it('serves discovery with the CRD kinds and their status subresources', async () => {
    const groups = await kc.makeApiClient(k().ApisApi).getAPIVersions();
    expect(groups.groups.map((g) => g.name)).toEqual(expect.arrayContaining(['apps', GROUP]));
    const res = await kc.makeApiClient(k().CustomObjectsApi).getAPIResources({ group: GROUP, version: VERSION });
    const byName = new Map(res.resources.map((r) => [r.name, r]));
    for (const [plural, kind, namespaced] of [
      ['gitproviders', 'GitProvider', true],
      ['gittargets', 'GitTarget', true],
      ['watchrules', 'WatchRule', true],
      ['clusterproviders', 'ClusterProvider', false],
      ['clusterwatchrules', 'ClusterWatchRule', false],
    ] as const) {
      expect(byName.get(plural)).toMatchObject({ kind, namespaced, verbs: expect.arrayContaining(['list', 'watch', 'patch']) });
      expect(byName.get(`${plural}/status`)).toMatchObject({ kind, namespaced });
    }
    const core = await kc.makeApiClient(k().CoreV1Api).getAPIResources();
    expect(core.resources.map((r) => r.name)).toEqual(expect.arrayContaining(['configmaps', 'secrets', 'namespaces']));
  });

  it('rejects a wrong bearer token with a 401 Status', async () => {
    const bad = new (k().KubeConfig)();
    bad.loadFromOptions({
      clusters: [{ name: 'c', server: api.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'wrong' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    // client-node's generated code throws 401 without the body (its OpenAPI spec declares none); the
    // Status body itself is checked on the wire below.
    const err = await bad.makeApiClient(k().CoreV1Api).listNamespacedConfigMap({ namespace: 'team-a' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(k().ApiException);
    expect((err as K8s.ApiException<unknown>).code).toBe(401);
  });
});

// The same wire behaviour checked with plain fetch, so the stand-in is covered on any Node version.
describe('kube API stand-in on the wire', () => {
  const get = async (path: string, token = api.token) => {
    const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { code: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('paginates a list from one snapshot, and expires the continue token on compaction', async () => {
    for (let i = 0; i < 7; i++) api.create(configMap(`cm-${i}`));
    const names = (b: Record<string, unknown>) => (b.items as KubeObject[]).map((o) => o.metadata?.name);
    const p1 = await get('/api/v1/namespaces/team-a/configmaps?limit=3');
    expect(p1.body.kind).toBe('ConfigMapList');
    expect(names(p1.body)).toEqual(['cm-0', 'cm-1', 'cm-2']);
    api.create(configMap('cm-3a'));
    const meta1 = p1.body.metadata as Record<string, string>;
    const p2 = await get(`/api/v1/namespaces/team-a/configmaps?limit=3&continue=${meta1.continue}`);
    expect(names(p2.body)).toEqual(['cm-3', 'cm-4', 'cm-5']);
    const meta2 = p2.body.metadata as Record<string, string>;
    expect(meta2.resourceVersion).toBe(meta1.resourceVersion);
    const p3 = await get(`/api/v1/namespaces/team-a/configmaps?limit=3&continue=${meta2.continue}`);
    expect(names(p3.body)).toEqual(['cm-6']);
    api.compact();
    const gone = await get(`/api/v1/namespaces/team-a/configmaps?limit=3&continue=${meta1.continue}`);
    expect(gone.code).toBe(410);
    expect(gone.body).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired' });
  });

  it('watches in order, answers a compacted resourceVersion with one 410 ERROR, sends bookmarks', async () => {
    api.create(configMap('before'));
    const from = api.resourceVersion();
    api.create(configMap('a'));
    api.update(configMap('a', { k: 'v' }));
    api.delete('v1', 'ConfigMap', 'team-a', 'a');
    const res = await fetch(`${api.url}/api/v1/namespaces/team-a/configmaps?watch=true&resourceVersion=${from}&timeoutSeconds=1&allowWatchBookmarks=true`, {
      headers: { authorization: `Bearer ${api.token}` },
    });
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Received);
    expect(lines.slice(0, 3).map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
    expect(lines.slice(3).length).toBeGreaterThan(0);
    expect(lines.slice(3).every((e) => e.type === 'BOOKMARK')).toBe(true);
    api.compact();
    const old = await fetch(`${api.url}/api/v1/namespaces/team-a/configmaps?watch=true&resourceVersion=${from}`, { headers: { authorization: `Bearer ${api.token}` } });
    expect(old.status).toBe(200);
    const err = (await old.text()).trim().split('\n').map((l) => JSON.parse(l) as Received);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
  });

  it('merge-patches status only through /status, and 404s, 401s and discovers like the server', async () => {
    const created = api.create(gitTarget('t1'));
    const path = `/apis/${GROUP}/${VERSION}/namespaces/team-a/gittargets/t1`;
    const patch = (sub: string, body: unknown) =>
      fetch(`${api.url}${path}${sub}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify(body),
      }).then(async (r) => (await r.json()) as KubeObject);
    const s = await patch('/status', { spec: { branch: 'x' }, status: { ok: true } });
    expect(s.status).toEqual({ ok: true });
    expect(s.spec).toEqual(created.spec);
    expect(Number(s.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));
    const m = await patch('', { spec: { branch: 'dev' }, status: { ok: false } });
    expect(m.status).toEqual({ ok: true });
    expect(m.metadata?.generation).toBe(2);
    expect((await get(`/apis/${GROUP}/${VERSION}/namespaces/team-a/gittargets/none`)).body).toMatchObject({ code: 404, reason: 'NotFound', message: `gittargets.${GROUP} "none" not found` });
    expect((await get('/api/v1/configmaps', 'wrong')).code).toBe(401);
    const disc = await get(`/apis/${GROUP}/${VERSION}`);
    const names = (disc.body.resources as Array<{ name: string }>).map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['gittargets', 'gittargets/status', 'clusterwatchrules', 'clusterwatchrules/status']));
  });

  it('serves the type of a CustomResourceDefinition while it exists, and a type added with addType', async () => {
    const crd: KubeObject = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.test' },
      spec: { group: 'example.test', scope: 'Cluster', names: { plural: 'widgets', singular: 'widget', kind: 'Widget' }, versions: [{ name: 'v1', served: true, storage: true }] },
    };
    expect((await get('/apis/example.test/v1/widgets')).code).toBe(404);
    const created = await fetch(`${api.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(crd),
    });
    expect(created.status).toBe(201);
    expect((await get('/apis')).body.groups).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'example.test' })]));
    expect((await get('/apis/example.test/v1')).body.resources).toEqual([expect.objectContaining({ name: 'widgets', kind: 'Widget', namespaced: false })]);
    api.create({ apiVersion: 'example.test/v1', kind: 'Widget', metadata: { name: 'w1' } });
    expect(((await get('/apis/example.test/v1/widgets')).body.items as KubeObject[]).map((o) => o.metadata?.name)).toEqual(['w1']);
    api.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', undefined, 'widgets.example.test');
    expect((await get('/apis/example.test/v1')).code).toBe(404);
    api.addType({ group: 'example.test', version: 'v2', plural: 'gadgets', singular: 'gadget', kind: 'Gadget', namespaced: true, status: false });
    expect((await get('/apis/example.test/v2')).body.resources).toEqual([expect.objectContaining({ name: 'gadgets', namespaced: true })]);
  });
});
