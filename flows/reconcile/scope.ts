// What a GitTarget's reconcile lists: the (resource type, namespace) pairs its rules select on its
// cluster, one child job per pair. It is the watch plan of that one target (kube/watch/watch-plan.ts):
// the same wildcard expansion through discovery, the same rules for WatchRule namespaces, ClusterWatchRules
// and allowedNamespaces, the same types never watched. Pure.
import type { ResolvedConfig, ResolvedTarget } from '../../config/resolved-config.js';
import type { ResourceRule } from '../../config/resource-schemas.js';
import type { ApiResourceInfo } from '../../kube/discovery.js';
import { planWatches, type WatchSpec } from '../../kube/watch/watch-plan.js';

/** One child of a reconcile flow: a type and a namespace ('' = all namespaces, or a cluster-scoped type). */
export type ScopeEntry = WatchSpec;

export interface ReconcileScopeInput {
  target: Pick<ResolvedTarget, 'key' | 'clusterProvider'>;
  config: Pick<ResolvedConfig, 'rules'>;
  /** What the target's cluster serves (kube/discovery.ts). */
  resources: readonly ApiResourceInfo[];
  /** The cluster's allowedNamespaces; undefined: all. */
  allowedNamespaces?: readonly string[];
}

/**
 * A rule entry writes an existing object's file only on CREATE or UPDATE; one that selects DELETE alone
 * never puts a file into Git on a live event, so a snapshot must not either.
 */
const writesObjects = (r: ResourceRule): boolean => r.operations.some((op) => op === '*' || op === 'CREATE' || op === 'UPDATE');

/** The pairs to list, sorted by key (`group/version/resource@namespace`); empty when no rule selects anything. */
export function reconcileScope(input: ReconcileScopeInput): ScopeEntry[] {
  const { target } = input;
  const rules = input.config.rules
    .filter((rule) => rule.targetKey === target.key)
    .map((rule) => ({ ...rule, rules: rule.rules.filter(writesObjects) }))
    .filter((rule) => rule.rules.length > 0);
  // planWatches keeps the rules of targets on its cluster: a map with only this target keeps only its rules.
  const targets = new Map([[target.key, { clusterProvider: target.clusterProvider } as ResolvedTarget]]);
  return planWatches({
    cluster: target.clusterProvider,
    config: { rules, targets },
    // A type that cannot be listed cannot be reconciled (discovery keeps only listable types; be sure).
    resources: input.resources.filter((r) => r.verbs.includes('list')),
    ...(input.allowedNamespaces ? { allowedNamespaces: input.allowedNamespaces } : {}),
  });
}
