// The router's writes for events that remove many files (workers/route/collection-writes.ts), its listing of
// what a deletecollection left (workers/route/list-collections.ts), and which targets a namespace's delete concerns.
import { describe, expect, it } from 'vitest';
import type { ResolvedConfig, ResolvedGitProvider, ResolvedRule, ResolvedTarget } from '../../config/resolved-config.js';
import type { ResourceRule } from '../../config/resource-schemas.js';
import type { ListNamesOutcome } from '../../kube/list-object-names.js';
import { WriteJobSchema, type IngestJob } from '../../core/contracts.js';
import { partitionOf } from '../../queues/names.js';
import { checkWrite } from '../../workers/write/validate-write.js';
import { listCollections } from '../../workers/route/list-collections.js';
import { collectionWrites, eventSelected, isNamespaceDelete } from '../../workers/route/collection-writes.js';
import { compileRules, namespaceTargets } from '../../workers/route/compile-rules.js';

const provider: ResolvedGitProvider = { key: 'ops/repo', url: '/srv/repo.git', allowedBranches: ['*'] };
const target = (key: string, path: string, clusterProvider = 'prod'): ResolvedTarget => ({
  key,
  provider,
  branch: 'main',
  path,
  clusterProvider,
  partition: partitionOf(provider.url, 'main'),
  prune: 'OnEvent',
  reconcileIntervalSeconds: 3600,
});
const ALL: ResourceRule = { operations: ['*'], apiGroups: ['*'], resources: ['*'] };
const watchRule = (namespace: string, targetKey: string, ...rules: ResourceRule[]): ResolvedRule => ({ source: `WatchRule ${namespace}/w`, kind: 'WatchRule', key: `${namespace}/w`, namespace, targetKey, rules });
const clusterWatchRule = (targetKey: string, ...rules: ResourceRule[]): ResolvedRule => ({ source: `ClusterWatchRule ${targetKey}`, kind: 'ClusterWatchRule', key: targetKey, targetKey, rules });

/** all: every change of prod; shop: a WatchRule of shop; configs: ConfigMaps only, no deletes; other: cluster dev. */
const targets = [target('ops/all', 'clusters/prod'), target('shop/t', 'teams/shop'), target('ops/configs', 'configs'), target('ops/other', 'clusters/dev', 'dev')];
const routes = compileRules({
  clusters: new Map(),
  providers: new Map(),
  targets: new Map(targets.map((t) => [t.key, t])),
  rules: [
    clusterWatchRule('ops/all', ALL),
    watchRule('shop', 'shop/t', ALL),
    clusterWatchRule('ops/configs', { operations: ['CREATE', 'UPDATE'], apiGroups: [''], resources: ['configmaps'] }),
    clusterWatchRule('ops/other', ALL),
  ],
  partitions: new Map(),
} as ResolvedConfig);
const writeTargets = new Map(targets.map((t) => [t.key, { key: t.key, path: t.path, clusterProvider: t.clusterProvider, partition: t.partition }]));

const base = (over: Partial<IngestJob>): IngestJob => ({
  clusterId: 'prod',
  auditID: 'a1',
  verb: 'deletecollection',
  stageTimestamp: '2026-12-01T10:00:00.000000Z',
  user: { username: 'alice' },
  objectRef: { resource: 'configmaps', namespace: 'shop', apiVersion: 'v1' },
  responseCode: 200,
  ...over,
});
const namespaceDelete = (name: string): IngestJob =>
  base({
    verb: 'delete',
    objectRef: { resource: 'namespaces', namespace: name, name, apiVersion: 'v1' },
    object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, resourceVersion: '900', deletionTimestamp: '2026-12-01T10:00:00Z' }, spec: { finalizers: ['kubernetes'] } },
  });

