import { describe, expect, it } from 'vitest';
import { isSecretRef, redactSecret, REDACTED_VALUE } from '../../workers/ingest/redact-secret.js';

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
  it('replaces every data and stringData value, keeps keys, drops last-applied', () => {
    const input = secret();
    const out = redactSecret(input);
    expect(out.data).toEqual({ password: REDACTED_VALUE, user: REDACTED_VALUE });
    expect(out.stringData).toEqual({ token: REDACTED_VALUE });
    expect(out.metadata).toEqual({ name: 'db', namespace: 'shop', annotations: { team: 'payments' } });
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
    [undefined, false],
  ])('%j → %s', (ref, expected) => {
    expect(isSecretRef(ref)).toBe(expected);
  });
});
