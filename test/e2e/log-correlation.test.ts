// The logs of one change, end to end: structured JSON lines in which the webhook's line (request id,
// audit IDs) and the writer's line (the same audit IDs, the pushed head) tie the request to its jobs and
// its commit; and no token or Secret value in any line.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const SECRET_VALUE = 'hunter2-do-not-log';

describe('log lines of one change', () => {
  let valkey: TestValkey;
  let service: TestService;
  let remote = '';
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];

  beforeAll(async () => {
    valkey = await startTestValkey();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          raw.push(line);
          lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))), {
      logger: pino({ level: 'info' }, sink),
    });
  });
  afterAll(async () => {
    await service?.close();
    await valkey?.stop();
  });

  it('ties the webhook request to its jobs and its commit by request id and audit IDs', async () => {
    const secret: ObjectSpec = { apiVersion: 'v1', kind: 'Secret', resource: 'secrets', namespace: 'shop', name: 'db', body: { stringData: { password: SECRET_VALUE } } };
    const config: ObjectSpec = { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name: 'app', body: { data: { a: '1' } } };
    const events = [auditEvent('create', secret, { user: 'alice' }), auditEvent('create', config, { user: 'bob' })];
    const res = await fetch(`${service.url}/audit-webhook/c1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer t0ken-c1', 'x-request-id': 'req-42' },
      body: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-42');
    await waitFor(async () => (await commitLog(remote).catch(() => [])).length === 2, 'two commits');
    await waitFor(async () => lines.some((l) => l.msg === 'batch written'), 'the writer logged its batch');

    const stored = lines.find((l) => l.msg === 'audit batch stored' && l.requestId === 'req-42');
    expect(stored).toMatchObject({ cluster: 'c1', accepted: 2, auditIDs: events.map((e) => e.auditID) });
    const written = lines.find((l) => l.msg === 'batch written');
    expect(written?.auditIDs).toEqual(expect.arrayContaining(events.map((e) => e.auditID)));
    const [head] = (await commitLog(remote)).slice(-1);
    expect(written?.head).toBe(head?.sha);

    // A hostile request id is not echoed or logged as given.
    const odd = await fetch(`${service.url}/audit-webhook/c1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer t0ken-c1', 'x-request-id': 'a b<script>' },
      body: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: [] }),
    });
    expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(raw.join('\n')).not.toContain(SECRET_VALUE);
    expect(raw.join('\n')).not.toContain(Buffer.from(SECRET_VALUE).toString('base64'));
    expect(raw.join('\n')).not.toContain('t0ken-c1');
  });
});
