import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { sanitizeObject, sortKeysDeep, toCanonicalYaml } from '../../core/sanitize.js';

function liveDeployment(): Record<string, unknown> {
  return {
    status: { replicas: 3, conditions: [{ type: 'Available', status: 'True' }] },
    spec: {
      template: {
        // UDP: TCP is the API server's default, which files leave out (server-defaults.ts).
        spec: { containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ protocol: 'UDP', containerPort: 80 }] }] },
        metadata: { labels: { app: 'web' } },
      },
      selector: { matchLabels: { app: 'web' } },
      replicas: 3,
    },
    metadata: {
      uid: '9f1c',
      resourceVersion: '101',
      generation: 4,
      creationTimestamp: '2025-11-20T10:00:00Z',
      managedFields: [{ manager: 'kubectl', operation: 'Update' }],
      namespace: 'shop',
      name: 'web',
      labels: { tier: 'frontend', app: 'web' },
      annotations: {
        'deployment.kubernetes.io/revision': '4',
        'kubectl.kubernetes.io/last-applied-configuration': '{"big":"json"}',
        'example.com/owner': 'team-a',
      },
    },
    kind: 'Deployment',
    apiVersion: 'apps/v1',
  };
}

/** The same object with every map's keys in the opposite order. */
function reversed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversed);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).reverse()) out[key] = reversed((value as Record<string, unknown>)[key]);
  return out;
}

describe('sanitizeObject', () => {
  it('orders apiVersion, kind, metadata first and reduces metadata', () => {
    const out = sanitizeObject(liveDeployment());
    expect(Object.keys(out)).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
    expect(out.metadata).toEqual({ name: 'web', namespace: 'shop', labels: { app: 'web', tier: 'frontend' }, annotations: { 'example.com/owner': 'team-a' } });
    expect(Object.keys(out.metadata as object)).toEqual(['name', 'namespace', 'labels', 'annotations']);
    expect(out).not.toHaveProperty('status');
  });

  it('sorts nested maps and keeps array order', () => {
    const out = sanitizeObject(liveDeployment()) as { spec: Record<string, unknown> };
    expect(Object.keys(out.spec)).toEqual(['replicas', 'selector', 'template']);
    const container = (out.spec.template as { spec: { containers: Record<string, unknown>[] } }).spec.containers[0]!;
    expect(Object.keys(container)).toEqual(['image', 'name', 'ports']);
    const arr = sanitizeObject({ apiVersion: 'v1', kind: 'X', metadata: { name: 'a' }, list: ['b', 'a', 'c'] });
    expect(arr.list).toEqual(['b', 'a', 'c']);
  });

  it('drops empty labels and annotations maps', () => {
    const out = sanitizeObject({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'cfg', labels: {}, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', 'control-plane.alpha.kubernetes.io/leader': '{}' } },
      data: { a: '1' },
    });
    expect(out.metadata).toEqual({ name: 'cfg' });
  });

  it('keeps __proto__ as an ordinary key', () => {
    const input = JSON.parse('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"__proto__":{"polluted":true}}}') as Record<string, unknown>;
    const out = sanitizeObject(input);
    expect(Object.keys(out.data as object)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(toCanonicalYaml(out)).toContain('__proto__:');
  });
});

describe('toCanonicalYaml', () => {
  it('gives identical bytes for the same object with keys in different orders', () => {
    const a = toCanonicalYaml(sanitizeObject(liveDeployment()));
    const b = toCanonicalYaml(sanitizeObject(reversed(liveDeployment()) as Record<string, unknown>));
    expect(b).toBe(a);
    expect(a).toBe(
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: web',
        '  namespace: shop',
        '  labels:',
        '    app: web',
        '    tier: frontend',
        '  annotations:',
        '    example.com/owner: team-a',
        'spec:',
        '  replicas: 3',
        '  selector:',
        '    matchLabels:',
        '      app: web',
        '  template:',
        '    metadata:',
        '      labels:',
        '        app: web',
        '    spec:',
        '      containers:',
        '        - image: nginx:1.27',
        '          name: web',
        '          ports:',
        '            - containerPort: 80',
        '              protocol: UDP',
        '',
      ].join('\n'),
    );
  });

  it('uses no anchors or aliases for repeated objects', () => {
    const shared = { app: 'web' };
    const yaml = toCanonicalYaml(sortKeysDeep({ a: shared, b: shared }) as Record<string, unknown>);
    expect(yaml).not.toMatch(/[&*]/);
    expect(yaml).toBe('a:\n  app: web\nb:\n  app: web\n');
  });

  it('does not fold long strings and keeps YAML-1.1 lookalikes as strings', () => {
    const long = 'x'.repeat(300) + ' ' + 'y'.repeat(300);
    const data = { long, yes: 'yes', on: 'on', octal: '0755', n: 'n', sexagesimal: '1:20' };
    const yaml = toCanonicalYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data });
    expect(yaml).toContain(`long: ${long}\n`);
    expect(yaml).toContain('"yes": "yes"');
    expect(yaml).toContain('"on": "on"');
    expect(yaml).toContain('octal: "0755"');
    expect(parse(yaml, { version: '1.1' })).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data });
    expect(parse(yaml)).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data });
  });
});
