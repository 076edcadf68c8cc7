// sops's dotenv store (stores/dotenv/store.go): one `KEY=value` per line, split at the first `=` and
// not trimmed, `\n` written as the two characters backslash-n, `#` lines as comments. Its metadata is
// flattened into `sops_`-prefixed keys (`sops_age__list_0__map_enc`), read back here into the same
// mapping the YAML and JSON stores have.
import { SopsFormatError } from './errors.js';
import { isSopsMap, sopsMap, type SopsMap, type SopsValue } from './tree.js';
import type { YamlComment } from './yaml-read.js';

const SOPS_PREFIX = 'sops_';

export interface ParsedDotenv {
  readonly document: SopsMap;
  /** The unflattened `sops_` entries, or undefined when there are none. */
  readonly metadata: SopsMap | undefined;
  readonly comments: YamlComment[];
}

/** `age__list_0__map_enc` → ['age', 0, 'enc'] (stores/flatten.go tokenize). */
function tokenize(key: string): Array<string | number> {
  const tokens: Array<string | number> = [];
  const re = /__(list|map)_/g;
  let last = 0;
  let kind: 'list' | 'map' | undefined;
  let m: RegExpExecArray | null;
  const push = (text: string): void => {
    if (kind === 'list') {
      if (!/^[0-9]+$/.test(text)) throw new SopsFormatError(`the flattened metadata key ${JSON.stringify(key)} has a bad list index`);
      tokens.push(Number(text));
    } else tokens.push(text);
  };
  while ((m = re.exec(key)) !== null) {
    push(key.slice(last, m.index));
    kind = m[1] as 'list' | 'map';
    last = re.lastIndex;
  }
  push(key.slice(last));
  return tokens;
}

/** Sets `value` at the token path, making maps for key tokens and lists for index tokens on the way. */
function setPath(root: SopsMap, tokens: Array<string | number>, value: string): void {
  let node: SopsValue = root;
  tokens.forEach((token, i) => {
    const last = i === tokens.length - 1;
    const fresh = (): SopsValue => (last ? value : typeof tokens[i + 1] === 'number' ? [] : sopsMap());
    if (typeof token === 'number') {
      if (!Array.isArray(node)) throw new SopsFormatError('the flattened sops metadata mixes lists and maps');
      while (node.length <= token) node.push(null);
      if (last || node[token] === null) node[token] = fresh();
      node = node[token]!;
      return;
    }
    if (!isSopsMap(node)) throw new SopsFormatError('the flattened sops metadata mixes lists and maps');
    let entry = node.entries.find(([k]) => k === token);
    if (!entry) {
      entry = [token, fresh()];
      node.entries.push(entry);
    } else if (last) entry[1] = value;
    node = entry[1];
  });
}

export function readDotenv(text: string): ParsedDotenv {
  const entries: Array<[string, SopsValue]> = [];
  const comments: YamlComment[] = [];
  let metadata: SopsMap | undefined;
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      comments.push({ document: 0, path: [], text: line.slice(1), line: i + 1 });
      continue;
    }
    const eq = line.indexOf('=');
    if (eq === -1) throw new SopsFormatError(`line ${i + 1} of the dotenv file has no '='`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).replaceAll('\\n', '\n');
    if (key.startsWith(SOPS_PREFIX)) {
      metadata ??= sopsMap();
      setPath(metadata, tokenize(key.slice(SOPS_PREFIX.length)), value);
    } else {
      entries.push([key, value]);
    }
  }
  return { document: sopsMap(entries), metadata, comments };
}
