// The writer against real sops output and against the readers that will consume its files: given the
// data key, IVs, age entries and time of a Flux vector, it writes that vector byte for byte; what it
// writes on its own opens with this reader (MAC checked) and with npm's sops-age; only `data` and
// `stringData` are encrypted; every encryption draws a new data key and new IVs.
import { readFileSync } from 'node:fs';
import { decryptSops as sopsAgeDecrypt } from 'sops-age';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { beforeAll, describe, expect, it } from 'vitest';
import { openDataKey, parseAgeIdentities } from '../../core/sops/age-keys.js';
import { decryptSops, parseSops, plainDocument } from '../../core/sops/decrypt.js';
import { encryptSecret, secretDocument } from '../../core/sops/encrypt-secret.js';
import { SopsInputError, SopsKeyError } from '../../core/sops/errors.js';
import { formatFloatF, formatFloatYaml, formatLastModified, lastModifiedAad, yamlTimestampText } from '../../core/sops/go-format.js';
import { SECRET_RULE } from '../../core/sops/rules.js';
import { fromPlain, type SopsMap } from '../../core/sops/tree.js';
import { writeSopsYaml } from '../../core/sops/write.js';
import { resolvePlain } from '../../core/sops/yaml-resolve.js';

const VECTORS = new URL('../fixtures/sops-vectors/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, VECTORS), 'utf8');

/** The IV of every encrypted value in a file, by the key the value sits under. */
function ivsOf(text: string): Map<string, Buffer> {
  const ivs = new Map<string, Buffer>();
  for (const m of text.matchAll(/^\s*([\w-]+): ENC\[AES256_GCM,data:[^,]+,iv:([^,]+),/gm)) ivs.set(m[1]!, Buffer.from(m[2]!, 'base64'));
  return ivs;
}

describe('the writer reproduces real sops files byte for byte', () => {
  it.each([
    {
      file: 'flux-kustomize-controller/global-secret.yaml',
      keys: 'flux-kustomize-controller/keys/age-global.txt',
      version: '3.10.2',
      plain: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'global-age-secret', namespace: 'default' },
        type: 'Opaque',
        stringData: { key: 'global-value' },
      },
    },
    {
      file: 'flux-kustomize-controller/algorithms-age-pq.yaml',
      keys: 'flux-kustomize-controller/keys/age-pq.txt',
      version: '3.12.1',
      plain: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'age-pq' }, stringData: { key: 'value' } },
    },
  ])('$file (sops $version)', async ({ file, keys, version, plain }) => {
    const text = read(file);
    const { metadata } = parseSops(text);
    const dataKey = await openDataKey(metadata.age, parseAgeIdentities(read(keys)));
    const ivs = ivsOf(text);
    const written = writeSopsYaml([secretDocument(plain)], {
      dataKey,
      age: metadata.age,
      lastModified: metadata.lastModified,
      rule: SECRET_RULE,
      iv: (aad) => ivs.get(aad.split(':').at(-2)!),
      macIv: ivs.get('mac')!,
      version,
    });
    expect(written).toBe(text);
  });
});

