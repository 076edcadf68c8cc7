import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { crdDefinitions, crdFileName, crdFileYaml, crdYaml, toStructural, type SchemaNode } from '../../config/crd-definitions.js';
import { CRD_DIR } from '../../cli/write-crds.js';

interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; singular: string; listKind: string; shortNames?: string[]; categories: string[] };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: object };
      additionalPrinterColumns: { name: string; type: string; jsonPath: string }[];
      schema: { openAPIV3Schema: SchemaNode };
    }[];
  };
}

const crds = crdDefinitions() as unknown as Crd[];
const byKind = (kind: string): Crd => {
  const crd = crds.find((c) => c.spec.names.kind === kind);
  if (!crd) throw new Error(`no CRD for ${kind}`);
  return crd;
};
const schemaOf = (kind: string): SchemaNode => byKind(kind).spec.versions[0]!.schema.openAPIV3Schema;
const prop = (node: SchemaNode, ...path: string[]): SchemaNode =>
  path.reduce<SchemaNode>((n, p) => (p === '[]' ? (n.items as SchemaNode) : (n.properties as Record<string, SchemaNode>)[p]!), node);

/** Every schema node under `node`, with its path. */
function* walk(node: SchemaNode, at = ''): Generator<[string, SchemaNode]> {
  yield [at, node];
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, SchemaNode>)) yield* walk(child, `${at}.${name}`);
  if (node.items) yield* walk(node.items as SchemaNode, `${at}[]`);
  if (typeof node.additionalProperties === 'object') yield* walk(node.additionalProperties as SchemaNode, `${at}.*`);
}

/** A tiny structural validator (type, required, enum, pattern, min/max lengths and items); returns problems. */
function validate(value: unknown, node: SchemaNode, at = ''): string[] {
  const problems: string[] = [];
  const type = Array.isArray(value) ? 'array' : value === null ? 'null' : Number.isInteger(value) ? 'integer' : typeof value;
  if (!(node.type === type || (node.type === 'number' && type === 'integer'))) return [`${at}: expected ${node.type}, got ${type}`];
  if (Array.isArray(node.enum) && !node.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === 'string') {
    if (typeof node.pattern === 'string' && !new RegExp(node.pattern).test(value)) problems.push(`${at}: does not match ${node.pattern}`);
    if (typeof node.minLength === 'number' && value.length < node.minLength) problems.push(`${at}: shorter than ${node.minLength}`);
    if (typeof node.maxLength === 'number' && value.length > node.maxLength) problems.push(`${at}: longer than ${node.maxLength}`);
  }
  if (Array.isArray(value)) {
    if (typeof node.minItems === 'number' && value.length < node.minItems) problems.push(`${at}: fewer than ${node.minItems} items`);
    value.forEach((item, i) => problems.push(...validate(item, node.items as SchemaNode, `${at}[${i}]`)));
  }
  if (type === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of (node.required ?? []) as string[]) if (!(key in obj)) problems.push(`${at}.${key}: required`);
    const props = (node.properties ?? {}) as Record<string, SchemaNode>;
    for (const [key, v] of Object.entries(obj)) {
      if (props[key]) problems.push(...validate(v, props[key], `${at}.${key}`));
      else if (node.properties && !node['x-kubernetes-preserve-unknown-fields']) problems.push(`${at}.${key}: unknown field (would be pruned)`);
    }
  }
  return problems;
}

async function sampleObjects(): Promise<Record<string, unknown>[]> {
  const text = await readFile(new URL('../../samples/config.yaml', import.meta.url), 'utf8');
  return parseAllDocuments(text as string)
    .flatMap((d) => (Array.isArray(d) ? d : [d]))
    .map((d) => d.toJS() as Record<string, unknown>)
    .filter((o) => o.apiVersion === 'gitopsreverser.io/v1alpha1');
}

