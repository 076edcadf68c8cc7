// Realistic audit events for the benchmark: RequestResponse `update`s of ConfigMaps and `patch`es of
// Deployments, spread over a few dozen objects, as a kube-apiserver audit webhook sends them.
//
// Every event is an effective change: each one carries new content (a revision counter in the data or
// the image tag), a fresh unique auditID and a resourceVersion taken from one cluster-wide counter
// (as etcd gives them), so the writer commits exactly one commit per event.
import { randomUUID } from 'node:crypto';

export interface AuditEvent {
  kind: 'Event';
  apiVersion: 'audit.k8s.io/v1';
  level: 'RequestResponse';
  auditID: string;
  stage: 'ResponseComplete';
  requestURI: string;
  verb: 'update' | 'patch';
  user: { username: string; groups: string[] };
  sourceIPs: string[];
  userAgent: string;
  objectRef: { resource: string; namespace: string; name: string; apiGroup: string; apiVersion: string };
  responseStatus: { metadata: Record<string, never>; code: number };
  requestObject: Record<string, unknown>;
  responseObject: Record<string, unknown>;
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations: Record<string, string>;
}

export interface EventList {
  kind: 'EventList';
  apiVersion: 'audit.k8s.io/v1';
  metadata: Record<string, never>;
  items: AuditEvent[];
}

interface ObjectState {
  kind: 'ConfigMap' | 'Deployment';
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: number;
  revision: number;
}

const NAMESPACES = ['shop', 'payments', 'search', 'platform'];
const CONFIGMAP_NAMES = ['app-settings', 'feature-flags', 'nginx-conf', 'logging', 'limits', 'routes'];
const DEPLOYMENT_NAMES = ['web', 'api', 'worker'];
const USERS = [
  { username: 'alice@example.com', groups: ['system:authenticated', 'devs'] },
  { username: 'bob@example.com', groups: ['system:authenticated', 'ops'] },
  { username: 'system:serviceaccount:ci:deployer', groups: ['system:serviceaccounts', 'system:authenticated'] },
  { username: 'system:serviceaccount:argocd:argocd-application-controller', groups: ['system:serviceaccounts', 'system:authenticated'] },
];

export class AuditEventGenerator {
  private readonly objects: ObjectState[] = [];
  private resourceVersion = 100_000;
  private clock: number;
  private seq = 0;
  private readonly touched = new Set<string>();

  /** @param objectCount how many objects the events spread over (default 36: 4 namespaces × 9). */
  constructor(objectCount = 36, startTime = Date.UTC(2026, 10, 25, 10, 0, 0)) {
    this.clock = startTime;
    const all: ObjectState[] = [];
    for (const namespace of NAMESPACES) {
      for (const name of CONFIGMAP_NAMES) all.push(this.newObject('ConfigMap', namespace, name));
      for (const name of DEPLOYMENT_NAMES) all.push(this.newObject('Deployment', namespace, name));
    }
    for (let i = 0; this.objects.length < objectCount; i++) {
      const base = all[i % all.length]!;
      const round = Math.floor(i / all.length);
      this.objects.push(round === 0 ? base : this.newObject(base.kind, base.namespace, `${base.name}-${round}`));
    }
  }

  private newObject(kind: ObjectState['kind'], namespace: string, name: string): ObjectState {
    return { kind, namespace, name, uid: randomUUID(), resourceVersion: ++this.resourceVersion, revision: 0 };
  }

  /** Distinct objects the generated events touched so far. */
  get objectsTouched(): number {
    return this.touched.size;
  }

  /** The next event: an effective change of one of the objects, round-robin with a stride. */
  next(): AuditEvent {
    const n = this.seq++;
    // A stride co-prime with the object count visits every object but not in a boring order.
    const stride = [7, 5, 11, 13, 1].find((s) => gcd(s, this.objects.length) === 1) ?? 1;
    const obj = this.objects[(n * stride) % this.objects.length]!;
    this.touched.add(`${obj.namespace}/${obj.kind}/${obj.name}`);
    const previousRV = obj.resourceVersion;
    obj.resourceVersion = ++this.resourceVersion;
    obj.revision++;
    this.clock += 37; // ms between events
    const received = new Date(this.clock);
    const done = new Date(this.clock + 12);
    const user = USERS[n % USERS.length]!;
    const base = {
      kind: 'Event' as const,
      apiVersion: 'audit.k8s.io/v1' as const,
      level: 'RequestResponse' as const,
      auditID: randomUUID(),
      stage: 'ResponseComplete' as const,
      user,
      sourceIPs: [`10.0.${n % 4}.${10 + (n % 200)}`],
      requestReceivedTimestamp: microTime(received),
      stageTimestamp: microTime(done),
      annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': 'RBAC: allowed by ClusterRoleBinding' },
    };
    return obj.kind === 'ConfigMap' ? this.configMapUpdate(base, obj, previousRV, received) : this.deploymentPatch(base, obj, received);
  }

