// The scope of a target's reconcile: its rules only, expanded through discovery as the watch plan does.
import { describe, expect, it } from 'vitest';
import type { ResolvedRule } from '../../config/resolved-config.js';
import type { ResourceRule } from '../../config/resource-schemas.js';
import type { ApiResourceInfo } from '../../kube/discovery.js';
import { reconcileScope } from '../../flows/reconcile/scope.js';

const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
const type = (group: string, resource: string, kind: string, namespaced: boolean, verbs = VERBS): ApiResourceInfo => ({ group, version: group ? 'v1' : 'v1', resource, kind, namespaced, verbs });
const RESOURCES: ApiResourceInfo[] = [
  type('', 'configmaps', 'ConfigMap', true),
  type('', 'secrets', 'Secret', true),
  type('', 'namespaces', 'Namespace', false),
  type('', 'events', 'Event', true),
  type('apps', 'deployments', 'Deployment', true),
  type('example.com', 'unlistables', 'Unlistable', true, ['get', 'watch']),
];
const rule = (r: Partial<ResourceRule>): ResourceRule => ({ operations: ['*'], apiGroups: ['*'], resources: ['*'], ...r });
const watchRule = (targetKey: string, namespace: string, ...rules: ResourceRule[]): ResolvedRule => ({ source: `WatchRule ${namespace}/w`, kind: 'WatchRule', key: `${namespace}/w`, namespace, targetKey, rules });
const clusterRule = (targetKey: string, ...rules: ResourceRule[]): ResolvedRule => ({ source: 'ClusterWatchRule c', kind: 'ClusterWatchRule', key: 'c', targetKey, rules });
const target = { key: 'ops/prod', clusterProvider: 'prod' };

const keys = (rules: ResolvedRule[], allowedNamespaces?: string[]): string[] =>
  reconcileScope({ target, config: { rules }, resources: RESOURCES, ...(allowedNamespaces ? { allowedNamespaces } : {}) }).map((s) => s.key);

describe('reconcileScope', () => {
  it('lists a WatchRule namespace, only namespaced types, only listable ones', () => {
    expect(keys([watchRule('ops/prod', 'team-a', rule({}))])).toEqual(['/v1/configmaps@team-a', '/v1/secrets@team-a', 'apps/v1/deployments@team-a']);
  });

  it('lists a ClusterWatchRule in all namespaces and the cluster scope, or per allowed namespace', () => {
    expect(keys([clusterRule('ops/prod', rule({ apiGroups: [''], resources: ['configmaps', 'namespaces'] }))])).toEqual(['/v1/configmaps@', '/v1/namespaces@']);
    expect(keys([clusterRule('ops/prod', rule({ apiGroups: [''], resources: ['configmaps', 'namespaces'] }))], ['a', 'b'])).toEqual([
      '/v1/configmaps@a',
      '/v1/configmaps@b',
      '/v1/namespaces@',
    ]);
  });

  it('takes only the rules routing to this target, and a WatchRule namespace only if allowed', () => {
    const rules = [watchRule('ops/stage', 'team-b', rule({})), watchRule('ops/prod', 'team-a', rule({ apiGroups: ['apps'] })), watchRule('ops/prod', 'team-x', rule({}))];
    expect(keys(rules, ['team-a'])).toEqual(['apps/v1/deployments@team-a']);
    expect(keys([watchRule('ops/stage', 'team-b', rule({}))])).toEqual([]);
  });

  it('merges overlapping rules and skips rule entries that select only DELETE', () => {
    const rules = [
      watchRule('ops/prod', 'team-a', rule({ apiGroups: [''], resources: ['configmaps'] })),
      clusterRule('ops/prod', rule({ apiGroups: [''], resources: ['configmaps'] }), rule({ operations: ['DELETE'], apiGroups: ['apps'] })),
    ];
    expect(keys(rules)).toEqual(['/v1/configmaps@']);
    const spec = reconcileScope({ target, config: { rules }, resources: RESOURCES })[0];
    expect(spec).toEqual({ key: '/v1/configmaps@', group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true, namespace: '' });
  });
});
