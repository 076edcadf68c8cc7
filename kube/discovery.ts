// Which resource types a cluster serves, from its discovery documents: /api and /api/v1 for the core
// group, /apis and /apis/{group}/{version} for the rest. A type is read at its group's preferred version, or,
// when that version does not serve it, at the first of the group's versions that does (batch/v1beta1
// cronjobs on a 1.20 server; a CRD group whose CRDs are at different versions), as kubectl does. Watch mode
// expands rules (wildcards included) through it, and configuration reports a rule that matches nothing.
// Only types that can be listed and watched count; subresources (`deployments/scale`) never do.
import type { KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { kubeGetJson, type KubeGetJsonOptions } from './kube-get-json.js';

export interface ApiResourceInfo {
  /** '' for the core group. */
  group: string;
  /** The version it is read at: the group's preferred one, else the first of its versions that serves it. */
  version: string;
  /** Plural name, as in URLs and rules. */
  resource: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
}

export interface Discovery {
  resources: ApiResourceInfo[];
  /**
   * Group versions whose resource list could not be read (an aggregated API that is down answers 503):
   * their types are missing from `resources` for now, not gone from the cluster.
   */
  failed: { groupVersion: string; error: string }[];
}

const ApiVersionsSchema = z.object({ versions: z.array(z.string()) });

const GroupVersionSchema = z.object({ groupVersion: z.string(), version: z.string() });
const ApiGroupListSchema = z.object({
  groups: z.array(z.object({ name: z.string(), versions: z.array(GroupVersionSchema), preferredVersion: GroupVersionSchema.optional() })).default([]),
});

const ApiResourceListSchema = z.object({
  resources: z
    .array(z.object({ name: z.string(), kind: z.string(), namespaced: z.boolean(), verbs: z.array(z.string()).default([]) }))
    .default([]),
});

/** Resource lists read at once; a cluster with many CRD groups has dozens. */
const CONCURRENCY = 8;

function parse<T>(schema: z.ZodType<T>, body: unknown, path: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`GET ${path}: not a discovery document (${issue?.path.join('.')}: ${issue?.message})`);
  }
  return parsed.data;
}

async function resourcesOf(kc: KubeConfig, group: string, version: string, opts: KubeGetJsonOptions): Promise<ApiResourceInfo[]> {
  const path = group === '' ? `/api/${encodeURIComponent(version)}` : `/apis/${encodeURIComponent(group)}/${encodeURIComponent(version)}`;
  const list = parse(ApiResourceListSchema, await kubeGetJson(kc, path, opts), path);
  return list.resources
    .filter((r) => !r.name.includes('/') && r.verbs.includes('list') && r.verbs.includes('watch'))
    .map((r) => ({ group, version, resource: r.name, kind: r.kind, namespaced: r.namespaced, verbs: [...r.verbs] }));
}

/** Every listable, watchable type at its group's preferred version; throws when /api or /apis cannot be read. */
export async function discoverApi(kc: KubeConfig, opts: KubeGetJsonOptions = {}): Promise<Discovery> {
  const core = parse(ApiVersionsSchema, await kubeGetJson(kc, '/api', opts), '/api');
  const groups = parse(ApiGroupListSchema, await kubeGetJson(kc, '/apis', opts), '/apis');
  // Every version of every group, each group's in the order its types are taken: preferred first, then as
  // listed (the API server lists them by priority). The core group has one version (v1); /api lists it first.
  const wanted: { group: string; version: string }[] = [];
  if (core.versions[0]) wanted.push({ group: '', version: core.versions[0] });
  for (const g of groups.groups) {
    const preferred = (g.preferredVersion ?? g.versions[0])?.version;
    const versions = [...new Set([...(preferred ? [preferred] : []), ...g.versions.map((v) => v.version)])];
    for (const version of versions) wanted.push({ group: g.name, version });
  }

  const results: ApiResourceInfo[][] = new Array(wanted.length);
  const failed: Discovery['failed'] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < wanted.length) {
      const i = next++;
      const { group, version } = wanted[i]!;
      try {
        results[i] = await resourcesOf(kc, group, version, opts);
      } catch (err) {
        results[i] = [];
        failed.push({ groupVersion: group ? `${group}/${version}` : version, error: err instanceof Error ? err.message : String(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, wanted.length) }, worker));
  failed.sort((a, b) => (a.groupVersion < b.groupVersion ? -1 : a.groupVersion > b.groupVersion ? 1 : 0));
  // One entry per type: the first version (in the order above) that serves it.
  const seen = new Set<string>();
  const resources = results.flat().filter((r) => {
    const key = `${r.group}/${r.resource}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { resources, failed };
}

/**
 * The resource types of `discoverApi`, without saying which groups could not be read (those are left
 * out). Throws when /api or /apis cannot be read.
 */
export async function discoverResources(kc: KubeConfig, opts: KubeGetJsonOptions = {}): Promise<ApiResourceInfo[]> {
  return (await discoverApi(kc, opts)).resources;
}

/** `group/resource` of each type ('' group for core: `/configmaps`, `apps/deployments`). */
export function resourceNamesOf(list: readonly ApiResourceInfo[]): Set<string> {
  return new Set(list.map((r) => `${r.group}/${r.resource}`));
}
