// A YAML (or JSON) SOPS file as sops's YAML store loads it (stores/yaml/store.go): every document a
// mapping, scalars typed as go-yaml v3 types them (yaml-resolve.ts), aliases expanded, duplicate and
// non-string keys refused. Comments are returned with the path of the mapping or list they sit in: an
// encrypted comment uses that path as its AAD. The `yaml` package parses; typing is done here, because
// its schemas are not go-yaml's.
import { isAlias, isMap, isScalar, isSeq, Lexer, parseAllDocuments, type Document, type Node, type ParsedNode } from 'yaml';
import { SopsFormatError, SopsUnsupportedError } from './errors.js';
import { parseGoFloat, parseGoInt } from './go-format.js';
import { sopsMap, type SopsMap, type SopsValue } from './tree.js';
import { resolvePlain } from './yaml-resolve.js';

/** A `#` comment line, with the path of the collection sops files it under. */
export interface YamlComment {
  readonly document: number;
  readonly path: readonly string[];
  /** The text after `#`. */
  readonly text: string;
  /** 1-based line, for messages. */
  readonly line: number;
}

export interface ParsedYaml {
  readonly documents: SopsMap[];
  readonly comments: YamlComment[];
}

interface Collection {
  readonly document: number;
  readonly path: readonly string[];
  readonly depth: number;
  readonly column: number;
  readonly start: number;
  readonly end: number;
}

const MAX_DEPTH = 1000;
const STR_TAG = 'tag:yaml.org,2002:str';

class Reader {
  readonly collections: Collection[] = [];
  readonly scalarRanges: Array<[number, number]> = [];

  constructor(
    private readonly lineStarts: number[],
    private readonly json: boolean,
  ) {}

  column(offset: number): number {
    return offset - this.lineStarts[lineIndex(this.lineStarts, offset)]!;
  }

  convert(node: Node | null, doc: Document.Parsed, docIndex: number, path: string[], depth: number): SopsValue {
    if (depth > MAX_DEPTH) throw new SopsFormatError('the YAML nests too deeply');
    if (node === null) return null;
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (!target) throw new SopsFormatError(`the alias *${node.source} has no anchor`);
      return this.convert(target, doc, docIndex, path, depth + 1);
    }
    if (isScalar(node)) return this.scalar(node as ParsedNode & { value: unknown }, path);
    const range = (node as ParsedNode).range;
    if (isMap(node)) {
      if (!node.flow && range) this.note(docIndex, path, depth, range);
      const entries: Array<[string, SopsValue]> = [];
      for (const pair of node.items) {
        const key = this.key(pair.key as Node | null, doc, docIndex, path);
        entries.push([key, this.convert(pair.value as Node | null, doc, docIndex, [...path, key], depth + 1)]);
      }
      return sopsMap(entries);
    }
    if (isSeq(node)) {
      if (!node.flow && range) this.note(docIndex, path, depth, range);
      return node.items.map((item) => this.convert(item as Node | null, doc, docIndex, path, depth + 1));
    }
    throw new SopsFormatError('unexpected YAML node');
  }

  private note(document: number, path: string[], depth: number, range: [number, number, number]): void {
    this.collections.push({ document, path, depth, column: this.column(range[0]), start: range[0], end: range[2] });
  }

  private key(node: Node | null, doc: Document.Parsed, docIndex: number, path: string[]): string {
    const value = this.convert(node, doc, docIndex, path, 0);
    if (typeof value !== 'string') {
      const where = path.length ? `under '${path.join('.')}'` : 'at the top level';
      throw new SopsFormatError(`a mapping key ${where} is not a string (sops only supports string keys)`);
    }
    return value;
  }

  private scalar(node: ParsedNode & { value: unknown; type?: string; tag?: string }, path: string[]): SopsValue {
    if (node.range) this.scalarRanges.push([node.range[0], node.range[1]]);
    const text = typeof node.value === 'string' ? node.value : String(node.value);
    if (node.tag !== undefined) {
      if (node.tag === STR_TAG) return text;
      throw new SopsUnsupportedError(`the YAML tag ${node.tag} at '${path.join('.')}' is not supported`);
    }
    if (node.type !== 'PLAIN') return text;
    if (this.json) return jsonScalar(text);
    const resolved = resolvePlain(text);
    if (resolved.tag === 'uint') {
      throw new SopsUnsupportedError(`the integer ${resolved.text} at '${path.join('.')}' is beyond int64, which sops cannot handle`);
    }
    return resolved.leaf;
  }
}

