// What the API server writes into an object on its own, taken out again so that a file holds what people
// wrote. For a built-in type the server fills in its defaults while it decodes a request, before anything
// else sees it: the object it stores, every later audit event, watch event and list carries them whether or
// not anyone wrote them, and even an audit event's requestObject is the decoded, defaulted body (recorded on
// a real kube-apiserver 1.20: test/fixtures/kube-objects). So these rules read the stored object alone, the
// same for the audit, watch and reconcile paths: one object, one content, whichever path saw it.
//
// Two kinds of rule:
// - `creationTimestamp: null` at any depth, and a nested `metadata` that held nothing else: what Go writes
//   for the empty metadata of every template (a real creation time is only the top-level one, which
//   sanitizeObject drops with the rest of the server's metadata).
// - per built-in type (RULES, keyed by apiVersion and kind): a field whose value is exactly what the API
//   server would fill in had the field been left out, and a map or list emptied by that. Each rule is
//   written from Kubernetes' defaulting code (pkg/apis/<group>/<version>/defaults.go) so that applying the
//   file gives the object the server stored: where a default depends on other fields (an image's pull
//   policy, a Job's completions, a StatefulSet's partition) the rule checks them, and where leaving a field
//   out would give something else the field stays.
//
// What stays: everything else. Empty maps the server keeps as written mean something (`emptyDir: {}`, a
// container's `securityContext: {}`, a NetworkPolicy's `podSelector: {}`); values the server allocated but a
// person may have chosen stay too (a Service's clusterIP and nodePort, a PVC's storageClassName), as does
// `replicas` (what `kubectl scale` and autoscalers change: server-side apply of a file without it would not
// set it back). A value equal to its default goes even where a person wrote it (`dnsPolicy: ClusterFirst`):
// the stored object keeps no trace of who did, and a rule that kept it on the audit path would give watch
// mode and reconcile, which see only the stored object, another content, and a commit on every reconcile.
//
// stripServerDefaults changes the object it is given: sanitizeObject passes its own fresh copy.
import { isRecord } from './json.js';

type Obj = Record<string, unknown>;

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (!isRecord(a) || !isRecord(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

/** The value at `path` below `value`, when every step is a map. */
function at(value: unknown, ...path: string[]): unknown {
  let v = value;
  for (const key of path) {
    if (!isRecord(v) || !Object.hasOwn(v, key)) return undefined;
    v = v[key];
  }
  return v;
}

/** The maps among the items of a list (anything else: none). */
function items(value: unknown): Obj[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

/** Removes `map[key]` when it is exactly `value`. */
function dropDefault(map: unknown, key: string, value: unknown): void {
  if (isRecord(map) && Object.hasOwn(map, key) && deepEqual(map[key], value)) delete map[key];
}

/** Removes `map[key]` when it is an empty map or list. */
function dropEmpty(map: unknown, key: string): void {
  if (!isRecord(map) || !Object.hasOwn(map, key)) return;
  const v = map[key];
  if ((isRecord(v) && Object.keys(v).length === 0) || (Array.isArray(v) && v.length === 0)) delete map[key];
}

// ---- creationTimestamp: null, anywhere ----

/** Removes every `creationTimestamp: null`, and each `metadata` map that held nothing else. */
function dropNullCreationTimestamps(value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) dropNullCreationTimestamps(item);
    return;
  }
  if (!isRecord(value)) return;
  for (const key of Object.keys(value)) {
    const child = value[key];
    if (key === 'creationTimestamp' && child === null) {
      delete value[key];
      continue;
    }
    const hadNull = key === 'metadata' && isRecord(child) && Object.hasOwn(child, 'creationTimestamp') && child.creationTimestamp === null;
    dropNullCreationTimestamps(child);
    if (hadNull) dropEmpty(value, key);
  }
}

// ---- core/v1 pieces ----

/**
 * The image pull policy the API server gives a container that names none: `Always` for the tag `latest` or
 * no tag and no digest, `IfNotPresent` otherwise. Undefined for an image this does not read exactly as the
 * server's reference parser would (then the policy is kept).
 */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' | undefined {
  const m = IMAGE_REFERENCE.exec(image);
  if (!m) return undefined;
  const [, , tag, digest] = m;
  return tag === 'latest' || (tag === undefined && digest === undefined) ? 'Always' : 'IfNotPresent';
}

