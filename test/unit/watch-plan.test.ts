// The watch plan: which (type, namespace) watches the rules of one cluster need, through discovery.
import { describe, expect, it } from 'vitest';
import type { ResolvedConfig, ResolvedGitProvider, ResolvedRule, ResolvedTarget } from '../../config/resolved-config.js';
import type { ResourceRule } from '../../config/resource-schemas.js';
import { partitionOf } from '../../queues/names.js';
import type { ApiResourceInfo } from '../../kube/discovery.js';
import { planWatches, watchKeyOf, type WatchPlanInput } from '../../kube/watch/watch-plan.js';

const provider: ResolvedGitProvider = { key: 'ops/repo', url: '/srv/repo.git', allowedBranches: ['*'] };
const target = (key: string, clusterProvider: string): ResolvedTarget => ({
  key,
  provider,
  branch: 'main',
  path: key.replace('/', '-'),
  clusterProvider,
  partition: partitionOf(provider.url, 'main'),
  prune: 'OnEvent',
  reconcileIntervalSeconds: 3600,
});
const TARGETS = new Map([
  ['ops/prod', target('ops/prod', 'prod')],
  ['ops/stage', target('ops/stage', 'stage')],
]);

const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
const type = (group: string, version: string, resource: string, kind: string, namespaced: boolean): ApiResourceInfo => ({ group, version, resource, kind, namespaced, verbs: VERBS });
const RESOURCES: ApiResourceInfo[] = [
  type('', 'v1', 'configmaps', 'ConfigMap', true),
  type('', 'v1', 'secrets', 'Secret', true),
  type('', 'v1', 'namespaces', 'Namespace', false),
  type('', 'v1', 'events', 'Event', true),
  type('events.k8s.io', 'v1', 'events', 'Event', true),
  type('apps', 'v1', 'deployments', 'Deployment', true),
  type('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', false),
  type('gitopsreverser.io', 'v1alpha1', 'gittargets', 'GitTarget', true),
  type('example.com', 'v2', 'widgets', 'Widget', true),
];

const rule = (r: Partial<ResourceRule>): ResourceRule => ({ operations: ['*'], apiGroups: ['*'], resources: ['*'], ...r });
const watchRule = (namespace: string, ...rules: ResourceRule[]): ResolvedRule => ({ source: `WatchRule ${namespace}/w`, kind: 'WatchRule', key: `${namespace}/w`, namespace, targetKey: 'ops/prod', rules });
const clusterWatchRule = (...rules: ResourceRule[]): ResolvedRule => ({ source: 'ClusterWatchRule c', kind: 'ClusterWatchRule', key: 'c', targetKey: 'ops/prod', rules });

function plan(rules: ResolvedRule[], extra: Partial<WatchPlanInput> = {}): string[] {
  const config: Pick<ResolvedConfig, 'rules' | 'targets'> = { rules, targets: TARGETS };
  return planWatches({ cluster: 'prod', config, resources: RESOURCES, ...extra }).map((w) => w.key);
}

describe('planWatches', () => {
  it('expands wildcards through discovery, never watching events, and our own kinds only when named', () => {
    expect(plan([clusterWatchRule(rule({}))])).toEqual([
      '/v1/configmaps@',
      '/v1/namespaces@',
      '/v1/secrets@',
      'apps/v1/deployments@',
      'example.com/v2/widgets@',
      'rbac.authorization.k8s.io/v1/clusterroles@',
    ]);
    expect(plan([clusterWatchRule(rule({ apiGroups: ['', 'events.k8s.io'], resources: ['events', 'configmaps'] }))])).toEqual(['/v1/configmaps@']);
    expect(plan([clusterWatchRule(rule({ apiGroups: ['gitopsreverser.io'] }))])).toEqual(['gitopsreverser.io/v1alpha1/gittargets@']);
  });

  it('limits a WatchRule to its namespace and never to cluster-scoped types', () => {
    expect(plan([watchRule('shop', rule({ apiGroups: ['', 'rbac.authorization.k8s.io'] }))])).toEqual(['/v1/configmaps@shop', '/v1/secrets@shop']);
  });

  it('respects apiVersions against the preferred version', () => {
    expect(plan([clusterWatchRule(rule({ apiGroups: ['example.com'], apiVersions: ['v1'] }))])).toEqual([]);
    expect(plan([clusterWatchRule(rule({ apiGroups: ['example.com'], apiVersions: ['v1', 'v2'] }))])).toEqual(['example.com/v2/widgets@']);
  });

  it('watches a type once in all namespaces instead of per namespace too', () => {
    const rules = [watchRule('shop', rule({ apiGroups: [''], resources: ['configmaps'] })), watchRule('web', rule({ apiGroups: [''], resources: ['configmaps', 'secrets'] }))];
    expect(plan(rules)).toEqual(['/v1/configmaps@shop', '/v1/configmaps@web', '/v1/secrets@web']);
    expect(plan([...rules, clusterWatchRule(rule({ apiGroups: [''], resources: ['configmaps'] }))])).toEqual(['/v1/configmaps@', '/v1/secrets@web']);
  });

  it('with allowedNamespaces, watches namespaced types per allowed namespace, never cluster-wide', () => {
    const allowedNamespaces = ['shop', 'web'];
    expect(plan([clusterWatchRule(rule({ apiGroups: [''], resources: ['configmaps', 'namespaces'] }))], { allowedNamespaces })).toEqual([
      '/v1/configmaps@shop',
      '/v1/configmaps@web',
      '/v1/namespaces@',
    ]);
    expect(plan([watchRule('shop', rule({ resources: ['deployments'] })), watchRule('other', rule({}))], { allowedNamespaces })).toEqual(['apps/v1/deployments@shop']);
    expect(plan([clusterWatchRule(rule({ resources: ['configmaps'] }))], { allowedNamespaces: [] })).toEqual([]);
  });

  it('takes only the rules whose target writes for this cluster, and is deterministic', () => {
    const other: ResolvedRule = { source: 'ClusterWatchRule s', kind: 'ClusterWatchRule', key: 's', targetKey: 'ops/stage', rules: [rule({})] };
    const missing: ResolvedRule = { source: 'ClusterWatchRule m', kind: 'ClusterWatchRule', key: 'm', targetKey: 'ops/none', rules: [rule({})] };
    expect(plan([other, missing])).toEqual([]);
    const a = plan([clusterWatchRule(rule({ resources: ['secrets', 'deployments'] })), watchRule('b', rule({ resources: ['widgets'] }))]);
    const b = plan([watchRule('b', rule({ resources: ['widgets'] })), clusterWatchRule(rule({ resources: ['deployments', 'secrets'] }))]);
    expect(a).toEqual(b);
    expect(a).toEqual(['/v1/secrets@', 'apps/v1/deployments@', 'example.com/v2/widgets@b']);
  });

  it('spells keys as group/version/resource@namespace and carries the type', () => {
    const [w] = planWatches({ cluster: 'prod', config: { rules: [watchRule('shop', rule({ resources: ['deployments'] }))], targets: TARGETS }, resources: RESOURCES });
    expect(w).toEqual({ key: 'apps/v1/deployments@shop', group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true, namespace: 'shop' });
    expect(watchKeyOf({ group: '', version: 'v1', resource: 'namespaces', namespace: '' })).toBe('/v1/namespaces@');
  });
});