/** A JSON literal: sops's JSON store reads integers as ints (since 3.13.2; floats before, same MAC bytes) and other numbers as floats. */
function jsonScalar(text: string): SopsValue {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text === 'null') return null;
  const int = /^-?[0-9]+$/.test(text) ? parseGoInt(text) : undefined;
  if (int !== undefined) return { type: 'int', value: int };
  const f = parseGoFloat(text);
  if (f === undefined) throw new SopsFormatError(`not a JSON value: ${text.slice(0, 40)}`);
  return { type: 'float', value: f };
}

function lineIndex(lineStarts: number[], offset: number): number {
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (lineStarts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Offsets of every `#` comment token, with its text (eemeli's lexer: never inside a scalar or quoted string). */
function commentTokens(text: string): Array<{ offset: number; text: string }> {
  const out: Array<{ offset: number; text: string }> = [];
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    // Control tokens the lexer inserts (document, flow end, scalar, BOM) are not part of the source.
    if (token.length === 1 && /[\x02\x18\x1f\uFEFF]/.test(token)) continue;
    if (token.startsWith('#')) out.push({ offset, text: token.slice(1) });
    offset += token.length;
  }
  return out;
}

/**
 * The collection a comment belongs to, as go-yaml and sops place it: the innermost block mapping or
 * list that contains it at an indentation not deeper than the comment's, or whose first item follows it
 * at the comment's own indentation (a head comment). Outside every collection: the document's root.
 */
function ownerOf(reader: Reader, text: string, document: number, offset: number, column: number): readonly string[] {
  let best: Collection | undefined;
  for (const c of reader.collections) {
    if (c.document !== document) continue;
    const inside = c.start <= offset && offset <= c.end && c.column <= column;
    const head = offset < c.start && c.column === column && onlyCommentsBetween(text, offset, c.start);
    if ((inside || head) && (!best || c.depth > best.depth)) best = c;
  }
  return best?.path ?? [];
}

function onlyCommentsBetween(text: string, from: number, to: number): boolean {
  return text
    .slice(from, to)
    .split('\n')
    .every((line) => /^\s*(#.*)?$/.test(line));
}

/** Parses a YAML stream (or a JSON text, `json: true`) into sops's documents and comments. */
export function readYaml(text: string, options: { json?: boolean } = {}): ParsedYaml {
  const docs = parseAllDocuments(text, { schema: 'failsafe', uniqueKeys: true, merge: false });
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStarts.push(i + 1);
  const reader = new Reader(lineStarts, options.json === true);
  const documents: SopsMap[] = [];
  const starts: number[] = [];
  for (const [i, doc] of Array.from(docs).entries()) {
    const error = doc.errors[0];
    if (error) throw new SopsFormatError(`the file is not valid ${options.json ? 'JSON' : 'YAML'}: ${error.message.split('\n')[0]}`);
    starts.push(doc.range[0]);
    const root = doc.contents as Node | null;
    if (root === null || (isScalar(root) && root.value === '' && (root as { type?: string }).type === 'PLAIN')) {
      documents.push(sopsMap());
      continue;
    }
    if (isSeq(root)) throw new SopsFormatError('YAML documents that are lists are not supported by sops');
    if (!isMap(root) && !isAlias(root)) throw new SopsFormatError('YAML documents that are single values are not supported by sops');
    const value = reader.convert(root, doc, i, [], 0);
    if (Array.isArray(value) || value === null || typeof value !== 'object' || value.type !== 'map') {
      throw new SopsFormatError('every YAML document of a sops file must be a mapping');
    }
    documents.push(value);
  }
  const comments: YamlComment[] = [];
  if (!options.json) {
    for (const token of commentTokens(text)) {
      if (reader.scalarRanges.some(([s, e]) => s <= token.offset && token.offset < e)) continue;
      let document = 0;
      for (const [i, start] of starts.entries()) if (start <= token.offset) document = i;
      const line = lineIndex(lineStarts, token.offset);
      const path = ownerOf(reader, text, document, token.offset, token.offset - lineStarts[line]!);
      comments.push({ document, path, text: token.text, line: line + 1 });
    }
  }
  return { documents, comments };
}
