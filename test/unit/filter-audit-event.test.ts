import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../core/audit-event-schema.js';
import { parseAuditPayload } from '../../core/audit-event-schema.js';
import { isDryRun, toIngestJob } from '../../workers/ingest/filter-audit-event.js';
import { IngestJobSchema, MAX_DELETED_NAMES } from '../../core/contracts.js';

const CLUSTER = 'prod-eu';
let seq = 0;

/** Goes through the real schema, so fixtures stay realistic. */
function ev(fields: Record<string, unknown>): AuditEvent {
  seq += 1;
  const body = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'RequestResponse',
    auditID: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    stage: 'ResponseComplete',
    user: { username: 'alice@example.com', groups: ['system:authenticated'] },
    sourceIPs: ['10.0.0.7'],
    userAgent: 'kubectl/v1.31.0',
    requestReceivedTimestamp: '2025-11-25T12:00:00.000000Z',
    stageTimestamp: '2025-11-25T12:00:00.012345Z',
    ...fields,
  };
  const parsed = parseAuditPayload(body);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.events[0]!;
}

function deployment(rv: string, replicas = 3): Record<string, unknown> {
  return {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    metadata: { name: 'web', namespace: 'shop', uid: 'u-1', resourceVersion: rv, generation: 4 },
    spec: { replicas, template: { spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } } },
    status: { replicas },
  };
}

const deployRef = { resource: 'deployments', namespace: 'shop', name: 'web', apiGroup: 'apps', apiVersion: 'v1' };

const PLAINTEXT = 'correct-horse-battery-staple';
const B64 = Buffer.from(PLAINTEXT).toString('base64');

function secretCreate(level = 'RequestResponse'): AuditEvent {
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: 'db',
      namespace: 'shop',
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': `{"apiVersion":"v1","data":{"password":"${B64}"},"kind":"Secret","stringData":{"token":"${PLAINTEXT}"}}\n`,
      },
    },
    type: 'Opaque',
    data: { password: B64 },
  };
  return ev({
    level,
    verb: 'create',
    requestURI: '/api/v1/namespaces/shop/secrets?fieldManager=kubectl-client-side-apply',
    objectRef: { resource: 'secrets', namespace: 'shop', apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 201 },
    requestObject: { ...body, stringData: { token: PLAINTEXT } },
    ...(level === 'RequestResponse' ? { responseObject: { ...body, metadata: { ...body.metadata, resourceVersion: '900', uid: 's-1' } } } : {}),
  });
}