  /** `count` events cut into EventLists of `perList`. */
  lists(count: number, perList: number): EventList[] {
    const lists: EventList[] = [];
    for (let done = 0; done < count; done += perList) {
      const items: AuditEvent[] = [];
      for (let i = 0; i < Math.min(perList, count - done); i++) items.push(this.next());
      lists.push({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });
    }
    return lists;
  }

  private configMapUpdate(
    base: Omit<AuditEvent, 'requestURI' | 'verb' | 'userAgent' | 'objectRef' | 'responseStatus' | 'requestObject' | 'responseObject'>,
    obj: ObjectState,
    previousRV: number,
    at: Date,
  ): AuditEvent {
    const data = {
      LOG_LEVEL: obj.revision % 3 === 0 ? 'debug' : 'info',
      FEATURE_CHECKOUT_V2: obj.revision % 2 === 0 ? 'on' : 'off',
      MAX_CONNECTIONS: String(100 + (obj.revision % 50)),
      REVISION: String(obj.revision),
      'config.yaml': `server:\n  port: 8080\n  timeoutSeconds: ${30 + (obj.revision % 10)}\ncache:\n  ttl: ${obj.revision}s\n`,
    };
    const metadata = (rv: number) => ({
      name: obj.name,
      namespace: obj.namespace,
      uid: obj.uid,
      resourceVersion: String(rv),
      creationTimestamp: '2026-11-01T08:00:00Z',
      labels: { app: obj.name.split('-')[0]!, 'app.kubernetes.io/managed-by': 'kubectl' },
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ data }), team: obj.namespace },
    });
    return {
      ...base,
      requestURI: `/api/v1/namespaces/${obj.namespace}/configmaps/${obj.name}`,
      verb: 'update',
      userAgent: 'kubectl/v1.31.0 (linux/amd64) kubernetes/9b6b5ea',
      objectRef: { resource: 'configmaps', namespace: obj.namespace, name: obj.name, apiGroup: '', apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 200 },
      requestObject: { kind: 'ConfigMap', apiVersion: 'v1', metadata: metadata(previousRV), data },
      responseObject: {
        kind: 'ConfigMap',
        apiVersion: 'v1',
        metadata: {
          ...metadata(obj.resourceVersion),
          managedFields: [
            { manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: 'v1', time: at.toISOString().replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: { 'f:data': Object.fromEntries(Object.keys(data).map((k) => [`f:${k}`, {}])) } },
          ],
        },
        data,
      },
    };
  }

  private deploymentPatch(
    base: Omit<AuditEvent, 'requestURI' | 'verb' | 'userAgent' | 'objectRef' | 'responseStatus' | 'requestObject' | 'responseObject'>,
    obj: ObjectState,
    at: Date,
  ): AuditEvent {
    const image = `ghcr.io/example/${obj.name}:1.${Math.floor(obj.revision / 10)}.${obj.revision % 10}`;
    const replicas = 2 + (obj.revision % 3);
    return {
      ...base,
      requestURI: `/apis/apps/v1/namespaces/${obj.namespace}/deployments/${obj.name}?fieldManager=kubectl-set`,
      verb: 'patch',
      userAgent: 'kubectl/v1.31.0 (linux/amd64) kubernetes/9b6b5ea',
      objectRef: { resource: 'deployments', namespace: obj.namespace, name: obj.name, apiGroup: 'apps', apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 200 },
      requestObject: { spec: { replicas, template: { spec: { containers: [{ name: obj.name, image }] } } } },
      responseObject: {
        kind: 'Deployment',
        apiVersion: 'apps/v1',
        metadata: {
          name: obj.name,
          namespace: obj.namespace,
          uid: obj.uid,
          resourceVersion: String(obj.resourceVersion),
          generation: obj.revision + 1,
          creationTimestamp: '2026-11-01T08:00:00Z',
          labels: { app: obj.name },
          annotations: { 'deployment.kubernetes.io/revision': String(obj.revision + 1) },
          managedFields: [
            { manager: 'kubectl-set', operation: 'Update', apiVersion: 'apps/v1', time: at.toISOString().replace(/\.\d+Z$/, 'Z'), fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:template': {} } } },
          ],
        },
        spec: {
          replicas,
          revisionHistoryLimit: 10,
          selector: { matchLabels: { app: obj.name } },
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
          template: {
            metadata: { labels: { app: obj.name } },
            spec: {
              containers: [
                {
                  name: obj.name,
                  image,
                  ports: [{ containerPort: 8080, protocol: 'TCP' }],
                  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
                  env: [{ name: 'NAMESPACE', value: obj.namespace }],
                },
              ],
              restartPolicy: 'Always',
              terminationGracePeriodSeconds: 30,
            },
          },
        },
        status: { observedGeneration: obj.revision, replicas, readyReplicas: replicas, updatedReplicas: replicas },
      },
    };
  }
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Kubernetes audit timestamps: RFC 3339 with microseconds. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
