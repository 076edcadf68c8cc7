// Watch mode of a cluster end to end into the ingest queue, against the real API server (the run's control
// plane, or a cluster of your own with KUBECONFIG) and a real Valkey: changes become IngestJobs (source 'watch', Secrets
// redacted), a wildcard rule picks up a CRD installed later, the audit join names the audit user or
// says unknown, and of two replicas only one watches while the other takes over when it stops or loses
// the lease.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { pino } from 'pino';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ResolvedConfig, ResolvedTarget } from '../../config/resolved-config.js';
import { openConnection } from '../../queues/connection.js';
import type { IngestJob } from '../../core/contracts.js';
import { auditAuthorKey, eventJobId, INGEST_QUEUE, partitionOf, watchKeys } from '../../queues/names.js';
import { REDACTED_VALUE } from '../../core/redact-secret.js';
import { planWatches, type WatchSpec } from '../../kube/watch/watch-plan.js';
import type { WatchIngestOptions } from '../../kube/watch/watch-ingest.js';
import { waitFor } from '../support/git-repos.js';
import { kubeSkipReason, startKubeTarget, type KubeTarget } from '../support/kube-target.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const skipReason = await kubeSkipReason();
if (skipReason) console.warn(`skipping watch-ingest.test.ts: ${skipReason}`);
// Loaded only when client-node can load: the watches import it.
const { startWatchIngest } = skipReason ? ({} as typeof import('../../kube/watch/watch-ingest.js')) : await import('../../kube/watch/watch-ingest.js');
const { recordAuditAuthors } = skipReason ? ({} as typeof import('../../kube/watch/audit-join.js')) : await import('../../kube/watch/audit-join.js');

const logger = pino({ level: 'silent' });
const LEASE_TTL_MS = 600;

const cmSpec = (namespace: string): WatchSpec => ({ key: `/v1/configmaps@${namespace}`, group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true, namespace });
const configMap = (namespace: string, name: string, data: Record<string, string> = { k: name }): KubernetesObject & { data: Record<string, string> } => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace },
  data,
});