describe('toIngestJob', () => {
  it('keeps a Deployment update at RequestResponse level, with the responseObject', () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'update',
        requestURI: '/apis/apps/v1/namespaces/shop/deployments/web',
        objectRef: deployRef,
        responseStatus: { metadata: {}, code: 200 },
        requestObject: deployment('100', 5),
        responseObject: deployment('101', 5),
        impersonatedUser: { username: 'system:serviceaccount:ci:deployer' },
      }),
      {},
    );
    expect(result.keep).toBe(true);
    if (!result.keep) return;
    expect(IngestJobSchema.parse(result.job)).toEqual(result.job);
    expect(result.job).toMatchObject({
      clusterId: CLUSTER,
      verb: 'update',
      responseCode: 200,
      user: { username: 'alice@example.com' },
      impersonatedUser: { username: 'system:serviceaccount:ci:deployer' },
      objectRef: deployRef,
      stageTimestamp: '2025-11-25T12:00:00.012345Z',
    });
    expect(result.job.object).toEqual(deployment('101', 5));
  });

  it('keeps a patch and uses the responseObject, never the patch body', () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'patch',
        requestURI: '/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=kubectl-edit',
        objectRef: deployRef,
        responseStatus: { metadata: {}, code: 200 },
        requestObject: { spec: { replicas: 7 } },
        responseObject: deployment('102', 7),
      }),
    );
    expect(result.keep && result.job.object).toEqual(deployment('102', 7));
  });

  it('gives a patch without responseObject (Request level) no object', () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        level: 'Request',
        verb: 'patch',
        requestURI: '/apis/apps/v1/namespaces/shop/deployments/web',
        objectRef: deployRef,
        responseStatus: { metadata: {}, code: 200 },
        requestObject: { metadata: { name: 'web' }, spec: { replicas: 7 } },
      }),
    );
    expect(result.keep).toBe(true);
    if (result.keep) expect(result.job.object).toBeUndefined();
  });

  it('redacts a Secret create and takes the name from the object', () => {
    for (const level of ['RequestResponse', 'Request']) {
      const result = toIngestJob(CLUSTER, secretCreate(level));
      expect(result.keep, level).toBe(true);
      if (!result.keep) return;
      expect(result.job.objectRef.name).toBe('db');
      expect(result.job.object?.data).toEqual({ password: 'REDACTED' });
      const json = JSON.stringify(result.job);
      expect(json).not.toContain(PLAINTEXT);
      expect(json).not.toContain(B64);
      expect(json).not.toContain('last-applied-configuration');
    }
  });

  it('drops a dryRun create', () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'create',
        requestURI: '/api/v1/namespaces/shop/configmaps?dryRun=All&fieldManager=kubectl-client-side-apply',
        objectRef: { resource: 'configmaps', namespace: 'shop', apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 201 },
        requestObject: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'shop' } },
        responseObject: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'shop' } },
      }),
    );
    expect(result).toEqual({ keep: false, reason: 'dry-run' });
  });

  it('drops a failed 409 update', () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'update',
        requestURI: '/apis/apps/v1/namespaces/shop/deployments/web',
        objectRef: deployRef,
        responseStatus: { metadata: {}, status: 'Failure', reason: 'Conflict', code: 409, message: 'the object has been modified' },
        requestObject: deployment('99'),
        responseObject: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'Conflict', code: 409 },
      }),
    );
    expect(result).toEqual({ keep: false, reason: 'failed' });
  });

  it('treats a missing response code as failed', () => {
    const result = toIngestJob(CLUSTER, ev({ verb: 'delete', requestURI: '/api/v1/namespaces/shop/pods/x', objectRef: { resource: 'pods', namespace: 'shop', name: 'x' } }));
    expect(result).toEqual({ keep: false, reason: 'failed' });
  });

  it('drops a status subresource update', () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'update',
        requestURI: '/apis/apps/v1/namespaces/shop/deployments/web/status',
        user: { username: 'system:serviceaccount:kube-system:deployment-controller' },
        objectRef: { ...deployRef, subresource: 'status' },
        responseStatus: { metadata: {}, code: 200 },
        responseObject: deployment('103'),
      }),
    );
    expect(result).toEqual({ keep: false, reason: 'subresource' });
  });

  it('keeps a scale update, without an object (the body is a Scale)', () => {
    const scale = { kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name: 'web', namespace: 'shop', resourceVersion: '104' }, spec: { replicas: 9 } };
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'update',
        requestURI: '/apis/apps/v1/namespaces/shop/deployments/web/scale',
        objectRef: { ...deployRef, subresource: 'scale' },
        responseStatus: { metadata: {}, code: 200 },
        requestObject: { ...scale, metadata: { ...scale.metadata, resourceVersion: '103' } },
        responseObject: scale,
      }),
    );
    expect(result.keep).toBe(true);
    if (!result.keep) return;
    expect(result.job.objectRef).toEqual({ ...deployRef, subresource: 'scale' });
    expect(result.job.object).toBeUndefined();
  });

  it('drops a no-op update (same resourceVersion back)', () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'update',
        requestURI: '/apis/apps/v1/namespaces/shop/deployments/web',
        objectRef: deployRef,
        responseStatus: { metadata: {}, code: 200 },
        requestObject: deployment('100'),
        responseObject: deployment('100'),
      }),
    );
    expect(result).toEqual({ keep: false, reason: 'no-op' });
  });

  it('keeps a deletecollection, without an object (the response is a List)', () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'deletecollection',
        requestURI: '/api/v1/namespaces/shop/configmaps?labelSelector=app%3Dweb',
        objectRef: { resource: 'configmaps', namespace: 'shop', apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 200 },
        responseObject: { kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: '200' }, items: [] },
      }),
    );
    expect(result.keep).toBe(true);
    if (!result.keep) return;
    expect(result.job.verb).toBe('deletecollection');
    expect(result.job.object).toBeUndefined();
    expect(result.job.objectRef.name).toBeUndefined();
  });

  describe('deletecollection: the names of what it deleted, never the objects', () => {
    const secretList = (items: Record<string, unknown>[]) => ({ kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '300' }, items });
    const secret = (name: string, namespace = 'shop') => ({
      metadata: { name, namespace, uid: `u-${name}`, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"stringData":{"password":"hunter2"}}' } },
      data: { password: 'aHVudGVyMg==' },
      type: 'Opaque',
    });
    const collection = (responseObject: unknown, requestURI = '/api/v1/namespaces/shop/secrets') =>
      toIngestJob(
        CLUSTER,
        ev({ verb: 'deletecollection', requestURI, objectRef: { resource: 'secrets', namespace: 'shop', apiVersion: 'v1' }, responseStatus: { metadata: {}, code: 200 }, responseObject }),
      );

    it('keeps only the names of the answer\'s items (a SecretList holds plaintext Secrets), and the selectors of the request', () => {
      const result = collection(secretList([secret('db'), secret('api')]), '/api/v1/namespaces/shop/secrets?labelSelector=app%3Dweb&fieldSelector=metadata.name%21%3Dkeep&timeoutSeconds=5');
      expect(result.keep).toBe(true);
      if (!result.keep) return;
      expect(result.job.deletedNames).toEqual(['db', 'api']);
      expect(result.job.selectors).toEqual({ labelSelector: 'app=web', fieldSelector: 'metadata.name!=keep' });
      expect(result.job.object).toBeUndefined();
      expect(result.job.objectBytes).toBe(JSON.stringify(['db', 'api']).length);
      expect(JSON.stringify(result.job)).not.toMatch(/hunter2|aHVudGVyMg|last-applied|u-db/);
      expect(IngestJobSchema.safeParse(result.job).success).toBe(true);
    });

    it('names nothing when the answer was not recorded (level Metadata) or is no list; an empty list names none', () => {
      for (const response of [undefined, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' }]) {
        const result = collection(response);
        expect(result.keep).toBe(true);
        if (result.keep) expect(result.job.deletedNames).toBeUndefined();
      }
      const empty = collection(secretList([]));
      expect(empty.keep && empty.job.deletedNames).toEqual([]);
    });

    it('names nothing when the answer holds more items than a job may carry: the router lists instead', () => {
      const result = collection(secretList(Array.from({ length: MAX_DELETED_NAMES + 1 }, (_, i) => secret(`s-${i}`))));
      expect(result.keep && result.job.deletedNames).toBeUndefined();
    });

    it('leaves out a selector the API server would not have read', () => {
      const result = collection(secretList([]), '/api/v1/namespaces/shop/secrets?labelSelector=a%20b&fieldSelector=metadata.name%3Dx');
      expect(result.keep && result.job.selectors).toEqual({ fieldSelector: 'metadata.name=x' });
    });

    it.each([
      [[secret('db'), { metadata: {} }], 'responseObject.items[1].metadata.name: a deleted object without a name'],
      [[secret('../../etc')], 'responseObject.items[0].metadata.name: "../../etc" would escape the repository path'],
      [[secret('x'.repeat(254))], 'longer than 253'],
      [[secret('db', 'kube-system')], 'responseObject.items[0].metadata.namespace is "kube-system", but the event\'s objectRef names namespace "shop"'],
    ])('refuses an answer whose items cannot be what the request deleted (%#)', (items, error) => {
      const result = collection(secretList(items));
      expect(result).toMatchObject({ keep: false, refused: true, reason: 'identity-mismatch' });
      expect(!result.keep && 'error' in result && result.error).toContain(error);
    });
  });

  it('keeps a cluster-scoped ClusterRole named system:controller:foo', () => {
    const role = {
      kind: 'ClusterRole',
      apiVersion: 'rbac.authorization.k8s.io/v1',
      metadata: { name: 'system:controller:foo', resourceVersion: '300' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
    };
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'create',
        requestURI: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
        objectRef: { resource: 'clusterroles', apiGroup: 'rbac.authorization.k8s.io', apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 201 },
        requestObject: role,
        responseObject: role,
      }),
      { allowedNamespaces: ['shop'] },
    );
    expect(result.keep).toBe(true);
    if (!result.keep) return;
    expect(result.job.objectRef).toEqual({ resource: 'clusterroles', name: 'system:controller:foo', apiGroup: 'rbac.authorization.k8s.io', apiVersion: 'v1' });
  });

  it('keeps a delete whose response is a Status without an object', () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'delete',
        requestURI: '/api/v1/namespaces/shop/configmaps/cfg',
        objectRef: { resource: 'configmaps', namespace: 'shop', name: 'cfg', apiVersion: 'v1' },
        responseStatus: { metadata: {}, status: 'Success', code: 200 },
        responseObject: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: 'cfg', kind: 'configmaps' } },
      }),
    );
    expect(result.keep).toBe(true);
    if (result.keep) expect(result.job.object).toBeUndefined();
    if (result.keep) expect(result.job.objectRef.uid).toBeUndefined();
  });

  it("keeps the uid a delete's Status names, for the watch join of its DELETED event", () => {
    const result = toIngestJob(
      CLUSTER,
      ev({
        verb: 'delete',
        requestURI: '/api/v1/namespaces/shop/configmaps/cfg',
        objectRef: { resource: 'configmaps', namespace: 'shop', name: 'cfg', apiVersion: 'v1' },
        responseStatus: { metadata: {}, status: 'Success', code: 200 },
        responseObject: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: 'cfg', kind: 'configmaps', uid: 'u-77' } },
      }),
    );
    expect(result.keep && result.job.objectRef.uid).toBe('u-77');
  });

  it('drops by stage, verb, objectRef and namespace', () => {
    const base = {
      verb: 'update',
      requestURI: '/apis/apps/v1/namespaces/shop/deployments/web',
      objectRef: deployRef,
      responseStatus: { metadata: {}, code: 200 },
      responseObject: deployment('101'),
    };
    expect(toIngestJob(CLUSTER, ev({ ...base, stage: 'ResponseStarted' }))).toEqual({ keep: false, reason: 'not-response-complete' });
    expect(toIngestJob(CLUSTER, ev({ ...base, verb: 'get' }))).toEqual({ keep: false, reason: 'not-mutating' });
    expect(toIngestJob(CLUSTER, ev({ ...base, verb: 'watch' }))).toEqual({ keep: false, reason: 'not-mutating' });
    const { objectRef: _r, ...noRef } = base;
    expect(toIngestJob(CLUSTER, ev(noRef))).toEqual({ keep: false, reason: 'no-object-ref' });
    expect(toIngestJob(CLUSTER, ev(base), { allowedNamespaces: ['other'] })).toEqual({ keep: false, reason: 'namespace-not-allowed' });
    expect(toIngestJob(CLUSTER, ev(base), { allowedNamespaces: ['other', 'shop'] }).keep).toBe(true);
    // No rule of the cluster selects it: dropped before anything is stored, the selector seeing the job.
    const seen: string[] = [];
    const selected = (job: { objectRef: { resource: string } }) => (seen.push(job.objectRef.resource), false);
    expect(toIngestJob(CLUSTER, ev(base), { selected })).toEqual({ keep: false, reason: 'not-selected' });
    expect(seen).toEqual(['deployments']);
    expect(toIngestJob(CLUSTER, ev(base), { selected: () => true }).keep).toBe(true);
  });
});