// [domain[:port]/]path[:tag][@digest], as github.com/distribution/reference reads it: the first component
// is a domain only when it has a '.' or a ':' or is `localhost`; path components are lowercase.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN = '(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\\.[A-Za-z0-9-]+|[A-Za-z0-9](?:[A-Za-z0-9-.]*[A-Za-z0-9])?:[0-9]+)';
const IMAGE_REFERENCE = new RegExp(
  `^((?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::([\\w][\\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$`,
);

/** HTTPGetAction: path `/`, scheme HTTP. */
function httpGet(action: unknown): void {
  dropDefault(action, 'path', '/');
  dropDefault(action, 'scheme', 'HTTP');
}

/** A probe's thresholds and its handler. */
function probe(p: unknown): void {
  dropDefault(p, 'timeoutSeconds', 1);
  dropDefault(p, 'periodSeconds', 10);
  dropDefault(p, 'successThreshold', 1);
  dropDefault(p, 'failureThreshold', 3);
  httpGet(at(p, 'httpGet'));
}

/** ObjectFieldSelector (`fieldRef`): apiVersion v1; ResourceFieldSelector: divisor 0. */
function fieldRefs(holder: unknown): void {
  dropDefault(at(holder, 'fieldRef'), 'apiVersion', 'v1');
  dropDefault(at(holder, 'resourceFieldRef'), 'divisor', '0');
}

function container(c: Obj, opts: { hostNetwork: boolean; pod: boolean }): void {
  dropDefault(c, 'terminationMessagePath', '/dev/termination-log');
  dropDefault(c, 'terminationMessagePolicy', 'File');
  if (typeof c.image === 'string') {
    const policy = defaultPullPolicy(c.image);
    if (policy) dropDefault(c, 'imagePullPolicy', policy);
  }
  for (const port of items(c.ports)) {
    dropDefault(port, 'protocol', 'TCP');
    // With host networking every container port is a host port of the same number: older servers (1.20
    // here) write it into templates too, newer ones into the Pods only, which makes the same Pods.
    if (opts.hostNetwork && port.hostPort !== undefined && port.hostPort === port.containerPort) delete port.hostPort;
  }
  for (const env of items(c.env)) fieldRefs(at(env, 'valueFrom'));
  for (const name of ['livenessProbe', 'readinessProbe', 'startupProbe']) probe(c[name]);
  httpGet(at(c, 'lifecycle', 'postStart', 'httpGet'));
  httpGet(at(c, 'lifecycle', 'preStop', 'httpGet'));
  const resources = c.resources;
  if (opts.pod && isRecord(resources) && isRecord(resources.limits) && isRecord(resources.requests)) {
    // A Pod's (not a template's) requests default to its limits, resource by resource.
    const { limits, requests } = resources;
    for (const key of Object.keys(requests)) if (Object.hasOwn(limits, key) && deepEqual(requests[key], limits[key])) delete requests[key];
    dropEmpty(resources, 'requests');
  }
  dropEmpty(c, 'resources');
}

function downwardApiItems(source: unknown): void {
  for (const item of items(at(source, 'items'))) fieldRefs(item);
}

function pvcSpec(spec: unknown): void {
  dropDefault(spec, 'volumeMode', 'Filesystem');
}

function volume(v: Obj): void {
  dropDefault(v.configMap, 'defaultMode', 420);
  dropDefault(v.secret, 'defaultMode', 420);
  dropDefault(v.downwardAPI, 'defaultMode', 420);
  downwardApiItems(v.downwardAPI);
  dropDefault(v.projected, 'defaultMode', 420);
  for (const source of items(at(v, 'projected', 'sources'))) {
    downwardApiItems(source.downwardAPI);
    dropDefault(source.serviceAccountToken, 'expirationSeconds', 3600);
  }
  dropDefault(v.hostPath, 'type', '');
  pvcSpec(at(v, 'ephemeral', 'volumeClaimTemplate', 'spec'));
}

/** The two tolerations the DefaultTolerationSeconds admission plugin adds to every Pod (at its default 300 s). */
const DEFAULT_TOLERATIONS = ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'].map((key) => ({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }));

