// Request paths built from audit objectRefs, and the RBAC permission a refusal names.
import { describe, expect, it } from 'vitest';
import { neededPermission } from '../../kube/fetch-object.js';
import { objectPath } from '../../kube/object-path.js';

const path = (ref: Parameters<typeof objectPath>[0]) => {
  const p = objectPath(ref);
  return p.kind === 'path' ? p.path : `unaddressable: ${p.reason}`;
};

describe('objectPath', () => {
  it('reads a namespaced core object under /api/v1', () => {
    expect(path({ resource: 'configmaps', namespace: 'shop', name: 'settings', apiGroup: '', apiVersion: 'v1' })).toBe('/api/v1/namespaces/shop/configmaps/settings');
    // An audit objectRef of the core group may leave apiGroup out altogether.
    expect(path({ resource: 'secrets', namespace: 'shop', name: 'db', apiVersion: 'v1' })).toBe('/api/v1/namespaces/shop/secrets/db');
  });

  it('reads a grouped object under /apis/{group}/{version}', () => {
    expect(path({ resource: 'deployments', namespace: 'shop', name: 'web', apiGroup: 'apps', apiVersion: 'v1' })).toBe('/apis/apps/v1/namespaces/shop/deployments/web');
    expect(path({ resource: 'gittargets', namespace: 'gitops', name: 'prod', apiGroup: 'gitopsreverser.io', apiVersion: 'v1alpha1' })).toBe(
      '/apis/gitopsreverser.io/v1alpha1/namespaces/gitops/gittargets/prod',
    );
  });

  it('reads a cluster-scoped object without a namespace segment', () => {
    expect(path({ resource: 'clusterroles', name: 'view', apiGroup: 'rbac.authorization.k8s.io', apiVersion: 'v1' })).toBe('/apis/rbac.authorization.k8s.io/v1/clusterroles/view');
    expect(path({ resource: 'nodes', name: 'node-1', apiGroup: '', apiVersion: 'v1', namespace: '' })).toBe('/api/v1/nodes/node-1');
  });

  it('reads a Namespace as cluster-scoped, although the API server files it under its own name', () => {
    expect(path({ resource: 'namespaces', namespace: 'shop', name: 'shop', apiGroup: '', apiVersion: 'v1' })).toBe('/api/v1/namespaces/shop');
  });

  it('reads the parent of a scale event', () => {
    expect(path({ resource: 'deployments', subresource: 'scale', namespace: 'shop', name: 'web', apiGroup: 'apps', apiVersion: 'v1' })).toBe(
      '/apis/apps/v1/namespaces/shop/deployments/web',
    );
  });

  it('escapes every segment', () => {
    expect(path({ resource: 'configmaps', namespace: 'a', name: '../../x?y#z', apiVersion: 'v1' })).toBe('/api/v1/namespaces/a/configmaps/..%2F..%2Fx%3Fy%23z');
  });

  it('says why an event cannot be read back', () => {
    expect(path({ resource: 'pods', subresource: 'exec', namespace: 'a', name: 'p', apiVersion: 'v1' })).toMatch(/unaddressable: pods\/exec: the exec subresource/);
    expect(path({ resource: 'configmaps', namespace: 'a', apiVersion: 'v1' })).toMatch(/unaddressable: configmaps: the event names no object/);
    expect(path({ resource: 'configmaps', namespace: 'a', name: 'x' })).toMatch(/unaddressable: configmaps: the event names no API version/);
  });
});

describe('neededPermission', () => {
  it('names verb, resource with its group, and namespace', () => {
    expect(neededPermission({ resource: 'deployments', apiGroup: 'apps', namespace: 'shop' })).toBe('get deployments.apps in namespace shop');
    expect(neededPermission({ resource: 'secrets', apiGroup: '', namespace: 'shop' })).toBe('get secrets in namespace shop');
    expect(neededPermission({ resource: 'clusterroles', apiGroup: 'rbac.authorization.k8s.io' })).toBe('get clusterroles.rbac.authorization.k8s.io (cluster-scoped)');
    expect(neededPermission({ resource: 'namespaces', namespace: 'shop' })).toBe('get namespaces (cluster-scoped)');
  });
});
