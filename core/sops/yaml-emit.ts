// Writes a tree as sops writes YAML: each value through go-yaml v3's encoder (stores/yaml/store.go
// EmitPlainFile), with its indentation, quoting and block-scalar rules, so that a file written here is
// byte for byte the file sops would write for the same tree. This is a port of the parts of go-yaml's
// emitterc.go a sops tree reaches (block mappings and lists, `{}`/`[]` for empty ones, scalars; no
// comments, anchors or tags), with its line width (unlimited) and its selection of scalar styles, as
// go.yaml.in/yaml/v3 3.0.4 (sops 3.12 and later) has them. Two deliberate differences, both where go-yaml's
// output reads back differently in other readers: strings holding U+2028 or U+2029, and the key `<<`,
// are double-quoted.
import { SopsInputError } from './errors.js';
import { formatFloatYaml } from './go-format.js';
import type { SopsLeaf, SopsMap, SopsValue } from './tree.js';
import { plainReadsAsString } from './yaml-resolve.js';

type Style = 'plain' | 'single' | 'double' | 'literal';

interface Analysis {
  multiline: boolean;
  blockPlainAllowed: boolean;
  singleQuotedAllowed: boolean;
  blockAllowed: boolean;
}

// go-yaml's character classes, by code point (they are written for UTF-8 bytes; these are the same sets).
const isBreak = (c: number): boolean => c === 0x0d || c === 0x0a || c === 0x85 || c === 0x2028 || c === 0x2029;
const isSpace = (c: number): boolean => c === 0x20;
const isBlank = (c: number): boolean => c === 0x20 || c === 0x09;
const isBlankZ = (c: number): boolean => isBlank(c) || isBreak(c) || c === 0;
/** is_printable: LF, printable ASCII, U+00A0–U+D7FF, U+E000–U+FFFD but U+FEFF; never a 4-byte (astral) character. */
const isPrintable = (c: number): boolean =>
  c === 0x0a || (c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd && c !== 0xfeff);

const codePoints = (s: string): number[] => Array.from(s, (ch) => ch.codePointAt(0)!);

/** yaml_emitter_analyze_scalar. */
function analyze(value: string): Analysis {
  const cps = codePoints(value);
  if (cps.length === 0) return { multiline: false, blockPlainAllowed: true, singleQuotedAllowed: true, blockAllowed: false };
  let blockIndicators = false;
  let lineBreaks = false;
  let specialCharacters = false;
  let tabCharacters = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let precededByWhitespace = true;
  let previousSpace = false;
  let previousBreak = false;
  if (value.startsWith('---') || value.startsWith('...')) blockIndicators = true;
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    const followedByWhitespace = i + 1 >= cps.length || isBlank(cps[i + 1]!);
    const ch = String.fromCodePoint(c);
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(ch)) blockIndicators = true;
      else if ((ch === '?' || ch === ':' || ch === '-') && followedByWhitespace) blockIndicators = true;
    } else if (ch === ':' && followedByWhitespace) blockIndicators = true;
    else if (ch === '#' && precededByWhitespace) blockIndicators = true;
    if (c === 0x09) tabCharacters = true;
    else if (!isPrintable(c)) specialCharacters = true;
    if (isSpace(c)) {
      if (i === 0) leadingSpace = true;
      if (i === cps.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreak(c)) {
      lineBreaks = true;
      if (i === 0) leadingBreak = true;
      if (i === cps.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlankZ(c);
  }
  let blockPlainAllowed = true;
  let singleQuotedAllowed = true;
  let blockAllowed = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) blockPlainAllowed = false;
  if (trailingSpace) blockAllowed = false;
  if (breakSpace) blockPlainAllowed = singleQuotedAllowed = false;
  if (spaceBreak || tabCharacters || specialCharacters) blockPlainAllowed = singleQuotedAllowed = false;
  if (spaceBreak || specialCharacters) blockAllowed = false;
  if (lineBreaks) blockPlainAllowed = false;
  if (blockIndicators) blockPlainAllowed = false;
  return { multiline: lineBreaks, blockPlainAllowed, singleQuotedAllowed, blockAllowed };
}

/** yaml_emitter_select_scalar_style (block context, implicit tags). */
function selectStyle(requested: Style, a: Analysis, value: string, simpleKey: boolean): Style {
  let style = requested;
  if (simpleKey && a.multiline) style = 'double';
  if (style === 'plain') {
    if (!a.blockPlainAllowed) style = 'single';
    if (value === '' && simpleKey) style = 'single';
  }
  if (style === 'single' && !a.singleQuotedAllowed) style = 'double';
  if (style === 'literal' && (!a.blockAllowed || simpleKey)) style = 'double';
  return style;
}