describe('toIngestJob: what may not be stored', () => {
  const configMap = (namespace: string, name = 'cfg') => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, resourceVersion: '5' }, data: { a: '1' } });
  const cmEvent = (ref: Record<string, unknown>, body: Record<string, unknown>) =>
    ev({ verb: 'create', requestURI: '/api/v1/namespaces/shop/configmaps', objectRef: { resource: 'configmaps', apiVersion: 'v1', ...ref }, responseStatus: { code: 201 }, responseObject: body });

  it.each([
    ['a TokenReview', { resource: 'tokenreviews', apiGroup: 'authentication.k8s.io', apiVersion: 'v1' }, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', spec: { token: 'ey.secret' } }],
    ['a SubjectAccessReview', { resource: 'subjectaccessreviews', apiGroup: 'authorization.k8s.io', apiVersion: 'v1' }, { kind: 'SubjectAccessReview', spec: { extra: { t: ['x'] } } }],
    ['a TokenRequest', { resource: 'serviceaccounts', namespace: 'shop', name: 'sa', subresource: 'token', apiVersion: 'v1' }, { kind: 'TokenRequest', status: { token: 'ey.secret' } }],
    ['a TokenReview body under another resource', { resource: 'configmaps', namespace: 'shop', apiVersion: 'v1' }, { kind: 'TokenReview', metadata: { name: 'x' }, spec: { token: 'ey.secret' } }],
  ])('drops %s before anything is stored (credential-request)', (_, objectRef, body) => {
    const result = toIngestJob(CLUSTER, ev({ verb: 'create', requestURI: '/x', objectRef, responseStatus: { code: 201 }, requestObject: body, responseObject: body }));
    expect(result).toEqual({ keep: false, reason: 'credential-request' });
  });

  it('refuses a body whose namespace is not the objectRef\'s, also when the objectRef names none', () => {
    expect(toIngestJob(CLUSTER, cmEvent({ namespace: 'shop' }, configMap('kube-system')))).toEqual({
      keep: false,
      refused: true,
      reason: 'identity-mismatch',
      error: 'the object\'s metadata.namespace is "kube-system", but the event\'s objectRef names namespace "shop"',
    });
    // configmaps is a namespaced type: an objectRef without a namespace cannot be right.
    expect(toIngestJob(CLUSTER, cmEvent({}, configMap('kube-system')))).toMatchObject({ refused: true, reason: 'scope-mismatch' });
    // A custom type the table does not know, scope unknown: the body still has to agree.
    const widget = ev({
      verb: 'create',
      requestURI: '/apis/example.com/v1/widgets',
      objectRef: { resource: 'widgets', apiGroup: 'example.com', apiVersion: 'v1' },
      responseStatus: { code: 201 },
      responseObject: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', namespace: 'kube-system' } },
    });
    expect(toIngestJob(CLUSTER, widget)).toMatchObject({ refused: true, reason: 'identity-mismatch', error: expect.stringContaining('names no namespace') });
    // …and with discovery saying widgets are namespaced, the objectRef itself is refused first.
    expect(toIngestJob(CLUSTER, widget, { scopeOf: () => 'namespaced' })).toMatchObject({ refused: true, reason: 'scope-mismatch' });
  });

  it('refuses a body whose name or API group is not the objectRef\'s', () => {
    expect(toIngestJob(CLUSTER, cmEvent({ namespace: 'shop', name: 'innocent' }, configMap('shop', 'evil-other')))).toMatchObject({
      refused: true,
      reason: 'identity-mismatch',
      error: 'the object\'s metadata.name is "evil-other", but the event\'s objectRef names "innocent"',
    });
    expect(toIngestJob(CLUSTER, cmEvent({ namespace: 'shop' }, { ...configMap('shop'), apiVersion: 'apps/v1' }))).toMatchObject({ refused: true, reason: 'identity-mismatch' });
    // A body that leaves namespace or name out is fine: the objectRef names it.
    expect(toIngestJob(CLUSTER, cmEvent({ namespace: 'shop', name: 'cfg' }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: {} })).keep).toBe(true);
  });

  it('refuses a cluster-scoped type under a namespace, but keeps a Namespace (its own name in objectRef.namespace)', () => {
    const role = ev({
      verb: 'create',
      requestURI: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
      objectRef: { resource: 'clusterroles', apiGroup: 'rbac.authorization.k8s.io', apiVersion: 'v1', namespace: 'kube-system' },
      responseStatus: { code: 201 },
      responseObject: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'r' } },
    });
    expect(toIngestJob(CLUSTER, role)).toMatchObject({ refused: true, reason: 'scope-mismatch' });
    const ns = ev({
      verb: 'update',
      requestURI: '/api/v1/namespaces/shop',
      objectRef: { resource: 'namespaces', apiVersion: 'v1', namespace: 'shop', name: 'shop' },
      responseStatus: { code: 200 },
      responseObject: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
    });
    expect(toIngestJob(CLUSTER, ns).keep).toBe(true);
    expect(toIngestJob(CLUSTER, ns, { allowedNamespaces: ['other'] })).toEqual({ keep: false, reason: 'namespace-not-allowed' });
  });

  it('refuses an object past its bounds, naming the bound', () => {
    const big = cmEvent({ namespace: 'shop', name: 'cfg' }, { ...configMap('shop'), data: { k: new Array(300_000).fill(0) } });
    expect(toIngestJob(CLUSTER, big)).toMatchObject({ keep: false, refused: true, reason: 'object-too-many-values' });
    const limits = { maxBytes: 100, maxDepth: 100, maxValues: 1000 };
    expect(toIngestJob(CLUSTER, cmEvent({ namespace: 'shop', name: 'cfg' }, configMap('shop')), { limits })).toMatchObject({ refused: true, reason: 'object-too-large' });
  });

  it('stores the object without managedFields, and its size', () => {
    const body = { ...configMap('shop'), metadata: { ...configMap('shop').metadata, managedFields: [{ manager: 'kubectl' }] } };
    const result = toIngestJob(CLUSTER, cmEvent({ namespace: 'shop', name: 'cfg' }, body));
    expect(result.keep).toBe(true);
    if (!result.keep) return;
    expect(result.job.object?.metadata).toEqual({ name: 'cfg', namespace: 'shop', resourceVersion: '5' });
    expect(result.job.objectBytes).toBe(Buffer.byteLength(JSON.stringify(body)));
  });
});

describe('isDryRun', () => {
  it.each([
    ['/api/v1/namespaces/a/pods?dryRun=All', true],
    ['/api/v1/namespaces/a/pods?fieldManager=x&dryRun=All', true],
    ['/api/v1/namespaces/a/pods', false],
    ['/api/v1/namespaces/a/pods?fieldManager=dryRun', false],
    ['/api/v1/namespaces/dryRun=All/pods', false],
  ])('%s → %s', (uri, expected) => {
    expect(isDryRun(uri)).toBe(expected);
  });
});