function podSpec(spec: unknown, opts: { pod?: boolean } = {}): void {
  if (!isRecord(spec)) return;
  const pod = opts.pod === true;
  dropDefault(spec, 'dnsPolicy', 'ClusterFirst');
  dropDefault(spec, 'restartPolicy', 'Always');
  dropDefault(spec, 'terminationGracePeriodSeconds', 30);
  dropDefault(spec, 'schedulerName', 'default-scheduler');
  dropDefault(spec, 'securityContext', {});
  // The deprecated alias the server writes beside serviceAccountName.
  if (typeof spec.serviceAccountName === 'string') dropDefault(spec, 'serviceAccount', spec.serviceAccountName);
  const hostNetwork = spec.hostNetwork === true;
  for (const list of ['initContainers', 'containers', 'ephemeralContainers']) {
    for (const c of items(spec[list])) container(c, { hostNetwork: hostNetwork && list !== 'ephemeralContainers', pod });
  }
  for (const v of items(spec.volumes)) volume(v);
  if (pod) {
    // Pods only: SetDefaults_Pod and the Priority and DefaultTolerationSeconds admission plugins.
    dropDefault(spec, 'enableServiceLinks', true);
    dropDefault(spec, 'preemptionPolicy', 'PreemptLowerPriority');
    if (spec.priorityClassName === undefined) dropDefault(spec, 'priority', 0);
    if (Array.isArray(spec.tolerations)) {
      const kept = spec.tolerations.filter((t) => !DEFAULT_TOLERATIONS.some((d) => deepEqual(t, d)));
      if (kept.length < spec.tolerations.length) {
        spec.tolerations = kept;
        dropEmpty(spec, 'tolerations');
      }
    }
  }
}

/** A workload's pod template: `template.spec` below `at`. */
function template(holder: unknown): void {
  podSpec(at(holder, 'template', 'spec'));
}

// ---- the types ----

function service(o: Obj): void {
  const spec = o.spec;
  if (!isRecord(spec)) return;
  const type = spec.type ?? 'ClusterIP';
  dropDefault(spec, 'type', 'ClusterIP');
  dropDefault(spec, 'sessionAffinity', 'None');
  if (spec.sessionAffinity === 'ClientIP') dropDefault(spec, 'sessionAffinityConfig', { clientIP: { timeoutSeconds: 10800 } });
  for (const port of items(spec.ports)) {
    dropDefault(port, 'protocol', 'TCP');
    if (typeof port.port === 'number') dropDefault(port, 'targetPort', port.port);
  }
  const externallyAccessible = type === 'NodePort' || type === 'LoadBalancer' || (type === 'ClusterIP' && Array.isArray(spec.externalIPs) && spec.externalIPs.length > 0);
  if (externallyAccessible) dropDefault(spec, 'externalTrafficPolicy', 'Cluster');
  if (type === 'ClusterIP' || type === 'NodePort' || type === 'LoadBalancer') dropDefault(spec, 'internalTrafficPolicy', 'Cluster');
  if (type === 'LoadBalancer') dropDefault(spec, 'allocateLoadBalancerNodePorts', true);
  // clusterIPs mirrors a single clusterIP (or None); the address itself stays: someone may have chosen it.
  if (typeof spec.clusterIP === 'string') dropDefault(spec, 'clusterIPs', [spec.clusterIP]);
}

function replicationController(o: Obj): void {
  // Selector and labels left out (empty) are the pod template's labels.
  const podLabels = at(o, 'spec', 'template', 'metadata', 'labels');
  if (isRecord(podLabels) && Object.keys(podLabels).length > 0) {
    dropDefault(o.spec, 'selector', podLabels);
    dropDefault(o.metadata, 'labels', podLabels);
  }
  template(o.spec);
}

function namespace(o: Obj): void {
  dropDefault(o.spec, 'finalizers', ['kubernetes']);
  dropEmpty(o, 'spec');
  const labels = at(o, 'metadata', 'labels');
  if (typeof at(o, 'metadata', 'name') === 'string') dropDefault(labels, 'kubernetes.io/metadata.name', at(o, 'metadata', 'name'));
  dropEmpty(o.metadata, 'labels');
}

/**
 * A rolling update strategy `{type, rollingUpdate}` of a Deployment or DaemonSet: for type RollingUpdate (or
 * none) the server creates rollingUpdate and fills each value left out, so each default value goes on its own,
 * then an empty rollingUpdate and the type.
 */
