// What an attacker holding one cluster's token can send, through the webhook of a running service: poison
// objects (huge, deep), names that escape the repository, requests that carry credentials, Secrets spelled
// or wrapped so as to slip past redaction, bodies that disagree with their objectRef to bypass
// allowedNamespaces. Each case proves the hostile part is refused or made harmless, and that what was sent
// around it still becomes commits.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { demoConfigYaml } from '../../config/demo-config.js';
import { openConnection } from '../../queues/connection.js';
import { auditEvent, eventList, type ObjectSpec } from '../support/audit-events.js';
import { createBareRemote, git, treeFiles, waitFor } from '../support/git-repos.js';
import { startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const PLAINTEXT = 'hunter2-hostile-plaintext';
const B64 = Buffer.from(PLAINTEXT).toString('base64');

/** c1 takes everything into clusters/c1; c2 (allowedNamespaces: [shop]) into clusters/c2. */
function twoClusters(remote: string): string {
  const c2 = demoConfigYaml(remote, { cluster: 'c2', token: 't0ken-c2', path: 'clusters/c2' }).replace('spec:\n  audit:', 'spec:\n  allowedNamespaces: [shop]\n  audit:');
  return `${demoConfigYaml(remote, { cluster: 'c1', token: 't0ken-c1', path: 'clusters/c1' })}---\n${c2}`;
}

interface Answer {
  status: number;
  body: { error?: string; reason?: string; accepted?: number; skipped?: Record<string, number>; refused?: Record<string, number>; refusals?: { index: number; reason: string; error: string }[] };
}

/** A create by mallory as the API server would report it, with exactly the objectRef and body given. */
const event = (auditID: string, objectRef: Record<string, unknown>, responseObject: Record<string, unknown>) => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'RequestResponse',
  auditID,
  stage: 'ResponseComplete',
  requestURI: `/api/v1/namespaces/shop/${String(objectRef.resource)}`,
  verb: 'create',
  user: { username: 'mallory' },
  objectRef,
  responseStatus: { code: 201 },
  responseObject,
  stageTimestamp: new Date().toISOString(),
});

const cm = (name: string, namespace = 'shop', data: Record<string, unknown> = { a: '1' }): ObjectSpec => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  resource: 'configmaps',
  namespace,
  name,
  body: { data },
});

