// Compiles WatchRules and ClusterWatchRules once into per-cluster matchers of sets, so routing an event
// is a few set look-ups instead of a walk over every rule's arrays.
import type { ResolvedConfig, ResolvedTarget } from '../../config/resolved-config.js';
import type { ResourceRule } from '../../config/resource-schemas.js';
import type { ObjectIdentity, Operation } from '../../core/contracts.js';

/** A set that also answers true for anything when it holds '*'. */
type Selector = { any: boolean; values: Set<string> };

interface CompiledRule {
  source: string;
  namespace?: string;
  target: ResolvedTarget;
  operations: Selector;
  apiGroups: Selector;
  apiVersions: Selector;
  resources: Selector;
}

export interface CompiledRoutes {
  byCluster: Map<string, CompiledRule[]>;
}

function selector(values: string[] | undefined): Selector {
  if (values === undefined) return { any: true, values: new Set() };
  return { any: values.includes('*'), values: new Set(values) };
}

function compileOne(source: string, namespace: string | undefined, target: ResolvedTarget, rule: ResourceRule): CompiledRule {
  return {
    source,
    namespace,
    target,
    operations: selector(rule.operations),
    apiGroups: selector(rule.apiGroups),
    apiVersions: selector(rule.apiVersions),
    resources: selector(rule.resources),
  };
}

export function compileRules(config: ResolvedConfig): CompiledRoutes {
  const byCluster = new Map<string, CompiledRule[]>();
  for (const rule of config.rules) {
    const target = config.targets.get(rule.targetKey);
    if (!target) continue; // reported by configuration validation
    const list = byCluster.get(target.clusterProvider) ?? [];
    for (const r of rule.rules) list.push(compileOne(rule.source, rule.namespace, target, r));
    byCluster.set(target.clusterProvider, list);
  }
  return { byCluster };
}

const has = (s: Selector, v: string) => s.any || s.values.has(v);

/** The targets (each once) whose rules select this change; empty when nothing does. */
export function matchTargets(routes: CompiledRoutes, identity: ObjectIdentity, operation: Operation): ResolvedTarget[] {
  const matched = new Map<string, ResolvedTarget>();
  for (const rule of routes.byCluster.get(identity.cluster) ?? []) {
    if (matched.has(rule.target.key)) continue;
    // A WatchRule sees only its own namespace, never cluster-scoped objects.
    if (rule.namespace !== undefined && identity.namespace !== rule.namespace) continue;
    if (
      has(rule.operations, operation) &&
      has(rule.apiGroups, identity.group) &&
      has(rule.apiVersions, identity.version) &&
      has(rule.resources, identity.resource)
    ) {
      matched.set(rule.target.key, rule.target);
    }
  }
  return [...matched.values()];
}

/**
 * The targets (each once) that may hold files in namespace `namespace` of `cluster` and record deletes
 * there: those with a ClusterWatchRule, or a WatchRule of that namespace, whose operations select DELETE
 * (whatever resources they select: a namespace's deletion takes every type with it).
 */
export function namespaceTargets(routes: CompiledRoutes, cluster: string, namespace: string): ResolvedTarget[] {
  const matched = new Map<string, ResolvedTarget>();
  for (const rule of routes.byCluster.get(cluster) ?? []) {
    if (matched.has(rule.target.key)) continue;
    if (rule.namespace !== undefined && rule.namespace !== namespace) continue;
    if (has(rule.operations, 'DELETE')) matched.set(rule.target.key, rule.target);
  }
  return [...matched.values()];
}
