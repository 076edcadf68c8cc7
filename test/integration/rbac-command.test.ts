// `rbac.ts` end to end: a configuration file in, multi-document YAML out; with --discover, the wildcards
// expanded through real API discovery: the run's kube-apiserver (or the cluster of KUBECONFIG), read by
// @kubernetes/client-node, checked against what kubectl says the same server serves.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { runRbacCommand } from '../../rbac/rbac-command.js';
import { renderChart } from '../support/chart-render.js';
import { kubeSkipReason, startKubeTarget, type KubeTarget } from '../support/kube-target.js';

const skipReason = await kubeSkipReason();
if (skipReason) console.info(`skipped (--discover): ${skipReason}`);

const V = 'apiVersion: gitopsreverser.io/v1alpha1';
const CONFIG = `${V}
kind: ClusterProvider
metadata: { name: local }
spec:
  watch: { enabled: true }
---
${V}
kind: GitProvider
metadata: { name: repo, namespace: team-a }
spec: { url: /srv/repo.git, allowedBranches: ["main"] }
---
${V}
kind: GitTarget
metadata: { name: all, namespace: team-a }
spec: { providerRef: { name: repo }, branch: main, path: ns, clusterProviderRef: { name: local } }
---
${V}
kind: GitTarget
metadata: { name: cluster, namespace: team-a }
spec: { providerRef: { name: repo }, branch: main, path: cluster, clusterProviderRef: { name: local } }
---
${V}
kind: WatchRule
metadata: { name: everything, namespace: team-a }
spec:
  targetRef: { name: all }
  rules: [{ operations: ["*"], apiGroups: ["*"], resources: ["*"] }]
---
${V}
kind: ClusterWatchRule
metadata: { name: namespaces }
spec:
  targetRef: { name: cluster, namespace: team-a }
  rules: [{ operations: ["*"], apiGroups: [""], resources: ["namespaces"] }]
`;

async function run(argv: string[], kubeConfig?: () => Promise<import('@kubernetes/client-node').KubeConfig>) {
  let stdout = '';
  let stderr = '';
  const code = await runRbacCommand(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, kubeConfig });
  return { code, stdout, stderr, docs: parseAllDocuments(stdout).map((d) => d.toJS() as Record<string, unknown>) };
}

