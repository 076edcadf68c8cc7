import { describe, expect, it } from 'vitest';
import { isObject, isRecord, nonEmptyString, putOwn, stringOrEmpty } from '../../core/json.js';

describe('core/json', () => {
  it('isRecord: a JSON object, never null or an array', () => {
    expect(isRecord({})).toBe(true);
    expect(isRecord(Object.create(null))).toBe(true);
    for (const v of [null, undefined, [], [1], 'x', 1, true]) expect(isRecord(v)).toBe(false);
  });

  it('isObject: any object but null, arrays included', () => {
    expect(isObject({})).toBe(true);
    expect(isObject([])).toBe(true);
    expect(isObject(new Error('x'))).toBe(true);
    for (const v of [null, undefined, 'x', 1]) expect(isObject(v)).toBe(false);
  });

  it('nonEmptyString and stringOrEmpty read strings only', () => {
    expect(nonEmptyString('a')).toBe('a');
    expect(nonEmptyString('')).toBeUndefined();
    expect(nonEmptyString(1)).toBeUndefined();
    expect(stringOrEmpty('a')).toBe('a');
    expect(stringOrEmpty(undefined)).toBe('');
    expect(stringOrEmpty(1)).toBe('');
  });

  it('putOwn sets "__proto__" as an own, enumerable key instead of changing the prototype', () => {
    const out: Record<string, unknown> = {};
    putOwn(out, '__proto__', { polluted: true });
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":true}}');
    putOwn(out, '__proto__', 2);
    expect(out['__proto__']).toBe(2);
  });
});
