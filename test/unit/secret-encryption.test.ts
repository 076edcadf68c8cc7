// The pure parts of "Secrets you can restore": age key checks, the sealed envelope, the configuration of
// spec.encryption.sops, the file layout, the writer's SOPS pass, the write check, the reconcile diff and
// the Ready message.
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { emptyConfigObjects, resolveConfig, sealRecipients, type ConfigObjects } from '../../config/resolve-config.js';
import { GitTargetSchema } from '../../config/resource-schemas.js';
import type { WriteJob } from '../../core/contracts.js';
import { SealedValuesSchema, WriteJobSchema } from '../../core/contracts.js';
import { objectFilePath } from '../../core/path-layout.js';
import { REDACTED_VALUE } from '../../core/redact-secret.js';
import { sealSecretValues, secretValuesOf, unsealSecretValues, UnsealError, withSecretValues } from '../../core/sealed-values.js';
import { ageRecipientProblem, decryptSops, plainDocument, recipientOfIdentity, singleIdentity } from '../../core/sops/index.js';
import { diffTree } from '../../flows/reconcile/diff.js';
import { desiredStatus } from '../../kube/status/conditions.js';
import { toIngestJob } from '../../workers/ingest/filter-audit-event.js';
import { withSopsContents, type WriteEncryption } from '../../workers/write/sops-writes.js';
import { checkWrite } from '../../workers/write/validate-write.js';
import { auditEvent } from '../support/audit-events.js';

const apiVersion = 'gitopsreverser.io/v1alpha1' as const;
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('age keys, checked synchronously', () => {
  it('derives the same recipient as the age library and refuses what is no key', async () => {
    const identity = await generateX25519Identity();
    expect(recipientOfIdentity(identity)).toEqual({ ok: true, recipient: await identityToRecipient(identity) });
    expect(ageRecipientProblem(await identityToRecipient(identity))).toBeUndefined();
    expect(ageRecipientProblem('age1notakey')).toMatch(/bech32/);
    expect(ageRecipientProblem('ssh-ed25519 AAAA')).toMatch(/must begin with age1/);
    const broken = identity.slice(0, -1) + (identity.endsWith('Q') ? 'P' : 'Q');
    expect(recipientOfIdentity(broken)).toEqual({ ok: false, problem: 'is not a valid age identity (bad checksum or length)' });
    expect(recipientOfIdentity('hello').ok).toBe(false);
    expect(singleIdentity(`# created: now\n# public key: x\n${identity}\n`)).toEqual({ ok: true, identity });
    expect(singleIdentity(`${identity}\n${identity}\n`).ok).toBe(false);
  });
});

describe('sealed values', () => {
  it('seal for recipients, open with an identity, never with another', async () => {
    const [a, b] = [await generateX25519Identity(), await generateX25519Identity()];
    const values = { data: { password: b64('pw') }, stringData: { token: 't' } };
    const sealed = await sealSecretValues(values, [await identityToRecipient(a)]);
    expect(SealedValuesSchema.parse(sealed)).toEqual(sealed);
    expect(sealed.ciphertext).not.toContain(b64('pw'));
    expect(await unsealSecretValues(sealed, [a])).toEqual(values);
    await expect(unsealSecretValues(sealed, [b])).rejects.toBeInstanceOf(UnsealError);
  });

  it('takes values only of a Secret itself, and puts them back by the keys the object has', () => {
    expect(secretValuesOf({ kind: 'ConfigMap', apiVersion: 'v1', data: { a: 'b' } })).toBeUndefined();
    expect(secretValuesOf({ kind: 'Secret', apiVersion: 'v1', data: { a: 'YQ==', n: 1 } })).toEqual({ data: { a: 'YQ==' } });
    const object = { kind: 'Secret', data: { a: REDACTED_VALUE, b: REDACTED_VALUE, c: REDACTED_VALUE } };
    expect(withSecretValues(object, { data: { a: 'new' } }, { data: { b: 'old' } })).toEqual({ kind: 'Secret', data: { a: 'new', b: 'old', c: REDACTED_VALUE } });
  });

  it('the webhook filter hands a Secret\'s values to the caller only when asked, and stores them REDACTED', () => {
    const ev = auditEvent('create', { apiVersion: 'v1', kind: 'Secret', resource: 'secrets', namespace: 'ns', name: 's', body: { data: { k: b64('v') } } }, { user: 'u' });
    const plain = toIngestJob('c1', ev as never);
    expect(plain.keep && 'secretValues' in plain).toBe(false);
    const kept = toIngestJob('c1', ev as never, { keepSecretValues: true });
    expect(kept.keep && kept.secretValues).toEqual({ data: { k: b64('v') } });
    expect(kept.keep && kept.job.object?.data).toEqual({ k: REDACTED_VALUE });
  });
});