/** Each write, checked as the writer checks it (so what the router makes is what the writer takes). */
function writes(job: IngestJob, listing?: Parameters<typeof collectionWrites>[2]) {
  const routed = collectionWrites(job, routes, listing);
  if (routed?.kind !== 'writes') throw new Error(`no writes: ${JSON.stringify(routed)}`);
  for (const { data } of routed.writes) {
    expect(WriteJobSchema.safeParse(data).success, data.target).toBe(true);
    expect(checkWrite(data, { partition: targets[0]!.partition, targets: writeTargets, committerEmail: 'gr@test' }), data.target).toBeUndefined();
  }
  return routed.writes.map(({ data }) => ({ target: data.target, filePath: data.filePath, collection: data.collection, author: data.author.name, resourceVersion: data.resourceVersion }));
}

describe('collectionWrites: deletecollection', () => {
  it("one write per target whose rules select the type's DELETE there, naming the answer's objects", () => {
    expect(writes(base({ deletedNames: ['a', 'b'] }))).toEqual([
      { target: 'ops/all', filePath: 'clusters/prod/shop/configmaps', collection: { names: ['a', 'b'] }, author: 'alice', resourceVersion: '' },
      { target: 'shop/t', filePath: 'teams/shop/shop/configmaps', collection: { names: ['a', 'b'] }, author: 'alice', resourceVersion: '' },
    ]);
    // The impersonated user is the author, as for every event.
    expect(writes(base({ deletedNames: [], impersonatedUser: { username: 'bob' } }))?.[0]).toMatchObject({ author: 'bob' });
  });

  it('without names: what the router listed is kept, with the request selectors', () => {
    const job = base({ selectors: { labelSelector: 'app=web' } });
    expect(writes(job, { kind: 'listed', names: ['c'] })).toEqual([
      { target: 'ops/all', filePath: 'clusters/prod/shop/configmaps', collection: { keep: ['c'], labelSelector: 'app=web' }, author: 'alice', resourceVersion: '' },
      { target: 'shop/t', filePath: 'teams/shop/shop/configmaps', collection: { keep: ['c'], labelSelector: 'app=web' }, author: 'alice', resourceVersion: '' },
    ]);
  });

  it('a list that failed fails the event (retried); no lister at all records it as without a body', () => {
    expect(collectionWrites(base({}), routes, { kind: 'failed', reason: 'list failed: 403' })).toEqual({ kind: 'failed', reason: 'list failed: 403', permanent: false });
    expect(collectionWrites(base({}), routes, undefined)).toMatchObject({ kind: 'no-object-body' });
  });

  it('unrouted where no rule selects the DELETE', () => {
    expect(collectionWrites(base({ objectRef: { resource: 'configmaps', namespace: 'shop', apiVersion: 'v1' }, clusterId: 'staging', deletedNames: [] }), routes, undefined)).toEqual({ kind: 'unrouted' });
  });

  it('a cluster-scoped type: its `_cluster` folder', () => {
    const roles = writes(base({ objectRef: { resource: 'clusterroles', apiGroup: 'rbac.authorization.k8s.io', apiVersion: 'v1' }, deletedNames: ['x'] }));
    expect(roles).toEqual([{ target: 'ops/all', filePath: 'clusters/prod/_cluster/rbac.authorization.k8s.io/clusterroles', collection: { names: ['x'] }, author: 'alice', resourceVersion: '' }]);
  });
});

