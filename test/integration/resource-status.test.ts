// One running service configured by the cluster (the real API server: the run's control plane, or a cluster
// of your own with KUBECONFIG):
// each invalid resource gets its Ready=False condition with a reason and a message saying what to fix,
// the sound ones stay Ready and keep working, and a fix turns the condition True without a restart.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, eventList } from '../support/audit-events.js';
import { ClusterServiceKit, type Condition } from '../support/cluster-service-kit.js';
import {
  clusterProviderObject,
  clusterWatchRuleObject,
  gitProviderObject,
  gitTargetObject,
  secretObject,
  watchRuleObject,
  type Obj,
} from '../support/config-objects.js';
import { commitLog, waitFor } from '../support/git-repos.js';
import { kubeSkipReason } from '../support/kube-target.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

type WithStatus = Obj & { metadata: { generation?: number }; status?: { conditions?: Condition[]; lastCommit?: { sha: string }; backlog?: number } };

describe.skipIf(skip !== undefined)('status of the configuration resources', () => {
  const kit = new ClusterServiceKit();
  const { create, condition, waitForCondition } = kit;
  let ns: string;
  let cluster: string;

  beforeAll(async () => {
    await kit.open();
    ns = await kit.kube.namespace();
    cluster = `st-${randomBytes(3).toString('hex')}`;
    await create(secretObject(ns, 'audit-token', { token: 'tok' }));
    await create(clusterProviderObject(cluster, { audit: { tokenSecretRef: { name: 'audit-token', namespace: ns, key: 'token' } } }));
    await create(gitProviderObject(ns, 'repo', kit.remote));
    await create(gitTargetObject(ns, 'good', { provider: 'repo', path: 'good', cluster }));
    await create(watchRuleObject(ns, 'good', 'good', ['configmaps']));
    await kit.startService({ reportStatus: { intervalMs: 300, minIntervalMs: 100 } });
  }, 60_000);
  afterAll(() => kit.close());

  it('marks the sound objects Ready and shows the target\'s last commit and the repository as reachable', async () => {
    await waitForCondition(gitTargetObject(ns, 'good', { provider: 'repo', path: 'good', cluster }), 'Ready', 'True');
    await waitForCondition(watchRuleObject(ns, 'good', 'good', ['configmaps']), 'Ready', 'True');
    await waitForCondition(clusterProviderObject(cluster, {}), 'Ready', 'True');
    await waitForCondition(gitProviderObject(ns, 'repo', kit.remote), 'Reachable', 'True');

    const event = auditEvent('create', { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: ns, name: 'settings', body: { data: { a: '1' } } }, { user: 'alice' });
    const res = await fetch(`${kit.service.url}/audit-webhook/${cluster}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer tok' },
      body: JSON.stringify(eventList([event])),
    });
    expect(await res.json()).toEqual({ received: 1, accepted: 1, skipped: {} });
    // What no rule of the cluster selects is skipped at the webhook: nothing of it reaches Valkey.
    const noise = auditEvent('create', { apiVersion: 'v1', kind: 'Service', resource: 'services', namespace: ns, name: 'svc', body: { spec: {} } }, { user: 'alice' });
    const skipped = await fetch(`${kit.service.url}/audit-webhook/${cluster}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer tok' },
      body: JSON.stringify(eventList([noise])),
    });
    expect(await skipped.json()).toEqual({ received: 1, accepted: 0, skipped: { 'not-selected': 1 } });
    await waitFor(async () => (await commitLog(kit.remote).catch(() => [])).length === 1, 'the commit');
    const [commit] = await commitLog(kit.remote);
    const target = gitTargetObject(ns, 'good', { provider: 'repo', path: 'good', cluster });
    await waitFor(async () => ((await kit.kube.read(target)) as WithStatus).status?.lastCommit?.sha === commit!.sha, 'lastCommit in the status', 15_000);
    const live = (await kit.kube.read(target)) as WithStatus;
    expect(live.status?.backlog).toBe(0);
    expect(live.status?.conditions?.find((c) => c.type === 'Synced')).toMatchObject({ status: 'True' });
    expect(live.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Ready', observedGeneration: live.metadata.generation });
  });

  it('shows Ready, Branch, Path, Last Commit and Backlog in `kubectl get` (the CRDs\' printer columns, as the API server serves them)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gr-printer-'));
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      await writeFile(kubeconfig, kit.kube.kubeConfig().exportConfig(), { mode: 0o600 });
      const get = async (...args: string[]): Promise<Record<string, string>[]> => {
        const { stdout } = await promisify(execFile)('kubectl', ['--kubeconfig', kubeconfig, 'get', ...args, '-o', 'wide']);
        // Columns by their place in the header: an empty cell is blanks.
        const [header, ...rows] = stdout.trimEnd().split('\n') as [string, ...string[]];
        const starts = [...header.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ column: m[0], at: m.index }));
        return rows.map((row) => Object.fromEntries(starts.map((c, i) => [c.column, row.slice(c.at, starts[i + 1]?.at).trim()])));
      };
      const target = (await kit.kube.read(gitTargetObject(ns, 'good', { provider: 'repo', path: 'good', cluster }))) as WithStatus;
      expect(await get('gittargets', 'good', '-n', ns)).toEqual([
        { NAME: 'good', READY: 'True', BRANCH: 'main', PATH: 'good', 'LAST COMMIT': target.status!.lastCommit!.sha, BACKLOG: '0', AGE: expect.stringMatching(/^\d+s$/) },
      ]);
      expect(await get('clusterproviders', cluster)).toEqual([{ NAME: cluster, READY: 'True', 'AUDIT SECRET': 'audit-token', WATCHED: '', AGE: expect.stringMatching(/^\d+s$/) }]);
      expect((await get('watchrules', 'good', '-n', ns)).map((r) => [r.NAME, r.READY])).toEqual([['good', 'True']]);
      expect((await get('gitproviders', 'repo', '-n', ns)).map((r) => [r.NAME, r.READY])).toEqual([['repo', 'True']]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const cases: { name: string; make: () => Obj[]; check: () => Obj; reason: string; message: (ns: string) => string }[] = [
    {
      name: 'a GitTarget naming a GitProvider that does not exist',
      make: () => [gitTargetObject(ns, 'no-provider', { provider: 'missing', path: 'c1', cluster })],
      check: () => gitTargetObject(ns, 'no-provider', { provider: 'missing', path: 'c1', cluster }),
      reason: 'GitProviderNotFound',
      message: (n) => `spec.providerRef.name: GitProvider ${n}/missing not found`,
    },
    {
      name: 'a GitTarget with an invalid branch name',
      make: () => [gitTargetObject(ns, 'bad-branch', { provider: 'repo', branch: 'release..1', path: 'c2', cluster })],
      check: () => gitTargetObject(ns, 'bad-branch', { provider: 'repo', branch: 'release..1', path: 'c2', cluster }),
      reason: 'InvalidBranch',
      message: () => 'spec.branch: "release..1" is not a valid Git branch name',
    },
    {
      name: 'a GitTarget on a branch its provider does not allow',
      make: () => [gitTargetObject(ns, 'not-allowed', { provider: 'repo', branch: 'dev', path: 'c3', cluster })],
      check: () => gitTargetObject(ns, 'not-allowed', { provider: 'repo', branch: 'dev', path: 'c3', cluster }),
      reason: 'BranchNotAllowed',
      message: (n) => `spec.branch: "dev" is not allowed by GitProvider ${n}/repo (allowedBranches: main)`,
    },
    {
      name: 'a GitTarget whose folder overlaps an older target',
      make: () => [gitTargetObject(ns, 'overlap', { provider: 'repo', path: 'good/inner', cluster })],
      check: () => gitTargetObject(ns, 'overlap', { provider: 'repo', path: 'good/inner', cluster }),
      reason: 'PathOverlap',
      message: (n) => `spec.path: "good/inner" overlaps GitTarget ${n}/good ("good") on the same repository and branch`,
    },
    {
      name: 'a GitTarget naming a ClusterProvider that does not exist',
      make: () => [gitTargetObject(ns, 'no-cluster', { provider: 'repo', path: 'c5', cluster: 'nowhere' })],
      check: () => gitTargetObject(ns, 'no-cluster', { provider: 'repo', path: 'c5', cluster: 'nowhere' }),
      reason: 'ClusterProviderNotFound',
      message: () => 'spec.clusterProviderRef.name: ClusterProvider nowhere not found',
    },
    {
      name: 'a WatchRule naming a GitTarget that does not exist',
      make: () => [watchRuleObject(ns, 'orphan', 'ghost', ['configmaps'])],
      check: () => watchRuleObject(ns, 'orphan', 'ghost', ['configmaps']),
      reason: 'GitTargetNotFound',
      message: (n) => `spec.targetRef.name: GitTarget ${n}/ghost not found`,
    },
    {
      name: 'a ClusterWatchRule whose GitTarget is broken',
      make: () => [clusterWatchRuleObject(`${cluster}-waits`, { namespace: ns, name: 'no-provider' }, ['configmaps'])],
      check: () => clusterWatchRuleObject(`${cluster}-waits`, { namespace: ns, name: 'no-provider' }, ['configmaps']),
      reason: 'GitTargetNotReady',
      message: (n) => `spec.targetRef: GitTarget ${n}/no-provider is not ready (see its conditions)`,
    },
    {
      name: 'a GitProvider whose Secret does not exist',
      make: () => [gitProviderObject(ns, 'no-secret', 'https://git.example.com/team/repo.git', ['main'], 'absent')],
      check: () => gitProviderObject(ns, 'no-secret', 'https://git.example.com/team/repo.git', ['main'], 'absent'),
      reason: 'SecretNotFound',
      message: (n) => `spec.secretRef: Secret ${n}/absent not found`,
    },
    {
      name: 'a GitProvider of a remote URL without credentials',
      make: () => [gitProviderObject(ns, 'anonymous', 'https://git.example.com/team/repo.git')],
      check: () => gitProviderObject(ns, 'anonymous', 'https://git.example.com/team/repo.git'),
      reason: 'CredentialsRequired',
      message: () => 'spec.secretRef: required for remote URL https://git.example.com/team/repo.git',
    },
    {
      name: 'a ClusterProvider whose token key is missing from its Secret',
      make: () => [clusterProviderObject(`${cluster}-nokey`, { audit: { tokenSecretRef: { name: 'audit-token', namespace: ns, key: 'nokey' } } })],
      check: () => clusterProviderObject(`${cluster}-nokey`, {}),
      reason: 'SecretKeyNotFound',
      message: (n) => `spec.audit.tokenSecretRef.key: Secret ${n}/audit-token has no key "nokey"`,
    },
    {
      name: 'a WatchRule that selects no resource its cluster serves (found by API discovery)',
      make: () => [watchRuleObject(ns, 'typo', 'good', ['configmap'])],
      check: () => watchRuleObject(ns, 'typo', 'good', ['configmap']),
      reason: 'NoMatchingResources',
      message: () =>
        `spec.rules[0]: no resource of cluster ${cluster} matches apiGroups [""] and resources [configmap]: use plural resource names as \`kubectl api-resources\` lists them`,
    },
  ];

  for (const c of cases) {
    it(`reports ${c.name}: Ready=False, ${c.reason}`, async () => {
      for (const obj of c.make()) await create(obj);
      const ready = await waitForCondition(c.check(), 'Ready', 'False');
      const live = (await kit.kube.read(c.check())) as WithStatus;
      expect(ready).toMatchObject({ reason: c.reason, message: c.message(ns), observedGeneration: live.metadata.generation });
    });
  }

  it('keeps the sound objects Ready beside the broken ones, and a fix turns a broken one Ready', async () => {
    expect(await condition(gitTargetObject(ns, 'good', { provider: 'repo', path: 'good', cluster }), 'Ready')).toMatchObject({ status: 'True' });
    const broken = gitTargetObject(ns, 'no-provider', { provider: 'missing', path: 'c1', cluster });
    // The fix the message asks for: create the GitProvider it names.
    await create(gitProviderObject(ns, 'missing', kit.remote, ['*']));
    await waitForCondition(broken, 'Ready', 'True');
    await waitForCondition(clusterWatchRuleObject(`${cluster}-waits`, { namespace: ns, name: 'no-provider' }, ['configmaps']), 'Ready', 'True');
    expect(kit.service.currentConfig().targets.has(`${ns}/no-provider`)).toBe(true);
  });
});