describe('spec.encryption.sops in the configuration', () => {
  const objects = async (encryption: unknown, keyText?: string): Promise<ConfigObjects> => ({
    ...emptyConfigObjects(),
    ClusterProvider: [{ apiVersion, kind: 'ClusterProvider', metadata: { name: 'c1' }, spec: { watch: { enabled: true, auditJoinGraceSeconds: 5 }, qps: 20, burst: 40 } }],
    GitProvider: [{ apiVersion, kind: 'GitProvider', metadata: { name: 'repo', namespace: 'team' }, spec: { url: '/tmp/repo.git', allowedBranches: ['main'] } }],
    GitTarget: [GitTargetSchema.parse({ apiVersion, kind: 'GitTarget', metadata: { name: 't', namespace: 'team' }, spec: { providerRef: { name: 'repo' }, branch: 'main', clusterProviderRef: { name: 'c1' }, encryption } })],
    Secret: keyText === undefined ? [] : [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'key', namespace: 'team' }, stringData: { 'age.agekey': keyText } }],
  });

  it('resolves the identity, its recipient and every recipient; without encryption nothing changes', async () => {
    const identity = await generateX25519Identity();
    const flux = await identityToRecipient(await generateX25519Identity());
    const { config, problems } = resolveConfig(await objects({ sops: { ageRecipients: [flux], keySecretRef: { name: 'key' } } }, `# key\n${identity}\n`));
    expect(problems).toEqual([]);
    const own = await identityToRecipient(identity);
    expect(config.targets.get('team/t')!.encryption).toEqual({ identity, identityRecipient: own, recipients: [flux, own] });
    expect(sealRecipients(config)).toEqual([own]);
    const none = resolveConfig(await objects(undefined));
    expect(none.config.targets.get('team/t')!.encryption).toBeUndefined();
    expect(sealRecipients(none.config)).toEqual([]);
  });

  it('refuses bad keys naming object and field, and leaves the target out', async () => {
    const bad = resolveConfig(await objects({ sops: { ageRecipients: ['age1nope'], keySecretRef: { name: 'key' } } }, 'not a key'));
    expect(bad.problems.map((p) => [p.kind, p.key, p.field, p.reason])).toEqual([
      ['GitTarget', 'team/t', 'spec.encryption.sops.ageRecipients[0]', 'InvalidAgeKey'],
      ['GitTarget', 'team/t', 'spec.encryption.sops.keySecretRef.key', 'InvalidAgeKey'],
    ]);
    expect(bad.problems.map((p) => p.message).join(' ')).not.toContain('not a key');
    expect(bad.config.targets.has('team/t')).toBe(false);
    const missing = resolveConfig(await objects({ sops: { keySecretRef: { name: 'key' } } }));
    expect(missing.problems.map((p) => [p.field, p.reason, p.message])).toEqual([['spec.encryption.sops.keySecretRef', 'SecretNotFound', 'Secret team/key not found']]);
  });

  it("says in a Ready target's message whether Secrets are redacted or encrypted", () => {
    const obj = { kind: 'GitTarget' as const, key: 'team/t', name: 't', namespace: 'team', generation: 1 };
    const message = (secrets: 'redacted' | { encryptedFor: number }) => desiredStatus(obj as never, { problems: [], now: new Date(), secrets }).conditions[0]!.message;
    expect(message('redacted')).toMatch(/Secret values are redacted/);
    expect(message({ encryptedFor: 2 })).toMatch(/sops\.yaml, encrypted with SOPS for 2 age recipient/);
  });
});

