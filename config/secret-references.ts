// The Secrets that configuration objects reference: what the service reads by name (GET) when it runs
// on the cluster's configuration, and so what RBAC must let it read, and nothing else. The resolved
// configuration keeps only the Secrets' values, hence these come from the objects.
import type { ConfigObjects } from './resolve-config.js';

export interface SecretReference {
  namespace: string;
  name: string;
  /** The key read from it; undefined when the whole Secret is used (a GitProvider's credentials). */
  key?: string;
  /** Who references it, for messages: `ClusterProvider c1 spec.audit.tokenSecretRef`. */
  usedBy: string;
}

export function secretReferences(objects: Pick<ConfigObjects, 'ClusterProvider' | 'GitProvider'> & Partial<Pick<ConfigObjects, 'GitTarget'>>): SecretReference[] {
  const refs: SecretReference[] = [];
  for (const cp of objects.ClusterProvider) {
    const who = `ClusterProvider ${cp.metadata.name}`;
    const token = cp.spec.audit?.tokenSecretRef;
    if (token) refs.push({ namespace: token.namespace, name: token.name, key: token.key, usedBy: `${who} spec.audit.tokenSecretRef` });
    const kubeConfig = cp.spec.kubeConfigSecretRef;
    if (kubeConfig) refs.push({ namespace: kubeConfig.namespace, name: kubeConfig.name, key: kubeConfig.key, usedBy: `${who} spec.kubeConfigSecretRef` });
  }
  for (const gp of objects.GitProvider) {
    // A GitProvider's Secret is always in its own namespace.
    if (gp.spec.secretRef) refs.push({ namespace: gp.metadata.namespace, name: gp.spec.secretRef.name, usedBy: `GitProvider ${gp.metadata.namespace}/${gp.metadata.name} spec.secretRef` });
  }
  for (const gt of objects.GitTarget ?? []) {
    // The service's age identity of a target with encryption: in the target's own namespace.
    const key = gt.spec.encryption?.sops.keySecretRef;
    if (key) refs.push({ namespace: gt.metadata.namespace, name: key.name, key: key.key, usedBy: `GitTarget ${gt.metadata.namespace}/${gt.metadata.name} spec.encryption.sops.keySecretRef` });
  }
  return refs;
}
