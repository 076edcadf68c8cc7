// "Unchanged means no commit": writing a Secret again gives back the previous file byte for byte when
// nothing a reader would see changed, although every encryption draws new IVs. A change of values keeps
// the data key and the ciphertext of untouched values (a small Git diff, as `sops edit` makes); a change
// of recipients draws a new data key, so a removed recipient cannot read what is written next.
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { beforeAll, describe, expect, it } from 'vitest';
import { openDataKey } from '../../core/sops/age-keys.js';
import { decryptSops, parseSops, plainDocument } from '../../core/sops/decrypt.js';
import { encryptSecret } from '../../core/sops/encrypt-secret.js';
import { SopsKeyError } from '../../core/sops/errors.js';
import { resealSecret } from '../../core/sops/reseal.js';

const secret = (password: string, extra: Record<string, string> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'db', namespace: 'shop', ...extra },
  type: 'Opaque',
  data: { password: Buffer.from(password).toString('base64'), user: Buffer.from('app').toString('base64') },
  stringData: { note: 'same' },
});

const encLine = (text: string, key: string): string => text.split('\n').find((l) => l.trimStart().startsWith(`${key}: ENC[`))!;

describe('resealSecret', () => {
  let alice: string;
  let aliceR: string;
  let bob: string;
  let bobR: string;
  beforeAll(async () => {
    alice = await generateX25519Identity();
    aliceR = await identityToRecipient(alice);
    bob = await generateX25519Identity();
    bobR = await identityToRecipient(bob);
  });

  it('writes a new file when there is none', async () => {
    const r = await resealSecret(secret('a'), { identities: [alice], recipients: [aliceR] });
    expect(r).toMatchObject({ changed: true, reason: 'new' });
    expect(plainDocument(await decryptSops(r.text, [alice]))).toEqual(secret('a'));
  });

  it('returns the previous file unchanged, byte for byte, when values and clear fields are the same', async () => {
    const previous = await encryptSecret(secret('a'), { recipients: [aliceR, bobR] });
    const r = await resealSecret(secret('a'), { previous, identities: [bob], recipients: [bobR, aliceR], now: new Date('2030-01-01T00:00:00Z') });
    expect(r).toEqual({ text: previous, changed: false, reason: 'unchanged' });
  });

  it('a changed value: same data key and age entries, unchanged values keep their ciphertext', async () => {
    const previous = await encryptSecret(secret('a'), { recipients: [aliceR] });
    const r = await resealSecret(secret('b'), { previous, identities: [alice], recipients: [aliceR] });
    expect(r).toMatchObject({ changed: true, reason: 'content-changed' });
    expect(plainDocument(await decryptSops(r.text, [alice]))).toEqual(secret('b'));
    const [before, after] = [parseSops(previous).metadata, parseSops(r.text).metadata];
    expect(after.age).toEqual(before.age);
    expect(encLine(r.text, 'user')).toBe(encLine(previous, 'user'));
    expect(encLine(r.text, 'note')).toBe(encLine(previous, 'note'));
    expect(encLine(r.text, 'password')).not.toBe(encLine(previous, 'password'));
    expect(after.mac).not.toBe(before.mac);
  });

  it('a changed clear field (a label) is a change too', async () => {
    const previous = await encryptSecret(secret('a'), { recipients: [aliceR] });
    const r = await resealSecret(secret('a', { generateName: 'x' }), { previous, identities: [alice], recipients: [aliceR] });
    expect(r.reason).toBe('content-changed');
    expect(encLine(r.text, 'password')).toBe(encLine(previous, 'password'));
  });

  it('changed recipients: a new data key that the removed recipient cannot open', async () => {
    const previous = await encryptSecret(secret('a'), { recipients: [aliceR, bobR] });
    const r = await resealSecret(secret('a'), { previous, identities: [alice], recipients: [aliceR] });
    expect(r).toMatchObject({ changed: true, reason: 'recipients-changed' });
    const oldKey = await openDataKey(parseSops(previous).metadata.age, [alice]);
    const newKey = await openDataKey(parseSops(r.text).metadata.age, [alice]);
    expect(Buffer.from(newKey).equals(Buffer.from(oldKey))).toBe(false);
    await expect(decryptSops(r.text, [bob])).rejects.toThrow(SopsKeyError);
  });

  it('a previous file that cannot be opened or fails its MAC is replaced, with the reason', async () => {
    const other = await encryptSecret(secret('a'), { recipients: [bobR] });
    const r1 = await resealSecret(secret('a'), { previous: other, identities: [alice], recipients: [aliceR] });
    expect(r1).toMatchObject({ changed: true, reason: 'previous-unreadable' });
    expect(r1.detail).toMatch(/none of the given age identities/);

    const mine = await encryptSecret(secret('a'), { recipients: [aliceR] });
    const tampered = mine.replace('namespace: shop', 'namespace: prod');
    const r2 = await resealSecret(secret('a'), { previous: tampered, identities: [alice], recipients: [aliceR] });
    expect(r2).toMatchObject({ changed: true, reason: 'previous-unreadable' });
    expect(r2.detail).toMatch(/MAC mismatch/);

    const r3 = await resealSecret(secret('a'), { previous: 'not: [valid', identities: [alice], recipients: [aliceR] });
    expect(r3.reason).toBe('previous-unreadable');
    expect(plainDocument(await decryptSops(r3.text, [alice]))).toEqual(secret('a'));
  });
});
