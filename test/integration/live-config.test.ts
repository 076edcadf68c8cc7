// The configuration from the cluster: client-node informers on the gitopsreverser.io kinds (against the
// real API server: the run's control plane, or a cluster of your own with KUBECONFIG), resolved leniently so that one bad object
// is reported and left out while the others keep working, and applied to a running service without a
// restart and without losing an event.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startKubeConfigSource } from '../../config/sources/kubernetes-source.js';
import type { ConfigSnapshot, ConfigSource } from '../../config/sources/config-snapshot.js';
import { auditEvent, eventList } from '../support/audit-events.js';
import {
  clusterProviderObject,
  gitProviderObject,
  gitTargetObject,
  secretObject,
  watchRuleObject,
  type Obj,
} from '../support/config-objects.js';
import { createBareRemote, treeFiles, waitFor } from '../support/git-repos.js';
import { kubeSkipReason, needs, startKubeTarget, type KubeTarget } from '../support/kube-target.js';
import { startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe.skipIf(skip !== undefined)('configuration from the cluster', () => {
  let kube: KubeTarget;
  let valkey: TestValkey;
  let ns: string;
  let cluster: string;
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    [kube, valkey] = await Promise.all([startKubeTarget(), startTestValkey()]);
  });
  afterAll(async () => {
    await kube?.stop();
    await valkey?.stop();
  });
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const create = async (obj: Obj): Promise<Obj> => {
    const created = await kube.create(obj);
    cleanup.push(() => kube.remove(obj));
    return created as Obj;
  };

  const source = async (): Promise<ConfigSource> => {
    const s = await startKubeConfigSource({ kubeConfig: kube.kubeConfig(), logger, allowLocalRepositories: true, debounceMs: 50, secretRefreshMs: 300 });
    cleanup.push(() => s.stop());
    return s;
  };

  const nextSnapshot = (s: ConfigSource, until: (snap: ConfigSnapshot) => boolean): Promise<ConfigSnapshot> =>
    new Promise((resolve) => {
      if (until(s.current())) return resolve(s.current());
      s.onChange((snap) => {
        if (until(snap)) resolve(snap);
      });
    });

  /** One cluster (token in a Secret), one repository, two targets in folders a/ and b/. */
  async function baseObjects(remote: string): Promise<void> {
    ns = await kube.namespace();
    cluster = `c-${randomBytes(3).toString('hex')}`;
    await create(secretObject(ns, 'audit-token', { token: 'tok-1' }));
    await create(clusterProviderObject(cluster, { audit: { tokenSecretRef: { name: 'audit-token', namespace: ns, key: 'token' } } }));
    await create(gitProviderObject(ns, 'repo', remote));
    await create(gitTargetObject(ns, 'team-a', { provider: 'repo', path: 'a', cluster }));
    await create(gitTargetObject(ns, 'team-b', { provider: 'repo', path: 'b', cluster }));
  }

  it('lists the objects, resolves Secrets by reference, and follows changes', async () => {
    const remote = await createBareRemote();
    cleanup.push(() => rm(remote, { recursive: true, force: true }));
    await baseObjects(remote);
    await create(watchRuleObject(ns, 'cms', 'team-a', ['configmaps']));
    const s = await source();
    const first = s.current();
    expect(first.problems).toEqual([]);
    expect(first.config.clusters.get(cluster)).toMatchObject({ name: cluster, token: 'tok-1' });
    expect([...first.config.targets.keys()].sort()).toEqual([`${ns}/team-a`, `${ns}/team-b`]);
    expect(first.config.rules).toEqual([expect.objectContaining({ source: `WatchRule ${ns}/cms`, namespace: ns, targetKey: `${ns}/team-a` })]);
    expect(first.observed.filter((o) => o.key.startsWith(`${ns}/`) || o.key === cluster)).toHaveLength(5);

    await kube.patch({ ...watchRuleObject(ns, 'cms', 'team-b', ['configmaps', 'secrets']) });
    const changed = await nextSnapshot(s, (snap) => snap.config.rules[0]?.targetKey === `${ns}/team-b`);
    expect(changed.config.rules[0]?.rules[0]?.resources).toEqual(['configmaps', 'secrets']);

    // A rotated token is picked up when the Secrets are read again (secretRefreshMs).
    await kube.patch(secretObject(ns, 'audit-token', { token: 'tok-2' }));
    const rotated = await nextSnapshot(s, (snap) => snap.config.clusters.get(cluster)?.token === 'tok-2');
    expect(rotated.config.rules[0]?.targetKey).toBe(`${ns}/team-b`);
  });

  it('reports each bad object with a reason and a message, and keeps the good ones', async () => {
    const remote = await createBareRemote();
    cleanup.push(() => rm(remote, { recursive: true, force: true }));
    await baseObjects(remote);
    await create(gitTargetObject(ns, 'no-provider', { provider: 'missing', path: 'c', cluster }));
    await create(gitTargetObject(ns, 'bad-branch', { provider: 'repo', branch: 'feature..x', path: 'd', cluster }));
    await create(gitTargetObject(ns, 'not-allowed', { provider: 'repo', branch: 'dev', path: 'e', cluster }));
    // The older of two overlapping targets keeps its folder (ties: by name, hence the z).
    await create(gitTargetObject(ns, 'z-overlap', { provider: 'repo', path: 'a/sub', cluster }));
    await create(gitTargetObject(ns, 'no-cluster', { provider: 'repo', path: 'f', cluster: 'nowhere' }));
    await create(watchRuleObject(ns, 'orphan', 'ghost', ['configmaps']));
    await create(watchRuleObject(ns, 'waits', 'no-provider', ['configmaps']));
    await create(gitProviderObject(ns, 'no-secret', 'https://git.example.com/r.git', ['main'], 'absent'));
    await create(clusterProviderObject(`${cluster}-x`, { audit: { tokenSecretRef: { name: 'audit-token', namespace: ns, key: 'nokey' } } }));
    await create(watchRuleObject(ns, 'good', 'team-a', ['configmaps']));
    const snap = (await source()).current();
    const mine = snap.problems.filter((p) => p.key.startsWith(`${ns}/`) || p.key.startsWith(cluster));
    const byKey = (key: string) => mine.filter((p) => p.key === key).map((p) => ({ field: p.field, reason: p.reason, message: p.message }));

    expect(byKey(`${ns}/no-provider`)).toEqual([{ field: 'spec.providerRef.name', reason: 'GitProviderNotFound', message: `GitProvider ${ns}/missing not found` }]);
    expect(byKey(`${ns}/bad-branch`)).toEqual([{ field: 'spec.branch', reason: 'InvalidBranch', message: '"feature..x" is not a valid Git branch name' }]);
    expect(byKey(`${ns}/not-allowed`)).toEqual([
      { field: 'spec.branch', reason: 'BranchNotAllowed', message: `"dev" is not allowed by GitProvider ${ns}/repo (allowedBranches: main)` },
    ]);
    expect(byKey(`${ns}/z-overlap`)).toEqual([
      { field: 'spec.path', reason: 'PathOverlap', message: `"a/sub" overlaps GitTarget ${ns}/team-a ("a") on the same repository and branch` },
    ]);
    expect(byKey(`${ns}/no-cluster`)).toEqual([{ field: 'spec.clusterProviderRef.name', reason: 'ClusterProviderNotFound', message: 'ClusterProvider nowhere not found' }]);
    expect(byKey(`${ns}/orphan`)).toEqual([{ field: 'spec.targetRef.name', reason: 'GitTargetNotFound', message: `GitTarget ${ns}/ghost not found` }]);
    expect(byKey(`${ns}/waits`)).toEqual([
      { field: 'spec.targetRef.name', reason: 'GitTargetNotReady', message: `GitTarget ${ns}/no-provider is not ready (see its conditions)` },
    ]);
    expect(byKey(`${ns}/no-secret`)).toEqual([{ field: 'spec.secretRef', reason: 'SecretNotFound', message: `Secret ${ns}/absent not found` }]);
    expect(byKey(`${cluster}-x`)).toEqual([
      { field: 'spec.audit.tokenSecretRef.key', reason: 'SecretKeyNotFound', message: `Secret ${ns}/audit-token has no key "nokey"` },
    ]);
    // The sound objects work: both targets, the cluster, the good rule.
    expect(snap.config.targets.has(`${ns}/team-a`)).toBe(true);
    expect(snap.config.targets.has(`${ns}/team-b`)).toBe(true);
    expect(snap.config.clusters.has(cluster)).toBe(true);
    expect(snap.config.clusters.has(`${cluster}-x`)).toBe(false);
    expect(mine.some((p) => p.key === `${ns}/good` || p.key === `${ns}/team-a` || p.key === cluster)).toBe(false);
  });

  it('retires the writer and queue of a partition no longer configured once it is drained', async () => {
    const remote = await createBareRemote();
    cleanup.push(() => rm(remote, { recursive: true, force: true }));
    await baseObjects(remote);
    const temporary = gitTargetObject(ns, 'temporary', { provider: 'repo', branch: 'tmp', path: 'tmp', cluster });
    await kube.patch(gitProviderObject(ns, 'repo', remote, ['main', 'tmp']));
    await create(temporary);
    const s = await source();
    const service: TestService = await startTestService(valkey.url, () => '', { config: undefined, configSource: s, retireCheckMs: 100 });
    cleanup.push(() => service.close());
    const queues = () => [...service.writeQueues.keys()].filter((q) => q.includes('-tmp-')).length;
    expect(queues()).toBe(1);
    await kube.remove(temporary);
    await waitFor(async () => queues() === 0, 'the tmp partition retired');
    const board = (await (await fetch(`${service.url}/admin/queues/api/queues`)).json()) as { queues: { name: string }[] };
    expect(board.queues.map((q) => q.name).filter((n) => n.includes('-tmp-'))).toEqual([]);
  });

  it('switches routing when a WatchRule changes while events flow, and loses none', async () => {
    const remote = await createBareRemote();
    cleanup.push(() => rm(remote, { recursive: true, force: true }));
    await baseObjects(remote);
    await create(watchRuleObject(ns, 'cms', 'team-a', ['configmaps']));
    const s = await source();
    const service: TestService = await startTestService(valkey.url, () => '', { config: undefined, configSource: s, leaseTtlMs: 2000 });
    cleanup.push(() => service.close());

    const send = async (names: string[]) => {
      const events = names.map((name) =>
        auditEvent('create', { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: ns, name, body: { data: { n: name } } }, { user: 'alice' }),
      );
      const res = await fetch(`${service.url}/audit-webhook/${cluster}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer tok-1' },
        body: JSON.stringify(eventList(events)),
      });
      expect(res.status).toBe(200);
    };
    const before: string[] = [];
    const during: string[] = [];
    const after: string[] = [];
    let n = 0;
    const batch = () => Array.from({ length: 10 }, () => `cm-${String(n++).padStart(4, '0')}`);

    for (let i = 0; i < 8; i++) before.push(...(await sendBatch(batch())));
    // Routing happens when the router takes an event, so "before" means routed (here: committed) before the change.
    await waitFor(async () => (await treeFiles(remote).catch(() => new Map())).size === before.length, 'the first events committed');
    await kube.patch(watchRuleObject(ns, 'cms', 'team-b', ['configmaps']));
    // Events keep flowing until the service has switched: each goes to a/ or b/, whichever rules it met.
    while (service.currentConfig().rules.find((r) => r.source === `WatchRule ${ns}/cms`)?.targetKey !== `${ns}/team-b`) {
      during.push(...(await sendBatch(batch())));
    }
    for (let i = 0; i < 8; i++) after.push(...(await sendBatch(batch())));

    async function sendBatch(names: string[]): Promise<string[]> {
      await send(names);
      return names;
    }

    const total = before.length + during.length + after.length;
    const files = async () => [...(await treeFiles(remote)).keys()];
    await waitFor(async () => (await files().catch(() => [])).length >= total, `all ${total} events committed`);
    const all = await files();
    const inA = all.filter((f) => f.startsWith('a/')).map((f) => f.split('/').pop()!.replace('.yaml', ''));
    const inB = all.filter((f) => f.startsWith('b/')).map((f) => f.split('/').pop()!.replace('.yaml', ''));
    expect(during.length).toBeGreaterThan(0);
    expect(all).toHaveLength(total);
    expect(new Set([...inA, ...inB]).size).toBe(total);
    // Sent before the change: the old rule; sent after the service switched: the new one.
    for (const name of before) expect(inA).toContain(name);
    for (const name of after) expect(inB).toContain(name);
    expect([...inA, ...inB].sort()).toEqual([...before, ...during, ...after].sort());
  });
});

describe.skipIf(skip !== undefined)('configuration from the cluster when the API server refuses', () => {
  let kube: KubeTarget;
  beforeAll(async () => {
    kube = await startKubeTarget();
  });
  afterAll(async () => {
    kube?.refuse(() => undefined);
    await kube?.stop();
  });

  it('does not start with half a configuration: a kind it cannot list fails the start, naming it', async (ctx) => {
    needs(ctx, 'proxy', kube);
    kube.refuse((r) => (r.method === 'GET' && r.path.endsWith('/gittargets') ? 403 : undefined));
    await expect(startKubeConfigSource({ kubeConfig: kube.kubeConfig(), logger, retryMs: 10, initialAttempts: 3 })).rejects.toThrow(
      /^cannot list gittargets\.gitopsreverser\.io \(GitTarget\) after 3 attempts: .*403/,
    );
    // Refused once, then allowed: the start waits for it.
    let refusals = 1;
    kube.refuse((r) => (r.method === 'GET' && r.path.endsWith('/gittargets') && refusals-- > 0 ? 403 : undefined));
    const s = await startKubeConfigSource({ kubeConfig: kube.kubeConfig(), logger, retryMs: 10, initialAttempts: 3 });
    await s.stop();
  });

  it('keeps a Secret it read before when reading it again fails', async (ctx) => {
    needs(ctx, 'proxy', kube);
    kube.refuse(() => undefined);
    const ns = await kube.namespace();
    const name = `c-${randomBytes(3).toString('hex')}`;
    await kube.create(secretObject(ns, 'token', { token: 'kept' }));
    await kube.create(clusterProviderObject(name, { audit: { tokenSecretRef: { name: 'token', namespace: ns, key: 'token' } } }));
    const s = await startKubeConfigSource({ kubeConfig: kube.kubeConfig(), logger, secretRefreshMs: 50 });
    expect(s.current().config.clusters.get(name)?.token).toBe('kept');
    kube.refuse((r) => (r.path.endsWith('/secrets/token') ? 500 : undefined));
    const requests = kube.proxy!.requests;
    const before = requests.length;
    await waitFor(async () => requests.slice(before).filter((r) => r.path.endsWith('/secrets/token')).length >= 3, 'three failed reads');
    expect(s.current().config.clusters.get(name)?.token).toBe('kept');
    expect(s.current().problems.filter((p) => p.key === name)).toEqual([]);
    await s.stop();
    await kube.remove(clusterProviderObject(name, {}));
  });
});
