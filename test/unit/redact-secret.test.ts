import { describe, expect, it } from 'vitest';
import { isSecretRef, ObjectTooDeepError, redactSecret, REDACTED_VALUE, storableObject } from '../../core/redact-secret.js';

const PLAINTEXT = 'hunter2-very-secret';
const B64 = Buffer.from(PLAINTEXT).toString('base64');

function secret(): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: 'db',
      namespace: 'shop',
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ stringData: { password: PLAINTEXT } }),
        team: 'payments',
      },
    },
    type: 'Opaque',
    data: { password: B64, user: Buffer.from('app').toString('base64') },
    stringData: { token: PLAINTEXT },
  };
}

describe('redactSecret', () => {
  it('replaces every data and stringData value, keeps keys, drops every annotation but the allow-list', () => {
    const input = secret();
    const out = redactSecret(input);
    expect(out.data).toEqual({ password: REDACTED_VALUE, user: REDACTED_VALUE });
    expect(out.stringData).toEqual({ token: REDACTED_VALUE });
    expect(out.metadata).toEqual({ name: 'db', namespace: 'shop', annotations: {} });
    expect(out.type).toBe('Opaque');
    const json = JSON.stringify(out);
    expect(json).not.toContain(PLAINTEXT);
    expect(json).not.toContain(B64);
  });

  it('does not modify its input', () => {
    const input = secret();
    const before = JSON.stringify(input);
    redactSecret(input);
    expect(JSON.stringify(input)).toBe(before);
  });

  it('redacts by objectRef when the body has no kind', () => {
    const { kind: _kind, apiVersion: _v, ...bare } = secret();
    expect(redactSecret(bare).data).toEqual({ password: B64, user: Buffer.from('app').toString('base64') });
    const out = redactSecret(bare, { resource: 'secrets', apiGroup: '' });
    expect(JSON.stringify(out)).not.toContain(PLAINTEXT);
    expect(JSON.stringify(out)).not.toContain(B64);
  });

  it('replaces a malformed data field whole', () => {
    const out = redactSecret({ apiVersion: 'v1', kind: 'Secret', data: PLAINTEXT, stringData: [PLAINTEXT] });
    expect(out.data).toBe(REDACTED_VALUE);
    expect(out.stringData).toBe(REDACTED_VALUE);
  });

  it('keeps __proto__ keys as data keys without touching prototypes', () => {
    const input = JSON.parse(`{"apiVersion":"v1","kind":"Secret","data":{"__proto__":"${B64}"}}`) as Record<string, unknown>;
    const out = redactSecret(input);
    expect(Object.keys(out.data as object)).toEqual(['__proto__']);
    expect(JSON.stringify(out)).not.toContain(B64);
  });

  it('returns other objects unchanged (same reference)', () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', data: { a: 'b' } };
    expect(redactSecret(cm)).toBe(cm);
    const crd = { apiVersion: 'example.com/v1', kind: 'Secret', data: { a: 'b' } };
    expect(redactSecret(crd)).toBe(crd);
    expect(redactSecret(cm, { resource: 'configmaps' })).toBe(cm);
  });
});

describe('isSecretRef', () => {
  it.each([
    [{ resource: 'secrets' }, true],
    [{ resource: 'secrets', apiGroup: '' }, true],
    [{ resource: 'secrets', apiGroup: 'example.com' }, false],
    [{ resource: 'configmaps' }, false],
    [{ resource: 'Secrets' }, true],
    [{ resource: 'secrets', apiGroup: 'core' }, true],
    [{ resource: 'SECRETS', apiGroup: 'Core' }, true],
    [undefined, false],
  ])('%j → %s', (ref, expected) => {
    expect(isSecretRef(ref)).toBe(expected);
  });
});

/** No value of the Secret above may be found anywhere in `value`, in any encoding it had. */
function expectNoPlaintext(value: unknown): void {
  const json = JSON.stringify(value);
  expect(json).not.toContain(PLAINTEXT);
  expect(json).not.toContain(B64);
}

