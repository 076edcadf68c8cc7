// What the API server writes into objects on its own comes out of the files (core/
// server-defaults.ts), checked on objects recorded from a real kube-apiserver 1.20.2
// (test/fixtures/kube-objects: what kubectl sent, the audit event of the create, the object as its list
// returns it). For every recorded object the file made of what the server stored equals the file made of
// what kubectl sent, but for the few values kept on purpose; what people write that the server keeps as
// written (`emptyDir: {}`, a container's `securityContext: {}`, `podSelector: {}`) stays; a default that
// depends on other fields is dropped only where it is that default; and the audit, watch and reconcile
// paths, which see the same stored object, write the same bytes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findingOf } from '../../flows/reconcile/list-child.js';
import { watchChangeToJob } from '../../kube/watch/watch-change-job.js';
import type { WatchSpec } from '../../kube/watch/watch-plan.js';
import { parseAuditPayload } from '../../core/audit-event-schema.js';
import { toIngestJob } from '../../workers/ingest/filter-audit-event.js';
import { storableObject } from '../../core/redact-secret.js';
import { normalizeEvent } from '../../workers/route/normalize-event.js';
import { sanitizeObject, toCanonicalYaml } from '../../core/sanitize.js';
import { defaultPullPolicy } from '../../core/server-defaults.js';

type Obj = Record<string, unknown>;
interface Recorded {
  sent: Obj & { kind: string; metadata: { name: string } };
  audit: Obj & { objectRef: { resource: string; namespace?: string; name?: string; apiGroup?: string; apiVersion: string }; requestObject: Obj; responseObject: Obj };
  listed: Obj;
}

const FIXTURE = new URL('../fixtures/kube-objects/kube-1.20.json', import.meta.url);
const { objects } = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { objects: Recorded[] };

function recorded(kind: string, name: string): Recorded {
  const found = objects.find((o) => o.sent.kind === kind && o.sent.metadata.name === name);
  if (!found) throw new Error(`no recorded ${kind} ${name}`);
  return found;
}

/** The file of an object, as normalize writes it (Secrets redacted first, as every path does). */
function file(obj: Obj, ref: Recorded['audit']['objectRef']): string {
  return toCanonicalYaml(sanitizeObject(storableObject(obj, ref)));
}
const stored = (r: Recorded): string => file(r.audit.responseObject, r.audit.objectRef);

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/**
 * What kubectl sent, plus the values the server set that stay on purpose: the addresses and ports a Service
 * was given (someone may have chosen them), `replicas` (the field scale changes), a Secret's stringData as
 * data (the API server moves it; every value is REDACTED either way).
 */
function sentWithKeptValues(r: Recorded): Obj {
  const sent = clone(r.sent) as Obj & { spec?: Obj; stringData?: Obj; data?: Obj };
  const res = r.audit.responseObject as { spec?: Obj & { ports?: Obj[] } };
  if (r.sent.kind === 'Service' && sent.spec && res.spec) {
    for (const key of ['clusterIP', 'healthCheckNodePort']) if (res.spec[key] !== undefined) sent.spec[key] = res.spec[key];
    (sent.spec.ports as Obj[] | undefined)?.forEach((port, i) => {
      const nodePort = res.spec?.ports?.[i]?.nodePort;
      if (nodePort !== undefined) port.nodePort = nodePort;
    });
  }
  if ((r.sent.kind === 'StatefulSet' || r.sent.kind === 'ReplicaSet') && sent.spec && sent.spec.replicas === undefined) sent.spec.replicas = 1;
  if (r.sent.kind === 'Secret' && sent.stringData) {
    sent.data = { ...sent.data, ...sent.stringData };
    delete sent.stringData;
  }
  return sent;
}

