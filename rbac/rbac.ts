// The least RBAC the service needs on its own cluster for a given configuration, as rules: what a
// generated manifest grants and a review can check line by line. Pure: the configuration, the Secrets it
// references and (optionally) API discovery in; grants out.
//
// - Its configuration: get/list/watch on the five gitopsreverser.io kinds cluster-wide (informers), and
//   patch only on their /status subresources (conditions), never on the objects themselves.
// - Referenced Secrets: get by name (resourceNames), in a Role of each Secret's namespace; never list or
//   watch, which would expose every Secret of the namespace.
// - Source objects, only for clusters read with the service's own credentials (ClusterSource.kubeConfig
//   undefined, so the local cluster): get and list for a cluster that sends audit events (get: object
//   fetch of events without a body; list: the reconcile, which lists every type the rules select, at start
//   and on schedule, and the listing of a deletecollection whose answer was not recorded), get/list/watch
//   in watch mode; on exactly the resources the rules select. WatchRules grant in a Role of their own
//   namespace, ClusterWatchRules in the ClusterRole. A cluster read through a kubeconfig Secret needs
//   nothing here: that kubeconfig's identity is authorised in its own cluster.
// - CustomResourceDefinitions list/watch, only when a wildcard rule reads the local cluster or it is watched:
//   the service must see CRDs come and go to expand the wildcard again (and rerunning this with --discover
//   grants them). A cluster with allowedNamespaces is read in those namespaces only.
// Not needed, hence not granted: events (the service records none), leases (Valkey holds them), any `*`.
import { CRD_GROUP, CRD_SPECS } from '../config/crd-definitions.js';
import type { ResolvedConfig } from '../config/resolved-config.js';
import { CLUSTER_SCOPE, PermissionSet, type PolicyRule } from './rbac-policy.js';
import { hasWildcard, selectResources, type ApiResourceInfo } from './rbac-selection.js';
import type { SecretReference } from '../config/secret-references.js';

export type { ApiResourceInfo } from './rbac-selection.js';
export type { PolicyRule } from './rbac-policy.js';

const READ = ['get', 'list', 'watch'] as const;
/** Audit mode: get (object fetch) and list (reconcile, deletecollection listing); watch only in watch mode. */
const AUDITED_READ = ['get', 'list'] as const;
/** A referenced Secret: get by name, nothing more. */
const SECRET_READ = ['get'] as const;
/** The status reporter writes with merge patches only. */
const STATUS_WRITE = ['patch'] as const;

export interface RbacInput {
  config: ResolvedConfig;
  /** The Secrets the configuration objects reference (secretReferences()). */
  secrets: readonly SecretReference[];
  /** The resources the local cluster serves; undefined: wildcards are reported, not expanded. */
  discovered?: readonly ApiResourceInfo[];
}

/** A rule with a wildcard that could not be expanded for want of API discovery. */
export interface UnexpandedRule {
  /** `WatchRule team-a/web` or `ClusterWatchRule all`. */
  source: string;
  /** Index in the object's spec.rules. */
  index: number;
  cluster: string;
  apiGroups: string[];
  resources: string[];
}

export interface RbacNeeds {
  /** The ClusterRole's rules. */
  cluster: PolicyRule[];
  /** One Role per namespace, namespaces sorted. */
  namespaces: { namespace: string; rules: PolicyRule[] }[];
  /** Non-empty: the grants are incomplete until discovery expands these. */
  needsDiscovery: UnexpandedRule[];
  /** Rules that grant nothing (target broken, or nothing served matches), for the operator to check. */
  notes: string[];
}

export function rbacNeeds(input: RbacInput): RbacNeeds {
  const { config, discovered } = input;
  const grants = new PermissionSet();
  const needsDiscovery: UnexpandedRule[] = [];
  const notes: string[] = [];

  for (const crd of CRD_SPECS) {
    grants.grant(CLUSTER_SCOPE, CRD_GROUP, crd.plural, READ);
    grants.grant(CLUSTER_SCOPE, CRD_GROUP, `${crd.plural}/status`, STATUS_WRITE);
  }
  for (const s of input.secrets) grants.grant(s.namespace, '', 'secrets', SECRET_READ, s.name);

  let wildcardOnLocalCluster = false;
  let watchOnLocalCluster = false;
  for (const rule of config.rules) {
    const target = config.targets.get(rule.targetKey);
    const cluster = target ? config.clusters.get(target.clusterProvider) : undefined;
    if (!target || !cluster) {
      notes.push(`${rule.source}: GitTarget ${rule.targetKey} or its ClusterProvider is not ready; its resources are not granted`);
      continue;
    }
    if (cluster.kubeConfig !== undefined) continue;
    const scope = rule.namespace ?? CLUSTER_SCOPE;
    const verbs = cluster.watch ? READ : AUDITED_READ;
    rule.rules.forEach((r, index) => {
      if (hasWildcard(r)) wildcardOnLocalCluster = true;
      const selection = selectResources(r, { namespacedOnly: rule.namespace !== undefined, verbs }, discovered);
      if (selection.kind === 'needs-discovery') {
        needsDiscovery.push({ source: rule.source, index, cluster: cluster.name, apiGroups: r.apiGroups, resources: r.resources });
        return;
      }
      if (selection.resources.length === 0) notes.push(`${rule.source}: spec.rules[${index}] selects no resource the cluster serves; nothing granted`);
      for (const s of selection.resources) {
        // A cluster limited to some namespaces is read only there (the watches are per allowed namespace).
        const scopes = scope === CLUSTER_SCOPE && s.namespaced && cluster.allowedNamespaces ? cluster.allowedNamespaces : [scope];
        for (const sc of scopes) grants.grant(sc, s.group, s.resource, s.verbs);
      }
    });
    if (cluster.watch) watchOnLocalCluster = true;
  }
  // The watch adapter follows CRDs as they come and go (wildcards, and rules naming a CRD not yet installed).
  if (wildcardOnLocalCluster || watchOnLocalCluster) grants.grant(CLUSTER_SCOPE, 'apiextensions.k8s.io', 'customresourcedefinitions', ['list', 'watch']);

  return {
    cluster: grants.rules(CLUSTER_SCOPE),
    namespaces: grants.namespaces().map((namespace) => ({ namespace, rules: grants.rules(namespace) })),
    needsDiscovery,
    notes,
  };
}
