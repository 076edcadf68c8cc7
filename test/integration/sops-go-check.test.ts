// A second reader for SOPS files, in Go, made of sops's own code: the YAML store's loading and emitting
// (stores/yaml/store.go, on gopkg.in/yaml.v3, the library sops uses), the tree walk and MAC (sops.go),
// AES-GCM value decryption (aes/cipher.go) and lastmodified handling (decrypt/decrypt.go), trimmed to
// age-only single-key-group files. No sops binary exists for this machine (not in Debian, not on npm),
// so this is the closest independent check: go-yaml types and emits, Go's crypto and time do the rest.
// The data key is handed in (the age layer is checked with Debian's `age` CLI elsewhere).
//
//   sops-check INDENT FILE HEXKEY  →  JSON: {macOk, computed, stored, error, reemitted, documents}
//
// `reemitted` is the file loaded and written back by sops's YAML store (sops block included, as a plain
// branch): identical bytes prove the file is laid out exactly as sops lays it out. `documents` are the
// decrypted documents with Go types spelled out, for comparison with the TypeScript reader.
// Built offline from Debian's golang-go and golang-gopkg-yaml.v3-dev by tools/go-offline-build.sh.
import { execFile, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataKey, parseAgeIdentities } from '../../core/sops/age-keys.js';
import { decryptSops, parseSops } from '../../core/sops/decrypt.js';
import { encryptSecret } from '../../core/sops/encrypt-secret.js';
import { formatFloatF } from '../../core/sops/go-format.js';
import { toPlain, type SopsValue } from '../../core/sops/tree.js';
import { readYaml } from '../../core/sops/yaml-read.js';
import { readWithGo } from '../support/go-yaml-read.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A SOPS checker written from sops's own Go code (its YAML store, tree walk, MAC and value decryption). */
const GO_SOURCE_DIR = resolve(ROOT, 'tools/sops-check');


interface GoCheckResult {
  macOk: boolean;
  computed: string;
  stored: string;
  error?: string;
  reemitted: string;
  documents: unknown[];
}

let binary: Promise<string> | undefined;

/** Builds the checker once per process (offline, from Debian's Go packages), or fails naming what to install. */
function goChecker(): Promise<string> {
  binary ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sops-check-src-'));
    await copyFile(join(GO_SOURCE_DIR, 'main.go'), join(dir, 'main.go'));
    const out = join(dir, 'bin', 'sops-check');
    const r = spawnSync(
      'bash',
      [resolve(ROOT, 'tools/go-offline-build.sh'), 'sops-check', dir, out, '/usr/share/gocode', 'gopkg.in/yaml.v3 golang-gopkg-yaml.v3-dev'],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`the Go SOPS checker could not be built (needs golang-go and golang-gopkg-yaml.v3-dev):\n${r.stderr}`);
    return out;
  })();
  return binary;
}

/** Checks one YAML SOPS file's text with the Go checker and the data key. */
async function goCheck(text: string, dataKey: Uint8Array, indent: number): Promise<GoCheckResult> {
  const bin = await goChecker();
  const dir = await mkdtemp(join(tmpdir(), 'sops-check-'));
  try {
    const file = join(dir, 'file.yaml');
    await writeFile(file, text);
    const { stdout } = await run(bin, [String(indent), file, Buffer.from(dataKey).toString('hex')], { maxBuffer: 64 << 20 });
    return JSON.parse(stdout) as GoCheckResult;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A decrypted tree in the checker's spelling of Go values, to compare with what it printed. */
function asGoTyped(value: SopsValue): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map(asGoTyped);
  switch (value.type) {
    case 'map':
      return { map: value.entries.map(([k, v]) => [k, asGoTyped(v)]) };
    case 'int':
      return { int: value.value.toString() };
    case 'float':
      return { float: formatFloatF(value.value) };
    case 'time':
      return { time: value.text };
    case 'bytes':
      return Buffer.from(value.value).toString('base64');
  }
}

async function removeChecker(): Promise<void> {
  if (!binary) return;
  const bin = await binary.catch(() => undefined);
  if (bin) await rm(resolve(bin, '../..'), { recursive: true, force: true });
}

const VECTORS = new URL('../fixtures/sops-vectors/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, VECTORS), 'utf8');

const CONTROLS = [...Array.from({ length: 0x20 }, (_, i) => i), ...Array.from({ length: 0x21 }, (_, i) => 0x7f + i)].map((c) => String.fromCharCode(c));

/** Strings YAML readers (Go's in particular) may take for something else; as keys and values, clear and encrypted. */
const HOSTILE: readonly string[] = [
  '', ' ', '  ', '~', 'null', 'Null', 'true', 'True', 'FALSE', 'y', 'Y', 'yes', 'No', 'on', 'OFF', '<<', '=',
  '0', '-0', '00', '017', '08', '0o17', '0x1F', '-0x1F', '0b101', '1_000', '1e3', '1E3', '-1e-3', '.5', '-.5', '5.', '+1',
  '99999999999999999999', '1e400', '.inf', '-.Inf', '.nan', 'NaN', '1:20', '190:20:30', '-1:20',
  '2001-12-14', '2001-12-14t21:59:43.10-05:00', '2001-12-14T21:59:43Z', '2001-12-14 21:59:43.10', '2001-1-2', '2024-13-45', '2024-02-30',
  ' lead', 'trail ', '\t', '\ttab', 'tab\t', 'a\tb', '#x', 'a #b', 'a# b', 'a: b', 'a:b', 'a:', ':', ': x', '- x', '-x', '-', '? x', '?',
  '!tag', '&a', '*a', '%x', '@x', '`x', '|', '>', "'", '"', "'a'", 'a\'b"c', '\\', '{', '}', '[', ']', ',', 'a, b', '---', '...', '--- x',
  '\n', '\n\n', 'a\n', 'a\n\n', 'a\n\n\n', 'a \nb', 'a\n b', 'a  \n  b  \n', '  first\nsecond', 'line1\r\nline2', '\r', 'a\rb', ' \n',
  '#!/bin/sh\necho "$1" # comment\n  indented\n', 'x'.repeat(300), 'k'.repeat(129), 'k'.repeat(128), 'word '.repeat(40),
  '\u0085', 'a\u0085b', '\uFEFF', '\uFEFFa', 'a\uFEFFb', '\uFFFE', '\u00A0', 'é', '日本語', '😀', 'a😀b', '😀\n😀',
  ...CONTROLS.map((c) => `a${c}b`),
];

/** go-yaml 3.0.1 (Debian) lacks the literal-header line break of 3.0.4 (sops 3.12+); U+2028/9 and a `<<` key are quoted on purpose. */
const byteExact = (s: string): boolean => s !== '<<' && !/[\u2028\u2029]/.test(s) && !(s.includes('\n') && /^[\r\n\u0085]/.test(s));

function secretWith(s: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'hostile', labels: { [`k${s}`]: s }, annotations: { [s || 'empty']: s } },
    type: s,
    data: { [s || 'empty']: s, list: [s, { [`n${s}`]: s }] },
    stringData: { value: s },
    extra: { nested: [s, [s], {}], empty: [], map: {} },
  };
}

