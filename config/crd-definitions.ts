// The apiextensions.k8s.io/v1 CustomResourceDefinitions of gitopsreverser.io, generated from the zod
// schemas in resource-schemas.ts so the TypeScript types and the cluster's validation cannot drift.
// `npm run crds` writes them to charts/gitops-reverser/crds; a unit test fails when the
// committed files differ from what this module generates.
import { stringify } from 'yaml';
import { z } from 'zod';
import {
  API_VERSION,
  ClusterProviderSchema,
  ClusterWatchRuleSchema,
  GitProviderSchema,
  GitTargetSchema,
  WatchRuleSchema,
} from './resource-schemas.js';

export const CRD_GROUP = 'gitopsreverser.io';
export const CRD_VERSION = 'v1alpha1';
export const CRD_CATEGORY = 'gitops-reverser';

if (API_VERSION !== `${CRD_GROUP}/${CRD_VERSION}`) throw new Error(`API_VERSION ${API_VERSION} does not match ${CRD_GROUP}/${CRD_VERSION}`);

/** An OpenAPI v3 schema node as a CRD holds it. */
export interface SchemaNode {
  type?: string;
  [keyword: string]: unknown;
}

export interface CrdSpec {
  kind: 'ClusterProvider' | 'GitProvider' | 'GitTarget' | 'WatchRule' | 'ClusterWatchRule';
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Cluster' | 'Namespaced';
  spec: z.ZodType;
  /** Fields of `spec` that cannot change after creation (enforced with a CEL transition rule). */
  immutable?: string[];
  /** Extra printer columns, shown between Ready and Age. */
  columns?: PrinterColumn[];
  /** Extra properties of `status`, beside `conditions` and `observedGeneration`. */
  status?: Record<string, SchemaNode>;
  /** CEL rules on the whole spec, repeating zod refinements that have no JSON Schema form. */
  specRules?: { rule: string; message: string }[];
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

const lastCommitSchema: SchemaNode = {
  type: 'object',
  description: 'The last commit this target pushed.',
  properties: {
    sha: { type: 'string' },
    time: { type: 'string', format: 'date-time' },
  },
};

export const CRD_SPECS: readonly CrdSpec[] = [
  {
    kind: 'ClusterProvider',
    plural: 'clusterproviders',
    singular: 'clusterprovider',
    shortNames: ['cp'],
    scope: 'Cluster',
    spec: ClusterProviderSchema.shape.spec,
    specRules: [
      {
        rule: 'has(self.audit) || (has(self.watch) && self.watch.enabled)',
        message: 'a ClusterProvider needs spec.audit (audit webhook) or spec.watch.enabled: true (watch mode)',
      },
      {
        rule: '!has(self.audit) || has(self.audit.tokenSecretRef) || has(self.audit.clientCertificate)',
        message: 'the audit webhook needs tokenSecretRef or clientCertificate',
      },
    ],
    columns: [
      { name: 'Audit Secret', type: 'string', jsonPath: '.spec.audit.tokenSecretRef.name', priority: 1 },
      { name: 'Watched', type: 'integer', jsonPath: '.status.watchedResources', description: 'Resource types × namespaces watched' },
    ],
    status: {
      watchedResources: { type: 'integer', description: 'How many (resource type, namespace) watches run for this cluster.' },
    },
  },
  {
    kind: 'GitProvider',
    plural: 'gitproviders',
    singular: 'gitprovider',
    shortNames: ['gp'],
    scope: 'Namespaced',
    spec: GitProviderSchema.shape.spec,
  },
  {
    kind: 'GitTarget',
    plural: 'gittargets',
    singular: 'gittarget',
    shortNames: ['gt'],
    scope: 'Namespaced',
    spec: GitTargetSchema.shape.spec,
    immutable: ['providerRef', 'branch', 'path'],
    columns: [
      { name: 'Branch', type: 'string', jsonPath: '.spec.branch', priority: 1 },
      { name: 'Path', type: 'string', jsonPath: '.spec.path', priority: 1 },
      { name: 'Last Commit', type: 'string', jsonPath: '.status.lastCommit.sha', description: 'SHA of the last commit pushed' },
      { name: 'Backlog', type: 'integer', jsonPath: '.status.backlog', description: 'Changes waiting to be written' },
    ],
    status: {
      lastCommit: lastCommitSchema,
      backlog: { type: 'integer', minimum: 0, description: 'Changes waiting in the queue of this target\'s partition (its repository and branch, shared with other targets on them).' },
      lastError: {
        type: 'object',
        description: 'The last write error of this target (cleared by the next successful push).',
        properties: { message: { type: 'string' }, time: { type: 'string', format: 'date-time' } },
      },
      outOfOrderEvents: {
        type: 'integer',
        minimum: 0,
        description:
          'Events of this target that reached the service after a newer version of their object was committed: versions missing from the history, each kept as a dead letter in the partition queue.',
      },
    },
  },
  {
    kind: 'WatchRule',
    plural: 'watchrules',
    singular: 'watchrule',
    shortNames: ['wr'],
    scope: 'Namespaced',
    spec: WatchRuleSchema.shape.spec,
  },
  {
    kind: 'ClusterWatchRule',
    plural: 'clusterwatchrules',
    singular: 'clusterwatchrule',
    shortNames: ['cwr'],
    scope: 'Cluster',
    spec: ClusterWatchRuleSchema.shape.spec,
  },
];

/** Keywords a structural schema may carry that we pass through unchanged. */
const KEPT = new Set([
  'type',
  'description',
  'default',
  'enum',
  'format',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'multipleOf',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
  'required',
]);

/**
 * Converts the JSON Schema (draft 2020-12) z.toJSONSchema produces into a structural OpenAPI v3 schema:
 * no `$schema`/`$ref`/`$defs`, a `type` on every node, `additionalProperties` only where there are no
 * `properties`. Keywords that have no structural equivalent throw, so a new zod construct fails here
 * (and in the tests) instead of silently loosening the cluster's validation.
 */
export function toStructural(node: unknown, at = 'spec'): SchemaNode {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) throw new Error(`${at}: not a schema object`);
  const src = node as Record<string, unknown>;
  const out: SchemaNode = {};
  for (const [key, value] of Object.entries(src)) {
    if (key === '$schema' || key === '$id') continue;
    if (KEPT.has(key)) {
      out[key] = value;
    } else if (key === 'properties') {
      const props: Record<string, SchemaNode> = {};
      for (const [name, child] of Object.entries(value as Record<string, unknown>)) props[name] = toStructural(child, `${at}.${name}`);
      out.properties = props;
    } else if (key === 'items') {
      out.items = toStructural(value, `${at}[]`);
    } else if (key === 'additionalProperties') {
      // `false` is the default of a structural schema with properties (unknown fields are pruned).
      if (value === false) continue;
      if (value === true || (typeof value === 'object' && value !== null && Object.keys(value).length === 0)) {
        out['x-kubernetes-preserve-unknown-fields'] = true;
      } else {
        out.additionalProperties = toStructural(value, `${at}.*`);
      }
    } else if (key === 'const') {
      out.enum = [value];
    } else if ((key === 'exclusiveMinimum' || key === 'exclusiveMaximum') && typeof value === 'number') {
      // Draft 2020-12 gives the bound itself; OpenAPI v3.0 (what the API server accepts) a boolean on minimum/maximum.
      const bound = key === 'exclusiveMinimum' ? 'minimum' : 'maximum';
      if (src[bound] !== undefined) throw new Error(`${at}: both ${bound} and ${key}: OpenAPI v3.0 has one bound per side`);
      out[bound] = value;
      out[key] = true;
    } else {
      throw new Error(`${at}: JSON Schema keyword "${key}" has no structural OpenAPI equivalent`);
    }
  }
  if (out.properties && out.additionalProperties) throw new Error(`${at}: both properties and additionalProperties`);
  if (Array.isArray(out.required) && out.required.length === 0) delete out.required;
  if (typeof out.type !== 'string') throw new Error(`${at}: schema node has no type`);
  return out;
}

