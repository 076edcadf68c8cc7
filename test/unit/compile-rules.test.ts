import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load-config.js';
import type { ResolvedConfig, ResolvedGitProvider, ResolvedRule, ResolvedTarget } from '../../config/resolved-config.js';
import type { ResourceRule } from '../../config/resource-schemas.js';
import type { ObjectIdentity, Operation } from '../../core/contracts.js';
import { partitionOf } from '../../queues/names.js';
import { compileRules, matchTargets } from '../../workers/route/compile-rules.js';

const provider: ResolvedGitProvider = { key: 'ops/repo', url: '/srv/repo.git', allowedBranches: ['*'] };

function target(key: string, clusterProvider = 'prod', path = key.replace('/', '-')): ResolvedTarget {
  return { key, provider, branch: 'main', path, clusterProvider, partition: partitionOf(provider.url, 'main'), prune: 'OnEvent', reconcileIntervalSeconds: 3600 };
}

function config(targets: ResolvedTarget[], rules: ResolvedRule[]): ResolvedConfig {
  return {
    clusters: new Map(),
    providers: new Map(),
    targets: new Map(targets.map((t) => [t.key, t])),
    rules,
    partitions: new Map(),
  };
}

const ALL: ResourceRule = { operations: ['*'], apiGroups: ['*'], resources: ['*'] };
const watchRule = (namespace: string, targetKey: string, ...rules: ResourceRule[]): ResolvedRule => ({
  source: `WatchRule ${namespace}/w`,
  kind: 'WatchRule',
  key: `${namespace}/w`,
  namespace,
  targetKey,
  rules,
});
const clusterWatchRule = (targetKey: string, ...rules: ResourceRule[]): ResolvedRule => ({ source: 'ClusterWatchRule c', kind: 'ClusterWatchRule', key: 'c', targetKey, rules });

const deploy: ObjectIdentity = { cluster: 'prod', group: 'apps', version: 'v1', resource: 'deployments', namespace: 'shop', name: 'web' };
const configMap: ObjectIdentity = { cluster: 'prod', group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: 'cfg' };
const clusterRole: ObjectIdentity = {
  cluster: 'prod',
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  resource: 'clusterroles',
  namespace: '',
  name: 'admin',
};

/** The keys of the matched targets. */
function keys(c: ResolvedConfig, id: ObjectIdentity, op: Operation = 'UPDATE'): string[] {
  return matchTargets(compileRules(c), id, op).map((t) => t.key);
}

describe('matchTargets: scope', () => {
  const t = target('shop/t');

  it('a WatchRule matches only objects of its own namespace', () => {
    const c = config([t], [watchRule('shop', 'shop/t', ALL)]);
    expect(keys(c, deploy)).toEqual(['shop/t']);
    expect(keys(c, { ...deploy, namespace: 'other' })).toEqual([]);
    expect(keys(c, { ...deploy, namespace: 'shop-2' })).toEqual([]);
  });

  it('a WatchRule never matches cluster-scoped objects, even with every selector "*"', () => {
    expect(keys(config([t], [watchRule('shop', 'shop/t', ALL)]), clusterRole)).toEqual([]);
  });

  it('a ClusterWatchRule matches any namespace and cluster-scoped objects', () => {
    const c = config([t], [clusterWatchRule('shop/t', ALL)]);
    expect(keys(c, deploy)).toEqual(['shop/t']);
    expect(keys(c, { ...deploy, namespace: 'kube-system' })).toEqual(['shop/t']);
    expect(keys(c, clusterRole)).toEqual(['shop/t']);
  });

  it('a target only receives events of its own clusterProviderRef cluster', () => {
    const c = config([target('ops/prod', 'prod'), target('ops/stage', 'stage')], [clusterWatchRule('ops/prod', ALL), clusterWatchRule('ops/stage', ALL)]);
    expect(keys(c, deploy)).toEqual(['ops/prod']);
    expect(keys(c, { ...deploy, cluster: 'stage' })).toEqual(['ops/stage']);
    expect(keys(c, { ...deploy, cluster: 'unknown' })).toEqual([]);
  });

  it('ignores rules whose target does not exist', () => {
    const c = config([], [clusterWatchRule('ops/missing', ALL)]);
    expect(compileRules(c).byCluster.size).toBe(0);
    expect(keys(c, deploy)).toEqual([]);
  });
});

