// A SOPS file changed by hand must be refused, with an error that names what failed, exactly where
// `sops decrypt` refuses it: a changed ciphertext, a value moved to another key, a changed clear-text
// field (Flux would apply it: it does not check the MAC), reordered keys, a changed MAC or lastmodified.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decryptSops } from '../../core/sops/decrypt.js';
import { SopsFormatError, SopsKeyError, SopsMacError, SopsUnsupportedError, SopsValueError } from '../../core/sops/errors.js';

const VECTORS = new URL('../fixtures/sops-vectors/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, VECTORS), 'utf8');

const FLUX = read('flux-kustomize-controller/global-secret.yaml');
const FLUX_KEY = read('flux-kustomize-controller/keys/age-global.txt');
const EXAMPLE = read('sops-pr1031/example.yaml');
const EXAMPLE_KEY = read('sops-pr1031/keys.txt');

/** Replaces exactly one occurrence, so a test never passes because its edit did not apply. */
function edit(text: string, from: string | RegExp, to: string): string {
  const count = typeof from === 'string' ? text.split(from).length - 1 : (text.match(new RegExp(from, 'g')) ?? []).length;
  expect(count, `${String(from)} occurs once`).toBe(1);
  return text.replace(from, to);
}

/** Flips one base64 character inside the `data:` of the encrypted value on the line starting with `prefix`. */
function flipData(text: string, prefix: string): string {
  const line = text.split('\n').find((l) => l.startsWith(prefix))!;
  const m = /data:([A-Za-z0-9+/])/.exec(line)!;
  const flipped = m[1] === 'A' ? 'B' : 'A';
  return edit(text, line, line.replace(`data:${m[1]}`, `data:${flipped}`));
}

describe('tampered SOPS files are refused', () => {
  it('the untouched file opens', async () => {
    await expect(decryptSops(FLUX, FLUX_KEY)).resolves.toBeDefined();
  });

  it('a changed ciphertext fails authentication, naming the value', async () => {
    const err = await decryptSops(flipData(FLUX, '  key: ENC['), FLUX_KEY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SopsValueError);
    expect((err as SopsValueError).path).toBe('stringData:key:');
    expect((err as Error).message).toContain("'stringData:key:'");
  });

  it('a changed tag fails authentication', async () => {
    const tampered = edit(FLUX, 'tag:EyM2zosBOv5/DnZMUqyNJg==', 'tag:EyM2zosBOv5/DnZMUqyNJQ==');
    await expect(decryptSops(tampered, FLUX_KEY)).rejects.toThrow(SopsValueError);
  });

  it('a value moved to another key fails: the path is its AAD', async () => {
    const user = /user: (ENC\[[^\]]+\])/.exec(EXAMPLE)![1]!;
    const password = /password: (ENC\[[^\]]+\])/.exec(EXAMPLE)![1]!;
    const swapped = edit(edit(EXAMPLE, `user: ${user}`, 'user: X'), `password: ${password}`, `password: ${user}`).replace('user: X', `user: ${password}`);
    const err = await decryptSops(swapped, EXAMPLE_KEY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SopsValueError);
    expect((err as SopsValueError).path).toBe('app2:db:user:');
  });

  it('a changed clear-text field fails the MAC', async () => {
    const tampered = edit(FLUX, 'namespace: default', 'namespace: production');
    const err = await decryptSops(tampered, FLUX_KEY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SopsMacError);
    expect((err as Error).message).toMatch(/^MAC mismatch/);
    expect((err as Error).message).toContain('file has F87D88951E6288CB');
  });

  it('an added clear-text field fails the MAC', async () => {
    const tampered = edit(FLUX, 'type: Opaque\n', 'type: Opaque\nimmutable: true\n');
    await expect(decryptSops(tampered, FLUX_KEY)).rejects.toThrow(SopsMacError);
  });

  it('reordered keys fail the MAC: document order is hashed', async () => {
    const tampered = edit(FLUX, '  name: global-age-secret\n  namespace: default\n', '  namespace: default\n  name: global-age-secret\n');
    await expect(decryptSops(tampered, FLUX_KEY)).rejects.toThrow(SopsMacError);
  });

  it('a value left in clear text where the rule says encrypted is refused', async () => {
    const tampered = FLUX.replace(/ {2}key: ENC\[[^\n]+/, '  key: plain-text');
    await expect(decryptSops(tampered, FLUX_KEY)).rejects.toThrow(SopsValueError);
  });

  it('a changed MAC cannot be decrypted', async () => {
    const err = await decryptSops(flipData(FLUX, '  mac: ENC['), FLUX_KEY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SopsMacError);
    expect((err as Error).message).toMatch(/MAC could not be decrypted/);
  });

  it('lastmodified changed by one second: the MAC no longer decrypts (it is the AAD)', async () => {
    const tampered = edit(FLUX, 'lastmodified: "2025-07-06T17:19:51Z"', 'lastmodified: "2025-07-06T17:19:52Z"');
    await expect(decryptSops(tampered, FLUX_KEY)).rejects.toThrow(SopsMacError);
  });

  it('lastmodified with milliseconds still opens: sops re-formats it to whole seconds before use', async () => {
    const variant = edit(FLUX, 'lastmodified: "2025-07-06T17:19:51Z"', 'lastmodified: "2025-07-06T17:19:51.000Z"');
    await expect(decryptSops(variant, FLUX_KEY)).resolves.toBeDefined();
  });

  it('a lastmodified that is not RFC 3339 is a format error', async () => {
    const tampered = edit(FLUX, 'lastmodified: "2025-07-06T17:19:51Z"', 'lastmodified: "yesterday"');
    await expect(decryptSops(tampered, FLUX_KEY)).rejects.toThrow(SopsFormatError);
  });

  it('a changed age entry opens with no identity', async () => {
    const tampered = edit(FLUX, 'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhSEJIVUQrZXpkZmJ6ek1U', 'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhSEJIVUQrZXpkZmJ6ek1V');
    await expect(decryptSops(tampered, FLUX_KEY)).rejects.toThrow(SopsKeyError);
  });

  it('a file without sops metadata, with two crypt rules or with key groups is refused', async () => {
    await expect(decryptSops('apiVersion: v1\nkind: Secret\n', FLUX_KEY)).rejects.toThrow(SopsFormatError);
    const twoRules = edit(FLUX, '  encrypted_regex: ^(data|stringData)$\n', '  encrypted_regex: ^(data|stringData)$\n  unencrypted_suffix: _x\n');
    await expect(decryptSops(twoRules, FLUX_KEY)).rejects.toThrow(SopsFormatError);
    const groups = edit(FLUX, '  lastmodified:', '  key_groups:\n    - age: []\n  lastmodified:');
    await expect(decryptSops(groups, FLUX_KEY)).rejects.toThrow(SopsUnsupportedError);
  });

  it('duplicate keys are refused, as sops refuses them', async () => {
    const dup = edit(FLUX, 'type: Opaque\n', 'type: Opaque\ntype: Opaque\n');
    await expect(decryptSops(dup, FLUX_KEY)).rejects.toThrow(SopsFormatError);
  });

  it('an encrypted comment that does not decrypt is kept as written, as sops keeps it', async () => {
    const comment = /#(ENC\[[^\n]+type:comment\])/.exec(EXAMPLE)![1]!;
    const changed = comment.replace('data:j', 'data:k');
    const decrypted = await decryptSops(edit(EXAMPLE, comment, changed), EXAMPLE_KEY);
    expect(decrypted.comments[0]).toMatchObject({ text: changed, decrypted: false });
  });
});
