import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { GitAuthorSchema, type IngestJob } from '../../core/contracts.js';
import { parseAuditPayload } from '../../core/audit-event-schema.js';
import { toIngestJob } from '../../workers/ingest/filter-audit-event.js';
import { authorFor, normalizeEvent } from '../../workers/route/normalize-event.js';

const CLUSTER = 'prod-eu';

function job(fields: Partial<IngestJob>): IngestJob {
  return {
    clusterId: CLUSTER,
    auditID: '4d2c8b1e-7f3a-4c55-9a0e-2b1f6c9d8e7a',
    verb: 'update',
    stageTimestamp: '2025-11-25T12:00:00.012345Z',
    user: { username: 'alice@example.com' },
    objectRef: { resource: 'deployments', namespace: 'shop', name: 'web', apiGroup: 'apps', apiVersion: 'v1' },
    responseCode: 200,
    ...fields,
  };
}

const deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop', resourceVersion: '101', uid: 'u-1', annotations: { 'deployment.kubernetes.io/revision': '4' } },
  spec: { replicas: 5 },
  status: { replicas: 5 },
};

describe('normalizeEvent', () => {
  it('turns an update into a change with canonical YAML', () => {
    const outcome = normalizeEvent(job({ object: deployment, impersonatedUser: { username: 'system:serviceaccount:ci:deployer' } }));
    expect(outcome).toEqual({
      kind: 'change',
      event: {
        eventKey: `${CLUSTER}_4d2c8b1e-7f3a-4c55-9a0e-2b1f6c9d8e7a`,
        clusterId: CLUSTER,
        auditID: '4d2c8b1e-7f3a-4c55-9a0e-2b1f6c9d8e7a',
        identity: { cluster: CLUSTER, group: 'apps', version: 'v1', resource: 'deployments', namespace: 'shop', name: 'web' },
        operation: 'UPDATE',
        content: 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  replicas: 5\n',
        resourceVersion: '101',
        author: { name: 'system:serviceaccount:ci:deployer', email: 'system-serviceaccount-ci-deployer@prod-eu.cluster.local' },
        stageTimestamp: '2025-11-25T12:00:00.012345Z',
      },
    });
  });

  it('maps verbs to operations', () => {
    const op = (verb: IngestJob['verb']) => {
      const o = normalizeEvent(job({ verb, object: deployment }));
      return o.kind === 'change' ? o.event.operation : o.reason;
    };
    expect(op('create')).toBe('CREATE');
    expect(op('update')).toBe('UPDATE');
    expect(op('patch')).toBe('UPDATE');
    expect(op('delete')).toBe('DELETE');
  });

  it('handles a delete without an object', () => {
    const outcome = normalizeEvent(job({ verb: 'delete' }));
    expect(outcome.kind).toBe('change');
    if (outcome.kind !== 'change') return;
    expect(outcome.event).toMatchObject({ operation: 'DELETE', content: null, resourceVersion: '', identity: { name: 'web' } });
  });

  it('says no-object-body for deletecollection', () => {
    expect(normalizeEvent(job({ verb: 'deletecollection', objectRef: { resource: 'configmaps', namespace: 'shop' } }))).toEqual({
      kind: 'no-object-body',
      reason: 'deletecollection carries no per-object body',
    });
  });

  it('says no-object-body, naming the audit level, when a create/update/patch has no object', () => {
    const patch = normalizeEvent(job({ verb: 'patch' }));
    expect(patch).toEqual({
      kind: 'no-object-body',
      reason: 'patch of deployments has no object body: the audit policy level must be RequestResponse for this resource',
    });
    const update = normalizeEvent(job({ verb: 'update' }));
    expect(update.kind === 'no-object-body' && update.reason).toMatch(/RequestResponse \(or Request\)/);
    const scale = normalizeEvent(job({ objectRef: { resource: 'deployments', namespace: 'shop', name: 'web', apiGroup: 'apps', subresource: 'scale' } }));
    expect(scale).toEqual({ kind: 'no-object-body', reason: 'update of deployments/scale: the audit event carries a Scale, not the object' });
  });

  it('says no-object-body when nothing names the object', () => {
    const outcome = normalizeEvent(job({ verb: 'create', objectRef: { resource: 'configmaps', namespace: 'shop' } }));
    expect(outcome.kind).toBe('no-object-body');
  });

  it('never lets a Secret value reach the YAML, from audit event to content', () => {
    const plaintext = 'correct-horse-battery-staple';
    const b64 = Buffer.from(plaintext).toString('base64');
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'db',
        namespace: 'shop',
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': `{"stringData":{"token":"${plaintext}"}}` },
      },
      data: { password: b64 },
      stringData: { token: plaintext },
    };
    const parsed = parseAuditPayload({
      kind: 'EventList',
      apiVersion: 'audit.k8s.io/v1',
      items: [
        {
          level: 'Request',
          auditID: 'b7e0c7a4-1111-4222-8333-944455556666',
          stage: 'ResponseComplete',
          requestURI: '/api/v1/namespaces/shop/secrets',
          verb: 'create',
          user: { username: 'bob' },
          objectRef: { resource: 'secrets', namespace: 'shop', apiVersion: 'v1' },
          responseStatus: { code: 201 },
          requestObject: secret,
          stageTimestamp: '2025-11-25T12:00:01Z',
        },
      ],
    });
    if (!parsed.ok) throw new Error(parsed.error);
    const filtered = toIngestJob(CLUSTER, parsed.events[0]!, {});
    if (!filtered.keep) throw new Error(filtered.reason);
    const outcome = normalizeEvent(filtered.job);
    if (outcome.kind !== 'change') throw new Error(outcome.reason);
    const all = JSON.stringify(filtered.job) + JSON.stringify(outcome);
    expect(all).not.toContain(plaintext);
    expect(all).not.toContain(b64);
    expect(parse(outcome.event.content!)).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'shop' },
      data: { password: 'REDACTED' },
      stringData: { token: 'REDACTED' },
    });
  });

  it('redacts again defensively when a job in the queue carries a plaintext Secret', () => {
    const outcome = normalizeEvent(
      job({ verb: 'create', objectRef: { resource: 'secrets', namespace: 'shop', name: 's' }, object: { metadata: { name: 's' }, data: { k: 'c2VjcmV0' } } }),
    );
    expect(outcome.kind === 'change' && outcome.event.content).not.toContain('c2VjcmV0');
  });
});

