// Whether a resource type is namespaced or cluster-scoped. The identity of an event comes from its
// objectRef alone; an objectRef that names no namespace for a namespaced type (or one for a cluster-scoped
// type) would put the object in the wrong folder — `_cluster/` — past a cluster's allowedNamespaces. The
// built-in types are known here; other types (custom resources) from the cluster's API discovery where the
// service reads it, else the objectRef is taken as it is.

export type ResourceScope = 'namespaced' | 'cluster';

/** Looks a type up in what the cluster serves (API discovery); undefined when it is not known there. */
export type ScopeLookup = (cluster: string, group: string, resource: string) => ResourceScope | undefined;

const CLUSTER_SCOPED: readonly string[] = [
  '/namespaces',
  '/nodes',
  '/persistentvolumes',
  '/componentstatuses',
  'admissionregistration.k8s.io/mutatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingadmissionpolicies',
  'admissionregistration.k8s.io/validatingadmissionpolicybindings',
  'apiextensions.k8s.io/customresourcedefinitions',
  'apiregistration.k8s.io/apiservices',
  'certificates.k8s.io/certificatesigningrequests',
  'certificates.k8s.io/clustertrustbundles',
  'flowcontrol.apiserver.k8s.io/flowschemas',
  'flowcontrol.apiserver.k8s.io/prioritylevelconfigurations',
  'networking.k8s.io/ingressclasses',
  'networking.k8s.io/ipaddresses',
  'networking.k8s.io/servicecidrs',
  'node.k8s.io/runtimeclasses',
  'policy/podsecuritypolicies',
  'rbac.authorization.k8s.io/clusterroles',
  'rbac.authorization.k8s.io/clusterrolebindings',
  'scheduling.k8s.io/priorityclasses',
  'storage.k8s.io/csidrivers',
  'storage.k8s.io/csinodes',
  'storage.k8s.io/storageclasses',
  'storage.k8s.io/volumeattachments',
  'storage.k8s.io/volumeattributesclasses',
];

const NAMESPACED: readonly string[] = [
  '/bindings',
  '/configmaps',
  '/endpoints',
  '/events',
  '/limitranges',
  '/persistentvolumeclaims',
  '/pods',
  '/podtemplates',
  '/replicationcontrollers',
  '/resourcequotas',
  '/secrets',
  '/serviceaccounts',
  '/services',
  'apps/controllerrevisions',
  'apps/daemonsets',
  'apps/deployments',
  'apps/replicasets',
  'apps/statefulsets',
  'autoscaling/horizontalpodautoscalers',
  'batch/cronjobs',
  'batch/jobs',
  'coordination.k8s.io/leases',
  'discovery.k8s.io/endpointslices',
  'events.k8s.io/events',
  'networking.k8s.io/ingresses',
  'networking.k8s.io/networkpolicies',
  'policy/poddisruptionbudgets',
  'rbac.authorization.k8s.io/rolebindings',
  'rbac.authorization.k8s.io/roles',
  'storage.k8s.io/csistoragecapacities',
];

const BUILT_IN: ReadonlyMap<string, ResourceScope> = new Map([
  ...CLUSTER_SCOPED.map((k) => [k, 'cluster'] as const),
  ...NAMESPACED.map((k) => [k, 'namespaced'] as const),
]);

/** The scope of a built-in type (`group` '' for core), or undefined for a type this table does not know. */
export function builtInScope(group: string, resource: string): ResourceScope | undefined {
  return BUILT_IN.get(`${group}/${resource}`);
}