describe('files of objects recorded from a real API server', () => {
  it('recorded enough to mean something', () => {
    expect(objects.length).toBeGreaterThanOrEqual(30);
    expect(new Set(objects.map((o) => o.sent.kind))).toEqual(
      new Set(['Namespace', 'StorageClass', 'ClusterRole', 'PriorityClass', 'PersistentVolume', 'Deployment', 'Service', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'CronJob', 'Job', 'Pod', 'PersistentVolumeClaim', 'NetworkPolicy', 'Ingress', 'ServiceAccount', 'Role', 'RoleBinding', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ConfigMap', 'Secret', 'ReplicationController', 'PodTemplate']),
    );
  });

  it.each(objects.map((o) => [`${o.sent.kind} ${o.sent.metadata.name}`, o] as const))('%s: the file equals what kubectl sent, but for the values kept on purpose', (_, r) => {
    expect(stored(r)).toBe(file(sentWithKeptValues(r), r.audit.objectRef));
  });

  it('the audit event cannot tell what kubectl sent: its requestObject is already defaulted', () => {
    // So "present in the response, absent in the request" finds nothing: the rules read the stored object.
    const r = recorded('Deployment', 'generated');
    const request = r.audit.requestObject as { spec: { revisionHistoryLimit?: number; template: { metadata: Obj; spec: Obj & { containers: Obj[] } } } };
    expect(request.spec.revisionHistoryLimit).toBe(10);
    expect(request.spec.template.metadata).toEqual({ creationTimestamp: null, labels: { app: 'generated' } });
    expect(request.spec.template.spec).toMatchObject({ dnsPolicy: 'ClusterFirst', securityContext: {}, schedulerName: 'default-scheduler' });
    expect(request.spec.template.spec.containers[0]).toMatchObject({ resources: {}, terminationMessagePath: '/dev/termination-log', imagePullPolicy: 'IfNotPresent' });
  });

  it('a Deployment kubectl generated: before (what the API server stores) and after (the file)', () => {
    const r = recorded('Deployment', 'generated');
    // kubectl's generator itself sends `creationTimestamp: null`, `strategy: {}`, `resources: {}`, `status: {}`.
    expect(r.sent).toMatchObject({ metadata: { creationTimestamp: null }, spec: { strategy: {}, template: { metadata: { creationTimestamp: null } } }, status: {} });
    const server = r.audit.responseObject as { spec: Obj };
    expect(server.spec).toMatchObject({
      progressDeadlineSeconds: 600,
      revisionHistoryLimit: 10,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { creationTimestamp: null },
        spec: {
          containers: [{ resources: {}, terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' }],
          dnsPolicy: 'ClusterFirst',
          restartPolicy: 'Always',
          schedulerName: 'default-scheduler',
          securityContext: {},
          terminationGracePeriodSeconds: 30,
        },
      },
    });
    expect(stored(r)).toBe(
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: generated',
        '  namespace: shop',
        '  labels:',
        '    app: generated',
        'spec:',
        '  replicas: 2',
        '  selector:',
        '    matchLabels:',
        '      app: generated',
        '  template:',
        '    metadata:',
        '      labels:',
        '        app: generated',
        '    spec:',
        '      containers:',
        '        - image: nginx:1.27',
        '          name: nginx',
        '',
      ].join('\n'),
    );
  });

  it('keeps what people write that the server keeps as written, and every value that is not the default', () => {
    const web = parse(stored(recorded('Deployment', 'web'))) as { spec: { template: { spec: { volumes: Obj[]; containers: Obj[] } } } };
    expect(web.spec.template.spec.volumes[0]).toEqual({ name: 'cache', emptyDir: {} });
    expect(web.spec.template.spec.containers[0]!.securityContext).toEqual({});
    expect(web.spec.template.spec.containers[0]!.livenessProbe).toEqual({ initialDelaySeconds: 5, periodSeconds: 20, tcpSocket: { port: 80 } });
    expect(web.spec.template.spec.containers[0]!.readinessProbe).toEqual({ httpGet: { path: '/healthz', port: 'http' } });
    expect(parse(stored(recorded('NetworkPolicy', 'deny-all')))).toMatchObject({ spec: { podSelector: {} } });
    expect(parse(stored(recorded('NetworkPolicy', 'deny-all'))).spec).not.toHaveProperty('policyTypes');
    // No egress rules and Egress named: no egress at all, not the default.
    expect(parse(stored(recorded('NetworkPolicy', 'deny-egress'))).spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    expect(stored(recorded('Deployment', 'recreate'))).toContain('imagePullPolicy: Always');
    expect(parse(stored(recorded('Job', 'queue'))).spec).toEqual({ parallelism: 3, template: { metadata: { labels: { app: 'queue' } }, spec: { containers: [{ image: 'busybox:1.36', name: 'job' }], restartPolicy: 'OnFailure' } } });
  });

  it('drops a default value even where a person wrote it: the stored object keeps no trace of who did', () => {
    expect(stored(recorded('Deployment', 'explicit'))).toBe(
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: explicit',
        '  namespace: shop',
        'spec:',
        '  replicas: 1',
        '  selector:',
        '    matchLabels:',
        '      app: explicit',
        '  strategy:',
        '    rollingUpdate:',
        '      maxSurge: 1',
        '  template:',
        '    metadata:',
        '      labels:',
        '        app: explicit',
        '    spec:',
        '      containers:',
        '        - image: registry.example.com:5000/team/app',
        '          imagePullPolicy: IfNotPresent',
        '          name: app',
        '      terminationGracePeriodSeconds: 60',
        '',
      ].join('\n'),
    );
  });

  it('one object, one content: the audit event, a watch event and a reconcile listing write the same bytes', () => {
    for (const r of objects) {
      const what = `${r.sent.kind} ${r.sent.metadata.name}`;
      const parsed = parseAuditPayload(r.audit);
      if (!parsed.ok) throw new Error(`${what}: ${parsed.error}`);
      const kept = toIngestJob('c1', parsed.events[0]!);
      if (!kept.keep) throw new Error(`${what}: the audit event was not kept: ${JSON.stringify(kept)}`);
      const audit = normalizeEvent(kept.job);
      if (audit.kind !== 'change') throw new Error(`${what}: ${audit.reason}`);

      const ref = r.audit.objectRef;
      const spec: WatchSpec = {
        key: `${ref.apiGroup ?? ''}/${ref.apiVersion}/${ref.resource}@${ref.namespace ?? ''}`,
        group: ref.apiGroup ?? '',
        version: ref.apiVersion,
        resource: ref.resource,
        kind: r.sent.kind,
        namespaced: ref.namespace !== undefined,
        namespace: ref.namespace ?? '',
      };
      const watched = watchChangeToJob({ clusterId: 'w1', spec, change: { type: 'MODIFIED', object: clone(r.listed), origin: 'watch', receivedAt: Date.now() } });
      if (!watched.keep) throw new Error(`${what}: the watch event was not kept`);
      const watch = normalizeEvent(watched.job);
      const listed = findingOf('c1', spec, clone(r.listed), 'clusters/c1');

      expect(watch.kind === 'change' && watch.event.content, what).toBe(audit.event.content);
      expect(listed?.finding.content, what).toBe(audit.event.content);
      // And a file read back is a fixed point: cleaning it again changes no byte.
      expect(toCanonicalYaml(sanitizeObject(parse(audit.event.content!) as Obj)), what).toBe(audit.event.content);
    }
  });
});

describe('the rules, one by one', () => {
  const clean = (obj: Obj): Obj => parse(toCanonicalYaml(sanitizeObject(obj))) as Obj;
  const podOf = (spec: Obj): Obj => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas: 1, template: { spec } } });

  it('`creationTimestamp: null` goes at any depth and in any type, with a metadata that held nothing else', () => {
    const custom = {
      apiVersion: 'example.com/v1',
      kind: 'Rollout',
      metadata: { name: 'r', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: {
        template: { metadata: { creationTimestamp: null, labels: { app: 'r' } } },
        steps: [{ pause: { metadata: { creationTimestamp: null } } }],
        written: { metadata: {}, creationTimestamp: '2026-01-02T00:00:00Z' },
      },
    };
    expect(clean(custom)).toEqual({
      apiVersion: 'example.com/v1',
      kind: 'Rollout',
      metadata: { name: 'r' },
      spec: { template: { metadata: { labels: { app: 'r' } } }, steps: [{ pause: {} }], written: { metadata: {}, creationTimestamp: '2026-01-02T00:00:00Z' } },
    });
  });

  it('type rules apply to their exact apiVersion and kind only: a custom Deployment keeps everything', () => {
    const spec = { revisionHistoryLimit: 10, template: { spec: { dnsPolicy: 'ClusterFirst', securityContext: {}, containers: [{ name: 'a', image: 'x:1', resources: {} }] } } };
    for (const apiVersion of ['example.com/v1', 'apps/v1beta2']) {
      expect(clean({ apiVersion, kind: 'Deployment', metadata: { name: 'd' }, spec })).toEqual({ apiVersion, kind: 'Deployment', metadata: { name: 'd' }, spec });
    }
  });

  it.each([
    ['nginx', 'Always'],
    ['nginx:latest', 'Always'],
    ['nginx:1.27', 'IfNotPresent'],
    ['docker.io/library/nginx', 'Always'],
    ['localhost:5000/foo', 'Always'],
    ['registry.example.com:5000/team/app:v2', 'IfNotPresent'],
    ['nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'IfNotPresent'],
    ['nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'Always'],
    ['Nginx:1.0', undefined],
    ['', undefined],
  ])('the pull policy the server gives %j is %s', (image, policy) => {
    expect(defaultPullPolicy(image)).toBe(policy);
  });

  it("a container's pull policy goes only where it is the default for its image", () => {
    const containers = [
      { name: 'a', image: 'nginx:1.27', imagePullPolicy: 'IfNotPresent' },
      { name: 'b', image: 'nginx:1.27', imagePullPolicy: 'Always' },
      { name: 'c', image: 'nginx', imagePullPolicy: 'Always' },
      { name: 'd', image: 'nginx', imagePullPolicy: 'IfNotPresent' },
      { name: 'e', image: 'Not A Reference', imagePullPolicy: 'IfNotPresent' },
    ];
    const out = clean(podOf({ containers })) as { spec: { template: { spec: { containers: Obj[] } } } };
    expect(out.spec.template.spec.containers.map((c) => c.imagePullPolicy)).toEqual([undefined, 'Always', undefined, 'IfNotPresent', 'IfNotPresent']);
  });

  it.each([
    [{ completions: 1, parallelism: 1 }, {}],
    [{ completions: 5, parallelism: 1 }, { completions: 5 }],
    [{ completions: 1, parallelism: 3 }, { completions: 1, parallelism: 3 }],
    // parallelism alone: a work queue; without it the server would add completions 1.
    [{ parallelism: 1 }, { parallelism: 1 }],
    [{ parallelism: 3 }, { parallelism: 3 }],
  ])('a Job with %j keeps %j', (given, kept) => {
    const out = clean({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: { ...given, backoffLimit: 6, template: { spec: { restartPolicy: 'Never' } } } });
    expect(out.spec).toEqual({ ...kept, template: { spec: { restartPolicy: 'Never' } } });
  });

  it("a Job's generated selector and labels go only where they name the Job's own uid and name", () => {
    const uid = '65b8c95b-15cb-40c5-99d1-cd38d51467f2';
    const job = (spec: Obj, labels: Record<string, string>): Obj => ({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j', uid, labels }, spec });
    const generated = { 'controller-uid': uid, 'job-name': 'j' };
    const template = (labels: Record<string, string>) => ({ metadata: { labels }, spec: { restartPolicy: 'Never' } });
    expect(clean(job({ selector: { matchLabels: { 'controller-uid': uid } }, template: template(generated) }, generated))).toEqual({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'j' },
      spec: { template: { spec: { restartPolicy: 'Never' } } },
    });
    const manual = { manualSelector: true, selector: { matchLabels: { 'controller-uid': uid } }, template: template({ ...generated, app: 'x' }) };
    expect(clean(job(manual, { team: 'a' })).spec).toEqual(manual);
    const other = { selector: { matchLabels: { 'controller-uid': 'someone-else' } }, template: template({ 'controller-uid': 'someone-else', 'job-name': 'k' }) };
    expect(clean(job(other, {})).spec).toEqual(other);
  });

  it("a StatefulSet's update strategy goes only whole: any part of it means something", () => {
    const sts = (updateStrategy: Obj): Obj => ({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 's' }, spec: { replicas: 1, updateStrategy } });
    expect((clean(sts({ type: 'RollingUpdate', rollingUpdate: { partition: 0 } })).spec as Obj).updateStrategy).toBeUndefined();
    for (const kept of [{ type: 'RollingUpdate' }, { type: 'RollingUpdate', rollingUpdate: { partition: 2 } }, { type: 'OnDelete' }]) {
      expect((clean(sts(kept)).spec as Obj).updateStrategy).toEqual(kept);
    }
  });

  it("a Deployment's strategy loses each default value on its own", () => {
    const dep = (strategy: Obj): Obj => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas: 1, strategy } });
    const strategyOf = (strategy: Obj) => (clean(dep(strategy)).spec as Obj).strategy;
    expect(strategyOf({ type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } })).toBeUndefined();
    expect(strategyOf({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: '25%' } })).toEqual({ rollingUpdate: { maxSurge: 1 } });
    expect(strategyOf({ type: 'Recreate' })).toEqual({ type: 'Recreate' });
  });

  it('a Service keeps what a person may have chosen: addresses, node ports, named or other target ports, a session timeout', () => {
    const svc = (spec: Obj): Obj => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec });
    expect(clean(svc({ type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], sessionAffinity: 'None', ports: [{ port: 53, targetPort: 53, protocol: 'UDP' }] })).spec).toEqual({
      clusterIP: '10.96.0.10',
      ports: [{ port: 53, protocol: 'UDP' }],
    });
    const chosen = {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.11',
      clusterIPs: ['10.96.0.11', 'fd00::11'],
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
      externalTrafficPolicy: 'Local',
      allocateLoadBalancerNodePorts: false,
      ports: [{ port: 80, targetPort: 'http', nodePort: 30080 }, { port: 81, targetPort: '81' }],
    };
    expect(clean(svc(chosen)).spec).toEqual(chosen);
    // Newer API servers' defaults for the types that get them.
    expect(clean(svc({ type: 'NodePort', internalTrafficPolicy: 'Cluster', externalTrafficPolicy: 'Cluster', ports: [{ port: 80, nodePort: 30001 }] })).spec).toEqual({ type: 'NodePort', ports: [{ nodePort: 30001, port: 80 }] });
  });

  it('Pod-only defaults (admission plugins, requests from limits) stay in templates, which never get them', () => {
    const tolerations = ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'].map((key) => ({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }));
    const spec = { enableServiceLinks: true, priority: 0, tolerations, containers: [{ name: 'a', image: 'x:1', resources: { limits: { cpu: '1' }, requests: { cpu: '1' } } }] };
    expect(clean({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec }).spec).toEqual({ containers: [{ name: 'a', image: 'x:1', resources: { limits: { cpu: '1' } } }] });
    expect((clean(podOf(spec)).spec as { template: { spec: Obj } }).template.spec).toEqual(spec);
    const ownToleration = { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 };
    expect(clean({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { tolerations: [ownToleration, ...tolerations] } }).spec).toEqual({ tolerations: [ownToleration] });
  });
});