describe('redactSecret: wherever a Secret hides', () => {
  it('drops every annotation of a Secret but the allow-list (kapp keeps a full copy in its own)', () => {
    const s = secret();
    (s.metadata as { annotations: Record<string, string> }).annotations = {
      'kapp.k14s.io/original': JSON.stringify({ data: { password: B64 } }),
      'example.com/anything': PLAINTEXT,
      'kubernetes.io/service-account.name': 'builder',
      'meta.helm.sh/release-name': 'db',
    };
    const out = redactSecret(s);
    expect((out.metadata as { annotations: unknown }).annotations).toEqual({ 'kubernetes.io/service-account.name': 'builder', 'meta.helm.sh/release-name': 'db' });
    expectNoPlaintext(out);
  });

  it('keeps only the fields a Secret has, and never its managedFields', () => {
    const s: Record<string, unknown> = { ...secret(), extra: { copy: PLAINTEXT }, immutable: true };
    (s.metadata as Record<string, unknown>).managedFields = [{ manager: 'x', fieldsV1: { 'f:data': { [`f:${B64}`]: {} } } }];
    const out = redactSecret(s);
    expect(Object.keys(out).sort()).toEqual(['apiVersion', 'data', 'immutable', 'kind', 'metadata', 'stringData', 'type']);
    expect(out.metadata).not.toHaveProperty('managedFields');
    expectNoPlaintext(out);
  });

  it.each([
    ['kind secret', { kind: 'secret', apiVersion: 'v1' }],
    ['kind SECRET', { kind: 'SECRET', apiVersion: 'v1' }],
    ['apiVersion core/v1', { kind: 'Secret', apiVersion: 'core/v1' }],
    ['no apiVersion', { kind: 'Secret' }],
  ])('recognises a Secret spelled with %s', (_, spelling) => {
    const out = redactSecret({ ...secret(), ...spelling });
    expectNoPlaintext(out);
  });

  it('redacts Secrets inside a List, a SecretList (items without kind) and an embedded template', () => {
    const { kind: _k, apiVersion: _a, ...bare } = secret();
    const list = { apiVersion: 'v1', kind: 'List', metadata: { name: 'evil' }, items: [{ apiVersion: 'v1', kind: 'ConfigMap', data: { a: 'b' } }, secret()] };
    const secretList = { apiVersion: 'v1', kind: 'SecretList', metadata: {}, items: [bare, bare] };
    const template = { apiVersion: 'example.com/v1', kind: 'SealedThing', metadata: { name: 't' }, spec: { template: secret() } };
    for (const body of [list, secretList, template]) {
      const out = redactSecret(body);
      expect(out).not.toBe(body);
      expectNoPlaintext(out);
    }
    expect((redactSecret(list).items as unknown[])[0]).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', data: { a: 'b' } });
  });

  it('refuses (throws) rather than walks an object nested past its bound', () => {
    let deep: Record<string, unknown> = { kind: 'ConfigMap' };
    for (let i = 0; i < 2000; i++) deep = { a: deep };
    expect(() => redactSecret(deep)).toThrow(ObjectTooDeepError);
  });
});

describe('storableObject', () => {
  it('drops managedFields of any object and keeps the rest (same values)', () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', managedFields: [{ manager: 'm' }], labels: { x: 'y' } }, data: { k: 'v' } };
    expect(storableObject(cm)).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', labels: { x: 'y' } }, data: { k: 'v' } });
    const plain = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } };
    expect(storableObject(plain)).toBe(plain);
  });

  it("redacts a CertificateSigningRequest's request (it may carry a challenge password)", () => {
    const csr = { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name: 'c' }, spec: { request: B64, signerName: 'x', usages: ['client auth'] } };
    expect(storableObject(csr).spec).toEqual({ request: REDACTED_VALUE, signerName: 'x', usages: ['client auth'] });
    const bare = { metadata: { name: 'c' }, spec: { request: B64 } };
    expectNoPlaintext(storableObject(bare, { resource: 'certificatesigningrequests', apiGroup: 'certificates.k8s.io' }));
  });
});