function rollingStrategy(holder: Obj, key: string, defaults: Record<string, unknown>): void {
  const strategy = holder[key];
  if (!isRecord(strategy) || (strategy.type !== undefined && strategy.type !== 'RollingUpdate')) return;
  for (const [field, value] of Object.entries(defaults)) dropDefault(strategy.rollingUpdate, field, value);
  dropEmpty(strategy, 'rollingUpdate');
  dropDefault(strategy, 'type', 'RollingUpdate');
  dropEmpty(holder, key);
}

function deployment(o: Obj): void {
  const spec = o.spec;
  if (!isRecord(spec)) return;
  dropDefault(spec, 'revisionHistoryLimit', 10);
  dropDefault(spec, 'progressDeadlineSeconds', 600);
  rollingStrategy(spec, 'strategy', { maxUnavailable: '25%', maxSurge: '25%' });
  template(spec);
}

function daemonSet(o: Obj): void {
  const spec = o.spec;
  if (!isRecord(spec)) return;
  dropDefault(spec, 'revisionHistoryLimit', 10);
  rollingStrategy(spec, 'updateStrategy', { maxUnavailable: 1, maxSurge: 0 });
  template(spec);
}

function statefulSet(o: Obj): void {
  const spec = o.spec;
  if (!isRecord(spec)) return;
  dropDefault(spec, 'podManagementPolicy', 'OrderedReady');
  dropDefault(spec, 'revisionHistoryLimit', 10);
  // Only the whole default: with the type left out the server replaces rollingUpdate by its own, and with the
  // type given it adds none, so no part of it can go alone.
  dropDefault(spec, 'updateStrategy', { type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
  dropDefault(spec.persistentVolumeClaimRetentionPolicy, 'whenDeleted', 'Retain');
  dropDefault(spec.persistentVolumeClaimRetentionPolicy, 'whenScaled', 'Retain');
  dropEmpty(spec, 'persistentVolumeClaimRetentionPolicy');
  for (const claim of items(spec.volumeClaimTemplates)) {
    dropDefault(claim, 'apiVersion', 'v1');
    dropDefault(claim, 'kind', 'PersistentVolumeClaim');
    // A template's status (phase Pending) is the server's, like every status.
    delete claim.status;
    pvcSpec(claim.spec);
  }
  template(spec);
}

/** The labels the server puts on a Job and its pods, and the selector it makes of them, unless manualSelector. */
const JOB_UID_LABELS = ['controller-uid', 'batch.kubernetes.io/controller-uid'];
const JOB_NAME_LABELS = ['job-name', 'batch.kubernetes.io/job-name'];

function jobSpec(spec: unknown, job: { name: unknown; uid: string | undefined } | undefined): void {
  if (!isRecord(spec)) return;
  // Both left out: both 1. Parallelism alone left out: 1. Completions left out with parallelism given: none
  // (a work queue), so completions goes only together with parallelism 1, and parallelism 1 only beside completions.
  if (spec.completions !== undefined && spec.parallelism === 1) {
    delete spec.parallelism;
    dropDefault(spec, 'completions', 1);
  }
  dropDefault(spec, 'backoffLimit', 6);
  dropDefault(spec, 'completionMode', 'NonIndexed');
  dropDefault(spec, 'suspend', false);
  if (job && spec.manualSelector !== true) {
    const generated = (labels: unknown): void => {
      for (const key of JOB_UID_LABELS) if (job.uid !== undefined) dropDefault(labels, key, job.uid);
      for (const key of JOB_NAME_LABELS) dropDefault(labels, key, job.name);
    };
    if (job.uid !== undefined && isRecord(spec.selector)) {
      const matchLabels = at(spec.selector, 'matchLabels');
      if (Object.keys(spec.selector).length === 1 && isRecord(matchLabels) && Object.keys(matchLabels).length > 0 && Object.keys(matchLabels).every((k) => JOB_UID_LABELS.includes(k) && matchLabels[k] === job.uid)) {
        delete spec.selector;
      }
    }
    const meta = at(spec, 'template', 'metadata');
    generated(at(meta, 'labels'));
    dropEmpty(meta, 'labels');
    dropEmpty(spec.template, 'metadata');
  }
  template(spec);
}

function job(o: Obj, uid: string | undefined): void {
  const name = at(o, 'metadata', 'name');
  if (at(o, 'spec', 'manualSelector') !== true) {
    const labels = at(o, 'metadata', 'labels');
    for (const key of JOB_UID_LABELS) if (uid !== undefined) dropDefault(labels, key, uid);
    for (const key of JOB_NAME_LABELS) dropDefault(labels, key, name);
  }
  jobSpec(o.spec, { name, uid });
  // A Job without labels of its own gets its pod template's.
  const podLabels = at(o, 'spec', 'template', 'metadata', 'labels');
  if (podLabels !== undefined) dropDefault(o.metadata, 'labels', podLabels);
  dropEmpty(o.metadata, 'labels');
}

function cronJob(o: Obj): void {
  const spec = o.spec;
  if (!isRecord(spec)) return;
  dropDefault(spec, 'concurrencyPolicy', 'Allow');
  dropDefault(spec, 'suspend', false);
  dropDefault(spec, 'successfulJobsHistoryLimit', 3);
  dropDefault(spec, 'failedJobsHistoryLimit', 1);
  // A CronJob's job template gets no Job defaults of its own, only those of its pod template.
  template(at(spec, 'jobTemplate', 'spec'));
}

function networkPolicy(o: Obj): void {
  const spec = o.spec;
  if (!isRecord(spec)) return;
  for (const rule of [...items(spec.ingress), ...items(spec.egress)]) for (const port of items(rule.ports)) dropDefault(port, 'protocol', 'TCP');
  // Left out: Ingress, and Egress too when there are egress rules.
  const egress = Array.isArray(spec.egress) && spec.egress.length > 0;
  dropDefault(spec, 'policyTypes', egress ? ['Ingress', 'Egress'] : ['Ingress']);
}

/** Rules by `apiVersion kind`: only these exact versions, whose defaults were read from Kubernetes' code. */
const RULES: Record<string, (o: Obj, uid: string | undefined) => void> = {
  'v1 Pod': (o) => podSpec(o.spec, { pod: true }),
  'v1 PodTemplate': (o) => podSpec(at(o, 'template', 'spec')),
  'v1 ReplicationController': replicationController,
  'v1 Service': service,
  'v1 Namespace': namespace,
  'v1 Secret': (o) => dropDefault(o, 'type', 'Opaque'),
  'v1 PersistentVolumeClaim': (o) => pvcSpec(o.spec),
  'v1 PersistentVolume': (o) => {
    dropDefault(o.spec, 'persistentVolumeReclaimPolicy', 'Retain');
    dropDefault(o.spec, 'volumeMode', 'Filesystem');
    dropDefault(at(o, 'spec', 'hostPath'), 'type', '');
  },
  'apps/v1 Deployment': deployment,
  'apps/v1 ReplicaSet': (o) => template(o.spec),
  'apps/v1 StatefulSet': statefulSet,
  'apps/v1 DaemonSet': daemonSet,
  'batch/v1 Job': job,
  'batch/v1 CronJob': cronJob,
  'batch/v1beta1 CronJob': cronJob,
  'networking.k8s.io/v1 NetworkPolicy': networkPolicy,
  'storage.k8s.io/v1 StorageClass': (o) => {
    dropDefault(o, 'reclaimPolicy', 'Delete');
    dropDefault(o, 'volumeBindingMode', 'Immediate');
  },
  'scheduling.k8s.io/v1 PriorityClass': (o) => dropDefault(o, 'preemptionPolicy', 'PreemptLowerPriority'),
};

/** The `apiVersion kind` pairs that have rules of their own (besides `creationTimestamp: null`, which is everywhere). */
export const TYPES_WITH_DEFAULT_RULES: readonly string[] = Object.keys(RULES);

/**
 * Removes from `obj` (changed in place) what the API server wrote into it on its own: see the top of this
 * file. `uid` is the object's metadata.uid (a Job's generated selector names it); pass the stored object's.
 */
export function stripServerDefaults(obj: Obj, uid?: string): void {
  dropNullCreationTimestamps(obj);
  const rule = typeof obj.apiVersion === 'string' && typeof obj.kind === 'string' ? RULES[`${obj.apiVersion} ${obj.kind}`] : undefined;
  rule?.(obj, uid);
}
