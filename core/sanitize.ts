// Turns a live Kubernetes object into what belongs in Git: the user's intent, without what the
// API server and controllers add (status, uid, resourceVersion, managedFields, timestamps,
// controller-owned annotations, and the defaults the API server fills in: server-defaults.ts). Keys are
// ordered deterministically so that one object always gives the same bytes — the git writer relies on
// that to skip commits for unchanged objects.
import { stringify } from 'yaml';
import { stripServerDefaults } from './server-defaults.js';
import { goSafeTags, wellFormedDeep } from './yaml-scalars.js';
import { isRecord, putOwn } from './json.js';

/** Top-level keys that come first, in this order; the rest follow sorted. */
const LEADING_KEYS = ['apiVersion', 'kind', 'metadata'] as const;

/** Top-level fields written by the system, never by the user. */
export const DROPPED_TOP_LEVEL_KEYS: ReadonlySet<string> = new Set(['status']);

/** metadata fields kept; everything else (uid, resourceVersion, generation, managedFields, …) goes. */
export const KEPT_METADATA_KEYS = ['name', 'namespace', 'labels', 'annotations'] as const;

/**
 * Annotation key prefixes dropped from metadata.annotations. `kubectl.kubernetes.io/` carries
 * last-applied-configuration (a full copy of the object, plaintext for Secrets) and restartedAt.
 */
export const DROPPED_ANNOTATION_PREFIXES: readonly string[] = ['kubectl.kubernetes.io/'];

/**
 * Annotations that controllers write and rewrite on their own; keeping them would commit noise
 * on every reconcile loop, and a user never sets them.
 */
export const CONTROLLER_OWNED_ANNOTATIONS: ReadonlySet<string> = new Set([
  'deployment.kubernetes.io/revision',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'control-plane.alpha.kubernetes.io/leader',
  'endpoints.kubernetes.io/last-change-trigger-time',
  'pv.kubernetes.io/bind-completed',
  'pv.kubernetes.io/bound-by-controller',
  'pv.kubernetes.io/provisioned-by',
  'volume.beta.kubernetes.io/storage-provisioner',
  'volume.kubernetes.io/storage-provisioner',
  'volume.kubernetes.io/selected-node',
  'kubernetes.io/service-account.uid',
  'autoscaling.alpha.kubernetes.io/conditions',
  'autoscaling.alpha.kubernetes.io/current-metrics',
  'batch.kubernetes.io/job-tracking',
  // Written by the API server itself on every change of a DaemonSet's template.
  'deprecated.daemonset.template.generation',
]);

export function isDroppedAnnotation(key: string): boolean {
  return CONTROLLER_OWNED_ANNOTATIONS.has(key) || DROPPED_ANNOTATION_PREFIXES.some((p) => key.startsWith(p));
}

/** Code-unit order: independent of locale, so every replica sorts the same way. */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Deep copy with every map's keys sorted; arrays keep their order. */
export function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort(compareKeys)) putOwn(out, key, sortKeysDeep(value[key]));
  return out;
}

function sanitizeMetadata(metadata: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!isRecord(metadata)) return out;
  for (const key of KEPT_METADATA_KEYS) {
    let value = metadata[key];
    if (value === undefined || value === null) continue;
    if (key === 'annotations' && isRecord(value)) {
      const kept: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) if (!isDroppedAnnotation(k)) putOwn(kept, k, v);
      value = kept;
    }
    if ((key === 'labels' || key === 'annotations') && isRecord(value) && Object.keys(value).length === 0) continue;
    putOwn(out, key, sortKeysDeep(value));
  }
  return out;
}

/**
 * apiVersion, kind, metadata (name, namespace, labels, annotations; empty maps dropped) first,
 * then every other top-level key but `status`, sorted; all nested maps sorted too; without what the API
 * server fills in on its own (server-defaults.ts).
 */
export function sanitizeObject(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of LEADING_KEYS) {
    if (key === 'metadata') putOwn(out, key, sanitizeMetadata(obj.metadata));
    else if (obj[key] !== undefined) putOwn(out, key, obj[key]);
  }
  const rest = Object.keys(obj)
    .filter((k) => !(LEADING_KEYS as readonly string[]).includes(k) && !DROPPED_TOP_LEVEL_KEYS.has(k))
    .sort(compareKeys);
  for (const key of rest) if (obj[key] !== undefined) putOwn(out, key, sortKeysDeep(obj[key]));
  const uid = isRecord(obj.metadata) && typeof obj.metadata.uid === 'string' ? obj.metadata.uid : undefined;
  stripServerDefaults(out, uid);
  return out;
}

/**
 * The file content for an object. YAML 1.1 quoting is used so that strings like `yes`, `on` or
 * `0755` stay strings for Go YAML 1.1 readers (kubectl, Flux, Argo CD); strings that Go's readers
 * (gopkg.in/yaml.v2 and v3) would still misread — `<<`, `0o17`, NEL/LS/PS, C1 controls, BOM … — are
 * double-quoted with escapes (see yaml-scalars.ts), lone surrogates become U+FFFD. No anchors or
 * aliases, no line folding. Key order is the caller's: pass the result of sanitizeObject.
 */
export function toCanonicalYaml(obj: Record<string, unknown>): string {
  return stringify(wellFormedDeep(obj), {
    version: '1.1',
    customTags: goSafeTags,
    aliasDuplicateObjects: false,
    lineWidth: 0,
    minContentWidth: 0,
    indent: 2,
    indentSeq: true,
  });
}