describe('rbac.ts', () => {
  let dir = '';
  let file = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gr-rbac-'));
    file = join(dir, 'config.yaml');
    await writeFile(file, CONFIG);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('without --discover: prints what it can, names the wildcard rule, exits 2', async () => {
    const r = await run(['--config', file, '--service-account', 'reverser', '--namespace', 'ops']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('note: WatchRule team-a/everything spec.rules[0] (apiGroups ["*"], resources [*]) has a wildcard: NOT granted; rerun with --discover');
    expect(r.docs.map((d) => d.kind)).toEqual(['ClusterRole', 'ClusterRoleBinding']);
    expect(r.docs[1]).toMatchObject({ subjects: [{ kind: 'ServiceAccount', name: 'reverser', namespace: 'ops' }] });
    expect(r.stdout).not.toMatch(/- "?\*"?$/m);
  });

  it('refuses without --config, and with an unknown option', async () => {
    expect((await run([])).code).toBe(1);
    const bad = await run(['--config', file, '--bogus']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("Unknown option '--bogus'");
    expect(bad.stdout).toBe('');
  });

  it('refuses a configuration with problems, listing them, printing nothing', async () => {
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, CONFIG.replace('clusterProviderRef: { name: local } }', 'clusterProviderRef: { name: gone } }'));
    const r = await run(['--config', broken]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('GitTarget team-a/all: spec.clusterProviderRef.name: ClusterProvider gone not found');
    expect(r.stdout).toBe('');
  });

  describe.skipIf(skipReason !== undefined)('--discover against an API server', () => {
    let api: KubeTarget;
    /** What kubectl says the server serves: namespaced (or not) resources that can be listed and watched, by group. */
    let served: (namespaced: boolean) => Promise<Map<string, string[]>>;
    beforeAll(async () => {
      api = await startKubeTarget();
      const kubeconfig = join(dir, 'kubeconfig');
      await writeFile(kubeconfig, api.kubeConfig().exportConfig());
      served = async (namespaced) => {
        const { stdout } = await promisify(execFile)('kubectl', ['--kubeconfig', kubeconfig, 'api-resources', `--namespaced=${String(namespaced)}`, '--verbs=list,watch', '-o', 'name']);
        const byGroup = new Map<string, string[]>();
        for (const name of stdout.split('\n').filter(Boolean)) {
          const dot = name.indexOf('.');
          const [resource, group] = dot < 0 ? [name, ''] : [name.slice(0, dot), name.slice(dot + 1)];
          byGroup.set(group, [...(byGroup.get(group) ?? []), resource].sort());
        }
        return byGroup;
      };
    });
    afterAll(async () => {
      await api?.stop();
    });

    it('expands the wildcards into the resources the cluster serves and exits 0', async () => {
      const r = await run(['--config', file, '--discover'], async () => Promise.resolve(api.kubeConfig()));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const role = r.docs.find((d) => d.kind === 'Role') as { metadata: { namespace: string }; rules: unknown[] };
      expect(role.metadata.namespace).toBe('team-a');
      // Every namespaced resource the server lets one list and watch, by group, as kubectl sees them; the
      // gitopsreverser.io kinds are already readable cluster-wide (ClusterRole), so the Role does not repeat them.
      const rules = role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
      expect(rules.every((rule) => rule.apiGroups.length === 1 && JSON.stringify(rule.verbs) === '["get","list","watch"]')).toBe(true);
      const granted = new Map(rules.map((rule) => [rule.apiGroups[0]!, [...rule.resources].sort()]));
      const expected = await served(true);
      expected.delete('gitopsreverser.io');
      expect(granted).toEqual(expected);
      expect(granted.get('')).toEqual(expect.arrayContaining(['configmaps', 'secrets', 'pods']));
      expect(granted.get('apps')).toEqual(expect.arrayContaining(['deployments']));
      const clusterRole = r.docs.find((d) => d.kind === 'ClusterRole') as { rules: { resources: string[] }[] };
      expect(clusterRole.rules.flatMap((rule) => rule.resources)).toEqual(expect.arrayContaining(['namespaces', 'customresourcedefinitions']));
      expect(r.stdout.startsWith(`# RBAC of GitOps Reverser for ${file}, wildcards expanded by API discovery`)).toBe(true);
    });

    it('--helm-values: the same grants as the chart\'s rbac values, which the chart renders into the same rules', async () => {
      const r = await run(['--config', file, '--discover', '--helm-values'], async () => Promise.resolve(api.kubeConfig()));
      expect(r.code).toBe(0);
      const values = r.docs[0] as { rbac: { read: unknown[]; watchCustomResourceDefinitions: boolean; releaseNamespaceSecrets: boolean } };
      expect(values.rbac).toMatchObject({ readMode: 'selected', releaseNamespaceSecrets: false, watchCustomResourceDefinitions: true });
      const read = values.rbac.read as { apiGroups: string[]; resources: string[]; namespaces?: string[]; verbs: string[] }[];
      const inTeamA = read.filter((g) => JSON.stringify(g.namespaces) === '["team-a"]');
      expect(inTeamA.find((g) => g.apiGroups.includes(''))?.resources).toEqual(expect.arrayContaining(['configmaps', 'secrets']));
      expect(inTeamA.find((g) => g.apiGroups.includes('apps'))?.resources).toEqual(expect.arrayContaining(['deployments']));
      // Rendered by the chart, the values give the rules `rbac.ts` prints as objects.
      const valuesFile = join(dir, 'rbac-values.yaml');
      await writeFile(valuesFile, r.stdout);
      const chart = await renderChart({ valueFiles: [valuesFile] });
      const objects = (await run(['--config', file, '--discover'], async () => Promise.resolve(api.kubeConfig()))).docs;
      const rulesOf = (docs: Record<string, unknown>[], kind: string) =>
        docs.filter((d) => d.kind === kind).flatMap((d) => (d.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]).map((x) => JSON.stringify(x)));
      // Per namespace: a grant rendered into another namespace than rbac.ts puts it must not pass.
      const rolesByNamespace = (docs: Record<string, unknown>[]) =>
        Object.fromEntries(
          docs.filter((d) => d.kind === 'Role').map((d) => [(d.metadata as { namespace: string }).namespace, rulesOf([d], 'Role').sort()]),
        );
      const rendered = chart.objects.map((o) => o.object as Record<string, unknown>);
      expect(rolesByNamespace(rendered)).toEqual(rolesByNamespace(objects));
      // The chart states its own kinds' grants as one rule each; the generated ClusterRole lists the rest alike.
      const own = (rule: string) => rule.includes('gitopsreverser.io');
      expect(new Set(rulesOf(rendered, 'ClusterRole').filter((x) => !own(x)))).toEqual(new Set(rulesOf(objects, 'ClusterRole').filter((x) => !own(x))));
    });
  });
});