describe.skipIf(skipReason)('watch ingest', () => {
  let valkey: TestValkey;
  let connection: Valkey;
  let target: KubeTarget;
  const queues: Queue<IngestJob>[] = [];

  beforeAll(async () => {
    valkey = await startTestValkey();
    connection = openConnection(valkey.url);
    target = await startKubeTarget();
  });
  afterAll(async () => {
    await Promise.all(queues.map((q) => q.close()));
    await target?.stop();
    await connection?.quit();
    await valkey?.stop();
  });

  async function setup(cluster = 'c1') {
    const prefix = uniquePrefix('wi');
    const queue = new Queue<IngestJob>(INGEST_QUEUE, { connection, prefix });
    queues.push(queue);
    const namespace = await target.namespace();
    const base = { connection, prefix, ingestQueue: queue, clusterName: cluster, kubeConfig: target.kubeConfig(), logger, leaseTtlMs: LEASE_TTL_MS, watchTuning: { backoff: { initialMs: 50, maxMs: 200 } } };
    const start = (extra: Partial<WatchIngestOptions> = {}) => startWatchIngest({ replicaId: 'r1', ...base, ...extra });
    /** The queued jobs in queue order, as `verb name`, with their data. */
    // A real cluster puts kube-root-ca.crt into every namespace; it is not one of the test's objects.
    const jobs = async () =>
      (await queue.getJobs(['waiting'], 0, -1, true))
        .filter((j) => j.data.objectRef.name !== 'kube-root-ca.crt')
        .map((j) => ({ id: j.id, data: j.data, what: `${j.data.verb} ${j.data.objectRef.name}` }));
    return { prefix, queue, namespace, start, jobs };
  }

  it('feeds creates, updates and deletes as IngestJobs of the cluster, source watch, Secrets redacted', async () => {
    const t = await setup();
    await target.create(configMap(t.namespace, 'a'));
    const secretSpec: WatchSpec = { ...cmSpec(t.namespace), key: `/v1/secrets@${t.namespace}`, resource: 'secrets', kind: 'Secret' };
    const ingest = t.start();
    ingest.update([cmSpec(t.namespace), secretSpec]);
    await waitFor(() => ingest.watched().length === 2, 'the lease and the watches', 8000, 25);
    expect(ingest.watched()).toEqual([cmSpec(t.namespace).key, secretSpec.key]);
    await waitFor(async () => (await t.jobs()).length === 1, 'the initial list', 8000, 25);
    await target.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: t.namespace }, data: { password: 'aHVudGVyMg==' } } as KubernetesObject);
    await waitFor(async () => (await t.jobs()).length === 2, 'the secret', 8000, 25);
    await target.patch(configMap(t.namespace, 'a', { k: 'a2' }));
    await target.remove(configMap(t.namespace, 'a'));
    const jobs = await waitFor(async () => ((await t.jobs()).length === 4 ? t.jobs() : undefined), 'the update and delete', 8000, 25);
    expect(jobs.map((j) => j.what)).toEqual(['create a', 'create s', 'update a', 'delete a']);
    for (const j of jobs) {
      expect(j.data).toMatchObject({ clusterId: 'c1', source: 'watch', user: { username: 'unknown' }, responseCode: 200 });
      expect(j.data.auditID).toMatch(/^watch-[0-9a-f-]{36}-\d+$/);
      expect(j.id).toBe(eventJobId('c1', j.data.auditID));
      expect(j.data.stageTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
    expect(jobs[2]!.data.objectRef).toEqual({ resource: 'configmaps', namespace: t.namespace, name: 'a', apiVersion: 'v1' });
    expect(jobs[2]!.data.object).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', data: { k: 'a2' } });
    expect(jobs[1]!.data.object).toMatchObject({ kind: 'Secret', data: { password: REDACTED_VALUE } });
    expect(JSON.stringify(jobs)).not.toContain('aHVudGVyMg==');
    await ingest.stop();
    expect(ingest.watched()).toEqual([]);
    expect(await connection.exists(watchKeys(t.prefix, 'c1').lease)).toBe(0);
  });

  it('with a wildcard rule, watches the type of a CRD installed later (the CRD watch triggers discovery)', async () => {
    const t = await setup();
    const group = `g${randomBytes(3).toString('hex')}.example.test`;
    const provider = { key: 'ops/p', url: '/srv/r.git', allowedBranches: ['*'] };
    const gitTarget: ResolvedTarget = { key: 'ops/t', provider, branch: 'main', path: '', clusterProvider: 'c1', partition: partitionOf(provider.url, 'main'), prune: 'OnEvent', reconcileIntervalSeconds: 3600 };
    const config: Pick<ResolvedConfig, 'rules' | 'targets'> = {
      targets: new Map([[gitTarget.key, gitTarget]]),
      rules: [{ source: 'WatchRule x/w', kind: 'WatchRule', key: 'x/w', namespace: t.namespace, targetKey: gitTarget.key, rules: [{ operations: ['*'], apiGroups: ['*'], resources: ['gizmos'] }] }],
    };
    // Periodic discovery far away: only the CRD watch can make this quick.
    const ingest = t.start({ planFor: (resources) => planWatches({ cluster: 'c1', config, resources }), rediscoverIntervalMs: 600_000 });
    await waitFor(() => ingest.holdsLease(), 'the lease', 8000, 25);
    await ingest.rediscover();
    expect(ingest.watched()).toEqual([]);
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `gizmos.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'gizmos', singular: 'gizmo', kind: 'Gizmo', listKind: 'GizmoList' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    } as KubernetesObject;
    await target.create(crd);
    try {
      const key = `${group}/v1/gizmos@${t.namespace}`;
      await waitFor(() => ingest.watched().includes(key), 'the new type to be watched', 8000, 25);
      await target.create({ apiVersion: `${group}/v1`, kind: 'Gizmo', metadata: { name: 'g1', namespace: t.namespace }, spec: { size: 3 } } as KubernetesObject);
      const [job] = await waitFor(async () => ((await t.jobs()).length > 0 ? t.jobs() : undefined), 'the gizmo', 8000, 25);
      expect(job!.data).toMatchObject({ verb: 'create', source: 'watch', objectRef: { resource: 'gizmos', apiGroup: group, apiVersion: 'v1', name: 'g1', namespace: t.namespace } });
      // The rules change: replan() plans again for the types found last, without discovering.
      const gizmoRules = config.rules;
      config.rules = [{ ...gizmoRules[0]!, rules: [{ operations: ['*'], apiGroups: [''], resources: ['configmaps'] }] }];
      ingest.replan();
      expect(ingest.watched()).toEqual([`/v1/configmaps@${t.namespace}`]);
      config.rules = gizmoRules;
      ingest.replan();
      expect(ingest.watched()).toEqual([key]);
      await target.remove(crd);
      await waitFor(() => !ingest.watched().includes(key), 'the removed type to be unwatched', 8000, 25);
    } finally {
      await target.remove(crd);
      await ingest.stop();
    }
  });

  it('names the audit user when the audit event was recorded, says unknown otherwise, and does not wait without audit', async () => {
    const t = await setup();
    const ingest = t.start({ auditJoinGraceMs: 300 });
    ingest.update([cmSpec(t.namespace)]);
    await waitFor(() => ingest.watched().length === 1, 'the watch', 8000, 25);
    const auditJob = (verb: IngestJob['verb'], object: KubernetesObject): IngestJob => ({
      clusterId: 'c1',
      auditID: randomBytes(8).toString('hex'),
      verb,
      stageTimestamp: new Date().toISOString(),
      user: { username: 'system:serviceaccount:ci:deployer' },
      impersonatedUser: { username: 'alice' },
      objectRef: { resource: 'configmaps', namespace: t.namespace, name: object.metadata!.name, apiVersion: 'v1' },
      responseCode: 200,
      object: object as Record<string, unknown>,
    });
    // As the webhook does right after storing the audit batch (the watch event waits the grace period).
    const joined = await target.create(configMap(t.namespace, 'joined'));
    await recordAuditAuthors(connection, t.prefix, 'c1', [auditJob('create', joined)]);
    await target.create(configMap(t.namespace, 'nobody'));
    await target.remove(configMap(t.namespace, 'joined'));
    await recordAuditAuthors(connection, t.prefix, 'c1', [{ ...auditJob('delete', joined), impersonatedUser: { username: 'carol' } }]);
    const jobs = await waitFor(async () => ((await t.jobs()).length === 3 ? t.jobs() : undefined), 'three jobs', 8000, 25);
    expect(jobs.map((j) => `${j.what} by ${j.data.user.username}`)).toEqual(['create joined by alice', 'create nobody by unknown', 'delete joined by carol']);
    const key = auditAuthorKey(t.prefix, 'c1', joined.metadata!.uid!, joined.metadata!.resourceVersion!);
    expect(await connection.get(key)).toBe('alice');
    expect(await connection.ttl(key)).toBeGreaterThan(590);
    await ingest.stop();

    // A cluster without an audit webhook: no wait, and no look-up.
    const u = await setup('c2');
    const plain = u.start();
    plain.update([cmSpec(u.namespace)]);
    await waitFor(() => plain.watched().length === 1, 'the watch', 8000, 25);
    const obj = await target.create(configMap(u.namespace, 'x'));
    await recordAuditAuthors(connection, u.prefix, 'c2', [{ ...auditJob('create', obj), clusterId: 'c2' }]);
    const [job] = await waitFor(async () => ((await u.jobs()).length === 1 ? u.jobs() : undefined), 'x', 8000, 25);
    expect(job!.data.user.username).toBe('unknown');
    await plain.stop();
  });

  it('two replicas: one watches; the other takes over when it stops or loses the lease, resuming from the checkpoint', async () => {
    const t = await setup();
    const a = t.start({ replicaId: 'a' });
    const b = t.start({ replicaId: 'b' });
    a.update([cmSpec(t.namespace)]);
    b.update([cmSpec(t.namespace)]);
    await waitFor(() => a.holdsLease() || b.holdsLease(), 'one holder', 8000, 25);
    await new Promise((r) => setTimeout(r, LEASE_TTL_MS)); // the other keeps trying meanwhile
    const [holder, other] = a.holdsLease() ? [a, b] : [b, a];
    expect(holder.watched()).toEqual([cmSpec(t.namespace).key]);
    expect(other.watched()).toEqual([]);
    expect(other.holdsLease()).toBe(false);
    await target.create(configMap(t.namespace, 'one'));
    await waitFor(async () => (await t.jobs()).length === 1, 'one', 8000, 25);

    await holder.stop();
    await target.create(configMap(t.namespace, 'two'));
    await waitFor(() => other.watched().length === 1, 'the takeover', 8000, 25);
    const jobs = await waitFor(async () => ((await t.jobs()).length === 2 ? t.jobs() : undefined), 'two', 8000, 25);
    expect(jobs.map((j) => j.what)).toEqual(['create one', 'create two']);

    // A holder whose lease is taken from it stops watching at its next renewal.
    const keys = watchKeys(t.prefix, 'c1');
    await connection.set(keys.lease, 'intruder:999', 'PX', 2 * LEASE_TTL_MS);
    await waitFor(() => other.watched().length === 0 && !other.holdsLease(), 'the watches to stop', 8000, 25);
    await waitFor(() => other.watched().length === 1, 'the lease again after the intruder', 5000, 25);
    await target.patch(configMap(t.namespace, 'one', { k: 'again' }));
    await waitFor(async () => (await t.jobs()).length === 3, 'the update', 8000, 25);
    expect((await t.jobs()).map((j) => j.what)).toEqual(['create one', 'create two', 'update one']);
    await other.stop();
  });
});
