// The webhook acknowledges only what Valkey stored: while the server does not answer, a batch gets 503
// with Retry-After; the API server's retry after the server is back is committed exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { ownValkeySkipReason, startTestValkey, type TestValkey } from '../support/valkey-server.js';

const skip = ownValkeySkipReason('stopping Valkey (SIGSTOP)');

const spec = (name: string, v: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v } } });

describe.skipIf(skip !== undefined)('webhook while Valkey does not answer', () => {
  let valkey: TestValkey;
  let service: TestService;
  let remote = '';

  beforeAll(async () => {
    valkey = await startTestValkey();
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))), { storeTimeoutMs: 500 });
  });
  afterAll(async () => {
    valkey?.server?.process.kill('SIGCONT');
    await service?.close();
    await valkey?.stop();
  });

  const post = (items: Record<string, unknown>[]) => postToC1(service.url, items);

  it('answers 503 with Retry-After, and the retried batch is committed once', async () => {
    const first = [auditEvent('create', spec('a', '1'), { user: 'alice' })];
    expect((await post(first)).status).toBe(200);
    await waitFor(async () => (await commitLog(remote)).length === 1, 'first commit');

    const batch = [auditEvent('create', spec('b', '1'), { user: 'bob' }), auditEvent('create', spec('c', '1'), { user: 'carol' })];
    valkey.server!.process.kill('SIGSTOP'); // the server hangs: no answer, no error
    const refused = await post(batch);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toEqual({
      reason: 'store-failed',
      error: 'could not store the events, retry later: Valkey did not answer within 500 ms',
    });
    valkey.server!.process.kill('SIGCONT');

    expect((await post(batch)).status).toBe(200); // the API server retries the batch
    // A later event is committed after anything the refused batch could have left behind.
    expect((await post([auditEvent('create', spec('d', '1'), { user: 'dave' })])).status).toBe(200);
    await waitFor(async () => (await commitLog(remote)).some((c) => c.subject === 'CREATE v1 configmaps shop/d'), 'the commit of d');
    const subjects = (await commitLog(remote)).map((c) => c.subject);
    expect(subjects).toEqual(['CREATE v1 configmaps shop/a', 'CREATE v1 configmaps shop/b', 'CREATE v1 configmaps shop/c', 'CREATE v1 configmaps shop/d']);
  });
});
