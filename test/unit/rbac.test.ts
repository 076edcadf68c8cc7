// The least RBAC for a configuration: two clusters read with the service's own credentials (prod by
// audit webhook, so get for object fetch and list for the reconcile; edge in watch mode, so get/list/watch), WatchRules and
// ClusterWatchRules with explicit and wildcard resources, with and without API discovery.
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../../config/load-config.js';
import { readRbacConfig } from '../../rbac/rbac-config.js';
import { rbacObjects, type RbacObject } from '../../rbac/rbac-objects.js';
import { CLUSTER_SCOPE, PermissionSet } from '../../rbac/rbac-policy.js';
import { rbacNeeds, type ApiResourceInfo } from '../../rbac/rbac.js';
import { secretReferences } from '../../config/secret-references.js';

const V = 'apiVersion: gitopsreverser.io/v1alpha1';

function configYaml(opts: { edgeKubeConfig?: boolean } = {}): string {
  return `${V}
kind: ClusterProvider
metadata: { name: prod }
spec:
  audit:
    tokenSecretRef: { name: prod-audit, namespace: gitops-reverser, key: token }
---
${V}
kind: ClusterProvider
metadata: { name: edge }
spec:
  watch: { enabled: true }
${opts.edgeKubeConfig ? '  kubeConfigSecretRef: { name: edge-kubeconfig, namespace: gitops-reverser, key: kubeconfig }\n' : ''}---
apiVersion: v1
kind: Secret
metadata: { name: git-creds, namespace: team-a }
stringData: { username: bot, password: secret }
---
${V}
kind: GitProvider
metadata: { name: repo, namespace: team-a }
spec: { url: "https://git.example/team-a/config.git", secretRef: { name: git-creds }, allowedBranches: ["main"] }
---
${V}
kind: GitProvider
metadata: { name: repo, namespace: platform }
spec: { url: /srv/platform.git, allowedBranches: ["main"] }
---
${V}
kind: GitTarget
metadata: { name: prod-web, namespace: team-a }
spec: { providerRef: { name: repo }, branch: main, path: prod, clusterProviderRef: { name: prod } }
---
${V}
kind: GitTarget
metadata: { name: edge-web, namespace: team-a }
spec: { providerRef: { name: repo }, branch: main, path: edge, clusterProviderRef: { name: edge } }
---
${V}
kind: GitTarget
metadata: { name: prod-all, namespace: platform }
spec: { providerRef: { name: repo }, branch: main, path: prod, clusterProviderRef: { name: prod } }
---
${V}
kind: GitTarget
metadata: { name: edge-all, namespace: platform }
spec: { providerRef: { name: repo }, branch: main, path: edge, clusterProviderRef: { name: edge } }
---
${V}
kind: WatchRule
metadata: { name: web, namespace: team-a }
spec:
  targetRef: { name: prod-web }
  rules:
    - { operations: ["*"], apiGroups: ["apps"], resources: ["deployments"] }
    - { operations: ["*"], apiGroups: [""], resources: ["configmaps", "services"] }
---
${V}
kind: WatchRule
metadata: { name: edge, namespace: team-a }
spec:
  targetRef: { name: edge-web }
  rules:
    - { operations: ["*"], apiGroups: [""], resources: ["configmaps"] }
    - { operations: ["*"], apiGroups: ["batch"], resources: ["*"] }
---
${V}
kind: ClusterWatchRule
metadata: { name: prod-rbac }
spec:
  targetRef: { name: prod-all, namespace: platform }
  rules:
    - { operations: ["*"], apiGroups: ["rbac.authorization.k8s.io"], resources: ["clusterroles"] }
---
${V}
kind: ClusterWatchRule
metadata: { name: edge-apps }
spec:
  targetRef: { name: edge-all, namespace: platform }
  rules:
    - { operations: ["*"], apiGroups: ["apps"], resources: ["*"] }
`;
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const r = (group: string, resource: string, namespaced: boolean, verbs = ALL_VERBS, version = 'v1'): ApiResourceInfo => ({
  group,
  version,
  resource,
  kind: resource,
  namespaced,
  verbs,
});
/** What discovery of a small cluster lists: subresources, create-only resources and two versions included. */
const DISCOVERED: ApiResourceInfo[] = [
  r('', 'configmaps', true),
  r('', 'services', true),
  r('', 'secrets', true),
  r('', 'pods', true),
  r('', 'pods/log', true, ['get']),
  r('', 'bindings', true, ['create']),
  r('', 'namespaces', false),
  r('apps', 'deployments', true),
  r('apps', 'deployments/scale', true, ['get', 'patch', 'update']),
  r('apps', 'replicasets', true),
  r('apps', 'controllerrevisions', true),
  r('batch', 'jobs', true),
  r('batch', 'cronjobs', true),
  r('batch', 'cronjobs', true, ALL_VERBS, 'v1beta1'),
  r('rbac.authorization.k8s.io', 'clusterroles', false),
  r('rbac.authorization.k8s.io', 'roles', true),
  r('authentication.k8s.io', 'tokenreviews', false, ['create']),
  r('example.com', 'widgets', false, ['get', 'list', 'watch', 'create']),
];

const CONFIG_READ = { apiGroups: ['gitopsreverser.io'], resources: ['clusterproviders', 'clusterwatchrules', 'gitproviders', 'gittargets', 'watchrules'], verbs: ['get', 'list', 'watch'] };
const STATUS_WRITE = {
  apiGroups: ['gitopsreverser.io'],
  resources: ['clusterproviders/status', 'clusterwatchrules/status', 'gitproviders/status', 'gittargets/status', 'watchrules/status'],
  verbs: ['patch'],
};
const CRD_WATCH = { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['list', 'watch'] };

function needsOf(yaml: string, discovered?: ApiResourceInfo[]) {
  const { config, secrets } = readRbacConfig(yaml, 'config.yaml');
  return rbacNeeds({ config, secrets, discovered });
}

/** Every string a Role or ClusterRole grants, to check that none is a wildcard. */
function grantedStrings(objects: RbacObject[]): string[] {
  return objects.flatMap((o) => ('rules' in o ? o.rules.flatMap((rule) => [...rule.apiGroups, ...rule.resources, ...rule.verbs, ...(rule.resourceNames ?? [])]) : []));
}

describe('rbacNeeds without discovery', () => {
  const needs = needsOf(configYaml());

  it('ClusterRole: read the five kinds, write only their status, the ClusterWatchRule resources, CRDs for the wildcard', () => {
    expect(needs.cluster).toEqual([
      CRD_WATCH,
      CONFIG_READ,
      STATUS_WRITE,
      // prod sends audit events: get (object fetch) and list (reconcile, deletecollection listing), never watch.
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['get', 'list'] },
    ]);
  });

  it('Roles: referenced Secrets by name in their namespace, WatchRule resources in the rule namespace', () => {
    expect(needs.namespaces).toEqual([
      {
        namespace: 'gitops-reverser',
        rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['prod-audit'], verbs: ['get'] }],
      },
      {
        namespace: 'team-a',
        rules: [
          // configmaps: get/list for prod (fetch, reconcile) and get/list/watch for edge (watch mode), merged.
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['git-creds'], verbs: ['get'] },
          { apiGroups: [''], resources: ['services'], verbs: ['get', 'list'] },
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] },
        ],
      },
    ]);
  });

  it('reports each wildcard rule as needing discovery instead of granting `*`', () => {
    expect(needs.needsDiscovery).toEqual([
      { source: 'WatchRule team-a/edge', index: 1, cluster: 'edge', apiGroups: ['batch'], resources: ['*'] },
      { source: 'ClusterWatchRule edge-apps', index: 0, cluster: 'edge', apiGroups: ['apps'], resources: ['*'] },
    ]);
    expect(grantedStrings(rbacObjects(needs, { serviceAccount: 'sa', namespace: 'ns' }))).not.toContain('*');
  });
});