describe('encryptSecret', () => {
  let identity: string;
  let recipient: string;
  let second: string;
  let secondRecipient: string;
  beforeAll(async () => {
    identity = await generateX25519Identity();
    recipient = await identityToRecipient(identity);
    second = await generateX25519Identity();
    secondRecipient = await identityToRecipient(second);
  });

  const SECRET = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', namespace: 'shop', labels: { app: 'db', tier: 'yes' }, annotations: { 'example.com/n': '0123' } },
    type: 'Opaque',
    immutable: false,
    data: { password: Buffer.from('hunter2').toString('base64'), empty: '' },
    stringData: { 'config.yaml': 'user: app\nport: 5432\n', token: 'tok-123', '2024': 'numeric key', on: 'on' },
  };

  it('encrypts exactly the values under data and stringData, and reads back to the same object with its MAC', async () => {
    const now = new Date('2026-03-04T05:06:07.891Z');
    const text = await encryptSecret(SECRET, { recipients: [recipient], now });
    expect(text).toContain('lastmodified: "2026-03-04T05:06:07Z"');
    expect(text).toContain('encrypted_regex: ^(data|stringData)$\n  version: 3.12.1\n');
    expect(text).toMatch(/^apiVersion: v1\nkind: Secret\nmetadata:\n {2}name: db\n {2}namespace: shop\n {2}labels:\n {4}app: db\n {4}tier: "yes"\n/);
    expect(text).toContain('  password: ENC[AES256_GCM,data:');
    expect(text).toContain('  empty: ""\n');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain(Buffer.from('hunter2').toString('base64'));
    expect(text).not.toContain('tok-123');
    const decrypted = await decryptSops(text, [identity]);
    expect(plainDocument(decrypted)).toEqual(SECRET);
    const envelope = parseSops(text);
    expect(envelope.metadata.age.map((a) => a.recipient)).toEqual([recipient]);
    // Every encrypted value has a 32-byte IV, like sops.
    for (const m of text.matchAll(/iv:([^,]+),/g)) expect(Buffer.from(m[1]!, 'base64')).toHaveLength(32);
  });

  it('draws a new data key and new IVs each time', async () => {
    const a = await encryptSecret(SECRET, { recipients: [recipient] });
    const b = await encryptSecret(SECRET, { recipients: [recipient] });
    const keyA = await openDataKey(parseSops(a).metadata.age, [identity]);
    const keyB = await openDataKey(parseSops(b).metadata.age, [identity]);
    expect(Buffer.from(keyA).equals(Buffer.from(keyB))).toBe(false);
    const ivA = [...a.matchAll(/iv:([^,]+),/g)].map((m) => m[1]);
    const ivB = new Set([...b.matchAll(/iv:([^,]+),/g)].map((m) => m[1]));
    expect(ivA.some((iv) => ivB.has(iv))).toBe(false);
  });

  it('seals the data key to every recipient, post-quantum ones included', async () => {
    const pqIdentity = parseAgeIdentities(read('flux-kustomize-controller/keys/age-pq.txt'))[0]!;
    const pqRecipient = await identityToRecipient(pqIdentity);
    const text = await encryptSecret(SECRET, { recipients: [recipient, secondRecipient, pqRecipient] });
    const entries = parseSops(text).metadata.age;
    expect(entries.map((e) => e.recipient)).toEqual([recipient, secondRecipient, pqRecipient]);
    const keys = await Promise.all([identity, second, pqIdentity].map((id, i) => openDataKey([entries[i]!], [id])));
    expect(new Set(keys.map((k) => Buffer.from(k).toString('hex'))).size).toBe(1);
    for (const id of [identity, second, pqIdentity]) expect(plainDocument(await decryptSops(text, [id]))).toEqual(SECRET);
  });

  it("opens with npm's sops-age (which ignores the MAC and takes recipients literally)", async () => {
    const { '2024': _numericKey, ...stringData } = SECRET.stringData;
    // sops-age drops all-digit keys from its AADs, so a key like "2024" is left out of this comparison.
    const secret = { ...SECRET, stringData };
    const text = await encryptSecret(secret, { recipients: [recipient, secondRecipient] });
    for (const id of [identity, second]) {
      expect(await sopsAgeDecrypt(text, { secretKey: id, fileType: 'yaml' })).toEqual(secret);
    }
  });

  it('keeps strings that look like other YAML types as strings, in clear and encrypted parts', async () => {
    const tricky = ['true', 'yes', 'no', 'on', '~', 'null', '', ' ', '0x1F', '017', '1e3', '1_000', '.inf', '2024-01-01', '1:20', '- x', 'a: b', '#c', "'q'", '"dq"', 'tab\there', 'nel\u0085x', 'ls\u2028x', '😀', '\uFEFFbom', 'trail ', ' lead', 'multi\nline', 'keep\n\n', '\nlead break', 'k'.repeat(200)];
    const object = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'tricky', labels: Object.fromEntries(tricky.map((s, i) => [`l${i}`, s])), annotations: Object.fromEntries(tricky.map((s) => [`a/${s.replace(/\n/g, '')}`, s])) },
      stringData: Object.fromEntries(tricky.map((s, i) => [s || `empty${i}`, s])),
      data: Object.fromEntries(tricky.map((s, i) => [`d${i}`, s])),
    };
    const text = await encryptSecret(object, { recipients: [recipient] });
    expect(plainDocument(await decryptSops(text, [identity]))).toEqual(object);
  });

  it('refuses a top-level sops key, non-JSON values and unusable recipients', async () => {
    await expect(encryptSecret({ kind: 'Secret', sops: {} }, { recipients: [recipient] })).rejects.toThrow(SopsInputError);
    await expect(encryptSecret({ kind: 'Secret', data: { a: new Date() } }, { recipients: [recipient] })).rejects.toThrow(SopsInputError);
    await expect(encryptSecret({ kind: 'Secret' }, { recipients: ['age1notakey'] })).rejects.toThrow(SopsKeyError);
    await expect(encryptSecret({ kind: 'Secret' }, { recipients: [] })).rejects.toThrow(SopsKeyError);
  });
});

