// Turns the service's RBAC needs into the Kubernetes objects that grant them to its ServiceAccount: one
// ClusterRole and its ClusterRoleBinding, and a Role with its RoleBinding per namespace, in a fixed order.
import type { PolicyRule, RbacNeeds } from './rbac.js';

export interface RbacSubject {
  serviceAccount: string;
  /** The ServiceAccount's namespace. */
  namespace: string;
  /** Name of the ClusterRole, Roles and bindings. @defaultValue the ServiceAccount's name */
  name?: string;
}

interface Metadata {
  name: string;
  namespace?: string;
  labels: Record<string, string>;
}

interface RoleRef {
  apiGroup: 'rbac.authorization.k8s.io';
  kind: 'ClusterRole' | 'Role';
  name: string;
}

interface Subject {
  kind: 'ServiceAccount';
  name: string;
  namespace: string;
}

export type RbacObject =
  | { apiVersion: 'rbac.authorization.k8s.io/v1'; kind: 'ClusterRole' | 'Role'; metadata: Metadata; rules: PolicyRule[] }
  | { apiVersion: 'rbac.authorization.k8s.io/v1'; kind: 'ClusterRoleBinding' | 'RoleBinding'; metadata: Metadata; roleRef: RoleRef; subjects: Subject[] };

const API = 'rbac.authorization.k8s.io/v1';
const LABELS = { 'app.kubernetes.io/name': 'gitops-reverser', 'app.kubernetes.io/component': 'rbac' };

export function rbacObjects(needs: RbacNeeds, subject: RbacSubject): RbacObject[] {
  const name = subject.name ?? subject.serviceAccount;
  const subjects: Subject[] = [{ kind: 'ServiceAccount', name: subject.serviceAccount, namespace: subject.namespace }];
  const out: RbacObject[] = [
    { apiVersion: API, kind: 'ClusterRole', metadata: { name, labels: { ...LABELS } }, rules: needs.cluster },
    {
      apiVersion: API,
      kind: 'ClusterRoleBinding',
      metadata: { name, labels: { ...LABELS } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects,
    },
  ];
  for (const { namespace, rules } of needs.namespaces) {
    out.push(
      { apiVersion: API, kind: 'Role', metadata: { name, namespace, labels: { ...LABELS } }, rules },
      {
        apiVersion: API,
        kind: 'RoleBinding',
        metadata: { name, namespace, labels: { ...LABELS } },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects,
      },
    );
  }
  return out;
}