afterAll(() => removeChecker());

describe('the Go checker agrees with real sops files', () => {
  beforeAll(() => goChecker(), 600_000);

  it.each([
    ['flux-kustomize-controller/global-secret.yaml', 'flux-kustomize-controller/keys/age-global.txt', 2],
    ['flux-kustomize-controller/algorithms-age.yaml', 'flux-kustomize-controller/keys/age.txt', 2],
    ['flux-kustomize-controller/patches-merge1.yaml', 'flux-kustomize-controller/keys/age.txt', 2],
    ['sops-pr1031/example.yaml', 'sops-pr1031/keys.txt', 4],
  ] as const)('%s: MAC matches and sops\'s store writes it back unchanged', async (file, keys, indent) => {
    const text = read(file);
    const dataKey = await openDataKey(parseSops(text).metadata.age, parseAgeIdentities(read(keys)));
    const r = await goCheck(text, dataKey, indent);
    expect(r.error).toBeUndefined();
    expect(r.macOk).toBe(true);
    expect(r.reemitted).toBe(text);
    const ours = await decryptSops(text, read(keys));
    expect(r.documents).toEqual(ours.documents.map(asGoTyped));
  });
});

describe('files the writer makes, checked by sops\'s code on go-yaml', () => {
  let identity: string;
  let recipient: string;
  beforeAll(async () => {
    await goChecker();
    identity = await generateX25519Identity();
    recipient = await identityToRecipient(identity);
  }, 600_000);

  async function check(object: Record<string, unknown>, indent: number, exact: boolean): Promise<void> {
    const text = await encryptSecret(object, { recipients: [recipient], indent });
    const dataKey = await openDataKey(parseSops(text).metadata.age, [identity]);
    const r = await goCheck(text, dataKey, indent);
    expect(r.error, text).toBeUndefined();
    expect(r.macOk, text).toBe(true);
    const ours = await decryptSops(text, [identity]);
    expect(r.documents).toEqual(ours.documents.map(asGoTyped));
    if (exact) expect(r.reemitted).toBe(text);
  }

  it('a Secret of every value type, at indentation 2 and 4', async () => {
    const object = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'typed', labels: { a: 'b' }, annotations: { n: '1' } },
      immutable: true,
      type: 'Opaque',
      data: { bool: false, int: 42, neg: -7, float: 1.5, big: 1e21, small: 1e-7, exp: 1234568000.5, nil: null, zero: 0 },
      stringData: { text: 'plain', multi: 'line one\nline two\n', list: ['a', 1, true, null, { x: 'y' }], empty: '' },
      numbers: [0, 1.25, -3, 1e6, 123456, 1e-5],
    };
    await check(object, 2, true);
    await check(object, 4, true);
  });

  it.each(HOSTILE.map((s) => [JSON.stringify(s), s] as const))('the string %s, everywhere in a Secret', async (_name, s) => {
    await check(secretWith(s), 2, byteExact(s));
  });

  it('YAML 1.1 readers (yaml.v2: kubectl, Flux) see the same strings as sops and this reader', async () => {
    // Flux's kustomize-controller reads manifests with sigs.k8s.io/yaml (yaml.v2, YAML 1.1) before it
    // decrypts: an unquoted `yes` or `1:20` there would be a bool or a number.
    const strings = [...HOSTILE, '\u2028', 'a\u2029b', '\na'];
    const texts = await Promise.all(strings.map((s) => encryptSecret(secretWith(s), { recipients: [recipient] })));
    const results = await readWithGo(texts);
    for (const [i, result] of results.entries()) {
      const expected = toPlain(readYaml(texts[i]!).documents[0]!);
      expect(result.v2.error, texts[i]).toBeUndefined();
      expect(result.v2.nonStringKeys, texts[i]).toEqual([]);
      expect(result.v2.docs[0], texts[i]).toEqual(expected);
      expect(result.v3.docs[0], texts[i]).toEqual(expected);
    }
  });

  it('strings with U+2028/U+2029 and leading line breaks still read back with the right MAC', async () => {
    for (const s of ['\u2028', 'a\u2028b', 'a\u2029b', 'x\u2028\ny', '\na', '\n\na', '\r\nx\n']) await check(secretWith(s), 2, false);
  });
});
