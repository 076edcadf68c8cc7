// The router with an object fetcher: a Metadata-level audit event (no body) for an object in the source
// cluster becomes a write of that object's sanitized content, read back through real HTTP from the real
// API server (the run's control plane, or a cluster of your own with KUBECONFIG). A read that fails fails the event (to be
// retried, then a dead letter); only an object that is gone, or none addressed, is recorded as bodiless.
import { readFileSync } from 'node:fs';
import type { Queue } from 'bullmq';
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load-config.js';
import type { ResolvedConfig } from '../../config/resolved-config.js';
import { createMetrics } from '../../observability/metrics.js';
import { createObjectFetcher } from '../../kube/object-fetcher.js';
import type { IngestJob, WriteJob } from '../../core/contracts.js';
import { JobFailure } from '../../queues/exclusive-batch-consumer.js';
import { parseAuditPayload } from '../../core/audit-event-schema.js';
import { toIngestJob } from '../../workers/ingest/filter-audit-event.js';
import { compileRules } from '../../workers/route/compile-rules.js';
import { routeBatch } from '../../workers/route/router.js';
import { auditEvent, eventList, type ObjectSpec } from '../support/audit-events.js';
import { kubeSkipReason, startKubeTarget, type KubeTarget } from '../support/kube-target.js';
import { singleClusterConfig } from '../support/test-service.js';

const skipReason = await kubeSkipReason();
if (skipReason) console.warn(`skipping router-object-fetch.test.ts: ${skipReason}`);
const { ClusterClients } = skipReason ? ({} as typeof import('../../kube/cluster-clients.js')) : await import('../../kube/cluster-clients.js');

/** The event as an API server at audit level Metadata sends it: no request or response body. */
function metadataLevelJob(verb: 'update' | 'patch', spec: ObjectSpec, subresource?: string): IngestJob {
  const event: Record<string, unknown> = { ...auditEvent(verb, spec, { user: 'alice@example.com', ...(subresource ? { subresource } : {}) }), level: 'Metadata' };
  delete event.requestObject;
  delete event.responseObject;
  const parsed = parseAuditPayload(eventList([event]));
  if (!parsed.ok) throw new Error(parsed.error);
  const filtered = toIngestJob('c1', parsed.events[0]!);
  if (!filtered.keep) throw new Error(`filtered out: ${filtered.reason}`);
  expect(filtered.job.object).toBeUndefined();
  return filtered.job;
}

