import { describe, expect, it } from 'vitest';
import type { IngestJob, ObjectIdentity } from '../../core/contracts.js';
import { identityKey, identityOf, splitApiVersion } from '../../core/identity.js';

function job(objectRef: IngestJob['objectRef'], object?: Record<string, unknown>): IngestJob {
  return {
    clusterId: 'prod-eu',
    auditID: 'a-1',
    verb: 'create',
    stageTimestamp: '2025-11-25T12:00:00Z',
    user: { username: 'alice' },
    objectRef,
    responseCode: 201,
    ...(object ? { object } : {}),
  };
}

describe('identityOf', () => {
  it('takes everything from the objectRef', () => {
    expect(identityOf(job({ resource: 'deployments', namespace: 'shop', name: 'web', apiGroup: 'apps', apiVersion: 'v1' }))).toEqual({
      cluster: 'prod-eu',
      group: 'apps',
      version: 'v1',
      resource: 'deployments',
      namespace: 'shop',
      name: 'web',
    });
  });

  it('uses group "" for core and namespace "" for cluster-scoped objects', () => {
    expect(identityOf(job({ resource: 'namespaces', name: 'shop', apiGroup: '', apiVersion: 'v1' }))).toEqual({
      cluster: 'prod-eu',
      group: '',
      version: 'v1',
      resource: 'namespaces',
      namespace: '',
      name: 'shop',
    });
  });

  it('treats a Namespace as cluster-scoped although the API server names it in objectRef.namespace', () => {
    expect(identityOf(job({ resource: 'namespaces', namespace: 'shop', name: 'shop', apiGroup: '', apiVersion: 'v1' }))).toMatchObject({
      group: '',
      resource: 'namespaces',
      namespace: '',
      name: 'shop',
    });
  });

  it('falls back to the object for group, version and name, never for the namespace', () => {
    const id = identityOf(
      job({ resource: 'clusterroles' }, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'system:controller:foo' } }),
    );
    expect(id).toEqual({ cluster: 'prod-eu', group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', namespace: '', name: 'system:controller:foo' });
    // The namespace is the objectRef's alone: a body that names another never moves the object (the webhook
    // refuses such an event; a job in Valkey is input all the same).
    const cm = identityOf(job({ resource: 'configmaps' }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'kube-system' } }));
    expect(cm).toMatchObject({ group: '', version: 'v1', namespace: '', name: 'cfg' });
    expect(identityOf(job({ resource: 'configmaps', namespace: 'shop' }, { apiVersion: 'core/v1', metadata: { name: 'cfg', namespace: 'kube-system' } }))).toMatchObject({
      group: '',
      namespace: 'shop',
    });
  });

  it('leaves the name empty when nothing names the object', () => {
    expect(identityOf(job({ resource: 'configmaps', namespace: 'shop' })).name).toBe('');
  });
});

describe('splitApiVersion', () => {
  it.each([
    ['v1', { group: '', version: 'v1' }],
    ['apps/v1', { group: 'apps', version: 'v1' }],
    ['rbac.authorization.k8s.io/v1', { group: 'rbac.authorization.k8s.io', version: 'v1' }],
  ])('%s', (input, expected) => expect(splitApiVersion(input)).toEqual(expected));
});

describe('identityKey', () => {
  const base: ObjectIdentity = { cluster: 'c', group: 'apps', version: 'v1', resource: 'deployments', namespace: 'ns', name: 'web' };

  it('is stable and ignores the version', () => {
    expect(identityKey(base)).toBe('["c","apps","deployments","ns","web"]');
    expect(identityKey({ ...base, version: 'v1beta2' })).toBe(identityKey(base));
  });

  it('cannot be confused by separators inside fields', () => {
    const a = identityKey({ ...base, namespace: 'a/b', name: 'c' });
    const b = identityKey({ ...base, namespace: 'a', name: 'b/c' });
    const c = identityKey({ ...base, namespace: 'a","b', name: 'c' });
    const d = identityKey({ ...base, namespace: 'a', name: 'b","c' });
    expect(new Set([a, b, c, d]).size).toBe(4);
    expect(identityKey({ ...base, cluster: 'x', group: '' })).not.toBe(identityKey({ ...base, cluster: '', group: 'x' }));
  });
});
