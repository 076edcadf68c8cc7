// The age layer against the reference implementation: Debian's `age` CLI (FiloSottile's Go age, the
// library sops links) opens every `enc` the writer produces, to the data key this module uses, with a key
// made by `age-keygen`; and a data key sealed by the CLI opens here. Debian's age 1.1 predates
// post-quantum recipients, so those are checked in the unit tests only.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataKey, parseAgeIdentities } from '../../core/sops/age-keys.js';
import { decryptSops, parseSops, plainDocument } from '../../core/sops/decrypt.js';
import { encryptSecret } from '../../core/sops/encrypt-secret.js';

const run = promisify(execFile);
const VECTORS = new URL('../fixtures/sops-vectors/', import.meta.url);

function requireAgeCli(): void {
  const r = spawnSync('age', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error("Debian's age CLI is needed for this test: apt-get install -y age");
}

/** `age -d -i KEYFILE` on one armored entry: the raw bytes it holds. */
async function ageDecrypt(dir: string, keyFile: string, armored: string): Promise<Buffer> {
  const file = join(dir, `enc-${randomBytes(4).toString('hex')}.age`);
  await writeFile(file, armored);
  const out = join(`${file}.out`);
  await run('age', ['-d', '-i', keyFile, '-o', out, file]);
  return readFile(out);
}

describe("SOPS age entries and Debian's age CLI", () => {
  let dir: string;
  let cliKeyFile: string;
  let cliRecipient: string;
  let jsIdentity: string;
  let jsKeyFile: string;

  beforeAll(async () => {
    requireAgeCli();
    dir = await mkdtemp(join(tmpdir(), 'sops-age-cli-'));
    cliKeyFile = join(dir, 'cli-key.txt');
    await run('age-keygen', ['-o', cliKeyFile]);
    cliRecipient = (await run('age-keygen', ['-y', cliKeyFile])).stdout.trim();
    jsIdentity = await generateX25519Identity();
    jsKeyFile = join(dir, 'js-key.txt');
    await writeFile(jsKeyFile, `# made by age-encryption\n${jsIdentity}\n`);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every entry the writer seals opens with `age -d` to the data key', async () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cli' }, stringData: { token: 's3cret' } };
    const text = await encryptSecret(secret, { recipients: [cliRecipient, await identityToRecipient(jsIdentity)] });
    const entries = parseSops(text).metadata.age;
    expect(entries).toHaveLength(2);
    const fromCli = await ageDecrypt(dir, cliKeyFile, entries[0]!.enc);
    const fromCliJsKey = await ageDecrypt(dir, jsKeyFile, entries[1]!.enc);
    const ours = await openDataKey(entries, [jsIdentity]);
    expect(fromCli).toHaveLength(32);
    expect(fromCli.equals(Buffer.from(ours))).toBe(true);
    expect(fromCliJsKey.equals(Buffer.from(ours))).toBe(true);
    // The whole file opens with the key file age-keygen wrote.
    expect(plainDocument(await decryptSops(text, await readFile(cliKeyFile, 'utf8')))).toEqual(secret);
  });

  it('a data key sealed by `age -a` opens here', async () => {
    const dataKey = randomBytes(32);
    const plain = join(dir, 'key.bin');
    await writeFile(plain, dataKey);
    const armored = (await run('age', ['-r', cliRecipient, '-a', plain], { encoding: 'buffer' })).stdout.toString('utf8');
    const opened = await openDataKey([{ recipient: cliRecipient, enc: armored }], parseAgeIdentities(await readFile(cliKeyFile, 'utf8')));
    expect(Buffer.from(opened).equals(dataKey)).toBe(true);
  });

  it('the data keys of the real sops vectors open with `age -d` too', async () => {
    const text = readFileSync(new URL('flux-kustomize-controller/global-secret.yaml', VECTORS), 'utf8');
    const keyFile = join(dir, 'global.txt');
    await writeFile(keyFile, readFileSync(new URL('flux-kustomize-controller/keys/age-global.txt', VECTORS)));
    const key = await ageDecrypt(dir, keyFile, parseSops(text).metadata.age[0]!.enc);
    expect(key.toString('hex')).toBe('95c21ac70e00e7cfc9c33cbaf95451176e458a504fe665a77f28ba93ff46b595');
  });
});