describe.skipIf(skipReason !== undefined)('router with an object fetcher', () => {
  let target: KubeTarget;
  let ns: string;
  let config: ResolvedConfig;
  let writeQueues: Map<string, Queue<WriteJob>>;

  beforeAll(async () => {
    target = await startKubeTarget();
    ns = await target.namespace();
    config = parseConfig(singleClusterConfig('/nonexistent/remote.git'));
    // routeBatch adds nothing: a queue only needs its name here.
    writeQueues = new Map([...config.partitions.values()].map(({ partition }) => [partition.queueName, { name: partition.queueName } as Queue<WriteJob>]));
  });
  afterAll(async () => {
    await target?.stop();
  });

  function fetcher() {
    // Cluster c1 of the configuration names no kubeconfig Secret: it reads with the service's own credentials.
    const clients = new ClusterClients({ defaultKubeConfig: target.kubeConfig() });
    clients.update(config.clusters);
    return createObjectFetcher(clients);
  }

  it('writes the object read back from the cluster for a Metadata-level update', async () => {
    const stored = await target.create<KubernetesObject & { data: Record<string, string> }>({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'settings', namespace: ns, labels: { app: 'shop' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } },
      data: { color: 'blue' },
    });
    const job = metadataLevelJob('update', { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: ns, name: 'settings', body: {} });
    const metrics = createMetrics('router_fetch_found');
    const { results, pending } = await routeBatch([job], compileRules(config), { writeQueues, metrics, fetchObject: fetcher() });

    expect(results).toEqual([{ outcome: 'routed', fetched: true, writes: [expect.objectContaining({ filePath: `clusters/c1/${ns}/configmaps/settings.yaml` })] }]);
    const writes = [...pending.values()].flatMap((p) => p.jobs.map((j) => j.data));
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({
      operation: 'UPDATE',
      resourceVersion: stored.metadata?.resourceVersion,
      author: { name: 'alice@example.com' },
      content: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: ${ns}\n  labels:\n    app: shop\ndata:\n  color: blue\n`,
    });
    expect((await metrics.objectsFetched.get()).values).toEqual([{ labels: { cluster: 'c1', outcome: 'found' }, value: 1 }]);
  });

  it('writes the parent of a Metadata-level scale event, and records an object deleted since as gone', async () => {
    await target.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns },
      spec: { replicas: 0, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } } },
    });
    const scale = metadataLevelJob('patch', { apiVersion: 'apps/v1', kind: 'Deployment', resource: 'deployments', namespace: ns, name: 'web', body: {} }, 'scale');
    const gone = metadataLevelJob('update', { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: ns, name: 'deleted-since', body: {} });
    const metrics = createMetrics('router_fetch_scale');
    const { results, pending } = await routeBatch([scale, gone], compileRules(config), { writeQueues, metrics, fetchObject: fetcher() });

    expect(results[0]).toMatchObject({ outcome: 'routed', fetched: true });
    const [write] = [...pending.values()].flatMap((p) => p.jobs.map((j) => j.data));
    expect(write?.content).toMatch(/^apiVersion: apps\/v1\nkind: Deployment\n[\s\S]*replicas: 0\n/);
    expect(results[1]).toEqual({ outcome: 'no-object-body', reason: 'object no longer exists in cluster c1' });
  });

  it('fails the event, to be retried and replayed, when the cluster refuses the credentials (401) or has no client', async () => {
    // A kubeconfig Secret whose token expired: the events must wait as failed jobs, not be recorded as bodiless.
    const { caFile, ...cluster } = target.kubeConfig().getCurrentCluster()!;
    const caData = cluster.caData ?? (caFile ? readFileSync(caFile).toString('base64') : undefined);
    const expired = JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: cluster.server, 'insecure-skip-tls-verify': cluster.skipTLSVerify, ...(caData ? { 'certificate-authority-data': caData } : {}) } }],
      users: [{ name: 'u', user: { token: 'expired-t0ken' } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    });
    const refused = new ClusterClients({ defaultKubeConfig: target.kubeConfig() });
    refused.update(new Map([['c1', { ...config.clusters.get('c1')!, kubeConfig: expired }]]));
    const job = metadataLevelJob('update', { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: ns, name: 'settings', body: {} });
    const metrics = createMetrics('router_fetch_refused');
    const { results, pending } = await routeBatch([job], compileRules(config), { writeQueues, metrics, fetchObject: createObjectFetcher(refused, { sleep: async () => undefined }) });
    expect(results[0]).toBeInstanceOf(JobFailure);
    const message = (results[0] as JobFailure).error.message;
    expect(message).toMatch(/^fetch failed: cluster c1 does not accept the kubeconfig of spec.kubeConfigSecretRef \(401/);
    expect(message).toContain(`configmaps ${ns}/settings`);
    expect(message).toContain(`get configmaps in namespace ${ns}`);
    expect(message).not.toContain('expired-t0ken');
    expect(pending.size).toBe(0);
    expect((await metrics.objectsFetched.get()).values).toEqual([{ labels: { cluster: 'c1', outcome: 'failed' }, value: 1 }]);
    expect((await metrics.eventsWithoutBody.get()).values).toEqual([]);

    const none = new ClusterClients();
    none.update(config.clusters);
    const without = await routeBatch([job], compileRules(config), { writeQueues, metrics: createMetrics('router_fetch_noclient'), fetchObject: createObjectFetcher(none) });
    expect(without.results[0]).toBeInstanceOf(JobFailure);
    expect((without.results[0] as JobFailure).error.message).toMatch(
      new RegExp(`^fetch failed: cannot read configmaps ${ns}/settings: cluster c1 has no spec.kubeConfigSecretRef and the service runs without credentials of its own`),
    );
  });

  it('records an event whose objectRef addresses no object as no-object-body, without a read', async () => {
    const job = metadataLevelJob('update', { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: ns, name: 'settings', body: {} });
    delete job.objectRef.apiVersion;
    const metrics = createMetrics('router_fetch_unaddressable');
    const { results } = await routeBatch([job], compileRules(config), { writeQueues, metrics, fetchObject: fetcher() });
    expect(results).toEqual([{ outcome: 'no-object-body', reason: 'no object body, and none can be read back from cluster c1: configmaps: the event names no API version' }]);
    expect((await metrics.objectsFetched.get()).values).toEqual([]);
  });

  it('without a fetcher, records the missing body as before', async () => {
    const job = metadataLevelJob('update', { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: ns, name: 'settings', body: {} });
    const { results, pending } = await routeBatch([job], compileRules(config), { writeQueues, metrics: createMetrics('router_fetch_none') });
    expect(results).toEqual([{ outcome: 'no-object-body', reason: expect.stringContaining('the audit policy level must be RequestResponse') }]);
    expect(pending.size).toBe(0);
  });
});
