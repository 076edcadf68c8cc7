// How strings are written into the YAML files in Git so that the Go programs reading them (Flux's
// kustomize-controller and kubectl through sigs.k8s.io/yaml = gopkg.in/yaml.v2, YAML 1.1 rules; kyaml
// through gopkg.in/yaml.v3) read back the same string, not a bool, a number, a merge key, a folded line
// or an error. The `yaml` package's YAML 1.1 output already quotes most such strings; this covers what it
// misses, and leaves the bytes of every other string exactly as the package writes them:
//
// - characters Go's readers treat as line breaks (NEL U+0085, LS U+2028, PS U+2029), refuse
//   ("control characters are not allowed": DEL, C1 controls, U+FFFE, U+FFFF) or misread depending on
//   their byte offset in the file (the byte order mark U+FEFF): the package writes them raw, even inside
//   double quotes;
// - plain scalars Go resolves to something else: `<<` (a merge key; the package writes it plain on
//   purpose), numbers Go's strconv accepts and YAML 1.1 does not (`0o17`, `0X1F`, `0B11`, `-_1`, `0b-1`),
//   timestamps with a comma (`2001-12-14T21:59:43,5Z`);
// - block scalars Go cannot read: a first line starting with a tab (no indentation indicator is written
//   for tabs), multi-line strings of only spaces, tabs and newlines;
// - lone UTF-16 surrogates (from a hostile JSON body; the API server itself sends U+FFFD for them): they
//   have no UTF-8 form and Go refuses `\ud800` escapes, so they are written as U+FFFD.
//
// Those strings are written double-quoted with YAML escapes (`\N`, `\L`, `\P`, `\x9f`, `\uFEFF`, `\n`,
// `\t` …), which YAML 1.1 and 1.2 readers, Go's and JS's, decode the same way; a multi-line value keeps
// one physical line per line (`\n` and an escaped line break), keys stay on one line.
import type { Scalar, ScalarTag, Tags } from 'yaml';
import { stringTag } from 'yaml/util';
import { isRecord, putOwn } from './json.js';

const MERGE_TAG = 'tag:yaml.org,2002:merge';

/** Plain scalars gopkg.in/yaml.v2 or v3 resolve by lookup (resolve.go's resolveMapList, both versions). */
const GO_RESOLVED_WORDS: ReadonlySet<string> = new Set([
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'n', 'N', 'no', 'No', 'NO', 'on', 'On', 'ON', 'off', 'Off', 'OFF'],
  ...['true', 'True', 'TRUE', 'false', 'False', 'FALSE', '', '~', 'null', 'Null', 'NULL'],
  ...['.nan', '.NaN', '.NAN', '.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF', '-.inf', '-.Inf', '-.INF', '<<'],
]);

/**
 * What Go's resolve() turns into a number, after it removed every `_`: strconv.ParseInt/ParseUint with
 * base 0 (0x, 0o, 0b prefixes in either case, a leading 0 for octal), its yamlStyleFloat, and its own
 * `0b`/`0o` branches, which hand the rest to ParseInt with its sign (`0b-1` is -1, `0o+7` is 7).
 * A superset where Go would overflow (such strings are quoted though Go would keep them): harmless.
 */
const GO_NUMBER =
  /^(?:[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)|0b[-+][01]+|0o[-+][0-7]+)$/;

/** The shapes of resolve.go's allowedTimestampFormats (time.Parse: 1–2 digit fields, `.` or `,` fractions). */
const GO_TIMESTAMP = /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:[.,][0-9]*)?(?:Z|[+-][0-9]{1,2}(?::?[0-9]{2})?)?)?$/;

/** True when gopkg.in/yaml.v2 or v3 would read `s`, written as a plain scalar, as something but that string. */
export function goReadsPlainAsNonString(s: string): boolean {
  if (GO_RESOLVED_WORDS.has(s)) return true;
  const first = s.charCodeAt(0);
  if (first === 0x2e /* . */) return GO_NUMBER.test(s); // ParseFloat on the text as it is
  const digit = first >= 0x30 && first <= 0x39;
  if (!digit && first !== 0x2b /* + */ && first !== 0x2d /* - */) return false;
  return GO_TIMESTAMP.test(s) || GO_NUMBER.test(s.replaceAll('_', ''));
}

/**
 * Characters the `yaml` package writes raw (even inside double quotes) where Go's readers see a line
 * break (NEL, LS, PS), refuse the file (DEL, C1 controls, U+FFFE, U+FFFF; a lone surrogate has no UTF-8
 * form at all) or fail depending on where the character falls in their 512-byte read buffer (a byte
 * order mark U+FEFF: "did not find expected key" when it starts at byte 507 of a buffer; and at the very
 * start of the file it is taken for the encoding mark and dropped).
 */
