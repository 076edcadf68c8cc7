// Reconciliation through the running service (configured by the cluster: the real API server, the run's
// control plane or a cluster of your own with KUBECONFIG): a target's repository is seeded at start in one commit, an unchanged cluster
// makes no commit, drift made by hand in Git is repaired on demand, an orphan stays with prune OnEvent and
// goes with prune Always, and files outside the target's path are never touched.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { openConnection } from '../../queues/connection.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterServiceKit } from '../support/cluster-service-kit.js';
import { clusterProviderObject, gitProviderObject, gitTargetObject, watchRuleObject, type Obj } from '../support/config-objects.js';
import { commitLog, treeFiles, waitFor } from '../support/git-repos.js';
import { kubeSkipReason } from '../support/kube-target.js';

const run = promisify(execFile);
const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

const configMap = (namespace: string, name: string, data: Record<string, string>): Obj => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });

describe.skipIf(skip !== undefined)('reconcile through the service', () => {
  const kit = new ClusterServiceKit();
  const { create } = kit;
  let parents: Queue;
  let connection: Valkey;
  let ns: string;
  let cluster: string;
  const target = (prune: string) => ({ ...gitTargetObject(ns, 'apps', { provider: 'repo', path: 'apps', cluster }), spec: { ...gitTargetObject(ns, 'apps', { provider: 'repo', path: 'apps', cluster }).spec as object, prune } });

  /** Edits the remote's main branch by hand, as someone with push access would. */
  async function handEdit(edit: (worktree: string) => Promise<void>, message: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'gr-handedit-'));
    try {
      await run('git', ['clone', '-q', kit.remote, dir]);
      await edit(dir);
      await run('git', ['-C', dir, 'add', '-A']);
      await run('git', ['-C', dir, '-c', 'user.name=Someone', '-c', 'user.email=someone@example.com', 'commit', '-qm', message]);
      await run('git', ['-C', dir, 'push', '-q', 'origin', 'HEAD:main']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Asks for a reconcile over HTTP and waits until that run's parent job completed and its writes were handled. */
  async function reconcileNow(): Promise<void> {
    const counts = () => parents.getJobCounts('completed', 'failed', 'active', 'waiting', 'waiting-children');
    const before = (await counts()).completed ?? 0;
    const res = await fetch(`${kit.service.url}/admin/api/reconcile/${ns}/apps`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ target: `${ns}/apps`, started: expect.any(String) });
    await waitFor(async () => ((await counts()).completed ?? 0) > before, 'the reconcile run finished');
    // Its writes are queued before the parent completes: wait for the partition to drain.
    const [queue] = [...kit.service.writeQueues.values()];
    await waitFor(async () => Object.values(await queue!.getJobCounts('waiting', 'active', 'delayed')).every((n) => n === 0), 'its writes handled');
  }

  beforeAll(async () => {
    await kit.open();
    ns = await kit.kube.namespace();
    cluster = `rc-${Math.random().toString(16).slice(2, 8)}`;
    await create(clusterProviderObject(cluster, { watch: { enabled: false }, audit: { clientCertificate: { commonName: `${cluster}-apiserver` } } }));
    await create(gitProviderObject(ns, 'repo', kit.remote));
    await create(target('OnEvent'));
    await create(watchRuleObject(ns, 'cms', 'apps', ['configmaps']));
    for (let i = 0; i < 30; i++) await create(configMap(ns, `cm-${String(i).padStart(2, '0')}`, { n: String(i) }));
    const service = await kit.startService({ dashboardReadOnly: false });
    connection = openConnection(kit.valkey.url);
    parents = new Queue('reconcile', { connection, prefix: service.prefix });
  }, 60_000);
  afterAll(async () => {
    await parents?.close();
    await connection?.quit();
    await kit.close();
  });

  const mine = async () => [...(await treeFiles(kit.remote).catch(() => new Map<string, string>())).keys()].filter((f) => f.startsWith(`apps/${ns}/`)).sort();

  it('seeds an empty repository at start in one commit', async () => {
    await waitFor(async () => (await mine()).length === 30, 'the 30 ConfigMaps seeded');
    const log = await commitLog(kit.remote);
    expect(log.map((c) => c.subject)).toEqual([`reconcile ${ns}/apps: 30 created, 0 updated, 0 deleted`]);
    expect(log[0]?.author).toBe('GitOps Reverser (reconcile)');
  });

  it('makes no commit when nothing changed', async () => {
    await reconcileNow();
    expect(await commitLog(kit.remote)).toHaveLength(1);
  });

  it('shows each run in Bull Board as a parent with its children, with timings', async () => {
    const board = (await (await fetch(`${kit.service.url}/admin/queues/api/queues`)).json()) as { queues: { name: string }[] };
    expect(board.queues.map((q) => q.name)).toEqual(expect.arrayContaining(['reconcile', 'reconcile-list', 'reconcile-schedule']));
    const [run] = await parents.getJobs(['completed'], 0, 0);
    expect(run?.name).toBe(`reconcile ${ns}/apps`);
    const children = await run!.getDependencies();
    expect(Object.keys(children.processed ?? {}).length).toBeGreaterThan(0);
    expect(run!.processedOn).toBeGreaterThan(0);
    expect(run!.finishedOn).toBeGreaterThanOrEqual(run!.processedOn!);
  });

  it('repairs files edited and deleted by hand, and leaves files outside its path alone', async () => {
    await handEdit(async (wt) => {
      await writeFile(join(wt, `apps/${ns}/configmaps/cm-03.yaml`), 'apiVersion: v1\nkind: ConfigMap\ndata:\n  n: tampered\n');
      await unlink(join(wt, `apps/${ns}/configmaps/cm-07.yaml`));
      await writeFile(join(wt, 'README.md'), 'hands off\n');
    }, 'edit by hand');
    await reconcileNow();
    const log = await commitLog(kit.remote);
    expect(log.map((c) => c.subject).slice(-2)).toEqual(['edit by hand', `reconcile ${ns}/apps: 1 created, 1 updated, 0 deleted`]);
    const files = await treeFiles(kit.remote);
    expect(files.get(`apps/${ns}/configmaps/cm-03.yaml`)).toContain('"n": "3"');
    expect(files.has(`apps/${ns}/configmaps/cm-07.yaml`)).toBe(true);
    expect(files.get('README.md')).toBe('hands off\n');
  });

  it('keeps an orphan with prune OnEvent, deletes it with prune Always, never outside its path', async () => {
    await handEdit(async (wt) => {
      await writeFile(join(wt, `apps/${ns}/configmaps/ghost.yaml`), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ghost\n');
    }, 'an orphan');
    await reconcileNow();
    expect((await mine()).includes(`apps/${ns}/configmaps/ghost.yaml`)).toBe(true);
    const commits = (await commitLog(kit.remote)).length;

    // Changing the target's prune mode is a configuration change: the target is reconciled again.
    await kit.kube.patch({ ...target('Always') });
    await waitFor(async () => !(await mine()).includes(`apps/${ns}/configmaps/ghost.yaml`), 'the orphan deleted');
    const log = await commitLog(kit.remote);
    expect(log).toHaveLength(commits + 1);
    expect(log.at(-1)?.subject).toBe(`reconcile ${ns}/apps: 0 created, 0 updated, 1 deleted`);
    expect((await mine()).length).toBe(30);
    expect((await treeFiles(kit.remote)).get('README.md')).toBe('hands off\n');
  });
});
