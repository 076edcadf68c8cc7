// The files in Git are read by Go programs: Flux's kustomize-controller and kubectl through
// sigs.k8s.io/yaml (a gopkg.in/yaml.v2 fork: YAML 1.1, `yes`/`on`/`y` are booleans, `<<` merges) and
// kustomize's kyaml through gopkg.in/yaml.v3. Every string and key the API server can hand us must come
// back from both as the same string, or the object Flux applies is not the object that was changed.
// tools/yaml-read (built from Debian's golang-gopkg-yaml.v2-dev / golang-gopkg-yaml.v3-dev) decodes the
// output of toCanonicalYaml with both; the JS `yaml` parser must agree too, as YAML 1.1 and 1.2.
//
// Lone UTF-16 surrogates cannot be written as UTF-8 and Go's readers refuse `\ud800` escapes; the API
// server never sends them (Go's JSON encoder writes U+FFFD for them), but a hostile webhook body can.
// toCanonicalYaml writes U+FFFD in their place, which is what the API server would have stored.
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { sanitizeObject, toCanonicalYaml } from '../../core/sanitize.js';
import { readWithGo, type GoReadResult } from '../support/go-yaml-read.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** What every reader must give back: the sanitized object, as JSON, lone surrogates as U+FFFD. */
function expected(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(LONE_SURROGATE, '\uFFFD');
  if (Array.isArray(value)) return value.map(expected);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    Object.defineProperty(out, expected(k) as string, { value: expected(v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const CONTROLS = [...Array.from({ length: 0x20 }, (_, i) => i), ...Array.from({ length: 0x21 }, (_, i) => 0x7f + i)].map((c) =>
  String.fromCharCode(c),
);

/** Strings YAML 1.1 or 1.2 readers, or Go's in particular, treat as something other than that string. */
const HOSTILE: readonly string[] = [
  // line breaks YAML 1.1 knows and JS does not: LS, PS, NEL; byte order mark; noncharacters
  '\u2028', 'a\u2028b', '\u2029', 'a\u2029b', 'a\u2028\u2029b', '\u0085', 'a\u0085b', 'a\u0085', '\u0085a',
  '\uFEFF', '\uFEFFa', 'a\uFEFF', 'a\uFEFFb', '\uFFFE', '\uFFFF', 'a\uFFFEb', '\u00A0', ' \u00A0', '\u00A0x',
  'x'.repeat(60) + '\u2028' + 'y'.repeat(60), 'multi\nline\u2028text\n',
  // merge key, value key, null, booleans of YAML 1.1 and 1.2
  '<<', '=', '~', 'null', 'Null', 'NULL', '', 'y', 'Y', 'n', 'N', 'yes', 'Yes', 'YES', 'no', 'No', 'NO',
  'on', 'On', 'ON', 'off', 'Off', 'OFF', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE',
  // numbers of YAML 1.1, 1.2 and Go's strconv
  '0o17', '0O17', '-0o17', '0x1F', '0X1f', '-0x1F', '0x_1F', '017', '08', '09', '019', '0_8', '1_000', '-_1', '1__',
  '1e3', '1E3', '1e+3', '-1e-3', '.5', '-.5', '+.5', '5.', '.5e3', '1.5', '+1', '-1', '0', '-0', '00', '0b101', '-0b101',
  '0B11', '0b-1', '0b+1', '0o-7', '0o+7', '-0b-1', '0b1_0', '99999999999999999999', '0xFFFFFFFFFFFFFFFFFF', '.inf', '.Inf', '-.Inf', '+.inf', '.NaN', '.nan', 'NaN', 'inf',
  '-inf', '+Infinity', '1:20', '190:20:30', '-1:20', '1:20.5',
  // timestamps
  '2001-12-14', '2001-12-14t21:59:43.10-05:00', '2001-12-14T21:59:43Z', '2001-12-14 21:59:43.10', '2001-12-14 21:59:43.10 -5',
  '2001-1-2', '2024-13-45', '2024-q1', '2001-12-14T21:59:43,5Z',
  // indicators and whitespace
  ' ', '  ', ' lead', 'trail ', '\t', '\ttab', 'tab\t', 'a\tb', '#x', 'a #b', 'a# b', 'a: b', 'a:b', 'a:', ':', ': x', ':x',
  '- x', '-x', '-', '- ', '? x', '?', '?x', '!tag', '!!str x', '!', '&anchor', '*alias', '&', '*', '%x', '%YAML 1.1',
  '@x', '`x', '`', '|', '|-', '>', '>+', "'", '"', "'a'", '"a"', 'a\'b"c', '\\', 'a\\nb', '{', '}', '[', ']', ',', 'a, b',
  '{a: 1}', '[1]', '---', '...', '--- x', '... x', 'a\n---\nb', 'a\n...\nb', '---\n', '%x\ny', '__proto__', 'constructor',
  // line structure
  '\n', '\n\n', 'a\n', 'a\n\n', 'a\n\n\n', '\na', '\n\na', ' \na', 'a \nb', 'a\n b', 'a  \n  b  \n', '  first\nsecond',
  '  first\n  second\n', '\tfirst\nsecond', 'line1\r\nline2', 'line1\r\nline2\r\n', '\r', 'a\rb', '\n ', ' \n', 'a\n\t',
  '#!/bin/sh\necho "$1" # comment\n  indented\n', 'key: value\n- item\n', 'x'.repeat(5000), 'word '.repeat(500),
  ('a long line of text ' + 'x'.repeat(100) + '\n').repeat(20), 'k'.repeat(1100), 'k'.repeat(1100) + '\nl',
  // astral characters and lone surrogates
  '😀', 'a😀b', '😀\n😀', '\uD800', '\uDC00', 'a\uD800b', 'a\uDC00', '\uDBFF\uDFFF', '\uD800\uD800\uDC00',
  // every C0 and C1 control, alone and inside text
  ...CONTROLS,
  ...CONTROLS.map((c) => `a${c}b`),
  ...CONTROLS.map((c) => `${'x'.repeat(45)}\n${c}\n${'y'.repeat(45)}`),
];

/** The string as key and value at the top level, in nested maps, in sequences and in metadata. */
function objectWith(s: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'hostile', namespace: 'default', labels: { [s]: s }, annotations: { 'example.com/a': s } },
    [s]: s,
    data: { [s]: s, nested: { [s]: [s, { [s]: s }] } },
    list: [s, [s], { [s]: s }],
  };
}

/** mulberry32: a small deterministic generator, so a failure names a seed that reproduces it. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET: readonly string[] = [
  ' ', ' ', '\t', '\n', '\n', '\r', '\r\n', ':', ': ', '#', ' #', '-', '- ', '?', ',', '[', ']', '{', '}', '&', '*', '!', '|',
  '>', "'", '"', '%', '@', '`', '~', '.', '+', '_', '=', '<<', '\\', '---', '...', '0', '1', '7', '8', '9', '0x', '0o', '0b',
  'e', 'E', 'x', 'o', 'b', 'y', 'n', 'Y', 'N', 'on', 'off', 'yes', 'no', 'null', 'true', 'inf', 'nan', '.inf', ':20', '2001-12-14',
  't', 'T', 'Z', 'a', 'k', '\u0000', '\u0007', '\u001b', '\u007f', '\u0085', '\u009f', '\u00a0', '\u2028', '\u2029', '\ufeff',
  '\ufffe', '\uffff', '😀', '\ud800', '\udfff', 'é',
];

function randomString(next: () => number): string {
  let s = '';
  for (let n = Math.floor(next() * 9); n > 0; n--) s += ALPHABET[Math.floor(next() * ALPHABET.length)]!;
  return s;
}

function randomValue(next: () => number, depth: number): unknown {
  const r = next();
  if (depth > 2 || r < 0.55) {
    if (r < 0.03) return Math.floor(next() * 1000);
    if (r < 0.04) return next() < 0.5;
    if (r < 0.045) return null;
    return randomString(next);
  }
  if (r < 0.75) return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
  const map: Record<string, unknown> = {};
  for (let n = Math.floor(next() * 5); n > 0; n--) {
    Object.defineProperty(map, randomString(next), { value: randomValue(next, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return map;
}

function randomObject(next: () => number): Record<string, unknown> {
  const obj: Record<string, unknown> = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'random', labels: {} } };
  const labels = (obj.metadata as { labels: Record<string, unknown> }).labels;
  for (let n = Math.floor(next() * 3); n > 0; n--) labels[randomString(next)] = randomString(next);
  for (let n = 1 + Math.floor(next() * 4); n > 0; n--) {
    const key = randomString(next);
    if (['apiVersion', 'kind', 'metadata', 'status'].includes(key)) continue;
    Object.defineProperty(obj, key, { value: randomValue(next, 0), enumerable: true, writable: true, configurable: true });
  }
  return obj;
}

interface Case {
  name: string;
  object: Record<string, unknown>;
}

/** A test name: the string with everything outside printable ASCII escaped, long strings cut short. */
function describeString(s: string, i: number): string {
  const shown = s.length > 40 ? `${s.slice(0, 16)}…${s.slice(-16)} (${s.length} chars)` : s;
  const escaped = [...shown].map((c) => (/^[\x20-\x7e…]$/.test(c) ? c : `\\u{${c.codePointAt(0)!.toString(16)}}`)).join('');
  return `#${i} "${escaped}"`;
}

const SEED = 0x5eed2028;
const hostileCases: Case[] = [...new Set(HOSTILE)].map((s, i) => ({ name: describeString(s, i), object: objectWith(s) }));
const randomCases: Case[] = (() => {
  const next = prng(SEED);
  return Array.from({ length: 400 }, (_, i) => ({ name: `random #${i} (seed ${SEED})`, object: randomObject(next) }));
})();

interface Checked {
  text: string;
  want: unknown;
  go: GoReadResult;
}

async function check(cases: readonly Case[]): Promise<Map<string, Checked>> {
  const texts = cases.map((c) => toCanonicalYaml(sanitizeObject(c.object)));
  const go = await readWithGo(texts);
  return new Map(cases.map((c, i) => [c.name, { text: texts[i]!, want: expected(sanitizeObject(c.object)), go: go[i]! }]));
}

/** What each reader made of the text, in one value, so a failure shows all of it next to the text. */
interface Readings {
  v2: unknown;
  v2NonStringKeys: string[];
  v3: unknown;
  v3NonStringKeys: string[];
  v3NonStringTags: string[];
  js11: unknown[];
  js12: unknown[];
}

function readings(c: Checked): Readings {
  const js = (version: '1.1' | '1.2'): unknown => {
    try {
      return parse(c.text, { version });
    } catch (err) {
      return `error: ${(err as Error).message}`;
    }
  };
  return {
    v2: c.go.v2.error ? `error: ${c.go.v2.error}` : c.go.v2.docs,
    v2NonStringKeys: c.go.v2.nonStringKeys,
    v3: c.go.v3.error ? `error: ${c.go.v3.error}` : c.go.v3.docs,
    v3NonStringKeys: c.go.v3.nonStringKeys,
    v3NonStringTags: c.go.v3.nonStringTags ?? [],
    js11: [js('1.1')],
    js12: [js('1.2')],
  };
}

function assertReadBack(c: Checked | undefined): void {
  expect(c).toBeDefined();
  const want = { v2: [c!.want], v2NonStringKeys: [], v3: [c!.want], v3NonStringKeys: [], v3NonStringTags: [], js11: [c!.want], js12: [c!.want] };
  expect(readings(c!), `YAML written:\n${c!.text}`).toEqual(want);
}

/** toCanonicalYaml before Go-safe quoting: the bytes every string Go read correctly must keep. */
function previousYaml(obj: Record<string, unknown>): string {
  return stringify(obj, { version: '1.1', aliasDuplicateObjects: false, lineWidth: 0, minContentWidth: 0, indent: 2, indentSeq: true });
}

/** Every string in a value, keys included. */
function stringsIn(value: unknown, into: Set<string>): Set<string> {
  if (typeof value === 'string') into.add(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, into);
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      into.add(k);
      stringsIn(v, into);
    }
  }
  return into;
}

