// Backpressure: past the ingest backlog bound the webhook answers 429, past Valkey's memory bound 503,
// both with Retry-After and without storing anything; once the pressure is gone the same batches are
// accepted and every acknowledged event is committed.
import type { Valkey } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConnection } from '../../queues/connection.js';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const cm = (name: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v: name } } });

describe.skipIf(Boolean(process.env.VALKEY_URL))('backpressure', () => {
  let valkey: TestValkey;
  let service: TestService;
  let admin: Valkey;
  let remote = '';

  beforeAll(async () => {
    valkey = await startTestValkey();
    admin = openConnection(valkey.url);
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))), { ingestBacklogLimit: 6 });
  });
  afterAll(async () => {
    await admin?.config('SET', 'maxmemory', '0');
    await admin?.quit();
    await service?.close();
    await valkey?.stop();
  });

  const post = (names: string[]) => postToC1(service.url, names.map((n) => auditEvent('create', cm(n), { user: 'alice' })));

  it('429 with Retry-After past the backlog bound, and the batch is accepted once the backlog drains', async () => {
    await service.ingestQueue.pause(); // the router takes nothing: the backlog grows
    expect((await post(['a', 'b', 'c', 'd'])).status).toBe(200);
    await new Promise((r) => setTimeout(r, 600)); // past the reading cache
    const refused = await post(['e', 'f', 'g']);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(await refused.json()).toEqual({ reason: 'backlog', error: 'the ingest backlog is full (4 events waiting, limit 6); retry later' });
    expect(await service.ingestQueue.getWaitingCount()).toBe(4);
    // The backlog is visible to Prometheus.
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    const p = service.prefix.replace(/[^a-zA-Z0-9_]/g, '_'); // gitops_reverser outside tests
    expect(metrics).toContain(`${p}_queue_jobs{queue="ingest",state="waiting"} 4`);
    expect(metrics).toContain(`${p}_webhook_requests_rejected_total{cluster="c1",reason="backlog"} 1`);
    await service.ingestQueue.resume();
    await waitFor(async () => (await service.ingestQueue.getWaitingCount()) === 0, 'the backlog drains');
    await new Promise((r) => setTimeout(r, 600));
    expect((await post(['e', 'f', 'g'])).status).toBe(200);
    await waitFor(async () => (await commitLog(remote)).length === 7, 'seven commits');
  });

  it('503 with Retry-After past the memory bound', async () => {
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory', String(Math.floor(used * 1.02)));
    await new Promise((r) => setTimeout(r, 600));
    const refused = await post(['h']);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('30');
    const body = (await refused.json()) as { reason: string; error: string };
    expect(body.reason).toBe('memory');
    expect(body.error).toMatch(/^Valkey memory is at \d+% of maxmemory \(limit 90%\); retry later$/);
    await admin.config('SET', 'maxmemory', '0');
    await new Promise((r) => setTimeout(r, 600));
    expect((await post(['h'])).status).toBe(200);
    await waitFor(async () => (await commitLog(remote)).length === 8, 'eight commits');
  });
});
