// Reads a multi-document YAML file of configuration objects, validates each one and every reference
// between them, and reports ALL problems at once (by object and field), so an operator fixes a file in
// one round instead of one error per restart.
import { readFile } from 'node:fs/promises';
import picomatch from 'picomatch';
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { partitionOf } from '../queues/names.js';
import { UnsafePathError, validateBasePath } from '../workers/route/path-layout.js';
import type { ClusterSource, ResolvedConfig, ResolvedGitProvider, ResolvedRule, ResolvedTarget } from './resolved-config.js';
import {
  SCHEMA_BY_KIND,
  type ClusterProvider,
  type ClusterWatchRule,
  type ConfigKind,
  type GitProvider,
  type GitTarget,
  type SecretObject,
  type WatchRule,
} from './resource-schemas.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

interface Parsed {
  ClusterProvider: ClusterProvider[];
  GitProvider: GitProvider[];
  GitTarget: GitTarget[];
  WatchRule: WatchRule[];
  ClusterWatchRule: ClusterWatchRule[];
  Secret: SecretObject[];
}

export async function loadConfigFile(file: string): Promise<ResolvedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read CONFIG_FILE: ${(err as Error).message}`]);
  }
  return parseConfig(text, file);
}

/** Parses and resolves configuration text; throws ConfigError listing every problem. */
export function parseConfig(text: string, source = 'configuration'): ResolvedConfig {
  const problems: string[] = [];
  const parsed = parseObjects(text, problems);
  const resolved = resolve(parsed, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return resolved;
}

function issuePath(path: PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
}

function parseObjects(text: string, problems: string[]): Parsed {
  const parsed: Parsed = { ClusterProvider: [], GitProvider: [], GitTarget: [], WatchRule: [], ClusterWatchRule: [], Secret: [] };
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) {
    problems.push('the file is not a YAML stream');
    return parsed;
  }
  docs.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      problems.push(`document ${index + 1}: YAML error: ${doc.errors[0]?.message}`);
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // an empty document between separators
    const obj = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    const label = `document ${index + 1} (${String(obj.kind ?? '?')} ${String(obj.metadata?.namespace ? `${obj.metadata.namespace}/` : '')}${String(obj.metadata?.name ?? '?')})`;
    const kind = obj.kind as ConfigKind;
    // Own properties only: `kind: toString` must be an unknown kind, not Object.prototype's method.
    const schema: z.ZodType | undefined = typeof kind === 'string' && Object.hasOwn(SCHEMA_BY_KIND, kind) ? SCHEMA_BY_KIND[kind] : undefined;
    if (!schema) {
      problems.push(`${label}: kind: unknown kind, expected one of ${Object.keys(SCHEMA_BY_KIND).join(', ')}`);
      return;
    }
    const result = schema.safeParse(value);
    if (!result.success) {
      for (const issue of result.error.issues) problems.push(`${label}: ${issuePath(issue.path)}: ${issue.message}`);
      return;
    }
    (parsed[kind] as unknown[]).push(result.data);
  });
  return parsed;
}

function decodeSecret(secret: SecretObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  Object.assign(out, secret.stringData ?? {});
  return out;
}

function resolve(parsed: Parsed, problems: string[]): ResolvedConfig {
  const secrets = new Map(parsed.Secret.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, decodeSecret(s)]));
  const unique = <T extends { metadata: { name: string; namespace?: string } }>(kind: string, items: T[]) => {
    const seen = new Set<string>();
    for (const item of items) {
      const key = item.metadata.namespace ? `${item.metadata.namespace}/${item.metadata.name}` : item.metadata.name;
      if (seen.has(key)) problems.push(`${kind} ${key}: defined more than once`);
      seen.add(key);
    }
  };
  unique('ClusterProvider', parsed.ClusterProvider);
  unique('GitProvider', parsed.GitProvider);
  unique('GitTarget', parsed.GitTarget);
  unique('WatchRule', parsed.WatchRule);
  unique('ClusterWatchRule', parsed.ClusterWatchRule);
  unique('Secret', parsed.Secret);

  const clusters = new Map<string, ClusterSource>();
  for (const cp of parsed.ClusterProvider) {
    const ref = cp.spec.audit.tokenSecretRef;
    const token = secrets.get(`${ref.namespace}/${ref.name}`)?.[ref.key];
    if (!secrets.has(`${ref.namespace}/${ref.name}`)) {
      problems.push(`ClusterProvider ${cp.metadata.name}: spec.audit.tokenSecretRef: Secret ${ref.namespace}/${ref.name} not found`);
    } else if (token === undefined) {
      problems.push(`ClusterProvider ${cp.metadata.name}: spec.audit.tokenSecretRef.key: Secret ${ref.namespace}/${ref.name} has no key "${ref.key}"`);
    } else if (token === '') {
      problems.push(`ClusterProvider ${cp.metadata.name}: spec.audit.tokenSecretRef.key: key "${ref.key}" of Secret ${ref.namespace}/${ref.name} is empty`);
    }
    clusters.set(cp.metadata.name, { name: cp.metadata.name, token: token ?? '', allowedNamespaces: cp.spec.allowedNamespaces });
  }

  const providers = new Map<string, ResolvedGitProvider>();
  for (const gp of parsed.GitProvider) {
    const key = `${gp.metadata.namespace}/${gp.metadata.name}`;
    let credentials: Record<string, string> | undefined;
    if (gp.spec.secretRef) {
      credentials = secrets.get(`${gp.metadata.namespace}/${gp.spec.secretRef.name}`);
      if (!credentials) problems.push(`GitProvider ${key}: spec.secretRef: Secret ${gp.metadata.namespace}/${gp.spec.secretRef.name} not found`);
    } else if (/^(https?|ssh):\/\//.test(gp.spec.url) || /^[^/]+@[^:]+:/.test(gp.spec.url)) {
      // Public https remotes can be fetched anonymously but never pushed to: say so now, not at the first push.
      problems.push(`GitProvider ${key}: spec.secretRef: required for remote URL ${gp.spec.url}`);
    }
    providers.set(key, { key, url: gp.spec.url, credentials, allowedBranches: gp.spec.allowedBranches });
  }

  const targets = new Map<string, ResolvedTarget>();
  for (const gt of parsed.GitTarget) {
    const key = `${gt.metadata.namespace}/${gt.metadata.name}`;
    // Every problem of a target is reported, even when an earlier one already makes it unusable.
    const before = problems.length;
    const provider = providers.get(`${gt.metadata.namespace}/${gt.spec.providerRef.name}`);
    if (!provider) {
      problems.push(`GitTarget ${key}: spec.providerRef.name: GitProvider ${gt.metadata.namespace}/${gt.spec.providerRef.name} not found`);
    }
    if (!clusters.has(gt.spec.clusterProviderRef.name)) {
      problems.push(`GitTarget ${key}: spec.clusterProviderRef.name: ClusterProvider ${gt.spec.clusterProviderRef.name} not found`);
    }
    if (!isValidBranchName(gt.spec.branch)) {
      problems.push(`GitTarget ${key}: spec.branch: "${gt.spec.branch}" is not a valid Git branch name`);
    } else if (provider && !provider.allowedBranches.some((glob) => picomatch.isMatch(gt.spec.branch, glob))) {
      problems.push(`GitTarget ${key}: spec.branch: "${gt.spec.branch}" is not allowed by GitProvider ${provider.key} (allowedBranches: ${provider.allowedBranches.join(', ')})`);
    }
    let path = '';
    try {
      path = validateBasePath(gt.spec.path);
    } catch (err) {
      if (!(err instanceof UnsafePathError)) throw err;
      problems.push(`GitTarget ${key}: spec.path: ${JSON.stringify(err.value)} ${err.reason}`);
    }
    if (provider && problems.length === before) {
      const partition = partitionOf(provider.url, gt.spec.branch);
      targets.set(key, { key, provider, branch: gt.spec.branch, path, clusterProvider: gt.spec.clusterProviderRef.name, partition });
    }
  }
  checkOverlappingPaths(targets, problems);

  // References are checked against every declared target: a broken target is reported once, as itself.
  const declaredTargets = new Set(parsed.GitTarget.map((gt) => `${gt.metadata.namespace}/${gt.metadata.name}`));
  const rules: ResolvedRule[] = [];
  for (const wr of parsed.WatchRule) {
    const source = `WatchRule ${wr.metadata.namespace}/${wr.metadata.name}`;
    const targetKey = `${wr.metadata.namespace}/${wr.spec.targetRef.name}`;
    if (!declaredTargets.has(targetKey)) problems.push(`${source}: spec.targetRef.name: GitTarget ${targetKey} not found`);
    rules.push({ source, namespace: wr.metadata.namespace, targetKey, rules: wr.spec.rules });
  }
  for (const cwr of parsed.ClusterWatchRule) {
    const source = `ClusterWatchRule ${cwr.metadata.name}`;
    const targetKey = `${cwr.spec.targetRef.namespace}/${cwr.spec.targetRef.name}`;
    if (!declaredTargets.has(targetKey)) problems.push(`${source}: spec.targetRef: GitTarget ${targetKey} not found`);
    rules.push({ source, targetKey, rules: cwr.spec.rules });
  }

  const partitions: ResolvedConfig['partitions'] = new Map();
  for (const t of targets.values()) partitions.set(t.partition.id, { partition: t.partition, credentials: t.provider.credentials });
  return { clusters, targets, rules, partitions };
}

/** Two targets writing into the same folder of one branch would fight over files. */
function checkOverlappingPaths(targets: Map<string, ResolvedTarget>, problems: string[]): void {
  const list = [...targets.values()];
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const a = list[i]!;
      const b = list[j]!;
      if (a.partition.id !== b.partition.id) continue;
      const inside = (x: string, y: string) => x === y || x === '' || y.startsWith(`${x}/`);
      if (inside(a.path, b.path) || inside(b.path, a.path)) {
        problems.push(`GitTarget ${b.key}: spec.path: "${b.path || '.'}" overlaps GitTarget ${a.key} ("${a.path || '.'}") on the same repository and branch`);
      }
    }
  }
}

/** The rules of `git check-ref-format --branch`, without starting a process. */
export function isValidBranchName(branch: string): boolean {
  if (branch.startsWith('-') || branch.startsWith('/') || branch.endsWith('/') || branch.endsWith('.')) return false;
  if (branch.includes('..') || branch.includes('//') || branch.includes('@{') || branch === '@' || branch === 'HEAD') return false;
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(branch)) return false;
  return branch.split('/').every((part) => part.length > 0 && !part.startsWith('.') && !part.endsWith('.lock'));
}
