// Which resource types one rule of a WatchRule or ClusterWatchRule selects, for RBAC: explicit names as
// written, wildcards expanded through API discovery. Without discovery a wildcard cannot be turned into
// names, and `*` is never granted (it would include Secrets, RBAC and every CRD installed later), so the
// rule is reported as needing discovery instead.
import type { ResourceRule } from '../config/resource-schemas.js';
// A type import: this pure module loads no client code.
import type { ApiResourceInfo } from '../kube/discovery.js';

export type { ApiResourceInfo } from '../kube/discovery.js';

export interface SelectedResource {
  group: string;
  resource: string;
  /** The wanted verbs the resource serves (all wanted verbs without discovery). */
  verbs: string[];
  /** Known from discovery only. */
  namespaced?: boolean;
}

export type Selection = { kind: 'resources'; resources: SelectedResource[] } | { kind: 'needs-discovery' };

export interface SelectionScope {
  /** A WatchRule selects only namespaced resources (of its own namespace). */
  namespacedOnly: boolean;
  /** What the service does with the selected resources: get/list (object fetch, reconcile) or get/list/watch (watch mode). */
  verbs: readonly string[];
}

export function hasWildcard(rule: ResourceRule): boolean {
  return rule.apiGroups.includes('*') || rule.resources.includes('*');
}

export function selectResources(rule: ResourceRule, scope: SelectionScope, discovered?: readonly ApiResourceInfo[]): Selection {
  if (!discovered) {
    if (hasWildcard(rule)) return { kind: 'needs-discovery' };
    // RBAC takes the cross product of groups and resources too: these rules grant exactly what the rule selects.
    const resources = rule.apiGroups.flatMap((group) => rule.resources.map((resource) => ({ group, resource, verbs: [...scope.verbs] })));
    return { kind: 'resources', resources };
  }
  const versions = rule.apiVersions && !rule.apiVersions.includes('*') ? new Set(rule.apiVersions) : undefined;
  const found = new Map<string, SelectedResource>();
  for (const r of discovered) {
    if (r.resource.includes('/')) continue;
    if (!rule.apiGroups.includes('*') && !rule.apiGroups.includes(r.group)) continue;
    if (!rule.resources.includes('*') && !rule.resources.includes(r.resource)) continue;
    if (versions && !versions.has(r.version)) continue;
    if (scope.namespacedOnly && !r.namespaced) continue;
    // A verb the resource does not serve is never used on it (bindings cannot be watched).
    const verbs = scope.verbs.filter((v) => r.verbs.includes(v));
    if (verbs.length === 0) continue;
    // One entry per group and resource, whatever the number of versions serving it.
    const key = `${r.group}/${r.resource}`;
    const prev = found.get(key);
    found.set(key, { group: r.group, resource: r.resource, verbs: [...new Set([...(prev?.verbs ?? []), ...verbs])], namespaced: r.namespaced });
  }
  return { kind: 'resources', resources: [...found.values()] };
}
