// The tree a SOPS file holds, typed the way sops types it (Go's interface{} values after go-yaml or
// encoding/json): the MAC hashes each leaf's bytes by type (`true` is hashed as `True`, 1.0 as `1`), so a
// JS value alone cannot say what sops would hash. Maps keep file order, which the MAC also depends on.
// Strings, booleans and null are plain JS values; the other leaf types are tagged objects.
import { isRecord, putOwn } from '../json.js';
import { SopsInputError } from './errors.js';
import { formatFloatF, INT64_MAX, INT64_MIN } from './go-format.js';

/** A Go int (sops only handles int; go-yaml decodes larger integers to types sops refuses). */
export interface SopsInt {
  readonly type: 'int';
  readonly value: bigint;
}
/** A Go float64. */
export interface SopsFloat {
  readonly type: 'float';
  readonly value: number;
}
/** A Go time.Time, kept as its MarshalText form (RFC 3339, nanoseconds when present, the parsed offset). */
export interface SopsTime {
  readonly type: 'time';
  readonly text: string;
}
/** Raw bytes (`type:bytes`, written only by very old sops). */
export interface SopsBytes {
  readonly type: 'bytes';
  readonly value: Uint8Array;
}
/** A mapping, in file order. Keys are strings: sops refuses any other key. */
export interface SopsMap {
  readonly type: 'map';
  readonly entries: Array<[string, SopsValue]>;
}
export type SopsLeaf = string | boolean | null | SopsInt | SopsFloat | SopsTime | SopsBytes;
export type SopsValue = SopsLeaf | SopsMap | SopsValue[];

export function sopsMap(entries: Array<[string, SopsValue]> = []): SopsMap {
  return { type: 'map', entries };
}

export function isSopsMap(value: SopsValue): value is SopsMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && value.type === 'map';
}

/** The value under `key` in a map, or undefined. */
export function mapGet(map: SopsMap, key: string): SopsValue | undefined {
  for (const [k, v] of map.entries) if (k === key) return v;
  return undefined;
}

/** The bytes sops's ToBytes feeds to the MAC for a non-null leaf (`sops.go` ToBytes). */
export function leafBytes(leaf: Exclude<SopsLeaf, null>): Uint8Array {
  if (typeof leaf === 'string') return Buffer.from(leaf, 'utf8');
  if (typeof leaf === 'boolean') return Buffer.from(leaf ? 'True' : 'False');
  switch (leaf.type) {
    case 'int':
      return Buffer.from(leaf.value.toString());
    case 'float':
      return Buffer.from(formatFloatF(leaf.value));
    case 'time':
      return Buffer.from(leaf.text);
    case 'bytes':
      return leaf.value;
  }
}

/**
 * A JSON-like JS value as a tree, in the object's own key order: numbers that are integers within int64
 * become Go ints (what go-yaml reads back from their decimal text), other numbers floats. `undefined`
 * members are left out, as JSON.stringify does; lone surrogates become U+FFFD.
 */
export function fromPlain(value: unknown, path: readonly string[] = []): SopsValue {
  if (typeof value === 'string') return wellFormed(value);
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > INT64_MAX) throw new SopsInputError(`integer out of int64 range at ${where(path)}`);
    return { type: 'int', value };
  }
  if (typeof value === 'number') {
    if (Number.isInteger(value) && Math.abs(value) < 2 ** 63) return { type: 'int', value: BigInt(value) };
    return { type: 'float', value };
  }
  if (Array.isArray(value)) return value.map((item) => fromPlain(item, path));
  if (isRecord(value)) {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== null && proto !== Object.prototype) throw new SopsInputError(`not a plain object at ${where(path)}`);
    const entries: Array<[string, SopsValue]> = [];
    for (const key of Object.keys(value)) {
      const item = value[key];
      if (item === undefined) continue;
      entries.push([wellFormed(key), fromPlain(item, [...path, key])]);
    }
    return sopsMap(entries);
  }
  throw new SopsInputError(`unsupported ${typeof value} value at ${where(path)}`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** A lone UTF-16 surrogate cannot be written as UTF-8: U+FFFD in its place, as the API server stores it. */
function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

function where(path: readonly string[]): string {
  return path.length === 0 ? 'the top level' : `'${path.join('.')}'`;
}

/**
 * The tree as plain JS: maps become objects (own properties even for `__proto__`), ints numbers when
 * they are safe integers and bigints otherwise, times their RFC 3339 text, bytes a Uint8Array.
 */
export function toPlain(value: SopsValue): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map(toPlain);
  switch (value.type) {
    case 'map': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of value.entries) putOwn(out, k, toPlain(v));
      return out;
    }
    case 'int': {
      const n = Number(value.value);
      return Number.isSafeInteger(n) ? n : value.value;
    }
    case 'float':
      return value.value;
    case 'time':
      return value.text;
    case 'bytes':
      return value.value;
  }
}

/** Same types, same values, same key order: what makes two trees hash to the same MAC. */
export function sameTree(a: SopsValue, b: SopsValue): boolean {
  if (a === null || typeof a === 'string' || typeof a === 'boolean') return a === b;
  if (b === null || typeof b === 'string' || typeof b === 'boolean') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => sameTree(item, b[i]!));
  }
  switch (a.type) {
    case 'map': {
      if (b.type !== 'map' || a.entries.length !== b.entries.length) return false;
      return a.entries.every(([k, v], i) => {
        const other = b.entries[i]!;
        return other[0] === k && sameTree(v, other[1]);
      });
    }
    case 'int':
      return b.type === 'int' && a.value === b.value;
    case 'float':
      return b.type === 'float' && Object.is(a.value, b.value);
    case 'time':
      return b.type === 'time' && a.text === b.text;
    case 'bytes':
      return b.type === 'bytes' && Buffer.from(a.value).equals(Buffer.from(b.value));
  }
}