describe('matchTargets: selectors', () => {
  const t = target('ops/t');
  const only = (rule: Partial<ResourceRule>) => config([t], [clusterWatchRule('ops/t', { ...ALL, ...rule })]);

  it('operations "*" selects every operation; a list only those', () => {
    const any = only({ operations: ['*'] });
    for (const op of ['CREATE', 'UPDATE', 'DELETE'] as const) expect(keys(any, deploy, op)).toEqual(['ops/t']);
    const some = only({ operations: ['CREATE', 'DELETE'] });
    expect(keys(some, deploy, 'CREATE')).toEqual(['ops/t']);
    expect(keys(some, deploy, 'UPDATE')).toEqual([]);
    expect(keys(some, deploy, 'DELETE')).toEqual(['ops/t']);
  });

  it('apiGroups "" is the core group only; "*" is any group; "apps" only apps', () => {
    const core = only({ apiGroups: [''] });
    expect(keys(core, configMap)).toEqual(['ops/t']);
    expect(keys(core, deploy)).toEqual([]);
    const any = only({ apiGroups: ['*'] });
    expect(keys(any, configMap)).toEqual(['ops/t']);
    expect(keys(any, deploy)).toEqual(['ops/t']);
    expect(keys(any, clusterRole)).toEqual(['ops/t']);
    const apps = only({ apiGroups: ['apps'] });
    expect(keys(apps, deploy)).toEqual(['ops/t']);
    expect(keys(apps, configMap)).toEqual([]);
    expect(keys(apps, { ...deploy, group: 'apps.example.com' })).toEqual([]);
    const both = only({ apiGroups: ['', 'apps'] });
    expect(keys(both, configMap)).toEqual(['ops/t']);
    expect(keys(both, deploy)).toEqual(['ops/t']);
    expect(keys(both, clusterRole)).toEqual([]);
  });

  it('apiVersions absent selects any version; listed selects only those', () => {
    const absent = only({});
    expect(keys(absent, deploy)).toEqual(['ops/t']);
    expect(keys(absent, { ...deploy, version: 'v1beta1' })).toEqual(['ops/t']);
    const v1 = only({ apiVersions: ['v1'] });
    expect(keys(v1, deploy)).toEqual(['ops/t']);
    expect(keys(v1, { ...deploy, version: 'v1beta1' })).toEqual([]);
    const star = only({ apiVersions: ['*'] });
    expect(keys(star, { ...deploy, version: 'v2alpha1' })).toEqual(['ops/t']);
  });

  it('resources "*" selects every resource; a list only those, by exact plural name', () => {
    expect(keys(only({ resources: ['*'] }), configMap)).toEqual(['ops/t']);
    const list = only({ resources: ['deployments', 'statefulsets'] });
    expect(keys(list, deploy)).toEqual(['ops/t']);
    expect(keys(list, { ...deploy, resource: 'statefulsets' })).toEqual(['ops/t']);
    expect(keys(list, { ...deploy, resource: 'deployment' })).toEqual([]);
    expect(keys(list, configMap)).toEqual([]);
  });

  it('all selectors of one rule must match together; any of the rules of one object may', () => {
    const c = config(
      [t],
      [
        clusterWatchRule(
          'ops/t',
          { operations: ['CREATE'], apiGroups: ['apps'], resources: ['deployments'] },
          { operations: ['DELETE'], apiGroups: [''], resources: ['configmaps'] },
        ),
      ],
    );
    expect(keys(c, deploy, 'CREATE')).toEqual(['ops/t']);
    expect(keys(c, deploy, 'DELETE')).toEqual([]);
    expect(keys(c, configMap, 'DELETE')).toEqual(['ops/t']);
    expect(keys(c, configMap, 'CREATE')).toEqual([]);
  });
});

describe('matchTargets: targets', () => {
  it('two rules selecting the same target yield it once', () => {
    const t = target('shop/t');
    const c = config([t], [watchRule('shop', 'shop/t', ALL), clusterWatchRule('shop/t', { operations: ['UPDATE'], apiGroups: ['apps'], resources: ['*'] })]);
    const matched = matchTargets(compileRules(c), deploy, 'UPDATE');
    expect(matched).toHaveLength(1);
    expect(matched[0]).toBe(t);
  });

  it('one rule with two matching resource rules yields the target once', () => {
    const c = config([target('ops/t')], [clusterWatchRule('ops/t', ALL, { operations: ['UPDATE'], apiGroups: ['apps'], resources: ['deployments'] })]);
    expect(keys(c, deploy)).toEqual(['ops/t']);
  });

  it('two targets selected yield two targets, in rule order', () => {
    const a = target('shop/a');
    const b = target('ops/b');
    const c = config([a, b], [watchRule('shop', 'shop/a', ALL), clusterWatchRule('ops/b', ALL)]);
    expect(matchTargets(compileRules(c), deploy, 'CREATE')).toEqual([a, b]);
    // Outside shop only the ClusterWatchRule's target.
    expect(keys(c, { ...deploy, namespace: 'other' }, 'CREATE')).toEqual(['ops/b']);
  });

  it('routes the same way from a configuration file', () => {
    const V = 'apiVersion: gitopsreverser.io/v1alpha1';
    const c = parseConfig(`apiVersion: v1
kind: Secret
metadata: { name: tok, namespace: ops }
stringData: { token: t }
---
${V}
kind: ClusterProvider
metadata: { name: prod }
spec: { audit: { tokenSecretRef: { name: tok, namespace: ops, key: token } } }
---
${V}
kind: GitProvider
metadata: { name: repo, namespace: shop }
spec: { url: /srv/repo.git, allowedBranches: [main] }
---
${V}
kind: GitTarget
metadata: { name: apps, namespace: shop }
spec: { providerRef: { name: repo }, branch: main, path: apps, clusterProviderRef: { name: prod } }
---
${V}
kind: GitTarget
metadata: { name: rbac, namespace: shop }
spec: { providerRef: { name: repo }, branch: main, path: rbac, clusterProviderRef: { name: prod } }
---
${V}
kind: WatchRule
metadata: { name: web, namespace: shop }
spec:
  targetRef: { name: apps }
  rules: [{ operations: [CREATE, UPDATE], apiGroups: [apps, ""], apiVersions: [v1], resources: [deployments, configmaps] }]
---
${V}
kind: ClusterWatchRule
metadata: { name: rbac }
spec:
  targetRef: { name: rbac, namespace: shop }
  rules: [{ operations: ["*"], apiGroups: [rbac.authorization.k8s.io], resources: ["*"] }]
`);
    expect(keys(c, deploy, 'CREATE')).toEqual(['shop/apps']);
    expect(keys(c, configMap, 'UPDATE')).toEqual(['shop/apps']);
    expect(keys(c, configMap, 'DELETE')).toEqual([]);
    expect(keys(c, clusterRole, 'DELETE')).toEqual(['shop/rbac']);
    expect(keys(c, { ...clusterRole, resource: 'rolebindings', namespace: 'shop' }, 'CREATE')).toEqual(['shop/rbac']);
    expect(keys(c, { ...deploy, cluster: 'stage' }, 'CREATE')).toEqual([]);
  });
});