/** The text and requested style go-yaml's encoder gives a leaf (encode.go stringv, boolv, intv, floatv, timev, nilv). */
function leafScalar(leaf: SopsLeaf): { text: string; style: Style } {
  if (leaf === null) return { text: 'null', style: 'plain' };
  if (typeof leaf === 'boolean') return { text: leaf ? 'true' : 'false', style: 'plain' };
  if (typeof leaf === 'string') {
    const text = leaf.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
    // go-yaml reads U+2028/U+2029 as line breaks (YAML 1.1) and YAML 1.2 readers as text: outside double
    // quotes the same bytes read as two different strings. Escaped (\L, \P) every reader agrees, sops too.
    if (/[\u2028\u2029]/.test(text)) return { text, style: 'double' };
    if (text.includes('\n')) return { text, style: 'literal' };
    return { text, style: plainReadsAsString(text) ? 'plain' : 'double' };
  }
  switch (leaf.type) {
    case 'int':
      return { text: leaf.value.toString(), style: 'plain' };
    case 'float':
      return { text: formatFloatYaml(leaf.value), style: 'plain' };
    case 'time':
      return { text: leaf.text, style: 'plain' };
    case 'bytes':
      throw new SopsInputError('raw bytes cannot be written to YAML here');
  }
}

const ESCAPES: ReadonlyMap<number, string> = new Map([
  [0x00, '0'],
  [0x07, 'a'],
  [0x08, 'b'],
  [0x09, 't'],
  [0x0a, 'n'],
  [0x0b, 'v'],
  [0x0c, 'f'],
  [0x0d, 'r'],
  [0x1b, 'e'],
  [0x22, '"'],
  [0x5c, '\\'],
  [0x85, 'N'],
  [0xa0, '_'],
  [0x2028, 'L'],
  [0x2029, 'P'],
]);

class Emitter {
  private out = '';
  private column = 0;
  private whitespace = true;
  private indention = true;
  private indent = -1;
  private readonly indents: number[] = [];

  constructor(private readonly best: number) {}

  text(): string {
    return this.out;
  }

  private put(s: string): void {
    this.out += s;
    this.column += 1;
  }

  private putBreak(): void {
    this.out += '\n';
    this.column = 0;
    this.indention = true;
  }

  private writeBreak(ch: string): void {
    if (ch === '\n') {
      this.putBreak();
      return;
    }
    this.put(ch);
    this.column = 0;
    this.indention = true;
  }

