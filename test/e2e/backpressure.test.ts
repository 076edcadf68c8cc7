// Backpressure: past the ingest backlog bound the webhook answers 429, past Valkey's memory bound 503,
// both with Retry-After and without storing anything; once the pressure is gone the same batches are
// accepted and every acknowledged event is committed.
//
// The webhook reuses its reading of the backlog and of Valkey's memory for 500 ms (dashboard/backpressure.ts),
// so a change is seen by a request that comes after the reading expired. Rather than waiting that long,
// the tests wait for what they can see: a webhook's answer that names the new reading, a fresh service whose
// first batch takes the first reading, and a refused batch sent again until it is accepted (as an API
// server does: a refused batch stores nothing).
import type { Valkey } from 'iovalkey';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openConnection } from '../../queues/connection.js';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { ownValkeySkipReason, startTestValkey, type TestValkey } from '../support/valkey-server.js';

const skip = ownValkeySkipReason("setting Valkey's maxmemory");

const cm = (name: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v: name } } });

describe.skipIf(skip !== undefined)('backpressure', () => {
  let valkey: TestValkey;
  let service: TestService;
  let admin: Valkey;
  let remote = '';

  beforeAll(async () => {
    valkey = await startTestValkey();
    admin = openConnection(valkey.url);
  });
  // A service of its own per case: its first batch takes its first reading.
  beforeEach(async () => {
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))), { ingestBacklogLimit: 6 });
  });
  afterEach(async () => {
    await admin.config('SET', 'maxmemory', '0');
    await service?.close();
  });
  afterAll(async () => {
    await admin?.quit();
    await valkey?.stop();
  });

  const post = (names: string[]) => postToC1(service.url, names.map((n) => auditEvent('create', cm(n), { user: 'alice' })));
  /** Sends the batch again until it is accepted, as the API server does after a 429 or 503. */
  const sendUntilAccepted = (names: string[]) => waitFor(async () => (await post(names)).status === 200, `${names.join(', ')} accepted`);

  it('429 with Retry-After past the backlog bound, and the batch is accepted once the backlog drains', async () => {
    await service.ingestQueue.pause(); // the router takes nothing: the backlog grows
    expect((await post(['a', 'b', 'c', 'd'])).status).toBe(200);
    // That batch's reading was taken before it was stored. Seven events pass the bound of six whatever the
    // reading: refused, stored nowhere, and naming the backlog read; sent until that is the four.
    let probes = 0;
    await waitFor(async () => {
      probes++;
      const res = await post(['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
      expect(res.status).toBe(429);
      return ((await res.json()) as { error: string }).error.includes('(4 events waiting');
    }, 'the webhook reads a backlog of four');
    const refused = await post(['e', 'f', 'g']);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(await refused.json()).toEqual({ reason: 'backlog', error: 'the ingest backlog is full (4 events waiting, limit 6); retry later' });
    expect(await service.ingestQueue.getWaitingCount()).toBe(4);
    // The backlog is visible to Prometheus.
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    const p = service.prefix.replace(/[^a-zA-Z0-9_]/g, '_'); // gitops_reverser outside tests
    expect(metrics).toContain(`${p}_queue_jobs{queue="ingest",state="waiting"} 4`);
    expect(metrics).toContain(`${p}_webhook_requests_rejected_total{cluster="c1",reason="backlog"} ${probes + 1}`);
    await service.ingestQueue.resume();
    await waitFor(async () => (await service.ingestQueue.getWaitingCount()) === 0, 'the backlog drains');
    await sendUntilAccepted(['e', 'f', 'g']);
    await waitFor(async () => (await commitLog(remote)).length === 7, 'seven commits');
    expect((await commitLog(remote)).map((c) => c.subject)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((n) => `CREATE v1 configmaps shop/${n}`));
  });

  it('503 with Retry-After past the memory bound', async () => {
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory', String(Math.floor(used * 1.02)));
    // This service's first batch: its first reading, so it sees the bound just set.
    const refused = await post(['h']);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('30');
    const body = (await refused.json()) as { reason: string; error: string };
    expect(body.reason).toBe('memory');
    expect(body.error).toMatch(/^Valkey memory is at \d+% of maxmemory \(limit 90%\); retry later$/);
    // Nothing of it was stored.
    expect(Object.values(await service.ingestQueue.getJobCounts()).every((n) => n === 0)).toBe(true);
    await admin.config('SET', 'maxmemory', '0');
    await sendUntilAccepted(['h']);
    await waitFor(async () => (await commitLog(remote)).length === 1, 'one commit');
  });
});
