// Which watches a cluster in watch mode needs: exactly the resource types and namespaces that the rules
// routing to its targets select, no more (every watch costs the API server a connection and a list).
// Pure: the rules, the discovered types and the cluster's allowed namespaces in, sorted watches out.
import type { ResolvedConfig } from '../../config/resolved-config.js';
import type { ApiResourceInfo } from '../discovery.js';

export interface WatchSpec {
  /** `group/version/resource@namespace`, e.g. `/v1/configmaps@team-a`, `apps/v1/deployments@`. */
  key: string;
  /** '' for the core group. */
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  /** '' for all namespaces, and for cluster-scoped types. */
  namespace: string;
}

export interface WatchPlanInput {
  cluster: string;
  config: Pick<ResolvedConfig, 'rules' | 'targets'>;
  /** What the cluster serves (discovery.ts), each group at its preferred version. */
  resources: readonly ApiResourceInfo[];
  /** The ClusterProvider's allowedNamespaces; undefined: all. */
  allowedNamespaces?: readonly string[];
}

/**
 * Never watched: events are a change log of their own, high in volume and short-lived, and nobody wants
 * them in Git (core `events` and `events.k8s.io/events` are the same objects).
 */
const NEVER_WATCHED: ReadonlySet<string> = new Set(['/events', 'events.k8s.io/events']);

/** Our own configuration kinds: watched only when a rule names the group, never through `*`. */
const OWN_GROUP = 'gitopsreverser.io';

export function watchKeyOf(w: Pick<WatchSpec, 'group' | 'version' | 'resource' | 'namespace'>): string {
  return `${w.group}/${w.version}/${w.resource}@${w.namespace}`;
}

const selects = (values: readonly string[] | undefined, value: string): boolean => values === undefined || values.includes('*') || values.includes(value);

export function planWatches(input: WatchPlanInput): WatchSpec[] {
  const allowed = input.allowedNamespaces;
  /** Per type (`group/version/resource`): the type, and the namespaces to watch ('' = all). */
  const wanted = new Map<string, { type: ApiResourceInfo; namespaces: Set<string> }>();

  for (const rule of input.config.rules) {
    if (input.config.targets.get(rule.targetKey)?.clusterProvider !== input.cluster) continue;
    // A WatchRule sees only its own namespace; with allowedNamespaces, only if that one is allowed.
    if (rule.namespace !== undefined && allowed && !allowed.includes(rule.namespace)) continue;
    for (const r of rule.rules) {
      for (const type of input.resources) {
        if (NEVER_WATCHED.has(`${type.group}/${type.resource}`)) continue;
        if (!selects(r.apiGroups, type.group) || !selects(r.resources, type.resource) || !selects(r.apiVersions, type.version)) continue;
        if (type.group === OWN_GROUP && !r.apiGroups.includes(OWN_GROUP)) continue;
        // A WatchRule never selects cluster-scoped objects (as the router matches).
        if (rule.namespace !== undefined && !type.namespaced) continue;
        const key = `${type.group}/${type.version}/${type.resource}`;
        const entry = wanted.get(key) ?? { type, namespaces: new Set<string>() };
        wanted.set(key, entry);
        if (!type.namespaced) entry.namespaces.add('');
        else if (rule.namespace !== undefined) entry.namespaces.add(rule.namespace);
        // allowedNamespaces: a namespaced type is watched in each allowed namespace, never cluster-wide.
        else if (allowed) for (const ns of allowed) entry.namespaces.add(ns);
        else entry.namespaces.add('');
      }
    }
  }

  const plan: WatchSpec[] = [];
  for (const { type, namespaces } of wanted.values()) {
    // A type watched in all namespaces sees every namespace already.
    const list = namespaces.has('') ? [''] : [...namespaces];
    for (const namespace of list) {
      const spec = { group: type.group, version: type.version, resource: type.resource, kind: type.kind, namespaced: type.namespaced, namespace };
      plan.push({ key: watchKeyOf(spec), ...spec });
    }
  }
  return plan.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