describe('rbacNeeds with discovery', () => {
  const needs = needsOf(configYaml(), DISCOVERED);

  it('expands wildcards into the served resources: no subresources, no verbs a resource does not serve', () => {
    expect(needs.needsDiscovery).toEqual([]);
    expect(needs.cluster).toEqual([
      CRD_WATCH,
      // ClusterWatchRule edge-apps (watch mode): every apps resource, cluster-wide; deployments/scale is a subresource.
      { apiGroups: ['apps'], resources: ['controllerrevisions', 'deployments', 'replicasets'], verbs: ['get', 'list', 'watch'] },
      CONFIG_READ,
      STATUS_WRITE,
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['get', 'list'] },
    ]);
  });

  it('drops namespace grants the ClusterRole already gives, and names each resource once whatever its versions', () => {
    expect(needs.namespaces.find((n) => n.namespace === 'team-a')?.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['git-creds'], verbs: ['get'] },
      { apiGroups: [''], resources: ['services'], verbs: ['get', 'list'] },
      // apps/deployments (get/list) is inside the ClusterRole's get/list/watch on apps.
      { apiGroups: ['batch'], resources: ['cronjobs', 'jobs'], verbs: ['get', 'list', 'watch'] },
    ]);
  });

  it('a WatchRule wildcard selects only namespaced resources; apiVersions narrow the selection', () => {
    const yaml = configYaml().replace('apiGroups: ["batch"], resources: ["*"]', 'apiGroups: ["*"], resources: ["*"], apiVersions: ["v1"]');
    const teamA = needsOf(yaml, DISCOVERED).namespaces.find((n) => n.namespace === 'team-a')?.rules;
    const resources = teamA?.flatMap((rule) => rule.resources) ?? [];
    expect(resources).toEqual(expect.arrayContaining(['pods', 'roles', 'jobs', 'cronjobs', 'secrets']));
    // Cluster-scoped (namespaces, clusterroles, widgets), create-only (bindings, tokenreviews) and subresources are not selected.
    for (const never of ['namespaces', 'clusterroles', 'widgets', 'bindings', 'tokenreviews', 'pods/log']) expect(resources).not.toContain(never);
    // All Secrets of team-a are read by edge's watch: the grant by name is covered, so it goes.
    expect(teamA?.some((rule) => rule.resourceNames !== undefined)).toBe(false);
  });

  it('explicit resources the cluster does not serve are not granted, and the rule is named in a note', () => {
    const yaml = configYaml().replace('resources: ["clusterroles"]', 'resources: ["clusterrolez"]');
    const result = needsOf(yaml, DISCOVERED);
    expect(result.cluster.flatMap((rule) => rule.resources)).not.toContain('clusterrolez');
    expect(result.notes).toEqual(['ClusterWatchRule prod-rbac: spec.rules[0] selects no resource the cluster serves; nothing granted']);
  });
});