describe('CRD definitions', () => {
  it('match the files committed under charts/gitops-reverser/crds (no drift)', async () => {
    const hint = 'the CRDs in charts/gitops-reverser/crds are out of date: run `npm run crds`';
    const files = (await readdir(CRD_DIR).catch(() => [] as string[])).filter((f) => f.endsWith('.gitopsreverser.io.yaml')).sort();
    expect(files, hint).toEqual(crds.map((c) => crdFileName(c as unknown as Record<string, unknown>)).sort());
    for (const crd of crds) {
      const committed = await readFile(join(CRD_DIR, crdFileName(crd as unknown as Record<string, unknown>)), 'utf8');
      expect(committed, `${crd.metadata.name}: ${hint}`).toBe(crdFileYaml(crd as unknown as Record<string, unknown>));
    }
  });

  it('are stable and parse back as five documents', () => {
    expect(crdYaml()).toBe(crdYaml());
    const docs = parseAllDocuments(crdYaml());
    expect(Array.isArray(docs) ? docs.map((d) => (d.toJS() as Crd).metadata.name) : []).toEqual(crds.map((c) => c.metadata.name));
  });

  it('have structural schemas: a type on every node, no $ref or $schema anywhere', () => {
    for (const crd of crds) {
      const schema = crd.spec.versions[0]!.schema.openAPIV3Schema;
      for (const [at, node] of walk(schema)) {
        expect(typeof node.type, `${crd.spec.names.kind}${at} has no type`).toBe('string');
        if (node.properties) expect(node.additionalProperties, `${crd.spec.names.kind}${at}`).toBeUndefined();
      }
      const text = JSON.stringify(crd);
      expect(text).not.toContain('$ref');
      expect(text).not.toContain('$schema');
      expect(text).not.toContain('$defs');
      expect(Object.keys(schema.properties as object)).toEqual(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
      expect(prop(schema, 'metadata')).toEqual({ type: 'object' });
    }
  });

  it('have the group, version, names and scopes expected', () => {
    expect(crds.map((c) => [c.spec.names.kind, c.spec.scope])).toEqual([
      ['ClusterProvider', 'Cluster'],
      ['GitProvider', 'Namespaced'],
      ['GitTarget', 'Namespaced'],
      ['WatchRule', 'Namespaced'],
      ['ClusterWatchRule', 'Cluster'],
    ]);
    for (const crd of crds) {
      const { names } = crd.spec;
      expect(crd.spec.group).toBe('gitopsreverser.io');
      expect(crd.metadata.name).toBe(`${names.plural}.gitopsreverser.io`);
      expect(names.plural).toBe(`${names.kind.toLowerCase()}s`);
      expect(names.singular).toBe(names.kind.toLowerCase());
      expect(names.listKind).toBe(`${names.kind}List`);
      expect(names.categories).toEqual(['gitops-reverser']);
      expect(crd.spec.versions).toHaveLength(1);
      const [version] = crd.spec.versions;
      expect([version!.name, version!.served, version!.storage]).toEqual(['v1alpha1', true, true]);
      expect(version!.subresources).toEqual({ status: {} });
    }
    expect(byKind('GitTarget').spec.names.shortNames).toEqual(['gt']);
  });

  it('show Ready, the last commit of a GitTarget, and Age', () => {
    for (const crd of crds) {
      const columns = crd.spec.versions[0]!.additionalPrinterColumns;
      expect(columns[0]).toEqual({ name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' });
      expect(columns.at(-1)).toEqual({ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' });
    }
    const gt = byKind('GitTarget').spec.versions[0]!.additionalPrinterColumns;
    expect(gt.find((c) => c.jsonPath === '.status.lastCommit.sha')?.name).toBe('Last Commit');
    expect(prop(schemaOf('GitTarget'), 'status', 'lastCommit', 'sha').type).toBe('string');
  });

  it('mark a GitTarget provider, branch and path immutable with CEL, and nothing else', () => {
    const spec = prop(schemaOf('GitTarget'), 'spec');
    for (const field of ['providerRef', 'branch', 'path']) {
      expect(prop(spec, field)['x-kubernetes-validations']).toEqual([{ rule: 'self == oldSelf', message: `${field} is immutable` }]);
    }
    expect(prop(spec, 'clusterProviderRef')['x-kubernetes-validations']).toBeUndefined();
    for (const crd of crds.filter((c) => c.spec.names.kind !== 'GitTarget')) {
      expect(JSON.stringify(crd)).not.toContain('oldSelf');
    }
  });

  it('carry enums, patterns, defaults and minimums from the zod schemas', () => {
    for (const kind of ['WatchRule', 'ClusterWatchRule']) {
      const operations = prop(schemaOf(kind), 'spec', 'rules', '[]', 'operations');
      expect(operations.minItems).toBe(1);
      expect(prop(operations, '[]').enum).toEqual(expect.arrayContaining(['CREATE', 'UPDATE', 'DELETE', '*']));
      expect(prop(schemaOf(kind), 'spec', 'rules', '[]', 'resources', '[]').pattern).toBe('^[^/]+$');
    }
    expect(prop(schemaOf('GitTarget'), 'spec', 'path').default).toBe('.');
    expect(prop(schemaOf('GitTarget'), 'spec').required).toEqual(['providerRef', 'branch', 'clusterProviderRef']);
    const name = prop(schemaOf('GitTarget'), 'spec', 'providerRef', 'name');
    expect(name.maxLength).toBe(253);
    expect(name.pattern).toMatch(/^\^\[a-z0-9\]/);
    expect(prop(schemaOf('GitProvider'), 'spec', 'allowedBranches').minItems).toBe(1);
  });

  it('accept every gitopsreverser.io object of samples/config.yaml, and reject broken ones', async () => {
    const samples = await sampleObjects();
    expect(samples.map((o) => o.kind).sort()).toEqual(['ClusterProvider', 'ClusterWatchRule', 'GitProvider', 'GitTarget', 'WatchRule']);
    for (const obj of samples) expect(validate(obj, schemaOf(String(obj.kind))), String(obj.kind)).toEqual([]);

    const target = samples.find((o) => o.kind === 'GitTarget')!;
    const spec = target.spec as Record<string, unknown>;
    const gt = prop(schemaOf('GitTarget'), 'spec');
    expect(validate(spec, gt)).toEqual([]);
    expect(validate({ ...spec, branch: 7 }, gt)).toEqual(['.branch: expected string, got integer']);
    expect(validate({ ...spec, extra: true }, gt)).toEqual(['.extra: unknown field (would be pruned)']);
    expect(validate({ providerRef: { name: 'Not_DNS' }, branch: 'main', clusterProviderRef: { name: 'x' } }, gt)).toEqual([
      '.providerRef.name: does not match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
    ]);
    expect(validate({ branch: 'main' }, gt)).toEqual(['.providerRef: required', '.clusterProviderRef: required']);
    const rules = prop(schemaOf('WatchRule'), 'spec', 'rules');
    expect(validate([{ operations: ['PATCH'], apiGroups: [''], resources: ['pods/log'] }], rules)).toEqual([
      '[0].operations[0]: "PATCH" not in enum',
      '[0].resources[0]: does not match ^[^/]+$',
    ]);
  });

  it('refuse JSON Schema that has no structural form', () => {
    expect(() => toStructural({ anyOf: [{ type: 'string' }, { type: 'number' }] })).toThrow(/anyOf/);
    expect(() => toStructural({ $ref: '#/$defs/x' })).toThrow(/\$ref/);
    expect(() => toStructural({ description: 'no type' })).toThrow(/no type/);
    expect(toStructural({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false })).toEqual({
      type: 'object',
      properties: { a: { type: 'string' } },
    });
    expect(toStructural({ type: 'object', additionalProperties: { type: 'string' } })).toEqual({ type: 'object', additionalProperties: { type: 'string' } });
  });

  it('writes exclusive bounds the OpenAPI v3.0 way the API server accepts (a boolean beside minimum/maximum)', () => {
    // z.number().positive() gives draft 2020-12's numeric exclusiveMinimum.
    expect(toStructural({ type: 'number', exclusiveMinimum: 0, maximum: 10 })).toEqual({ type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 10 });
    expect(toStructural({ type: 'integer', exclusiveMaximum: 5 })).toEqual({ type: 'integer', maximum: 5, exclusiveMaximum: true });
    expect(() => toStructural({ type: 'number', minimum: 1, exclusiveMinimum: 0 })).toThrow('spec: both minimum and exclusiveMinimum');
  });
});
