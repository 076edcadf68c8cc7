// Configuration objects as a cluster holds them (gitopsreverser.io/v1alpha1 and v1 Secrets), for tests that
// create them through the Kubernetes API (the stand-in or a real cluster).
import type { KubernetesObject } from '@kubernetes/client-node';

const API = 'gitopsreverser.io/v1alpha1';

export type Obj = KubernetesObject & Record<string, unknown>;

export function secretObject(namespace: string, name: string, data: Record<string, string>): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

export function clusterProviderObject(name: string, spec: Record<string, unknown>): Obj {
  return { apiVersion: API, kind: 'ClusterProvider', metadata: { name }, spec };
}

export function gitProviderObject(namespace: string, name: string, url: string, allowedBranches = ['main'], secretName?: string): Obj {
  return { apiVersion: API, kind: 'GitProvider', metadata: { name, namespace }, spec: { url, allowedBranches, ...(secretName ? { secretRef: { name: secretName } } : {}) } };
}

export function gitTargetObject(namespace: string, name: string, spec: { provider: string; branch?: string; path: string; cluster: string }): Obj {
  return {
    apiVersion: API,
    kind: 'GitTarget',
    metadata: { name, namespace },
    spec: { providerRef: { name: spec.provider }, branch: spec.branch ?? 'main', path: spec.path, clusterProviderRef: { name: spec.cluster } },
  };
}

export function watchRuleObject(namespace: string, name: string, target: string, resources: string[], apiGroups = ['']): Obj {
  return { apiVersion: API, kind: 'WatchRule', metadata: { name, namespace }, spec: { targetRef: { name: target }, rules: [{ operations: ['*'], apiGroups, resources }] } };
}

export function clusterWatchRuleObject(name: string, target: { namespace: string; name: string }, resources: string[], apiGroups = ['']): Obj {
  return { apiVersion: API, kind: 'ClusterWatchRule', metadata: { name }, spec: { targetRef: target, rules: [{ operations: ['*'], apiGroups, resources }] } };
}