  writeIndent(): void {
    const indent = Math.max(this.indent, 0);
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) this.putBreak();
    while (this.column < indent) this.put(' ');
    this.whitespace = true;
  }

  writeIndicator(indicator: string, needWhitespace: boolean, isWhitespace: boolean, isIndention: boolean): void {
    if (needWhitespace && !this.whitespace) this.put(' ');
    for (const ch of indicator) this.put(ch);
    this.whitespace = isWhitespace;
    this.indention = this.indention && isIndention;
  }

  private increaseIndent(flow: boolean, inSequenceItem: boolean): void {
    this.indents.push(this.indent);
    if (this.indent < 0) this.indent = flow ? this.best : 0;
    // go-yaml v3: "the first indent inside a sequence will just skip the '- ' indicator".
    else if (inSequenceItem) this.indent += 2;
    else this.indent = this.best * Math.floor((this.indent + this.best) / this.best);
  }

  private popIndent(): void {
    this.indent = this.indents.pop()!;
  }

  node(value: SopsValue, inSequenceItem: boolean): void {
    if (Array.isArray(value)) {
      if (value.length === 0) return this.emptyFlow('[', ']');
      this.increaseIndent(false, inSequenceItem);
      for (const item of value) {
        this.writeIndent();
        this.writeIndicator('-', true, false, true);
        this.node(item, true);
      }
      return this.popIndent();
    }
    if (value !== null && typeof value === 'object' && value.type === 'map') return this.mapping(value, inSequenceItem);
    const { text, style } = leafScalar(value as SopsLeaf);
    this.scalar(text, style, false, inSequenceItem);
  }

  private emptyFlow(open: string, close: string): void {
    this.writeIndicator(open, true, true, false);
    this.writeIndicator(close, false, false, false);
  }

  private mapping(map: SopsMap, inSequenceItem: boolean): void {
    if (map.entries.length === 0) return this.emptyFlow('{', '}');
    this.increaseIndent(false, inSequenceItem);
    for (const [key, value] of map.entries) {
      this.writeIndent();
      const { text, style: requested } = leafScalar(key);
      // A plain `<<` key is a merge key to go-yaml and YAML 1.1 readers: sops could not load its own file
      // (go-yaml refuses a merge of a scalar) and Flux would merge. Quoted it is the string every reader sees.
      const style = text === '<<' ? 'double' : requested;
      const a = analyze(text);
      // yaml_emitter_check_simple_key: single-line and at most 128 bytes, else an explicit `? key`.
      if (!a.multiline && Buffer.byteLength(text, 'utf8') <= 128) {
        this.scalar(text, style, true, false);
        this.writeIndicator(':', false, false, false);
      } else {
        this.writeIndicator('?', true, false, true);
        this.scalar(text, style, false, false);
        this.writeIndent();
        this.writeIndicator(':', true, false, true);
      }
      this.node(value, false);
    }
    this.popIndent();
  }

  private scalar(text: string, requested: Style, simpleKey: boolean, inSequenceItem: boolean): void {
    const a = analyze(text);
    // sops encodes each value on its own first (yaml.Node.Encode) and emits the parsed node again: the
    // style chosen outside any key context is the one requested in the mapping.
    const style = selectStyle(selectStyle(requested, a, text, false), a, text, simpleKey);
    this.increaseIndent(true, inSequenceItem);
    switch (style) {
      case 'plain':
        this.plain(text);
        break;
      case 'single':
        this.singleQuoted(text);
        break;
      case 'double':
        this.doubleQuoted(text);
        break;
      case 'literal':
        this.literal(text);
        break;
    }
    this.popIndent();
  }

  private plain(value: string): void {
    if (value.length > 0 && !this.whitespace) this.put(' ');
    let breaks = false;
    for (const ch of value) {
      const c = ch.codePointAt(0)!;
      if (isBreak(c)) {
        if (!breaks && ch === '\n') this.putBreak();
        this.writeBreak(ch);
        breaks = true;
      } else {
        if (breaks && !isSpace(c)) this.writeIndent();
        this.put(ch);
        if (!isSpace(c)) {
          this.indention = false;
          breaks = false;
        }
      }
    }
    if (value.length > 0) this.whitespace = false;
    this.indention = false;
  }

  private singleQuoted(value: string): void {
    this.writeIndicator("'", true, false, false);
    let breaks = false;
    for (const ch of value) {
      const c = ch.codePointAt(0)!;
      if (isSpace(c)) {
        this.put(ch);
      } else if (isBreak(c)) {
        if (!breaks && ch === '\n') this.putBreak();
        this.writeBreak(ch);
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        if (ch === "'") this.put("'");
        this.put(ch);
        this.indention = false;
        breaks = false;
      }
    }
    this.writeIndicator("'", false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  private doubleQuoted(value: string): void {
    this.writeIndicator('"', true, false, false);
    // go-yaml's is_bom looks at the start of the value, not at the current character.
    const startsWithBom = value.startsWith('\uFEFF');
    for (const ch of value) {
      const c = ch.codePointAt(0)!;
      if (!isPrintable(c) || startsWithBom || isBreak(c) || c === 0x22 || c === 0x5c) {
        this.put('\\');
        const short = ESCAPES.get(c);
        if (short !== undefined) this.put(short);
        else {
          const [letter, digits] = c <= 0xff ? ['x', 2] : c <= 0xffff ? ['u', 4] : ['U', 8];
          this.put(letter);
          for (const d of c.toString(16).toUpperCase().padStart(digits, '0')) this.put(d);
        }
      } else {
        this.put(ch);
      }
    }
    this.writeIndicator('"', false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  private literal(value: string): void {
    this.writeIndicator('|', true, false, false);
    const cps = codePoints(value);
    if (isSpace(cps[0]!) || isBreak(cps[0]!)) this.writeIndicator(String(this.best), false, false, false);
    const last = cps[cps.length - 1]!;
    let chomp = '';
    if (!isBreak(last)) chomp = '-';
    else if (cps.length === 1 || isBreak(cps[cps.length - 2]!)) chomp = '+';
    if (chomp) this.writeIndicator(chomp, false, false, false);
    // go.yaml.in/yaml/v3 3.0.4 (sops 3.12 on) ends the header line here; 3.0.1 did not, and lost a leading line break.
    this.putBreak();
    this.whitespace = true;
    let breaks = true;
    for (const ch of value) {
      if (isBreak(ch.codePointAt(0)!)) {
        this.writeBreak(ch);
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        this.put(ch);
        this.indention = false;
        breaks = false;
      }
    }
  }

  /** One document: `---` before every document but the first, a final line break. */
  document(root: SopsMap, first: boolean): void {
    if (!first) {
      this.writeIndent();
      this.writeIndicator('---', true, false, false);
      this.writeIndent();
    }
    this.node(root, false);
    this.writeIndent();
  }
}

/** The documents as sops writes them with the given indentation (sops's default is 4; Flux's examples use 2). */
export function emitYaml(documents: readonly SopsMap[], indent = 2): string {
  if (!Number.isInteger(indent) || indent < 2 || indent > 9) throw new SopsInputError('the YAML indentation must be between 2 and 9');
  const emitter = new Emitter(indent);
  documents.forEach((doc, i) => emitter.document(doc, i === 0));
  return emitter.text();
}
