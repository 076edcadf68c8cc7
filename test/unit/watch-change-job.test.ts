// A watched change becomes the IngestJob an audit event would have made, and normalize names its
// author: the joined audit user, or "unknown" saying why.
import { describe, expect, it } from 'vitest';
import { IngestJobSchema } from '../../core/contracts.js';
import { auditTimestamp, watchChangeToJob } from '../../kube/watch/watch-change-job.js';
import type { WatchChange } from '../../kube/watch/resumable-watch.js';
import type { WatchSpec } from '../../kube/watch/watch-plan.js';
import { REDACTED_VALUE } from '../../core/redact-secret.js';
import { normalizeEvent, UNKNOWN_WATCH_AUTHOR_NAME } from '../../workers/route/normalize-event.js';

const DEPLOYMENTS: WatchSpec = { key: 'apps/v1/deployments@', group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true, namespace: '' };
const SECRETS: WatchSpec = { key: '/v1/secrets@shop', group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true, namespace: 'shop' };
const NAMESPACES: WatchSpec = { key: '/v1/namespaces@', group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false, namespace: '' };

// 2026-11-25T15:00:00.123456Z
const AT = Date.UTC(2026, 10, 25, 15, 0, 0) + 123.456;

const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', uid: 'u-1', resourceVersion: '42' }, spec: { replicas: 2 } };
const change = (type: WatchChange['type'], object: Record<string, unknown>): WatchChange => ({ type, object, origin: 'watch', receivedAt: AT });

describe('auditTimestamp', () => {
  it('writes microseconds, as the API server does', () => {
    expect(auditTimestamp(AT)).toBe('2026-11-25T15:00:00.123456Z');
    expect(auditTimestamp(Date.UTC(2026, 0, 1))).toBe('2026-01-01T00:00:00.000000Z');
  });
});

describe('watchChangeToJob', () => {
  it('maps ADDED/MODIFIED/DELETED to create/update/delete with a watch audit ID and the objectRef', () => {
    const verbs = (['ADDED', 'MODIFIED', 'DELETED'] as const).map((t) => {
      const r = watchChangeToJob({ clusterId: 'prod', spec: DEPLOYMENTS, change: change(t, deployment) });
      return r.keep ? r.job.verb : r.reason;
    });
    expect(verbs).toEqual(['create', 'update', 'delete']);
    const r = watchChangeToJob({ clusterId: 'prod', spec: DEPLOYMENTS, change: change('MODIFIED', deployment), username: 'alice' });
    expect(r).toEqual({
      keep: true,
      job: {
        clusterId: 'prod',
        auditID: 'watch-u-1-42',
        verb: 'update',
        stageTimestamp: '2026-11-25T15:00:00.123456Z',
        user: { username: 'alice' },
        objectRef: { resource: 'deployments', namespace: 'shop', name: 'web', apiGroup: 'apps', apiVersion: 'v1' },
        responseCode: 200,
        object: deployment,
        source: 'watch',
      },
    });
    expect(IngestJobSchema.parse(r.keep && r.job)).toEqual(r.keep && r.job);
  });

  it('redacts Secret values before the job exists', () => {
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's', namespace: 'shop', uid: 'u-2', resourceVersion: '7', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"k":"c2VjcmV0"}}' } },
      data: { k: 'c2VjcmV0' },
    };
    const r = watchChangeToJob({ clusterId: 'prod', spec: SECRETS, change: change('ADDED', secret) });
    expect(r.keep && r.job.object).toEqual({ ...secret, metadata: { ...secret.metadata, annotations: {} }, data: { k: REDACTED_VALUE } });
    expect(JSON.stringify(r)).not.toContain('c2VjcmV0');
    expect(r.keep && r.job.objectRef).toEqual({ resource: 'secrets', namespace: 'shop', name: 's', apiVersion: 'v1' });
  });

  it('drops namespaces outside allowedNamespaces; cluster-scoped objects pass', () => {
    expect(watchChangeToJob({ clusterId: 'prod', spec: DEPLOYMENTS, change: change('ADDED', deployment), allowedNamespaces: ['web'] })).toEqual({ keep: false, reason: 'namespace-not-allowed' });
    const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', uid: 'u-3', resourceVersion: '9' } };
    const r = watchChangeToJob({ clusterId: 'prod', spec: NAMESPACES, change: change('ADDED', ns), allowedNamespaces: ['web'] });
    expect(r.keep && r.job.objectRef).toEqual({ resource: 'namespaces', name: 'shop', apiVersion: 'v1' });
  });
});

describe('normalizeEvent of watch jobs', () => {
  it('names the joined audit user, or says the author is unknown and why', () => {
    const joined = watchChangeToJob({ clusterId: 'prod-eu', spec: DEPLOYMENTS, change: change('MODIFIED', deployment), username: 'alice@example.com' });
    const unknown = watchChangeToJob({ clusterId: 'prod-eu', spec: DEPLOYMENTS, change: change('MODIFIED', deployment) });
    const authorOf = (r: typeof joined) => {
      const out = r.keep ? normalizeEvent(r.job) : undefined;
      return out?.kind === 'change' ? out.event.author : undefined;
    };
    expect(authorOf(joined)).toEqual({ name: 'alice@example.com', email: 'alice-example.com@prod-eu.cluster.local' });
    expect(authorOf(unknown)).toEqual({ name: UNKNOWN_WATCH_AUTHOR_NAME, email: 'unknown@prod-eu.cluster.local' });
    expect(UNKNOWN_WATCH_AUTHOR_NAME).toBe('unknown (watch event, no audit event joined)');
    // An audit job of a user literally called "unknown" keeps that name.
    const audit = unknown.keep ? { ...unknown.job, source: 'audit' as const } : undefined;
    const out = audit && normalizeEvent(audit);
    expect(out?.kind === 'change' && out.event.author.name).toBe('unknown');
  });
});
