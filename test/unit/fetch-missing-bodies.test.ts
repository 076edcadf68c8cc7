// Which events the router reads back from their cluster, how many at once, and what it records when a
// read fails (a failed job, retried; only a gone or unaddressable object is recorded as no-object-body) —
// with a fake fetcher, so only the router's side is under test.
import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../observability/metrics.js';
import type { FetchOutcome } from '../../kube/fetch-object.js';
import type { IngestJob } from '../../core/contracts.js';
import { fetchMissingBodies, type FetchMissingBodiesOptions } from '../../workers/route/fetch-missing-bodies.js';
import { REDACTED_VALUE } from '../../core/redact-secret.js';
import { JobFailure } from '../../queues/exclusive-batch-consumer.js';
import { routeEvent } from '../../workers/route/router.js';

let seq = 0;
function job(fields: Partial<IngestJob> = {}): IngestJob {
  return {
    clusterId: 'c1',
    auditID: `a-${++seq}`,
    verb: 'update',
    stageTimestamp: '2026-01-01T00:00:00.000000Z',
    user: { username: 'alice' },
    objectRef: { resource: 'configmaps', namespace: 'shop', name: `cm-${seq}`, apiGroup: '', apiVersion: 'v1' },
    responseCode: 200,
    ...fields,
  };
}

const configMap = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'shop', resourceVersion: '7' }, data: { a: 'b' } });

function options(fetchObject: FetchMissingBodiesOptions['fetchObject'], extra: Partial<FetchMissingBodiesOptions> = {}) {
  const metrics = createMetrics(`t${++seq}`);
  return { opts: { fetchObject, wanted: () => true, metrics, ...extra }, metrics };
}

async function counts(metrics: ReturnType<typeof createMetrics>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.objectsFetched.get()).values) out[`${v.labels.cluster}/${v.labels.outcome}`] = v.value;
  return out;
}

