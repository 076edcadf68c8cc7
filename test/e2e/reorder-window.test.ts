// Batches that overtake each other (an API server sends them concurrently): with the reorder window, the
// older changes that arrive later still get their commits, in resourceVersion order; without it (window 0)
// they are not skipped silently: each is a dead letter saying so, counted in the metric, the target's
// progress and the overview, and a replay of one acknowledges it without changing anything.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const spec = (v: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name: 'settings', body: { data: { v } } });

/** Four versions of one ConfigMap a second apart: the create and three updates, in resourceVersion order. */
function versions() {
  const start = Date.now() - 10_000;
  return ['1', '2', '3', '4'].map((v, i) => auditEvent(i === 0 ? 'create' : 'update', spec(v), { user: `user-${v}`, timestamp: new Date(start + i * 1000) }));
}

describe('reorder window', () => {
  let valkey: TestValkey;
  let service: TestService | undefined;
  let remote: string;
  beforeAll(async () => {
    valkey = await startTestValkey();
  });
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });
  afterAll(async () => {
    await valkey?.stop();
  });

  const start = (reorderWindowMs: number) =>
    startTestService(
      valkey.url,
      async (dir) => {
        remote = await createBareRemote(dir);
        return singleClusterConfig(remote);
      },
      { reorderWindowMs, reconcile: false },
    );
  const subjects = async () => (await commitLog(remote)).map((c) => `${c.author}: ${c.subject}`);

  it('commits every version in order when a batch of older changes arrives after a newer one', async () => {
    service = await start(1500);
    const [v1, v2, v3, v4] = versions();
    expect((await postToC1(service.url, [v1!, v4!])).status).toBe(200);
    // The batch with the older changes, stored 300 ms later (well inside the window).
    await new Promise((r) => setTimeout(r, 300));
    expect((await postToC1(service.url, [v2!, v3!])).status).toBe(200);
    await waitFor(async () => (await subjects()).length === 4, 'four commits');
    expect(await subjects()).toEqual([
      'user-1: CREATE v1 configmaps shop/settings',
      'user-2: UPDATE v1 configmaps shop/settings',
      'user-3: UPDATE v1 configmaps shop/settings',
      'user-4: UPDATE v1 configmaps shop/settings',
    ]);
    const queue = [...service.writeQueues.values()][0]!;
    expect((await queue.getJobCounts('failed')).failed).toBe(0);
  });

  it('without a window, an older change that arrives late is a dead letter, counted, never skipped silently', async () => {
    service = await start(0);
    const [v1, v2, v3, v4] = versions();
    expect((await postToC1(service.url, [v1!, v4!])).status).toBe(200);
    await waitFor(async () => (await subjects()).length === 2, 'the first batch committed');
    expect((await postToC1(service.url, [v2!, v3!])).status).toBe(200);
    const queue = [...service.writeQueues.values()][0]!;
    await waitFor(async () => (await queue.getJobCounts('failed')).failed === 2, 'two dead letters');
    expect(await subjects()).toEqual(['user-1: CREATE v1 configmaps shop/settings', 'user-4: UPDATE v1 configmaps shop/settings']);
    const failed = await queue.getFailed();
    expect(failed.map((j) => j.failedReason).sort()).toEqual(
      [v2!, v3!].map(
        (e) =>
          `out of order: UPDATE clusters/c1/shop/configmaps/settings.yaml at resourceVersion ${(e.responseObject as { metadata: { resourceVersion: string } }).metadata.resourceVersion} ` +
          `(audit ID ${e.auditID}) arrived after resourceVersion ${(v4!.responseObject as { metadata: { resourceVersion: string } }).metadata.resourceVersion} of it was committed; ` +
          'this version is not in the history (its content is in this job). Retry it to acknowledge: it then changes nothing',
      ).sort(),
    );
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toContain(`${service.prefix.replace(/[^A-Za-z0-9_]/g, '_')}_events_out_of_order_total{cluster="c1"} 2`);
    await waitFor(async () => {
      const overview = (await (await fetch(`${service!.url}/admin/api/overview`)).json()) as { targets: { outOfOrder: number }[] };
      return overview.targets[0]?.outOfOrder === 2;
    }, 'the overview counts them');
    // A replay acknowledges it: stale, nothing committed.
    await failed[0]!.retry('failed');
    await waitFor(async () => (await failed[0]!.getState()) === 'completed', 'the replay completed');
    expect((await queue.getJob(failed[0]!.id!))?.returnvalue).toMatchObject({ outcome: 'unchanged', reason: 'stale' });
    expect((await subjects()).length).toBe(2);
  });
});