describe('normalizeEvent: Terminating objects', () => {
  const terminatingDeployment = { ...deployment, metadata: { ...deployment.metadata, deletionTimestamp: '2025-11-25T12:00:00Z', finalizers: ['example.com/hold'] } };

  it('makes any write to an object marked for deletion a DELETE: nothing brings its file back', () => {
    for (const verb of ['update', 'patch', 'create'] as const) {
      const outcome = normalizeEvent(job({ verb, object: terminatingDeployment }));
      expect(outcome.kind === 'change' && outcome.event.operation, verb).toBe('DELETE');
      expect(outcome.kind === 'change' && outcome.event.content, verb).toBeNull();
    }
    // The delete that marked it is a DELETE with its resourceVersion, by the user who deleted.
    const marked = normalizeEvent(job({ verb: 'delete', object: terminatingDeployment, user: { username: 'erin' } }));
    expect(marked).toMatchObject({ kind: 'change', event: { operation: 'DELETE', content: null, resourceVersion: '101', author: { name: 'erin' } } });
  });
});

describe('authorFor', () => {
  it.each([
    ['alice', 'alice@prod-eu.cluster.local'],
    ['alice@example.com', 'alice-example.com@prod-eu.cluster.local'],
    ['system:serviceaccount:kube-system:deployment-controller', 'system-serviceaccount-kube-system-deployment-controller@prod-eu.cluster.local'],
    ['oidc:Jöhn Doe', 'oidc-J-hn-Doe@prod-eu.cluster.local'],
    ['..dots..', 'dots@prod-eu.cluster.local'],
    ['', 'unknown@prod-eu.cluster.local'],
  ])('%j → %s', (username, email) => {
    expect(authorFor(username, 'prod-eu').email).toBe(email);
  });

  it('always gives a valid git ident', () => {
    for (const username of ['evil <x@y>\nCommitter: z', 'a'.repeat(300), '<>', '\u0000']) {
      const author = authorFor(username, 'Prod_EU:1');
      expect(GitAuthorSchema.safeParse(author).success).toBe(true);
      expect(author.name).not.toMatch(/[<>\n\r\u0000]/);
      expect(author.email).not.toMatch(/[<>\s]/);
      expect(author.email).toMatch(/^[A-Za-z0-9._+-]{1,64}@prod-eu-1\.cluster\.local$/);
    }
  });
});
