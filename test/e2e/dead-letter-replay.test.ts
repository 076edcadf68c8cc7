// A poison event (the remote's hook always refuses its file) becomes a dead letter after bounded
// attempts while the partition goes on; an operator replays it through the API once the cause is fixed;
// and a replayed event older than what the file holds now changes nothing.
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, treeFiles, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const cm = (name: string, v: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v } } });
const POISON_FILE = 'clusters/c1/shop/configmaps/locked.yaml';

describe('dead letters and replay', () => {
  let valkey: TestValkey;
  let service: TestService;
  let readOnly: TestService;
  let remote = '';

  beforeAll(async () => {
    valkey = await startTestValkey();
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))), {
      dashboardReadOnly: false,
      writeAttempts: 3,
      writeBackoffMs: 100,
    });
    readOnly = await startTestService(valkey.url, async (dir) => singleClusterConfig(await createBareRemote(dir)));
  });
  afterAll(async () => {
    await service?.close();
    await readOnly?.close();
    await valkey?.stop();
  });

  const post = (events: Record<string, unknown>[]) => postToC1(service.url, events);
  const replay = (url: string, body: unknown) =>
    fetch(`${url}/admin/api/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('isolates poison events, replays them when fixed, and a stale replay changes nothing', async () => {
    const hook = join(remote, 'hooks', 'pre-receive');
    await writeFile(hook, `#!/bin/sh\nwhile read old new ref; do\n  range="$new"; [ "$old" != 0000000000000000000000000000000000000000 ] && range="$old..$new"\n  git log --format= --name-only $range | grep -q '/locked' && { echo "policy: locked objects are frozen" >&2; exit 1; }\ndone\nexit 0\n`);
    await chmod(hook, 0o755);
    // Made in this order (resourceVersions grow with it): two poison events among three good ones.
    const events = [
      auditEvent('create', cm('a', '1'), { user: 'alice' }),
      auditEvent('create', cm('locked', 'v1'), { user: 'mallory' }),
      auditEvent('create', cm('b', '1'), { user: 'bob' }),
      auditEvent('create', cm('locked-too', 'v1'), { user: 'mallory' }),
      auditEvent('create', cm('c', '1'), { user: 'carol' }),
    ];
    const [, poison, , poison2] = events as [unknown, { auditID: string }, unknown, { auditID: string }];
    expect((await post(events)).status).toBe(200);

    const [queue] = [...service.writeQueues.values()];
    await waitFor(async () => (await queue!.getFailedCount()) === 2 && (await commitLog(remote)).length === 3, 'the poison dead-lettered, the others committed');
    const dead = Object.fromEntries((await queue!.getFailed()).map((j) => [j.data.auditID, j]));
    expect(dead[poison.auditID]!.attemptsMade).toBe(3);
    expect(dead[poison.auditID]!.failedReason).toContain(`the remote refused the commit of CREATE ${POISON_FILE} (audit ID ${poison.auditID})`);
    expect(dead[poison.auditID]!.failedReason).toContain('policy: locked objects are frozen');
    expect((await commitLog(remote)).map((c) => c.subject)).toEqual(['CREATE v1 configmaps shop/a', 'CREATE v1 configmaps shop/b', 'CREATE v1 configmaps shop/c']);

    // Read-only dashboards refuse operator actions; bad requests get a clear error.
    expect((await replay(readOnly.url, { queue: queue!.name })).status).toBe(403);
    expect(await (await replay(service.url, { queue: 'nope' })).json()).toEqual({ error: 'no queue named "nope"', reason: 'not-found' });
    expect((await replay(service.url, { jobs: [] })).status).toBe(400);

    // The operator fixes the cause; meanwhile a newer change of `locked` arrived and is committed.
    await rm(hook);
    expect((await post([auditEvent('update', cm('locked', 'v2'), { user: 'alice' })])).status).toBe(200);
    await waitFor(async () => (await commitLog(remote)).length === 4, 'the newer change committed');

    // Replay every dead letter: `locked-too` is committed; the old `locked` event is stale and changes nothing.
    const res = (await (await replay(service.url, { queue: queue!.name })).json()) as { replayed: string[]; skipped: unknown[] };
    expect(res.replayed.sort()).toEqual([dead[poison.auditID]!.id, dead[poison2.auditID]!.id].sort());
    await waitFor(async () => (await queue!.getCompletedCount()) === 6, 'both replays processed');
    expect((await queue!.getJob(dead[poison.auditID]!.id!))!.returnvalue).toMatchObject({ outcome: 'unchanged', reason: 'stale' });
    expect((await queue!.getJob(dead[poison2.auditID]!.id!))!.returnvalue).toMatchObject({ outcome: 'committed' });
    expect(await commitLog(remote)).toHaveLength(5);
    const files = await treeFiles(remote);
    expect(files.get(POISON_FILE)).toContain('v: v2');
    expect(files.get('clusters/c1/shop/configmaps/locked-too.yaml')).toContain('v: v1');
  });
});