describe('hostile input through the webhook', () => {
  let valkey: TestValkey;
  let service: TestService;
  let remote: string;
  const logLines: string[] = [];

  beforeAll(async () => {
    valkey = await startTestValkey();
    const logs = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString('utf8'));
        done();
      },
    });
    service = await startTestService(
      valkey.url,
      async (dir) => {
        remote = await createBareRemote(dir);
        return twoClusters(remote);
      },
      { logger: pino({ level: 'debug' }, logs), reconcile: false },
    );
  });
  afterAll(async () => {
    await service?.close();
    await valkey?.stop();
  });

  async function post(events: Record<string, unknown>[], cluster = 'c1'): Promise<Answer> {
    const res = await fetch(`${service.url}/audit-webhook/${cluster}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer t0ken-${cluster}` },
      body: JSON.stringify(eventList(events)),
    });
    return { status: res.status, body: (await res.json()) as Answer['body'] };
  }
  const files = () => treeFiles(remote);
  const waitForFiles = (paths: string[]) =>
    waitFor(async () => {
      const tree = await files();
      return paths.every((p) => tree.has(p));
    }, `files ${paths.join(', ')} in Git`);

  it('refuses an event of five million zeros with 400 naming the bound; the events around it are committed; memory stays bounded', async () => {
    const before = auditEvent('create', cm('before-poison'), { user: 'alice' });
    // One copy of the array (10 MB of JSON) fits the body limit of 10 MiB: no requestObject, no last-applied.
    const poison = auditEvent('create', cm('poison'), { user: 'mallory' });
    delete poison.requestObject;
    const object = poison.responseObject as { data: unknown; metadata: { annotations?: unknown } };
    object.data = { k: new Array(5_000_000).fill(0) };
    delete object.metadata.annotations;
    const after = auditEvent('create', cm('after-poison'), { user: 'alice' });
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      const answer = await post([before, poison, after]);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ reason: 'object-too-many-values', accepted: 2, refused: { 'object-too-many-values': 1 } });
      expect(answer.body.refusals).toEqual([
        {
          index: 1,
          auditID: poison.auditID,
          reason: 'object-too-many-values',
          error: `items[1] (auditID ${poison.auditID}): the object has more than 200000 map keys and array elements in all (an array of 5000000 elements at data.k); the limit is EVENT_MAX_VALUES`,
        },
      ]);
      await waitForFiles(['clusters/c1/shop/configmaps/before-poison.yaml', 'clusters/c1/shop/configmaps/after-poison.yaml']);
    } finally {
      clearInterval(sampler);
    }
    expect((await files()).has('clusters/c1/shop/configmaps/poison.yaml')).toBe(false);
    const growthMiB = (peak - baseline) / 1024 / 1024;
    console.log(`poison event: RSS ${Math.round(baseline / 1048576)} MiB before, peak +${growthMiB.toFixed(0)} MiB`);
    expect(growthMiB).toBeLessThan(512);
    const health = await fetch(`${service.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('a poison job that reaches the router anyway (stored before these bounds, or written to Valkey) fails alone at once; the jobs around it are committed', async () => {
    const job = (name: string, data: Record<string, unknown>) => ({
      name: 'create',
      data: {
        clusterId: 'c1',
        auditID: `direct-${name}`,
        verb: 'create' as const,
        stageTimestamp: new Date().toISOString(),
        user: { username: 'alice' },
        objectRef: { resource: 'configmaps', namespace: 'shop', name, apiVersion: 'v1' },
        responseCode: 201,
        object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'shop', resourceVersion: '1' }, data },
      },
      opts: { jobId: `c1_direct-${name}` },
    });
    await service.ingestQueue.addBulk([job('direct-before', { a: '1' }), job('direct-poison', { k: new Array(5_000_000).fill(0) }), job('direct-after', { a: '2' })]);
    await waitForFiles(['clusters/c1/shop/configmaps/direct-before.yaml', 'clusters/c1/shop/configmaps/direct-after.yaml']);
    const poison = await service.ingestQueue.getJob('c1_direct-direct-poison');
    await waitFor(async () => (await poison!.getState()) === 'failed', 'the poison job to fail');
    const failed = await service.ingestQueue.getJob('c1_direct-direct-poison');
    expect(failed?.failedReason).toBe('event refused: the object has more than 200000 map keys and array elements in all (an array of 5000000 elements at data.k); the limit is EVENT_MAX_VALUES');
    expect(failed?.attemptsMade).toBe(1);
  });

  it('refuses events nested thousands of levels deep with 400, and stores the rest of their batch', async () => {
    // Written as text: JSON.stringify itself overflows the stack at these depths.
    const nestedJson = (levels: number) => `${'{"a":'.repeat(levels)}"leaf"${'}'.repeat(levels)}`;
    const deep = (name: string) => {
      const event = auditEvent('create', cm(name, 'shop', { k: 'v' }), { user: 'mallory' });
      (event.responseObject as Record<string, unknown>).spec = `@@${name}@@`;
      delete event.requestObject;
      return event;
    };
    const ok = auditEvent('create', cm('beside-deep'), { user: 'alice' });
    const body = JSON.stringify(eventList([deep('deep-4500'), ok, deep('deep-1000')]))
      .replace('"@@deep-4500@@"', nestedJson(4500))
      .replace('"@@deep-1000@@"', nestedJson(1000));
    const res = await fetch(`${service.url}/audit-webhook/c1`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer t0ken-c1' }, body });
    const answer = { status: res.status, body: (await res.json()) as Answer['body'] };
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ reason: 'object-too-deep', accepted: 1, refused: { 'object-too-deep': 2 } });
    expect(answer.body.refusals?.map((r) => r.index)).toEqual([0, 2]);
    expect(answer.body.refusals?.[0]?.error).toMatch(/the object is nested deeper than 100 levels \(at spec\.a\.a.*\); the limit is EVENT_MAX_DEPTH$/);
    await waitForFiles(['clusters/c1/shop/configmaps/beside-deep.yaml']);
  });

  it('refuses names taken from requestObject that would escape the path, as it refuses them in objectRef', async () => {
    const named = (name: string) => {
      const event = auditEvent('create', cm('x'), { user: 'mallory', code: 201 });
      delete event.responseObject;
      (event.objectRef as Record<string, unknown>).name = undefined;
      (event.requestObject as { metadata: Record<string, unknown> }).metadata.name = name;
      return event;
    };
    const ok = auditEvent('create', cm('beside-bad-names'), { user: 'alice' });
    const hostile = ['..', '.', 'nul\u0000byte', 'new\nline', 'n'.repeat(400)];
    const answer = await post([ok, ...hostile.map(named)]);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ reason: 'not-audit-event', accepted: 1, refused: { 'not-audit-event': 5 } });
    expect(answer.body.refusals?.map((r) => r.error.split(': ').slice(0, 2).join(': '))).toEqual(hostile.map((_, i) => `not an audit event: items[${i + 1}].requestObject.metadata.name`));
    await waitForFiles(['clusters/c1/shop/configmaps/beside-bad-names.yaml']);
  });

  it('never stores TokenReview, TokenRequest or access reviews, whatever the policy sends', async () => {
    const token = 'eyJhbGciOiJSUzI1NiJ9.stolen-bearer-token';
    const base = { kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'RequestResponse', stage: 'ResponseComplete', verb: 'create', user: { username: 'system:kube-apiserver' }, responseStatus: { code: 201 } };
    const events = [
      {
        ...base,
        auditID: 'tokenreview-1',
        requestURI: '/apis/authentication.k8s.io/v1/tokenreviews',
        objectRef: { resource: 'tokenreviews', apiGroup: 'authentication.k8s.io', apiVersion: 'v1' },
        requestObject: { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', spec: { token } },
        responseObject: { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: {}, spec: { token }, status: { authenticated: true } },
      },
      {
        ...base,
        auditID: 'tokenrequest-1',
        requestURI: '/api/v1/namespaces/shop/serviceaccounts/builder/token',
        objectRef: { resource: 'serviceaccounts', namespace: 'shop', name: 'builder', apiVersion: 'v1', subresource: 'token' },
        responseObject: { kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', metadata: { name: 'builder', namespace: 'shop' }, status: { token } },
      },
      {
        ...base,
        auditID: 'sar-1',
        requestURI: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        objectRef: { resource: 'subjectaccessreviews', apiGroup: 'authorization.k8s.io', apiVersion: 'v1' },
        requestObject: { kind: 'SubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', spec: { user: 'bob', extra: { 'proxy.example.com/token': [token] } } },
      },
    ];
    const answer = await post(events);
    expect(answer).toEqual({ status: 200, body: { received: 3, accepted: 0, skipped: { 'credential-request': 3 } } });
    expect(await valkeyKeysHolding(token)).toEqual([]);
    expect(logLines.join('')).not.toContain(token);
  });

  it('no Secret value reaches Git, Valkey, Bull Board or a log line, however the Secret is spelled or wrapped', async () => {
    const secretBody = (name: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace: 'shop',
        resourceVersion: '77',
        annotations: { 'kapp.k14s.io/original': JSON.stringify({ data: { password: B64 } }), 'example.com/note': PLAINTEXT },
        managedFields: [{ manager: 'kubectl', fieldsV1: { [`f:${PLAINTEXT}`]: {} } }],
      },
      type: 'Opaque',
      data: { password: B64 },
      hidden: { copy: PLAINTEXT },
    });
    const kept = [
      // kapp's full copy, any annotation, a field a Secret does not have, managedFields
      event('secret-annotations', { resource: 'secrets', namespace: 'shop', name: 'annotated', apiVersion: 'v1' }, secretBody('annotated')),
      // the core group spelled "core", in objectRef and in the body
      event('secret-core-spelling', { resource: 'secrets', namespace: 'shop', name: 'spelled', apiGroup: 'core', apiVersion: 'v1' }, { ...secretBody('spelled'), apiVersion: 'core/v1' }),
      // a List holding Secrets, sent as a ConfigMap
      event('secret-in-list', { resource: 'configmaps', namespace: 'shop', name: 'listed', apiVersion: 'v1' }, {
        apiVersion: 'v1',
        kind: 'List',
        metadata: { name: 'listed' },
        items: [{ ...secretBody('inner'), metadata: { name: 'inner' } }],
      }),
      // a ConfigMap whose managedFields carry a value
      event('cm-managed-fields', { resource: 'configmaps', namespace: 'shop', name: 'managed', apiVersion: 'v1' }, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'managed', namespace: 'shop', managedFields: [{ manager: 'x', fieldsV1: { [`f:${PLAINTEXT}`]: {} } }] },
        data: { a: '1' },
      }),
    ];
    const refused = event('secret-capital', { resource: 'Secrets', namespace: 'shop', name: 'capital', apiVersion: 'v1' }, secretBody('capital'));
    const answer = await post([...kept, refused]);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ accepted: 4, refused: { 'not-audit-event': 1 } });
    expect(answer.body.refusals?.[0]?.error).toBe('not an audit event: items[4].objectRef.resource: expected a lower-case resource name (a DNS label)');
    await waitForFiles([
      'clusters/c1/shop/secrets/annotated.yaml',
      'clusters/c1/shop/secrets/spelled.yaml',
      'clusters/c1/shop/configmaps/listed.yaml',
      'clusters/c1/shop/configmaps/managed.yaml',
    ]);
    const tree = await files();
    expect(tree.get('clusters/c1/shop/secrets/annotated.yaml')).toBe(
      // (type Opaque is the API server's default: files leave it out)
      'apiVersion: v1\nkind: Secret\nmetadata:\n  name: annotated\n  namespace: shop\ndata:\n  password: REDACTED\n',
    );
    // Git: every commit of every ref.
    const history = await git(remote, 'log', '--all', '-p');
    for (const text of [PLAINTEXT, B64]) {
      expect(history).not.toContain(text);
      expect(await valkeyKeysHolding(text)).toEqual([]);
      expect(logLines.join('')).not.toContain(text);
    }
    // Bull Board, as a viewer reads it: the data of every job of every queue.
    const queues = (await (await fetch(`${service.url}/admin/queues/api/queues?activeQueue=ingest&status=completed&page=1&jobsPerPage=100`)).text()) as string;
    expect(queues).not.toContain(PLAINTEXT);
    expect(queues).not.toContain(B64);
  });

  it('allowedNamespaces cannot be bypassed by a body that disagrees with its objectRef', async () => {
    const bodyIn = (namespace: string, name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, resourceVersion: '9' }, data: { stolen: 'yes' } });
    const answer = await post(
      [
        event('no-namespace', { resource: 'configmaps', name: 'a', apiVersion: 'v1' }, bodyIn('kube-system', 'a')),
        event('empty-namespace', { resource: 'configmaps', namespace: '', name: 'b', apiVersion: 'v1' }, bodyIn('kube-system', 'b')),
        event('other-namespace', { resource: 'configmaps', namespace: 'shop', name: 'c', apiVersion: 'v1' }, bodyIn('kube-system', 'c')),
        event('other-name', { resource: 'configmaps', namespace: 'shop', name: 'innocent', apiVersion: 'v1' }, bodyIn('shop', 'evil-other')),
        event('custom-type', { resource: 'widgets', apiGroup: 'example.com', name: 'w', apiVersion: 'v1' }, { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', namespace: 'kube-system' } }),
        event('honest', { resource: 'configmaps', namespace: 'shop', name: 'honest', apiVersion: 'v1' }, bodyIn('shop', 'honest')),
      ],
      'c2',
    );
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ accepted: 1, refused: { 'scope-mismatch': 2, 'identity-mismatch': 3 } });
    expect(answer.body.refusals?.map((r) => [r.index, r.reason])).toEqual([
      [0, 'scope-mismatch'],
      [1, 'scope-mismatch'],
      [2, 'identity-mismatch'],
      [3, 'identity-mismatch'],
      [4, 'identity-mismatch'],
    ]);
    await waitForFiles(['clusters/c2/shop/configmaps/honest.yaml']);
    const paths = [...(await files()).keys()].filter((p) => p.startsWith('clusters/c2/'));
    expect(paths).toEqual(['clusters/c2/shop/configmaps/honest.yaml']);
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    const name = `${service.prefix.replace(/[^A-Za-z0-9_]/g, '_')}_events_refused_total`;
    expect(metrics).toContain(`${name}{cluster="c2",reason="identity-mismatch"} 3`);
    expect(metrics).toContain(`${name}{cluster="c2",reason="scope-mismatch"} 2`);
  });

  /** The keys under the service's prefix whose value contains `text` anywhere. */
  async function valkeyKeysHolding(text: string): Promise<string[]> {
    const client = openConnection(valkey.url);
    const found: string[] = [];
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${service.prefix}*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const type = await client.type(key);
          let values: string[] = [];
          if (type === 'string') values = [(await client.get(key)) ?? ''];
          else if (type === 'hash') values = Object.values(await client.hgetall(key));
          else if (type === 'list') values = await client.lrange(key, 0, -1);
          else if (type === 'zset' || type === 'set') values = type === 'set' ? await client.smembers(key) : await client.zrange(key, 0, -1);
          else if (type === 'stream') values = (await client.xrange(key, '-', '+')).flatMap(([, fields]) => fields);
          if (values.some((v) => v.includes(text))) found.push(key);
        }
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
    return found;
  }
});