describe('collectionWrites: a namespace deleted', () => {
  it("every target that records deletes there removes its folder, with the Namespace's file where its rules select Namespaces", () => {
    expect(isNamespaceDelete(namespaceDelete('shop'))).toBe(true);
    expect(writes(namespaceDelete('shop'))).toEqual([
      { target: 'ops/all', filePath: 'clusters/prod/shop', collection: { everythingBelow: true, objectFile: 'clusters/prod/_cluster/namespaces/shop.yaml' }, author: 'alice', resourceVersion: '900' },
      { target: 'shop/t', filePath: 'teams/shop/shop', collection: { everythingBelow: true }, author: 'alice', resourceVersion: '900' },
    ]);
    // A namespace no WatchRule names: only the ClusterWatchRule's target. A name that needs encoding: encoded.
    expect(writes(namespaceDelete('_cluster'))).toEqual([
      { target: 'ops/all', filePath: 'clusters/prod/%5Fcluster', collection: { everythingBelow: true, objectFile: 'clusters/prod/_cluster/namespaces/_cluster.yaml' }, author: 'alice', resourceVersion: '900' },
    ]);
  });

  it('other events are none of its business', () => {
    expect(collectionWrites(base({ verb: 'delete', objectRef: { resource: 'configmaps', namespace: 'shop', name: 'a', apiVersion: 'v1' } }), routes, undefined)).toBeUndefined();
    expect(isNamespaceDelete(base({ verb: 'update', objectRef: { resource: 'namespaces', name: 'shop', apiVersion: 'v1' } }))).toBe(false);
    expect(isNamespaceDelete(base({ verb: 'delete', objectRef: { resource: 'namespaces', name: 'shop', apiGroup: 'example.com', apiVersion: 'v1' } }))).toBe(false);
  });

  it('the webhook keeps a namespace delete for the targets that see the namespace, though no rule selects Namespaces', () => {
    const onlyShop = compileRules({
      clusters: new Map(),
      providers: new Map(),
      targets: new Map([['shop/t', targets[1]!]]),
      rules: [watchRule('shop', 'shop/t', ALL)],
      partitions: new Map(),
    } as ResolvedConfig);
    expect(eventSelected(onlyShop, namespaceDelete('shop'), 'DELETE')).toBe(true);
    expect(eventSelected(onlyShop, namespaceDelete('other'), 'DELETE')).toBe(false);
    expect(namespaceTargets(onlyShop, 'prod', 'shop').map((t) => t.key)).toEqual(['shop/t']);
    expect(namespaceTargets(routes, 'prod', 'shop').map((t) => t.key)).toEqual(['ops/all', 'shop/t']);
    expect(namespaceTargets(routes, 'dev', 'shop').map((t) => t.key)).toEqual(['ops/other']);
  });
});

describe('listCollections', () => {
  it('lists each wanted (cluster, type, namespace) without names once per batch; a failure is the reason of each of its events', async () => {
    const asked: string[] = [];
    const listNames = async (job: IngestJob): Promise<ListNamesOutcome> => {
      asked.push(`${job.clusterId}/${job.objectRef.namespace}`);
      return job.objectRef.namespace === 'broken' ? { kind: 'failed', reason: 'cluster prod: 403', transient: false } : { kind: 'listed', names: ['kept'] };
    };
    const batch = [
      base({ auditID: '1' }),
      base({ auditID: '2' }),
      base({ auditID: '3', deletedNames: ['a'] }),
      base({ auditID: '4', objectRef: { resource: 'configmaps', namespace: 'broken', apiVersion: 'v1' } }),
      base({ auditID: '5', objectRef: { resource: 'configmaps', namespace: 'ignored', apiVersion: 'v1' } }),
      base({ auditID: '6', verb: 'delete', objectRef: { resource: 'configmaps', namespace: 'shop', name: 'x', apiVersion: 'v1' } }),
    ];
    const out = await listCollections(batch, { listNames, wanted: (id) => id.namespace !== 'ignored' });
    expect(asked.sort()).toEqual(['prod/broken', 'prod/shop']);
    expect(out).toEqual([
      { kind: 'listed', names: ['kept'] },
      { kind: 'listed', names: ['kept'] },
      undefined,
      { kind: 'failed', reason: 'list failed: cluster prod: 403' },
      undefined,
      undefined,
    ]);
  });

  it('a cluster that stayed unreachable is not listed again in the same batch: its other events fail at once', async () => {
    let lists = 0;
    const listNames = async (): Promise<ListNamesOutcome> => {
      lists++;
      return { kind: 'failed', reason: 'cluster prod could not be reached', transient: true };
    };
    const batch = ['a', 'b', 'c'].map((ns) => base({ auditID: ns, objectRef: { resource: 'configmaps', namespace: ns, apiVersion: 'v1' } }));
    const out = await listCollections(batch, { listNames, wanted: () => true, concurrency: 1 });
    expect(lists).toBe(1);
    expect(out.map((o) => o?.kind)).toEqual(['failed', 'failed', 'failed']);
    expect(out[2]).toEqual({ kind: 'failed', reason: 'list failed: not tried, cluster prod was unreachable for an earlier event of this batch: cluster prod could not be reached' });
  });
});
