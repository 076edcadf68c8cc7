// Validates rendered manifests as an API server would admit them, without one:
// - the OpenAPI schema of built-in kinds (kubernetes-models' validators; ServiceMonitor from
//   @kubernetes-models/prometheus-operator): types, required fields, enums, formats;
// - strict field validation (kubectl apply's default since 1.27 refuses unknown fields), which those
//   validators do not do: every field name is checked against @kubernetes/client-node's typed models;
// - custom resources of this project against the CRDs' own openAPIV3Schema (structural: unknown fields refused).
import * as k8s from '@kubernetes/client-node';
import { Ajv, type ValidateFunction } from 'ajv';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } & Record<string, unknown>;

interface AttributeType {
  baseName: string;
  type: string;
}
interface ModelClass {
  getAttributeTypeMap(): AttributeType[];
}

const models = k8s as unknown as Record<string, ModelClass | undefined>;

function modelClass(type: string): ModelClass | undefined {
  const candidate = models[type];
  return candidate && typeof candidate.getAttributeTypeMap === 'function' ? candidate : undefined;
}

/** Field paths of `value` that its client-node model (e.g. `V1Deployment`) does not declare. */
export function unknownFields(value: unknown, type: string, path = ''): string[] {
  const array = /^Array<(.+)>$/.exec(type)?.[1];
  if (array) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array, `${path}[${i}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type)?.[1];
  if (map) return isObject(value) ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map, `${path}.${k}`)) : [];
  const model = modelClass(type);
  if (!model || !isObject(value)) return [];
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([key, v]) => {
    const fieldType = attributes.get(key);
    const here = path ? `${path}.${key}` : key;
    return fieldType === undefined ? [here] : unknownFields(v, fieldType, here);
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `apps/v1` + `Deployment` → the kubernetes-models module that validates it. */
function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

interface ValidatingModel {
  validate(): void;
}

/** Schema errors of a built-in (or Prometheus Operator) object; throws when no model knows the kind. */
export async function builtInSchemaErrors(object: KubeObject): Promise<string[]> {
  const module = (await import(modelModule(object.apiVersion, object.kind))) as Record<string, new (data: unknown) => ValidatingModel>;
  const Model = module[object.kind];
  if (!Model) throw new Error(`no schema model for ${object.apiVersion} ${object.kind}`);
  const errors: string[] = [];
  try {
    new Model(object).validate();
  } catch (err) {
    errors.push((err as Error).message);
  }
  // client-node names built-in models V1Deployment, V1CustomResourceDefinition, …: strict field checks.
  if (!object.apiVersion.includes('monitoring.coreos.com')) {
    const version = object.apiVersion.split('/').pop() ?? '';
    const type = `${version.charAt(0).toUpperCase()}${version.slice(1)}${object.kind}`;
    if (!modelClass(type)) throw new Error(`no client-node model ${type} for strict field validation`);
    for (const field of unknownFields(object, type)) errors.push(`unknown field ${field}`);
  }
  return errors;
}

type JsonSchema = Record<string, unknown>;

/**
 * A CRD's OpenAPI v3.0 schema as a draft-07 one ajv runs, made strict like field validation: objects with
 * `properties` refuse other fields unless they preserve unknown fields; boolean exclusive bounds become numbers.
 */
function strictSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictSchema);
  if (!isObject(schema)) return schema;
  const out: JsonSchema = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === 'enum' || k === 'default' || k === 'example' ? v : strictSchema(v)]));
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (out[flag] === true) {
      out[flag] = out[bound];
      delete out[bound];
    } else if (out[flag] === false) delete out[flag];
  }
  if (isObject(schema.properties) && schema['x-kubernetes-preserve-unknown-fields'] !== true && schema.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}

/** Validators of the project's CRDs (charts/gitops-reverser/crds), by `group/version/Kind`. */
export async function loadCrdValidators(crdDir: string): Promise<Map<string, ValidateFunction>> {
  // RFC 3339 as the API server's date-time format checks it.
  const ajv = new Ajv({
    strict: false,
    allErrors: true,
    formats: {
      'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/,
      int32: { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 },
      int64: { type: 'number', validate: (n: number) => Number.isSafeInteger(n) },
    },
  });
  const validators = new Map<string, ValidateFunction>();
  for (const file of (await readdir(crdDir)).filter((f) => f.endsWith('.yaml'))) {
    const crd = parseYaml(await readFile(join(crdDir, file), 'utf8')) as {
      spec: { group: string; names: { kind: string }; versions: { name: string; schema: { openAPIV3Schema: JsonSchema } }[] };
    };
    for (const version of crd.spec.versions) {
      const schema = strictSchema(version.schema.openAPIV3Schema) as JsonSchema;
      // metadata is the API server's to validate (ObjectMeta), not the CRD's.
      const properties = { ...(schema.properties as JsonSchema), metadata: { type: 'object' } };
      validators.set(`${crd.spec.group}/${version.name}/${crd.spec.names.kind}`, ajv.compile({ ...schema, properties }));
    }
  }
  return validators;
}

/** Errors of a custom resource against its CRD's schema; throws when no CRD defines it. */
export function customResourceErrors(object: KubeObject, validators: Map<string, ValidateFunction>): string[] {
  const validate = validators.get(`${object.apiVersion}/${object.kind}`);
  if (!validate) throw new Error(`no CRD defines ${object.apiVersion} ${object.kind}`);
  if (validate(object)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
}
