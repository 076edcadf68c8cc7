// The reconcile flow end to end, on the real API server (the run's control plane, or a cluster of your own
// with KUBECONFIG), a real Valkey and real bare repositories: 3 types × 2 namespaces, 1,200 objects (pages of 500), seed of an
// empty repository, updated and deleted files against an edited one (nothing outside the target's path),
// a continue token that expires mid-list (etcd compacted between two pages), and a child refused with 403
// (by the test proxy in front of the API server) that fails the flow with no diff.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Valkey } from 'iovalkey';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { FlowProducer as FlowProducerType, Queue as QueueType } from 'bullmq';
import type { ResolvedRule, ResolvedTarget } from '../../config/resolved-config.js';
import { openConnection } from '../../queues/connection.js';
import { partitionOf } from '../../queues/names.js';
import type { ReconcileDiff } from '../../flows/reconcile/diff.js';
import type { ReconcileSummary, ReconcileWorkers } from '../../flows/reconcile/reconcile-flow.js';
import { reconcileScope, type ScopeEntry } from '../../flows/reconcile/scope.js';
import { kubeSkipReason, needs, startKubeTarget, type KubeTarget } from '../support/kube-target.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';
import { createBareRemote, waitFor } from '../support/git-repos.js';

const skipReason = await kubeSkipReason();
if (skipReason) console.warn(`skipping reconcile-flow.test.ts: ${skipReason}`);
// Loaded only when client-node can load: the list child imports it.
const flow = skipReason ? undefined : await import('../../flows/reconcile/reconcile-flow.js');
const { discoverResources } = await import('../../kube/discovery.js');
const { FlowProducer, Queue } = await import('bullmq');

const run = promisify(execFile);
const BASE = 'clusters/prod';
const CM_PER_NS = 550;
const OTHER_PER_NS = 25;
/** A real cluster puts this ConfigMap into every namespace; it is not one of the test's. */
const ROOT_CA = 'kube-root-ca.crt';