function specSchema(crd: CrdSpec): SchemaNode {
  // `io: 'input'`: a field with a zod default is optional in what users write, and carries the default.
  const spec = toStructural(z.toJSONSchema(crd.spec, { io: 'input', unrepresentable: 'throw' }));
  const props = (spec.properties ?? {}) as Record<string, SchemaNode>;
  for (const field of crd.immutable ?? []) {
    const prop = props[field];
    if (!prop) throw new Error(`${crd.kind}: immutable field spec.${field} is not in the schema`);
    prop['x-kubernetes-validations'] = [{ rule: 'self == oldSelf', message: `${field} is immutable` }];
  }
  // zod refinements have no JSON Schema form; repeat the ones that matter as CEL.
  const rules = props.rules as SchemaNode | undefined;
  const resources = ((rules?.items as SchemaNode | undefined)?.properties as Record<string, SchemaNode> | undefined)?.resources;
  const resourceItem = resources?.items as SchemaNode | undefined;
  // A pattern, not CEL: a rule on every item of an unbounded list of unbounded strings exceeds the cost budget.
  if (resourceItem) resourceItem.pattern = '^[^/]+$';
  if (crd.specRules) spec['x-kubernetes-validations'] = crd.specRules;
  return spec;
}

function statusSchema(crd: CrdSpec): SchemaNode {
  return {
    type: 'object',
    // The controller will add fields (backlog, last error) before this schema lists them all.
    'x-kubernetes-preserve-unknown-fields': true,
    properties: {
      observedGeneration: { type: 'integer', format: 'int64' },
      conditions: {
        type: 'array',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
        items: {
          type: 'object',
          required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
          properties: {
            type: { type: 'string', maxLength: 316 },
            status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
            observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
            lastTransitionTime: { type: 'string', format: 'date-time' },
            reason: { type: 'string', maxLength: 1024 },
            message: { type: 'string', maxLength: 32768 },
          },
        },
      },
      ...(crd.status ?? {}),
    },
  };
}

