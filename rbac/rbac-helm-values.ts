// The service's RBAC needs as the Helm chart's `rbac` values (charts/gitops-reverser/values.yaml), so a
// chart install grants exactly what `npm run rbac` computes: `npm run rbac -- --config F --helm-values`.
// The chart grants its own kinds (read, status patch) itself; everything else maps onto rbac.read,
// rbac.secrets and rbac.watchCustomResourceDefinitions.
import { CRD_GROUP } from '../config/crd-definitions.js';
import type { PolicyRule, RbacNeeds } from './rbac.js';

export interface HelmReadGrant {
  apiGroups: string[];
  resources: string[];
  /** Absent: cluster-wide (the ClusterRole). */
  namespaces?: string[];
  verbs: string[];
}

export interface HelmRbacValues {
  rbac: {
    readMode: 'selected';
    read: HelmReadGrant[];
    secrets: { namespace: string; names: string[] }[];
    /** Secrets are granted by name above, nothing more. */
    releaseNamespaceSecrets: false;
    watchCustomResourceDefinitions: boolean;
  };
}

const isCrdRule = (r: PolicyRule) => r.apiGroups.includes('apiextensions.k8s.io') && r.resources.includes('customresourcedefinitions');
const ruleKey = (r: PolicyRule) => JSON.stringify([r.apiGroups, r.resources, r.verbs]);

export function rbacHelmValues(needs: RbacNeeds): HelmRbacValues {
  const read: HelmReadGrant[] = [];
  let watchCustomResourceDefinitions = false;
  for (const rule of needs.cluster) {
    if (rule.apiGroups.includes(CRD_GROUP)) continue;
    if (isCrdRule(rule)) watchCustomResourceDefinitions = true;
    else read.push({ apiGroups: rule.apiGroups, resources: rule.resources, verbs: rule.verbs });
  }
  // The same rule in several namespaces becomes one grant listing them (needs.namespaces is sorted).
  const namespaced = new Map<string, HelmReadGrant>();
  const secrets: { namespace: string; names: string[] }[] = [];
  for (const { namespace, rules } of needs.namespaces) {
    for (const rule of rules) {
      if (rule.resourceNames && rule.resources.includes('secrets')) {
        secrets.push({ namespace, names: rule.resourceNames });
        continue;
      }
      const grant = namespaced.get(ruleKey(rule));
      if (grant) grant.namespaces?.push(namespace);
      else namespaced.set(ruleKey(rule), { apiGroups: rule.apiGroups, resources: rule.resources, namespaces: [namespace], verbs: rule.verbs });
    }
  }
  return { rbac: { readMode: 'selected', read: [...read, ...namespaced.values()], secrets, releaseNamespaceSecrets: false, watchCustomResourceDefinitions } };
}