describe('Go text of values', () => {
  it('formats floats as strconv does', () => {
    expect(formatFloatF(1234568000)).toBe('1234568000');
    expect(formatFloatF(25.4)).toBe('25.4');
    expect(formatFloatF(1e21)).toBe('1000000000000000000000');
    expect(formatFloatF(1e-7)).toBe('0.0000001');
    expect(formatFloatF(-0)).toBe('-0');
    expect(formatFloatF(Infinity)).toBe('+Inf');
    expect(formatFloatYaml(1e6)).toBe('1e+06');
    expect(formatFloatYaml(123456)).toBe('123456');
    expect(formatFloatYaml(1.5e-5)).toBe('1.5e-05');
    expect(formatFloatYaml(0.0001)).toBe('0.0001');
    expect(formatFloatYaml(-Infinity)).toBe('-.inf');
  });

  it('reads timestamps and lastmodified as Go does', () => {
    expect(yamlTimestampText('2024-01-01')).toBe('2024-01-01T00:00:00Z');
    expect(yamlTimestampText('2006-01-02T15:04:05+07:06')).toBe('2006-01-02T15:04:05+07:06');
    expect(yamlTimestampText('2001-12-14 21:59:43.10')).toBe('2001-12-14T21:59:43.1Z');
    expect(yamlTimestampText('2001-1-2')).toBe('2001-01-02T00:00:00Z');
    expect(yamlTimestampText('2024-13-45')).toBeUndefined();
    expect(yamlTimestampText('2024-02-30')).toBeUndefined();
    expect(lastModifiedAad('2024-11-12T13:33:42.5Z')).toBe('2024-11-12T13:33:42Z');
    expect(lastModifiedAad('2024-11-12T13:33:42+00:00')).toBe('2024-11-12T13:33:42Z');
    expect(lastModifiedAad('2024-11-12T13:33:42+02:00')).toBe('2024-11-12T13:33:42+02:00');
    expect(formatLastModified(new Date('2024-11-12T13:33:42.999Z'))).toBe('2024-11-12T13:33:42Z');
  });

  it('types plain scalars as go-yaml v3 does', () => {
    const leaf = (s: string): unknown => {
      const r = resolvePlain(s);
      return r.tag === 'uint' ? 'uint' : r.leaf;
    };
    expect(leaf('yes')).toBe('yes');
    expect(leaf('True')).toBe(true);
    expect(leaf('~')).toBeNull();
    expect(leaf('0x1F')).toEqual({ type: 'int', value: 31n });
    expect(leaf('017')).toEqual({ type: 'int', value: 15n });
    expect(leaf('08')).toEqual({ type: 'float', value: 8 });
    expect(leaf('1_000')).toEqual({ type: 'int', value: 1000n });
    expect(leaf('1e3')).toEqual({ type: 'float', value: 1000 });
    expect(leaf('1e400')).toBe('1e400');
    expect(leaf('18446744073709551615')).toBe('uint');
    expect(leaf('.5')).toEqual({ type: 'float', value: 0.5 });
    expect(leaf('<<')).toBe('<<');
  });

  it('turns JS values into Go-typed leaves', () => {
    const doc = fromPlain({ i: 3, f: 1.5, b: true, n: null, big: 2 ** 64 }) as SopsMap;
    expect(doc.entries).toEqual([
      ['i', { type: 'int', value: 3n }],
      ['f', { type: 'float', value: 1.5 }],
      ['b', true],
      ['n', null],
      ['big', { type: 'float', value: 2 ** 64 }],
    ]);
  });
});