describe('fetchMissingBodies', () => {
  it('reads only events whose body is missing and can be read: not deletes, not deletecollection, not nameless ones', async () => {
    const asked: string[] = [];
    const { opts } = options(async (j) => {
      asked.push(j.auditID);
      return { kind: 'found', object: configMap(j.objectRef.name ?? '') };
    });
    const batch = [
      job({ auditID: 'with-body', object: configMap('x') }),
      job({ auditID: 'delete', verb: 'delete' }),
      job({ auditID: 'deletecollection', verb: 'deletecollection', objectRef: { resource: 'configmaps', namespace: 'shop', apiVersion: 'v1' } }),
      job({ auditID: 'nameless', verb: 'create', objectRef: { resource: 'configmaps', namespace: 'shop', apiVersion: 'v1' } }),
      job({ auditID: 'metadata-level' }),
      job({ auditID: 'scale', verb: 'patch', objectRef: { resource: 'deployments', subresource: 'scale', namespace: 'shop', name: 'web', apiGroup: 'apps', apiVersion: 'v1' } }),
    ];
    const { jobs, fetches } = await fetchMissingBodies(batch, opts);
    expect(asked.sort()).toEqual(['metadata-level', 'scale']);
    expect(fetches).toEqual([undefined, undefined, undefined, undefined, { kind: 'fetched' }, { kind: 'fetched' }]);
    expect(jobs[4]!.object).toEqual(configMap(batch[4]!.objectRef.name!));
    expect(jobs[0]).toBe(batch[0]);
    expect(batch[4]!.object).toBeUndefined(); // the input batch is not changed
  });

  it('does not read what no rule wants', async () => {
    let asked = 0;
    const { opts } = options(
      async () => {
        asked++;
        return { kind: 'gone' };
      },
      { wanted: (identity) => identity.resource === 'deployments' },
    );
    const { fetches } = await fetchMissingBodies([job(), job()], opts);
    expect(asked).toBe(0);
    expect(fetches).toEqual([undefined, undefined]);
  });

  it('keeps at most `concurrency` reads in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const { opts } = options(
      async (j) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        return { kind: 'found', object: configMap(j.objectRef.name ?? '') };
      },
      { concurrency: 3 },
    );
    const { fetches } = await fetchMissingBodies(Array.from({ length: 20 }, () => job()), opts);
    expect(most).toBe(3);
    expect(fetches.every((f) => f?.kind === 'fetched')).toBe(true);
  });

  it('reads an object once per batch, however many of its events the batch holds', async () => {
    let asked = 0;
    const { opts, metrics } = options(async (j) => {
      asked++;
      return { kind: 'found', object: configMap(j.objectRef.name ?? '') };
    });
    const ref = { resource: 'configmaps', namespace: 'shop', name: 'busy', apiGroup: '', apiVersion: 'v1' };
    const { jobs, fetches } = await fetchMissingBodies([job({ objectRef: ref }), job({ objectRef: ref, verb: 'patch' }), job()], opts);
    expect(asked).toBe(2);
    expect(fetches).toEqual([{ kind: 'fetched' }, { kind: 'fetched' }, { kind: 'fetched' }]);
    expect(jobs[1]!.object).toEqual(configMap('busy'));
    expect(await counts(metrics)).toEqual({ 'c1/found': 2 });
  });

  it('records gone and failed reads with their reasons, and counts every outcome', async () => {
    const outcomes: FetchOutcome[] = [
      { kind: 'gone' },
      { kind: 'failed', reason: 'cluster c1: missing permission to get configmaps in namespace shop', transient: false },
      { kind: 'found', object: configMap('x') },
      { kind: 'unaddressable', reason: 'configmaps/status: the status subresource is not an object that can be read back' },
    ];
    let i = 0;
    const { opts, metrics } = options(async () => outcomes[i++]!, { concurrency: 1 });
    const { fetches } = await fetchMissingBodies([job(), job(), job(), job()], opts);
    expect(fetches).toEqual([
      { kind: 'absent', reason: 'object no longer exists in cluster c1' },
      { kind: 'failed', reason: 'fetch failed: cluster c1: missing permission to get configmaps in namespace shop' },
      { kind: 'fetched' },
      { kind: 'absent', reason: 'no object body, and none can be read back from cluster c1: configmaps/status: the status subresource is not an object that can be read back' },
    ]);
    // An objectRef that addresses no object is not read, so not counted as a read.
    expect(await counts(metrics)).toEqual({ 'c1/gone': 1, 'c1/failed': 1, 'c1/found': 1 });
  });

  it('routes only gone and unaddressable as no-object-body; every failed read fails its event, with the reason', async () => {
    const routes = { byCluster: new Map() };
    const failures: Extract<FetchOutcome, { kind: 'failed' }>[] = [
      { kind: 'failed', reason: 'cluster c1 does not accept the kubeconfig of spec.kubeConfigSecretRef (401: Unauthorized): reading configmaps shop/x needs valid credentials', transient: false },
      { kind: 'failed', reason: 'cluster c1: missing permission to get configmaps in namespace shop for the kubeconfig of spec.kubeConfigSecretRef, reading configmaps shop/x (403: forbidden)', transient: false },
      { kind: 'failed', reason: 'cannot read configmaps shop/x: cluster c1: the kubeconfig of spec.kubeConfigSecretRef is refused: users[0].user.exec runs a command', transient: false },
      { kind: 'failed', reason: 'cluster c1, reading configmaps shop/x with the service\'s own credentials: the exec plugin of the kubeconfig failed (3 attempts)', transient: true },
    ];
    let i = 0;
    const { opts, metrics } = options(async () => failures[i++]!, { concurrency: 1 });
    const batch = [job(), job(), job(), job({ clusterId: 'c2' })];
    const { fetches } = await fetchMissingBodies(batch, opts);
    const routeMetrics = createMetrics(`t${++seq}`);
    batch.forEach((j, k) => {
      const routed = routeEvent(j, routes, { writeQueues: new Map(), metrics: routeMetrics }, new Map(), fetches[k]);
      expect(routed).toBeInstanceOf(JobFailure);
      expect((routed as JobFailure).error.message).toBe(`fetch failed: ${failures[k]!.reason}`);
      // Retried with the ingest job's backoff, then a dead letter to replay: not unrecoverable.
      expect((routed as JobFailure).error).not.toBeInstanceOf(UnrecoverableError);
    });
    expect(await counts(metrics)).toEqual({ 'c1/failed': 3, 'c2/failed': 1 });
    expect((await routeMetrics.eventsWithoutBody.get()).values).toEqual([]);

    const absent = routeEvent(job(), routes, { writeQueues: new Map(), metrics: routeMetrics }, new Map(), { kind: 'absent', reason: 'object no longer exists in cluster c1' });
    expect(absent).toEqual({ outcome: 'no-object-body', reason: 'object no longer exists in cluster c1' });
    expect((await routeMetrics.eventsWithoutBody.get()).values).toEqual([{ labels: { cluster: 'c1' }, value: 1 }]);
  });

  it('stops trying a cluster that stayed unreachable, for the rest of the batch only', async () => {
    const asked: string[] = [];
    const { opts } = options(
      async (j) => {
        asked.push(j.clusterId);
        return j.clusterId === 'down' ? { kind: 'failed', reason: 'cluster down could not be reached', transient: true } : { kind: 'gone' };
      },
      { concurrency: 1 },
    );
    const batch = [job({ clusterId: 'down' }), job({ clusterId: 'down' }), job({ clusterId: 'up' }), job({ clusterId: 'down' })];
    const { fetches } = await fetchMissingBodies(batch, opts);
    expect(asked).toEqual(['down', 'up']);
    expect(fetches[1]).toEqual({
      kind: 'failed',
      reason: expect.stringMatching(/^fetch failed: not tried, cluster down was unreachable .*could not be reached$/),
    });
    // Routing turns an unreachable cluster into a failed job (retried with backoff, then a dead letter), never a dropped change.
    const routed = routeEvent(batch[1]!, { byCluster: new Map() }, { writeQueues: new Map(), metrics: createMetrics('t_fmb') }, new Map(), fetches[1]);
    expect(routed).toBeInstanceOf(JobFailure);
    expect((routed as JobFailure).error.message).toMatch(/^fetch failed: not tried, cluster down was unreachable/);
    await fetchMissingBodies([job({ clusterId: 'down' })], opts);
    expect(asked).toEqual(['down', 'up', 'down']);
  });

  it('keeps trying a cluster after a failure that is not transient: each read says for itself', async () => {
    let asked = 0;
    const { opts } = options(
      async () => {
        asked++;
        return { kind: 'failed', reason: 'cluster c1: missing permission', transient: false };
      },
      { concurrency: 1 },
    );
    const { fetches } = await fetchMissingBodies([job(), job()], opts);
    expect(asked).toBe(2);
    expect(fetches.every((f) => f?.kind === 'failed')).toBe(true);
  });

  it('turns a fetcher that throws into a failed read of that event alone', async () => {
    let i = 0;
    const { opts } = options(
      async (j) => {
        if (i++ === 0) throw new Error('boom');
        return { kind: 'found', object: configMap(j.objectRef.name ?? '') };
      },
      { concurrency: 1 },
    );
    const { fetches } = await fetchMissingBodies([job(), job()], opts);
    expect(fetches).toEqual([{ kind: 'failed', reason: 'fetch failed: boom' }, { kind: 'fetched' }]);
  });

  it('redacts a Secret even when the fetcher did not', async () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'shop' }, data: { password: 'c2VjcmV0' } };
    const { opts } = options(async () => ({ kind: 'found', object: secret }));
    const { jobs } = await fetchMissingBodies([job({ objectRef: { resource: 'secrets', namespace: 'shop', name: 'db', apiVersion: 'v1' } })], opts);
    expect(jobs[0]!.object).toMatchObject({ data: { password: REDACTED_VALUE } });
    expect(JSON.stringify(jobs[0])).not.toContain('c2VjcmV0');
  });
});
