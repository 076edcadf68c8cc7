// How go-yaml v3 (the YAML library sops uses) types a plain scalar (`resolve` in resolve.go), and when its
// encoder quotes a string. The reader needs the first to hash unencrypted values as sops does (`1.0` is
// the float 1, `2024-01-01` a time, `yes` a string); the writer the second, so that every string it
// writes reads back as that string in sops, in Flux (YAML 1.1) and here.
import { parseGoFloat, yamlTimestampText } from './go-format.js';
import type { SopsLeaf } from './tree.js';

/** A plain scalar as go-yaml decodes it into interface{}; `uint` is a value above int64, which sops refuses. */
export type Resolved = { tag: 'str'; leaf: string } | { tag: 'uint'; text: string } | { tag: 'value'; leaf: SopsLeaf };

const MAP: ReadonlyMap<string, SopsLeaf> = new Map<string, SopsLeaf>([
  ...['true', 'True', 'TRUE'].map((s): [string, SopsLeaf] => [s, true]),
  ...['false', 'False', 'FALSE'].map((s): [string, SopsLeaf] => [s, false]),
  ...['', '~', 'null', 'Null', 'NULL'].map((s): [string, SopsLeaf] => [s, null]),
  ...['.nan', '.NaN', '.NAN'].map((s): [string, SopsLeaf] => [s, { type: 'float', value: NaN }]),
  ...['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'].map((s): [string, SopsLeaf] => [s, { type: 'float', value: Infinity }]),
  ...['-.inf', '-.Inf', '-.INF'].map((s): [string, SopsLeaf] => [s, { type: 'float', value: -Infinity }]),
]);

const UINT64_MAX = 2n ** 64n - 1n;
const INT64_MAX = 2n ** 63n - 1n;

/** strconv.ParseUint(s, 0, 64) without underscores: 0b/0o/0x prefixes, a leading 0 for octal. */
function parseUintBase0(s: string): bigint | undefined {
  if (s === '') return undefined;
  let base = 10;
  let digits = s;
  if (s[0] === '0') {
    const p = s[1]?.toLowerCase();
    if (s.length >= 3 && p === 'b') [base, digits] = [2, s.slice(2)];
    else if (s.length >= 3 && p === 'o') [base, digits] = [8, s.slice(2)];
    else if (s.length >= 3 && p === 'x') [base, digits] = [16, s.slice(2)];
    else [base, digits] = [8, s.slice(1)];
  }
  const valid = { 2: /^[01]*$/, 8: /^[0-7]*$/, 10: /^[0-9]+$/, 16: /^[0-9a-fA-F]*$/ }[base as 2 | 8 | 10 | 16];
  if (!valid.test(digits)) return undefined;
  let value = 0n;
  for (const c of digits) value = value * BigInt(base) + BigInt(parseInt(c, 16));
  return value > UINT64_MAX ? undefined : value;
}

/** strconv.ParseInt(s, 0, 64). */
function parseIntBase0(s: string): bigint | undefined {
  const negative = s.startsWith('-');
  const unsigned = parseUintBase0(s.startsWith('-') || s.startsWith('+') ? s.slice(1) : s);
  if (unsigned === undefined) return undefined;
  if (negative ? unsigned > INT64_MAX + 1n : unsigned > INT64_MAX) return undefined;
  return negative ? -unsigned : unsigned;
}

const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

/** go-yaml v3's resolve("", text) for a plain (unquoted, untagged) scalar. */
export function resolvePlain(text: string): Resolved {
  const c = text === '' ? '' : text[0]!;
  const hint = c === '' ? 'N' : /[+-]/.test(c) ? 'S' : /[0-9]/.test(c) ? 'D' : 'yYnNtTfFoO~'.includes(c) ? 'M' : c === '.' ? '.' : '';
  if (hint === '') return { tag: 'str', leaf: text };
  const mapped = MAP.get(text);
  if (mapped !== undefined) return { tag: 'value', leaf: mapped };
  if (hint === '.') {
    const f = parseGoFloat(text);
    if (f !== undefined) return { tag: 'value', leaf: { type: 'float', value: f } };
  } else if (hint === 'D' || hint === 'S') {
    const time = yamlTimestampText(text);
    if (time !== undefined) return { tag: 'value', leaf: { type: 'time', text: time } };
    const plain = text.replaceAll('_', '');
    const int = parseIntBase0(plain);
    if (int !== undefined) return { tag: 'value', leaf: { type: 'int', value: int } };
    if (parseUintBase0(plain) !== undefined) return { tag: 'uint', text };
    if (YAML_STYLE_FLOAT.test(plain)) {
      const f = parseGoFloat(plain);
      if (f !== undefined) return { tag: 'value', leaf: { type: 'float', value: f } };
    }
    // go-yaml's later 0b/-0b/0o/-0o branches only accept what ParseInt above already did.
  }
  return { tag: 'str', leaf: text };
}

const BASE60_FLOAT = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;
const OLD_BOOLS: ReadonlySet<string> = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF']);

/** Whether go-yaml's encoder may write the string unquoted (encode.go stringv): it must read back as a string, in YAML 1.1 too. */
export function plainReadsAsString(s: string): boolean {
  return resolvePlain(s).tag === 'str' && !BASE60_FLOAT.test(s) && !OLD_BOOLS.has(s);
}