function crdDefinition(crd: CrdSpec): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${crd.plural}.${CRD_GROUP}` },
    spec: {
      group: CRD_GROUP,
      names: {
        kind: crd.kind,
        listKind: `${crd.kind}List`,
        plural: crd.plural,
        singular: crd.singular,
        shortNames: crd.shortNames,
        categories: [CRD_CATEGORY],
      },
      scope: crd.scope,
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            ...(crd.columns ?? []),
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: specSchema(crd),
                status: statusSchema(crd),
              },
            },
          },
        },
      ],
    },
  };
}

/** Every CRD of the gitopsreverser.io group, in a fixed order. */
export function crdDefinitions(): Record<string, unknown>[] {
  return CRD_SPECS.map(crdDefinition);
}

const HEADER = '# Generated by `npm run crds` from config/resource-schemas.ts. Do not edit.\n';

/** One CRD as the YAML text of its file under charts/gitops-reverser/crds. */
export function crdFileYaml(crd: Record<string, unknown>): string {
  return HEADER + stringify(crd, { lineWidth: 0 });
}

/** The file name of a CRD: `<plural>.gitopsreverser.io.yaml`. */
export function crdFileName(crd: Record<string, unknown>): string {
  return `${(crd.metadata as { name: string }).name}.yaml`;
}

/** All CRDs as one multi-document YAML stream. */
export function crdYaml(): string {
  return HEADER + crdDefinitions().map((crd) => stringify(crd, { lineWidth: 0 })).join('---\n');
}