/** Commits `files` (path → content; null removes) onto the remote's main branch. */
async function commitFiles(remote: string, files: Map<string, string | null>): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'gr-work-'));
  const git = (...args: string[]) => run('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { env: { ...process.env, GIT_DIR: undefined } });
  try {
    await run('git', ['clone', '--quiet', remote, work]);
    await git('checkout', '--quiet', '-B', 'main');
    for (const [path, content] of files) {
      if (content === null) await rm(join(work, path), { force: true });
      else {
        await mkdir(dirname(join(work, path)), { recursive: true });
        await writeFile(join(work, path), content);
      }
    }
    await git('add', '-A');
    await git('commit', '--quiet', '-m', 'by hand');
    await git('push', '--quiet', 'origin', 'HEAD:main');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

describe.skipIf(skipReason)('reconcile flow', () => {
  let valkey: TestValkey;
  let connection: Valkey;
  let kube: KubeTarget;
  let workers: ReconcileWorkers;
  let producer: FlowProducerType;
  let parents: QueueType;
  let dataDir: string;
  let nsA: string;
  let nsB: string;
  let scope: ScopeEntry[];
  const prefix = uniquePrefix('rec');
  const diffs = new Map<string, ReconcileDiff>();
  const clusters = new Map<string, () => KubeConfig>();

  /** Creates the objects, 32 requests at a time. */
  const createAll = async (objects: KubernetesObject[]): Promise<void> => {
    const queue = [...objects];
    await Promise.all(Array.from({ length: 32 }, async () => {
      for (let obj = queue.shift(); obj; obj = queue.shift()) await kube.create(obj);
    }));
  };

  beforeAll(async () => {
    valkey = await startTestValkey();
    connection = openConnection(valkey.url);
    kube = await startKubeTarget();
    dataDir = await mkdtemp(join(tmpdir(), 'gr-reconcile-'));
    nsA = await kube.namespace();
    nsB = await kube.namespace();
    const objects: KubernetesObject[] = [];
    for (const ns of [nsA, nsB]) {
      for (let i = 0; i < CM_PER_NS; i++) {
        objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${String(i).padStart(4, '0')}`, namespace: ns }, data: { k: `v${i}` } } as KubernetesObject);
      }
      for (let i = 0; i < OTHER_PER_NS; i++) {
        objects.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: `s-${i}`, namespace: ns }, type: 'Opaque', data: { password: Buffer.from(`hunter2-${i}`).toString('base64') } } as KubernetesObject);
        objects.push({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: `d-${i}`, namespace: ns },
          spec: { replicas: 1, selector: { matchLabels: { app: `d-${i}` } }, template: { metadata: { labels: { app: `d-${i}` } }, spec: { containers: [{ name: 'c', image: 'nginx:1' }] } } },
        } as KubernetesObject);
      }
    }
    await createAll(objects);
    const rules: ResolvedRule[] = [nsA, nsB].map((ns) => ({
      source: `WatchRule ${ns}/w`,
      kind: 'WatchRule',
      key: `${ns}/w`,
      namespace: ns,
      targetKey: 'ops/prod',
      rules: [{ operations: ['*'], apiGroups: ['', 'apps'], resources: ['configmaps', 'secrets', 'deployments'] }],
    }));
    const resources = await discoverResources(kube.kubeConfig());
    scope = reconcileScope({ target: { key: 'ops/prod', clusterProvider: 'direct' }, config: { rules }, resources });

    clusters.set('direct', () => kube.kubeConfig());
    // The same API server; the cases that refuse or hold requests through the test proxy name this one.
    clusters.set('proxied', () => kube.kubeConfig());
    workers = flow!.startReconcileWorkers({
      connection,
      valkey: connection,
      prefix,
      dataDir,
      clusterAccess: (cluster) => {
        const kc = clusters.get(cluster);
        if (!kc) throw new Error(`cluster ${cluster} is not configured`);
        return { kubeConfig: kc() };
      },
      gitCredentials: () => undefined,
      onDiff: async (diff, summary) => void diffs.set(summary.runId, diff),
    });
    producer = new FlowProducer({ connection, prefix });
    parents = new Queue(flow!.RECONCILE_QUEUE, { connection, prefix });
  });

  afterAll(async () => {
    await workers?.close();
    await producer?.close();
    await parents?.close();
    await kube?.stop();
    await connection?.quit();
    await valkey?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const target = (remote: string, prune: ResolvedTarget['prune'], cluster = 'direct') => ({
    key: 'ops/prod',
    clusterProvider: cluster,
    path: BASE,
    prune,
    partition: partitionOf(remote, 'main'),
  });

  let runs = 0;
  async function reconcile(remote: string, prune: ResolvedTarget['prune'], cluster = 'direct', list = scope) {
    const runId = `run-${++runs}`;
    await flow!.addReconcileFlow(producer, { target: target(remote, prune, cluster), runId, scope: list });
    const id = flow!.reconcileJobId('ops/prod', runId);
    return waitFor(
      async () => {
        const state = (await (await parents.getJob(id))?.getState()) ?? 'missing';
        // Read after the state: a job read before it finished has no result yet.
        const job = state === 'completed' || state === 'failed' ? await parents.getJob(id) : undefined;
        if (job && state === 'completed') return { runId, state, summary: job.returnvalue as ReconcileSummary, failedReason: undefined, diff: diffs.get(runId) };
        if (job && state === 'failed') return { runId, state, summary: undefined, failedReason: job.failedReason, diff: diffs.get(runId) };
        return undefined;
      },
      `reconcile ${runId} to finish (completed or failed)`,
      20_000,
      50,
    );
  }

  const ours = (paths: string[]): string[] => paths.filter((p) => !p.endsWith(`/${ROOT_CA}.yaml`));
  const total = 2 * (CM_PER_NS + 2 * OTHER_PER_NS);

  it('lists 3 types × 2 namespaces in pages and seeds an empty repository with what the live path writes', async () => {
    expect(scope.map((s) => s.key).sort()).toEqual(
      [`/v1/configmaps@${nsA}`, `/v1/configmaps@${nsB}`, `/v1/secrets@${nsA}`, `/v1/secrets@${nsB}`, `apps/v1/deployments@${nsA}`, `apps/v1/deployments@${nsB}`].sort(),
    );
    const remote = await createBareRemote();
    const r = await reconcile(remote, 'Always');
    expect(r.state).toBe('completed');
    const s = r.summary!;
    expect(s.baseCommit).toBeNull();
    expect(s.pages).toBeGreaterThanOrEqual(8); // 550 ConfigMaps per namespace: two pages each
    expect(ours(s.createdFiles.map((e) => e.path))).toHaveLength(total);
    expect([s.updated, s.deleted]).toEqual([0, 0]);
    expect(s.createdFiles.every((e) => e.path.startsWith(`${BASE}/`) && /^\d+$/.test(e.rv))).toBe(true);

    const byPath = new Map(r.diff!.created.map((e) => [e.path, e.content]));
    expect(byPath.get(`${BASE}/${nsA}/configmaps/cm-0007.yaml`)).toBe(`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-0007\n  namespace: ${nsA}\ndata:\n  k: v7\n`);
    expect(byPath.get(`${BASE}/${nsB}/apps/deployments/d-3.yaml`)).toMatch(/^apiVersion: apps\/v1\nkind: Deployment\n/);
    const secret = byPath.get(`${BASE}/${nsA}/secrets/s-1.yaml`)!;
    expect(secret).toContain('password: REDACTED');
    expect(secret).not.toContain(Buffer.from('hunter2-1').toString('base64'));
    // Nothing of a Secret's value is stored in Valkey either.
    const stored = await connection.hget(`${prefix}:reconcile:ops/prod:${r.runId}:findings`, `${BASE}/${nsA}/secrets/s-1.yaml`);
    expect(stored).toContain('REDACTED');
    expect(stored).not.toContain(Buffer.from('hunter2-1').toString('base64'));
  });

  it('against an edited repository: updated and (Always) deleted files, nothing outside the target path', async () => {
    const seed = await reconcile(await createBareRemote(), 'Always');
    const created = seed.diff!.created;
    const remote = await createBareRemote();
    const files = new Map<string, string | null>();
    const equal = created.slice(0, 10);
    const edited = created.slice(10, 15);
    for (const e of equal) files.set(e.path, e.content);
    for (const e of edited) files.set(e.path, `${e.content}# edited by hand\n`);
    files.set(`${BASE}/${nsA}/configmaps/gone.yaml`, 'apiVersion: v1\nkind: ConfigMap\n');
    files.set(`${BASE}/README.md`, 'docs\n');
    files.set(`clusters/stage/${nsA}/configmaps/other.yaml`, 'not ours\n');
    await commitFiles(remote, files);

    const keep = await reconcile(remote, 'OnEvent');
    expect(keep.summary!.updatedFiles.map((e) => e.path)).toEqual(edited.map((e) => e.path).sort());
    expect(keep.summary!.deleted).toBe(0);

    const r = await reconcile(remote, 'Always');
    const s = r.summary!;
    expect(s.baseCommit).toMatch(/^[0-9a-f]{40}$/);
    expect(s.updatedFiles.map((e) => e.path)).toEqual(edited.map((e) => e.path).sort());
    expect(r.diff!.updated.map((e) => e.content)).toEqual([...edited].sort((a, b) => (a.path < b.path ? -1 : 1)).map((e) => e.content));
    expect(s.deletedFiles.map((e) => e.path)).toEqual([`${BASE}/${nsA}/configmaps/gone.yaml`]);
    // A delete carries the run's oldest list snapshot, at least as new as every object listed.
    expect(Number(s.deletedFiles[0]!.rv)).toBeGreaterThanOrEqual(Math.max(...s.createdFiles.map((e) => Number(e.rv))));
    expect(ours(s.createdFiles.map((e) => e.path))).toHaveLength(total - 15);
    const touched = [...s.createdFiles.map((e) => e.path), ...s.updatedFiles.map((e) => e.path), ...s.deletedFiles.map((e) => e.path)];
    expect(touched.every((p) => p.startsWith(`${BASE}/`))).toBe(true);
  });

  it('restarts a list whose continue token expired mid-list', async (ctx) => {
    needs(ctx, 'compaction', kube);
    const listPath = `/api/v1/namespaces/${nsA}/configmaps`;
    let seen = 0;
    kube.refuse(async (r) => {
      if (r.method === 'GET' && r.path === listPath && ++seen === 2) {
        // Between the first and the second page: one more object, and etcd's history up to it compacted.
        await kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-late', namespace: nsA }, data: { k: 'late' } } as KubernetesObject);
        await kube.compact();
      }
      return undefined;
    });
    try {
      const r = await reconcile(await createBareRemote(), 'Always', 'proxied');
      expect(r.state).toBe('completed');
      expect(seen).toBe(4); // page 1, 410 on page 2, then pages 1 and 2 again
      expect(r.summary!.listed).toBe(total + 1);
      expect(r.summary!.createdFiles.map((e) => e.path)).toContain(`${BASE}/${nsA}/configmaps/cm-late.yaml`);
    } finally {
      kube.refuse(() => undefined);
      await kube.remove({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-late', namespace: nsA } });
    }
  });

  it('a child refused with 403 fails the flow with its error, and no diff is computed', async (ctx) => {
    needs(ctx, 'proxy', kube);
    const refused = `/apis/apps/v1/namespaces/${nsB}/deployments`;
    kube.refuse((r) => (r.method === 'GET' && r.path === refused ? 403 : undefined));
    try {
      const before = kube.proxy!.requests.length;
      const remote = await createBareRemote();
      await commitFiles(remote, new Map([[`${BASE}/${nsA}/configmaps/gone.yaml`, 'apiVersion: v1\nkind: ConfigMap\n']]));
      const r = await reconcile(remote, 'Always', 'proxied');
      expect(r.state).toBe('failed');
      expect(r.failedReason).toMatch(/^child .+ failed: reconcile list of deployments\.apps\/v1 in namespace \S+ of cluster proxied failed: GET \S+: 403 Forbidden/);
      expect(r.failedReason).toContain(nsB);
      expect(r.diff).toBeUndefined();
      expect(kube.proxy!.requests.slice(before).filter((q) => q.path === refused)).toHaveLength(1); // a refusal is not retried
    } finally {
      kube.refuse(() => undefined);
    }
  });
});