/** Whether a Go reader gave back something other than `want` (another value, an error, a non-string key or tag). */
function goMisread(go: GoReadResult, want: unknown): boolean {
  return [go.v2, go.v3].some(
    (r) => r.error !== undefined || !deepEqual(r.docs, [want]) || r.nonStringKeys.length > 0 || (r.nonStringTags ?? []).length > 0,
  );
}

describe('toCanonicalYaml, read back by Go (yaml.v2, yaml.v3) and JS (YAML 1.1, 1.2)', () => {
  let hostile: Map<string, Checked>;
  let random: Map<string, Checked>;
  beforeAll(async () => {
    hostile = await check(hostileCases);
    random = await check(randomCases);
  });

  it.each(hostileCases.map((c) => [c.name]))('hostile string %s as keys and values', (name) => {
    assertReadBack(hostile.get(name));
  });

  it(`${randomCases.length} pseudo-random objects from a hostile alphabet (seed ${SEED})`, () => {
    const failures: string[] = [];
    for (const c of randomCases) {
      const got = random.get(c.name)!;
      const r = readings(got);
      const same = [r.v2, r.v3, r.js11, r.js12].every((docs) => deepEqual(docs, [got.want]));
      const notes = [r.v2NonStringKeys, r.v3NonStringKeys, r.v3NonStringTags].flat();
      if (!same || notes.length > 0) failures.push(c.name);
    }
    // Show the first failure in full: its YAML and every reading of it.
    if (failures.length > 0) assertReadBack(random.get(failures[0]!));
    expect(failures).toEqual([]);
  });

  it('changes the bytes of a string only where Go misread the previous output', async () => {
    // Each string of both suites alone, as key and value in every position: where the output differs from
    // what toCanonicalYaml wrote before, yaml.v2 or yaml.v3 must have misread that previous output. The one
    // exception: a raw byte order mark, which Go misreads only at some byte offsets (next test), is always
    // escaped now.
    const all = new Set<string>(HOSTILE);
    for (const c of randomCases) stringsIn(c.object, all);
    const changed = [...all].filter((s) => toCanonicalYaml(sanitizeObject(objectWith(s))) !== previousYaml(sanitizeObject(objectWith(s))));
    expect(changed.length).toBeGreaterThan(0);
    const before = await readWithGo(changed.map((s) => previousYaml(sanitizeObject(objectWith(s)))));
    const readFine = changed.flatMap((s, i) => (goMisread(before[i]!, expected(sanitizeObject(objectWith(s)))) ? [] : [[s, i] as const]));
    expect(readFine.filter(([s]) => !s.includes('\ufeff')).map(([s, i]) => describeString(s, i))).toEqual([]);
  });

  it('escapes a byte order mark: Go misreads a raw one depending on its byte offset in the file', async () => {
    // A token starting with a raw BOM at byte 507 of Go's 512-byte read buffer: "did not find expected key".
    const objects = Array.from({ length: 520 }, (_, pad) => ({ a: 'x'.repeat(pad), b: { '\ufeffk': '\ufeffv' }, c: '1' }));
    const [fixed, previous] = await Promise.all([readWithGo(objects.map(toCanonicalYaml)), readWithGo(objects.map(previousYaml))]);
    expect(toCanonicalYaml(objects[0]!)).toBe('a: ""\nb:\n  "\\ufeffk": "\\ufeffv"\nc: "1"\n');
    expect(objects.filter((o, i) => goMisread(fixed[i]!, o))).toEqual([]);
    const misreadAt = objects.flatMap((o, i) => (goMisread(previous[i]!, o) ? [i] : []));
    expect(misreadAt.length).toBeGreaterThan(0);
    expect(misreadAt.length).toBeLessThan(10);
    expect(previous[misreadAt[0]!]!.v2.error).toMatch(/did not find expected key/);
  });

  it('writes a multi-line string that needs escapes one physical line per line', async () => {
    const s = '\ufeffline one\n  line two\n\n\tthree  \nlast';
    const obj = { data: { f: s }, list: [s] };
    const text = toCanonicalYaml(obj);
    expect(text).toBe(
      [
        'data:',
        '  f: "\\ufeffline one\\n\\',
        '    \\  line two\\n\\',
        '    \\n\\',
        '    \\tthree  \\n\\',
        '    last"',
        'list:',
        '  - "\\ufeffline one\\n\\',
        '    \\  line two\\n\\',
        '    \\n\\',
        '    \\tthree  \\n\\',
        '    last"',
        '',
      ].join('\n'),
    );
    const [go] = await readWithGo([text]);
    expect(goMisread(go!, obj)).toBe(false);
    expect(parse(text)).toEqual(obj);
  });

  it('keeps ordinary objects exactly as before (no new quoting of ordinary strings)', () => {
    const object = sanitizeObject({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop', labels: { app: 'web', month: '2024-q1' }, annotations: { note: 'line one\nline two\n' } },
      spec: {
        replicas: 3,
        template: { spec: { containers: [{ name: 'web', image: 'nginx:1.27', args: ['--port=80', 'a: b', 'yes', '0755', '😀 é'] }] } },
      },
    });
    const text = toCanonicalYaml(object);
    expect(text).toBe(previousYaml(object));
    expect(text).toBe(
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: web',
        '  namespace: shop',
        '  labels:',
        '    app: web',
        '    month: 2024-q1',
        '  annotations:',
        '    note: |',
        '      line one',
        '      line two',
        'spec:',
        '  replicas: 3',
        '  template:',
        '    spec:',
        '      containers:',
        '        - args:',
        '            - --port=80',
        '            - "a: b"',
        '            - "yes"',
        '            - "0755"',
        '            - 😀 é',
        '          image: nginx:1.27',
        '          name: web',
        '',
      ].join('\n'),
    );
  });
});

/** Structural equality as JSON sees it (own enumerable keys, any order). */
function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