const GO_UNSAFE_CHAR = /[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A multi-line string the `yaml` package writes as a block scalar (it double-quotes those ending in a
 * line of spaces or tabs, and those with control characters) that Go cannot read back: a first line
 * starting with a tab (Go wants an indentation indicator then, the package writes one only for spaces),
 * or nothing but spaces, tabs and newlines (the package's indentation indicator is missing, the spaces
 * are read as indentation).
 */
function goUnsafeBlock(s: string): boolean {
  if (!s.includes('\n') || /\n[ \t]+$|[\x00-\x08\x0b-\x1f]/.test(s)) return false;
  return /^\n*\t/.test(s) || (/^[ \t\n]*$/.test(s) && /[ \t]/.test(s));
}

/**
 * Whether a string must be written double-quoted with escapes rather than the way `yaml` writes it.
 * `blockContext`: a value or explicit key, where `yaml` may write a block scalar (implicit keys are
 * always quoted when multi-line).
 */
export function needsGoSafeQuotes(s: string, blockContext = true): boolean {
  return GO_UNSAFE_CHAR.test(s) || goReadsPlainAsNonString(s) || (blockContext && goUnsafeBlock(s));
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The string with every lone UTF-16 surrogate replaced by U+FFFD, as a UTF-8 encoder (and Go's JSON) does. */
export function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\ufffd');
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '\0': '\\0',
  '\x07': '\\a',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\v': '\\v',
  '\f': '\\f',
  '\r': '\\r',
  '\x1b': '\\e',
  '"': '\\"',
  '\\': '\\\\',
  '\x85': '\\N',
  '\u2028': '\\L',
  '\u2029': '\\P',
};

function escapeChar(c: string): string {
  const short = SHORT_ESCAPES[c];
  if (short) return short;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

const ESCAPED = /[\x00-\x1f"\\\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]/g;

/**
 * A double-quoted YAML scalar: `"`, `\`, every C0 and C1 control and DEL, LS, PS, BOM, U+FFFE and U+FFFF
 * escaped (escapes YAML 1.1 and 1.2 both define); everything else, astral characters included, as it is.
 * Lone surrogates become U+FFFD. With `continuationIndent` (not for implicit keys), a string with a line
 * feed before its end keeps one physical line per line: each ends in `\n` and an escaped line break
 * (`\` at the end of the line), the next starts at `continuationIndent`, a leading space escaped (`\ `)
 * so that folding does not strip it.
 */
export function goSafeDoubleQuoted(s: string, continuationIndent?: string): string {
  const text = wellFormed(s);
  // Each line with its line feed; the last one without, if the text does not end in one.
  const lines = continuationIndent === undefined ? [text] : (text.match(/[^\n]*\n|[^\n]+$/g) ?? ['']);
  const body = lines
    .map((line, i) => {
      const escaped = line.replace(ESCAPED, escapeChar);
      return i > 0 && escaped.startsWith(' ') ? `\\${escaped}` : escaped;
    })
    .join(`\\\n${continuationIndent ?? ''}`);
  return `"${body}"`;
}

/** The YAML string tag, writing Go-unsafe strings with goSafeDoubleQuoted and every other one as before. */
export const goSafeStringTag: ScalarTag = {
  ...stringTag,
  stringify(item: Scalar, ctx, onComment, onChompKeep) {
    const value = typeof item.value === 'string' ? item.value : String(item.value);
    const blockContext = ctx.implicitKey !== true && ctx.inFlow !== true;
    if (needsGoSafeQuotes(value, blockContext)) {
      // At least one space: a continuation line at column 0 could read as a document marker (`---`).
      return goSafeDoubleQuoted(value, blockContext ? ctx.indent || ' ' : undefined);
    }
    return stringTag.stringify!(item, ctx, onComment, onChompKeep);
  },
};

/**
 * `customTags` for stringify: the Go-safe string tag instead of the package's, and no merge tag — it
 * claims the string `<<` and writes it plain, which YAML 1.1 readers and yaml.v3 take as a merge key.
 * Only for writing: the merge tag stays in every schema used for reading.
 */
export function goSafeTags(tags: Tags): Tags {
  const tagOf = (t: Tags[number]): string => (t === 'merge' ? MERGE_TAG : typeof t === 'string' ? t : t.tag);
  return tags.filter((t) => tagOf(t) !== MERGE_TAG).map((t) => (tagOf(t) === stringTag.tag ? goSafeStringTag : t));
}

/**
 * The value with lone surrogates in strings and keys replaced by U+FFFD; the same reference where there
 * are none. Keys that become equal keep the first one's position and the last one's value, as Go's JSON
 * decoder in the API server keeps the last of duplicate keys.
 */
export function wellFormedDeep<T>(value: T): T {
  if (typeof value === 'string') return wellFormed(value) as T;
  if (Array.isArray(value)) {
    const items = value.map(wellFormedDeep);
    return (items.some((v, i) => v !== value[i]) ? items : value) as T;
  }
  if (!isRecord(value)) return value;
  let changed = false;
  const entries = Object.keys(value).map((k): [string, unknown] => {
    const key = wellFormed(k);
    const v = wellFormedDeep(value[k]);
    if (key !== k || v !== value[k]) changed = true;
    return [key, v];
  });
  if (!changed) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) putOwn(out, k, v);
  return out as T;
}
