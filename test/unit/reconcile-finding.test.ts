// What a reconcile listing finds of one object: the file the live path would write, and nothing for an
// object that is Terminating (the same reading as the audit and watch paths: its file went with its delete).
import { describe, expect, it } from 'vitest';
import { findingOf } from '../../flows/reconcile/list-child.js';
import type { ScopeEntry } from '../../flows/reconcile/scope.js';

const spec: ScopeEntry = { key: '/v1/configmaps@shop', group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true, namespace: 'shop' };
const cm = (metadata: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app', namespace: 'shop', uid: 'u', resourceVersion: '7', ...metadata }, data: { a: '1' } });

describe('findingOf', () => {
  it('finds the file of a live object', () => {
    expect(findingOf('c1', spec, cm({}), 'clusters/c1')).toEqual({
      path: 'clusters/c1/shop/configmaps/app.yaml',
      finding: { rv: '7', content: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: shop\ndata:\n  a: "1"\n' },
    });
  });

  it('finds nothing for a Terminating object: a listing treats it as deleted', () => {
    expect(findingOf('c1', spec, cm({ deletionTimestamp: '2026-12-07T10:00:00Z', finalizers: ['example.com/hold'] }), 'clusters/c1')).toBeUndefined();
  });
});
