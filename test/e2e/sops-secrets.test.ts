// Secrets you can restore, end to end through the running service's webhook, a real Valkey and a real Git
// remote: a GitTarget with spec.encryption.sops gets each Secret as `{name}.sops.yaml` that sops-age and
// core/sops decrypt to the exact values (with the service's identity and with another recipient's), a
// changed value changes the file once, an unchanged Secret makes no commit, a delete removes the file;
// a target without encryption in the same repository still gets REDACTED. No value, nor its base64, is
// anywhere in the Git history, in any Valkey key, or in the service's log lines.
import { Writable } from 'node:stream';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { Valkey } from 'iovalkey';
import { pino } from 'pino';
import { decryptSops as sopsAgeDecrypt } from 'sops-age';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { decryptSops, plainDocument } from '../../core/sops/index.js';
import { REDACTED_VALUE } from '../../core/redact-secret.js';
import { auditEvent, eventList, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, git, treeFiles, waitFor } from '../support/git-repos.js';
import { startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const PASSWORD_1 = 'hunter2-first-9f3a';
const PASSWORD_2 = 'rotated-second-77b1';
const USER = 'admin-user-55c2';
const PLAINTEXTS = [PASSWORD_1, PASSWORD_2, USER];
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** Every form a value could leak in: as it is and as the base64 a Secret's data holds. */
const FORBIDDEN = PLAINTEXTS.flatMap((p) => [p, b64(p)]);

const ENC_FILE = 'clusters/enc/shop/secrets/db.sops.yaml';
const PLAIN_FILE = 'clusters/plain/shop/secrets/db.yaml';

function configYaml(remote: string, serviceKey: string, fluxRecipient: string): string {
  return `
apiVersion: v1
kind: Secret
metadata: { name: tokens, namespace: gitops-reverser }
stringData: { c1: t0ken-c1 }
---
apiVersion: v1
kind: Secret
metadata: { name: sops-age, namespace: shop }
stringData:
  age.agekey: |
    # created: by the test
    ${serviceKey}
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: c1 }
spec: { audit: { tokenSecretRef: { name: tokens, namespace: gitops-reverser, key: c1 } } }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitProvider
metadata: { name: repo, namespace: shop }
spec: { url: ${JSON.stringify(remote)}, allowedBranches: ["main"] }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitTarget
metadata: { name: enc, namespace: shop }
spec:
  providerRef: { name: repo }
  branch: main
  path: clusters/enc
  clusterProviderRef: { name: c1 }
  encryption: { sops: { ageRecipients: [${fluxRecipient}], keySecretRef: { name: sops-age } } }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: WatchRule
metadata: { name: shop, namespace: shop }
spec:
  targetRef: { name: enc }
  rules: [{ operations: ["*"], apiGroups: [""], resources: [secrets, configmaps] }]
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitProvider
metadata: { name: repo, namespace: ops }
spec: { url: ${JSON.stringify(remote)}, allowedBranches: ["main"] }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitTarget
metadata: { name: plain, namespace: ops }
spec: { providerRef: { name: repo }, branch: main, path: clusters/plain, clusterProviderRef: { name: c1 } }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterWatchRule
metadata: { name: plain-secrets }
spec:
  targetRef: { name: plain, namespace: ops }
  rules: [{ operations: ["*"], apiGroups: [""], resources: [secrets] }]
`;
}

const secret = (password: string): ObjectSpec => ({
  apiVersion: 'v1',
  kind: 'Secret',
  resource: 'secrets',
  namespace: 'shop',
  name: 'db',
  labels: { app: 'db' },
  body: { type: 'Opaque', data: { password: b64(password), user: b64(USER) } },
});
const marker = (n: number): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name: `marker-${n}`, body: { data: { n: String(n) } } });