describe('the file layout and the write check', () => {
  const id = { cluster: 'c1', group: '', version: 'v1', resource: 'secrets', namespace: 'ns', name: 'db' };
  it('a Secret of a target with encryption is {name}.sops.yaml; everything else keeps {name}.yaml', () => {
    expect(objectFilePath('base', id)).toBe('base/ns/secrets/db.yaml');
    expect(objectFilePath('base', id, { encrypted: true })).toBe('base/ns/secrets/db.sops.yaml');
    expect(objectFilePath('base', { ...id, resource: 'configmaps' }, { encrypted: true })).toBe('base/ns/configmaps/db.yaml');
  });

  it('refuses a .sops.yaml path or sealed values for a target without encryption', async () => {
    const sealed = await sealSecretValues({ data: { a: 'b' } }, [await identityToRecipient(await generateX25519Identity())]);
    const job: WriteJob = WriteJobSchema.parse({
      eventKey: 'c1_a', clusterId: 'c1', auditID: 'a', target: 'ns/t', identity: id, operation: 'CREATE',
      filePath: 'base/ns/secrets/db.sops.yaml', content: 'x', resourceVersion: '1', author: { name: 'u', email: 'u@c1.cluster.local' }, stageTimestamp: '', sealedValues: sealed,
    });
    const partition = { id: 'p', branch: 'main' };
    const target = { key: 'ns/t', path: 'base', clusterProvider: 'c1', partition };
    const ctx = (encryption?: WriteEncryption) => ({ partition, committerEmail: 'svc@x', targets: new Map([['ns/t', { ...target, ...(encryption ? { encryption } : {}) }]]) });
    expect(checkWrite(job, ctx({ identity: 'x', recipients: [] }))).toBeUndefined();
    const refused = checkWrite(job, ctx());
    expect(refused?.message).toMatch(/is not the path of identity/);
    expect(refused?.message).toMatch(/sealedValues on a write for target "ns\/t", which has no spec.encryption/);
  });
});

describe("the writer's SOPS pass", () => {
  it('seals on top of the previous file: same values give the same bytes, a later write in the batch builds on the earlier one', async () => {
    const identity = await generateX25519Identity();
    const encryption: WriteEncryption = { identity, recipients: [await identityToRecipient(identity)] };
    const content = 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: ns\ndata:\n  a: REDACTED\n  b: REDACTED\n';
    const job = (rv: string, i: number): WriteJob => ({
      eventKey: `c1_${i}`, clusterId: 'c1', auditID: String(i), target: 'ns/t', identity: { cluster: 'c1', group: '', version: 'v1', resource: 'secrets', namespace: 'ns', name: 'db' },
      operation: 'UPDATE', filePath: 'ns/secrets/db.sops.yaml', content, resourceVersion: rv, author: { name: 'u', email: 'u@x' }, stageTimestamp: '',
      sealedValues: { format: 'age-json-v1', recipients: ['r'], ciphertext: 'AA==' },
    });
    const values = [{ data: { a: 'MQ==', b: 'Mg==' } }, { data: { a: 'MQ==', b: 'Mg==' } }, { data: { a: 'Mw==', b: 'Mg==' } }];
    const pass = (previous: Map<string, string>) => ({ encryptionOf: () => encryption, valuesOf: (i: number) => values[i], known: new Map<string, string>(), previousOf: async () => previous, unreadable: () => undefined });
    const first = await withSopsContents([job('1', 0), job('2', 1), job('3', 2)], [0, 1, 2], pass(new Map()));
    expect(first[1]!.content).toBe(first[0]!.content);
    expect(first[2]!.content).not.toBe(first[1]!.content);
    expect(plainDocument(await decryptSops(first[2]!.content!, [identity])).data).toEqual({ a: 'Mw==', b: 'Mg==' });
    // Only the changed value's ciphertext changed.
    const line = (t: string, key: string) => t.split('\n').find((l) => l.trimStart().startsWith(`${key}:`));
    expect(line(first[2]!.content!, 'b')).toBe(line(first[0]!.content!, 'b'));
    // Against the tree: the same values are the same bytes (no commit).
    const again = await withSopsContents([job('4', 1)], [1], pass(new Map([['ns/secrets/db.sops.yaml', first[0]!.content!]])));
    expect(again[0]!.content).toBe(first[0]!.content);
    // A write without sealed values (watch mode) keeps the values of the file before it.
    const { sealedValues: _s, ...unsealed } = job('5', 9);
    const kept = await withSopsContents([unsealed], [9], pass(new Map([['ns/secrets/db.sops.yaml', first[2]!.content!]])));
    expect(kept[0]!.content).toBe(first[2]!.content);
    expect(parse(kept[0]!.content!).data.a).toMatch(/^ENC\[/);
  });
});

describe('the reconcile diff beside SOPS files', () => {
  it('adds no REDACTED twin of a Secret kept as .sops.yaml, and prunes a .sops.yaml only when its Secret is gone', () => {
    const tree = new Map([
      ['b/ns/secrets/kept.sops.yaml', 'x'],
      ['b/ns/secrets/gone.sops.yaml', 'y'],
    ]);
    const findings = new Map([['b/ns/secrets/kept.yaml', { rv: '5', content: 'redacted' }]]);
    const diff = diffTree({ findings, tree, basePath: 'b', prune: 'Always', snapshotRv: '5', listedDirectory: () => true });
    expect(diff.created).toEqual([]);
    expect(diff.deleted.map((d) => d.path)).toEqual(['b/ns/secrets/gone.sops.yaml']);
  });
});