describe('clusters read through their own kubeconfig', () => {
  it('need nothing on the local cluster but their kubeconfig Secret, by name', () => {
    const needs = needsOf(configYaml({ edgeKubeConfig: true }));
    // edge's wildcards and its watch grants are gone; the CRD watch went with the last local wildcard.
    expect(needs.needsDiscovery).toEqual([]);
    expect(needs.cluster).toEqual([CONFIG_READ, STATUS_WRITE, { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['get', 'list'] }]);
    expect(needs.namespaces).toEqual([
      { namespace: 'gitops-reverser', rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['edge-kubeconfig', 'prod-audit'], verbs: ['get'] }] },
      {
        namespace: 'team-a',
        rules: [
          { apiGroups: [''], resources: ['configmaps', 'services'], verbs: ['get', 'list'] },
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['git-creds'], verbs: ['get'] },
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] },
        ],
      },
    ]);
  });
});

describe('rbacObjects', () => {
  it('binds a ClusterRole and one Role per namespace to the ServiceAccount', () => {
    const objects = rbacObjects(needsOf(configYaml()), { serviceAccount: 'reverser', namespace: 'ops' });
    expect(objects.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`)).toEqual([
      'ClusterRole /reverser',
      'ClusterRoleBinding /reverser',
      'Role gitops-reverser/reverser',
      'RoleBinding gitops-reverser/reverser',
      'Role team-a/reverser',
      'RoleBinding team-a/reverser',
    ]);
    const binding = objects[3]!;
    expect(binding).toMatchObject({
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reverser' },
      subjects: [{ kind: 'ServiceAccount', name: 'reverser', namespace: 'ops' }],
    });
    expect(objects[1]).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'reverser' } });
  });

  it('is deterministic: documents in another order give byte-equal YAML', () => {
    const docs = configYaml().split(/^---\n/m);
    const shuffled = [...docs].reverse().join('---\n');
    const yamlOf = (text: string) => rbacObjects(needsOf(text, DISCOVERED), { serviceAccount: 'sa', namespace: 'ns' }).map((o) => stringify(o)).join('---\n');
    expect(yamlOf(shuffled)).toBe(yamlOf(configYaml()));
  });

  it('never grants `*`, and never a verb beyond get/list/watch except patch/update on status', () => {
    for (const discovered of [undefined, DISCOVERED]) {
      const objects = rbacObjects(needsOf(configYaml(), discovered), { serviceAccount: 'sa', namespace: 'ns' });
      expect(grantedStrings(objects)).not.toContain('*');
      for (const o of objects) {
        if (!('rules' in o)) continue;
        for (const rule of o.rules) {
          const writes = rule.verbs.filter((v) => !['get', 'list', 'watch'].includes(v));
          if (writes.length > 0) expect(rule.resources.every((res) => res.endsWith('/status'))).toBe(true);
        }
      }
    }
  });
});

describe('readRbacConfig', () => {
  it('stands in for referenced Secrets the file does not hold, and lists them', () => {
    const { config, secrets, placeholders } = readRbacConfig(configYaml({ edgeKubeConfig: true }), 'config.yaml');
    expect(placeholders).toEqual(['gitops-reverser/edge-kubeconfig', 'gitops-reverser/prod-audit']);
    expect(config.clusters.get('edge')?.kubeConfig).toBeDefined();
    expect(secrets.map((s) => s.usedBy)).toEqual([
      'ClusterProvider prod spec.audit.tokenSecretRef',
      'ClusterProvider edge spec.kubeConfigSecretRef',
      'GitProvider team-a/repo spec.secretRef',
    ]);
  });

  it('still refuses a file with real problems, naming them', () => {
    const lost = `${V}\nkind: WatchRule\nmetadata: { name: lost, namespace: team-a }\nspec:\n  targetRef: { name: nowhere }\n  rules: [{ operations: ["*"], apiGroups: [""], resources: ["pods"] }]\n`;
    const broken = `${configYaml()}---\n${lost}`;
    expect(() => readRbacConfig(broken, 'config.yaml')).toThrow(ConfigError);
    expect(() => readRbacConfig(broken, 'config.yaml')).toThrow('WatchRule team-a/lost: spec.targetRef.name: GitTarget team-a/nowhere not found');
  });
});

describe('secretReferences', () => {
  it('names the key read and who reads it', () => {
    const refs = secretReferences({
      ClusterProvider: [
        {
          apiVersion: 'gitopsreverser.io/v1alpha1',
          kind: 'ClusterProvider',
          metadata: { name: 'c1' },
          spec: { audit: { tokenSecretRef: { name: 't', namespace: 'ops', key: 'token' } }, qps: 20, burst: 40 },
        },
      ],
      GitProvider: [],
    });
    expect(refs).toEqual([{ namespace: 'ops', name: 't', key: 'token', usedBy: 'ClusterProvider c1 spec.audit.tokenSecretRef' }]);
  });
});

describe('PermissionSet', () => {
  it('merges verbs per resource, groups resources with equal verbs, and sorts', () => {
    const set = new PermissionSet();
    set.grant('ns', 'apps', 'replicasets', ['watch', 'get']);
    set.grant('ns', 'apps', 'deployments', ['get']);
    set.grant('ns', 'apps', 'deployments', ['list', 'watch']);
    set.grant('ns', '', 'secrets', ['get'], 'b');
    set.grant('ns', '', 'secrets', ['get'], 'a');
    expect(set.rules('ns')).toEqual([
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['a', 'b'], verbs: ['get'] },
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get', 'watch'] },
    ]);
    expect(set.rules(CLUSTER_SCOPE)).toEqual([]);
    expect(set.namespaces()).toEqual(['ns']);
  });

  it('keeps the verbs a broader grant does not cover', () => {
    const set = new PermissionSet();
    set.grant(CLUSTER_SCOPE, '', 'configmaps', ['get']);
    set.grant('ns', '', 'configmaps', ['get', 'list', 'watch']);
    expect(set.rules('ns')).toEqual([{ apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] }]);
  });
});

describe('rbacNeeds of a watched cluster limited to some namespaces', () => {
  const limited = configYaml().replace('  watch: { enabled: true }\n', '  watch: { enabled: true }\n  allowedNamespaces: [shop, payments]\n');

  it('reads namespaced types in the allowed namespaces only, cluster-scoped ones cluster-wide, and follows CRDs', () => {
    const needs = needsOf(
      limited.replace(
        '    - { operations: ["*"], apiGroups: ["apps"], resources: ["*"] }',
        '    - { operations: ["*"], apiGroups: ["apps", "rbac.authorization.k8s.io"], resources: ["deployments", "clusterroles"] }',
      ),
      DISCOVERED,
    );
    // edge watches: CRDs are followed even without a wildcard.
    expect(needs.cluster).toContainEqual(CRD_WATCH);
    expect(needs.cluster).toContainEqual({ apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['get', 'list', 'watch'] });
    expect(needs.cluster.some((rule) => rule.resources.includes('deployments'))).toBe(false);
    for (const ns of ['shop', 'payments']) {
      expect(needs.namespaces.find((n) => n.namespace === ns)?.rules).toContainEqual({ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch'] });
    }
  });
});