describe('Secrets you can restore: SOPS files through the running service', () => {
  let valkey: TestValkey;
  let service: TestService;
  let remote: string;
  let serviceKey: string;
  let fluxKey: string;
  const logLines: string[] = [];

  const post = async (events: Record<string, unknown>[]) => {
    const res = await fetch(`${service.url}/audit-webhook/c1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer t0ken-c1' },
      body: JSON.stringify(eventList(events)),
    });
    expect(res.status).toBe(200);
  };
  const waitForFile = (path: string, present = true) =>
    waitFor(async () => (await treeFiles(remote)).has(path) === present, `${path} ${present ? 'written' : 'removed'}`);

  beforeAll(async () => {
    valkey = await startTestValkey();
    serviceKey = await generateX25519Identity();
    fluxKey = await generateX25519Identity();
    const fluxRecipient = await identityToRecipient(fluxKey);
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    });
    service = await startTestService(valkey.url, async (dir) => configYaml((remote = await createBareRemote(dir)), serviceKey, fluxRecipient), {
      logger: pino({ level: 'debug' }, sink),
    });
  }, 60_000);
  afterAll(async () => {
    await service?.close();
    await valkey?.stop();
  });

  it('create, change one value, update without a change, delete: one commit per effective change, values restorable', async () => {
    // Create.
    await post([auditEvent('create', secret(PASSWORD_1), { user: 'alice' })]);
    await waitForFile(ENC_FILE);
    await waitForFile(PLAIN_FILE);
    let files = await treeFiles(remote);
    expect(files.has('clusters/enc/shop/secrets/db.yaml')).toBe(false);
    const created = files.get(ENC_FILE)!;
    for (const key of [serviceKey, fluxKey]) {
      const doc = plainDocument(await decryptSops(created, [key]));
      expect(doc.data).toEqual({ password: b64(PASSWORD_1), user: b64(USER) });
      expect(doc.metadata).toEqual({ name: 'db', namespace: 'shop', labels: { app: 'db' } });
    }
    const viaSopsAge = (await sopsAgeDecrypt(created, { secretKey: fluxKey, fileType: 'yaml' })) as Record<string, unknown>;
    expect(viaSopsAge.data).toEqual({ password: b64(PASSWORD_1), user: b64(USER) });
    // A target without encryption, same repository: REDACTED as always.
    expect((parseYaml(files.get(PLAIN_FILE)!) as { data: unknown }).data).toEqual({ password: REDACTED_VALUE, user: REDACTED_VALUE });

    // One value changes.
    await post([auditEvent('update', secret(PASSWORD_2), { user: 'bob' })]);
    await waitFor(async () => (await treeFiles(remote)).get(ENC_FILE) !== created, 'the changed Secret written');
    files = await treeFiles(remote);
    const updated = files.get(ENC_FILE)!;
    expect(plainDocument(await decryptSops(updated, [serviceKey])).data).toEqual({ password: b64(PASSWORD_2), user: b64(USER) });
    const viaSopsAge2 = (await sopsAgeDecrypt(updated, { secretKey: serviceKey, fileType: 'yaml' })) as Record<string, unknown>;
    expect(viaSopsAge2.data).toEqual({ password: b64(PASSWORD_2), user: b64(USER) });
    // The unchanged value keeps its ciphertext: the diff shows which value changed.
    const userLine = (text: string) => text.split('\n').find((l) => l.trimStart().startsWith('user:'));
    expect(userLine(updated)).toBe(userLine(created));

    // An update that changes nothing (a new resourceVersion, the same content), then a marker behind it.
    await post([auditEvent('update', secret(PASSWORD_2), { user: 'carol' }), auditEvent('create', marker(1), { user: 'carol' })]);
    await waitForFile('clusters/enc/shop/configmaps/marker-1.yaml');
    expect((await treeFiles(remote)).get(ENC_FILE)).toBe(updated);

    // Delete.
    await post([auditEvent('delete', secret(PASSWORD_2), { user: 'dave' })]);
    await waitForFile(ENC_FILE, false);
    await waitForFile(PLAIN_FILE, false);

    const log = await commitLog(remote);
    // enc: create, update, delete; plain: create, delete (its REDACTED file did not change); the marker.
    expect(log.map((c) => `${c.author} ${c.subject}`)).toEqual([
      'alice CREATE v1 secrets shop/db',
      'alice CREATE v1 secrets shop/db',
      'bob UPDATE v1 secrets shop/db',
      'carol CREATE v1 configmaps shop/marker-1',
      'dave DELETE v1 secrets shop/db',
      'dave DELETE v1 secrets shop/db',
    ]);
  });

  it('no value, nor its base64, in the Git history, in Valkey or in the log lines', async () => {
    const history = await git(remote, 'log', '--all', '-p', '--format=%H%n%an%n%B');
    const mirrors = await git(remote, 'rev-list', '--all', '--objects');
    for (const text of FORBIDDEN) {
      expect(history).not.toContain(text);
      expect(mirrors).not.toContain(text);
    }

    const client = new Valkey(valkey.url);
    try {
      const dump: string[] = [];
      for (const key of await client.keys('*')) {
        dump.push(key);
        const type = await client.type(key);
        if (type === 'string') dump.push((await client.get(key)) ?? '');
        else if (type === 'hash') dump.push(JSON.stringify(await client.hgetall(key)));
        else if (type === 'list') dump.push(JSON.stringify(await client.lrange(key, 0, -1)));
        else if (type === 'set') dump.push(JSON.stringify(await client.smembers(key)));
        else if (type === 'zset') dump.push(JSON.stringify(await client.zrange(key, 0, -1, 'WITHSCORES')));
        else if (type === 'stream') dump.push(JSON.stringify(await client.xrange(key, '-', '+')));
      }
      const all = dump.join('\n');
      // The sealed envelopes are there (proof the dump saw the jobs), the values are not.
      expect(all).toContain('age-json-v1');
      for (const text of FORBIDDEN) expect(all).not.toContain(text);
    } finally {
      client.disconnect();
    }

    const logs = logLines.join('');
    expect(logs).toContain('audit batch stored');
    for (const text of FORBIDDEN) expect(logs).not.toContain(text);
  });
});
