import { describe, expect, it } from 'vitest';
import { DEFAULT_OBJECT_LIMITS, measureObject } from '../../core/object-limits.js';

const limits = { maxBytes: 1000, maxDepth: 5, maxValues: 50 };

/** `levels` maps, each holding the next under `a`, the innermost a string. */
function nested(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

describe('measureObject', () => {
  it('gives the size as JSON of an object within its bounds', () => {
    const object = { kind: 'ConfigMap', data: { a: 'é' } };
    expect(measureObject(object, limits)).toEqual({ ok: true, bytes: Buffer.byteLength(JSON.stringify(object)) });
  });

  it('refuses an object nested deeper than the bound, naming where', () => {
    expect(measureObject(nested(5), limits).ok).toBe(true);
    expect(measureObject(nested(6), limits)).toEqual({
      ok: false,
      reason: 'object-too-deep',
      error: 'the object is nested deeper than 5 levels (at a.a.a.a.a); the limit is EVENT_MAX_DEPTH',
    });
  });

  it('walks a hostile depth without overflowing the stack', () => {
    let deep: unknown = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const result = measureObject(deep, DEFAULT_OBJECT_LIMITS);
    expect(result).toMatchObject({ ok: false, reason: 'object-too-deep' });
  });

  it('refuses more map keys and array elements than the bound, summed over the object', () => {
    expect(measureObject({ a: new Array(24).fill(0), b: new Array(24).fill(0) }, limits).ok).toBe(true);
    expect(measureObject({ a: new Array(25).fill(0), b: new Array(25).fill(0) }, limits)).toEqual({
      ok: false,
      reason: 'object-too-many-values',
      error: 'the object has more than 50 map keys and array elements in all (an array of 25 elements at a); the limit is EVENT_MAX_VALUES',
    });
    const keys = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, i]));
    expect(measureObject({ data: keys }, limits)).toMatchObject({ ok: false, reason: 'object-too-many-values', error: expect.stringContaining('a map of 60 keys at data') });
  });

  it('refuses five million zeros at once, without walking them', () => {
    const huge = { data: { k: new Array(5_000_000).fill(0) } };
    expect(measureObject(huge, DEFAULT_OBJECT_LIMITS)).toMatchObject({ ok: false, reason: 'object-too-many-values', error: expect.stringContaining('an array of 5000000 elements at data.k') });
  });

  it('refuses an object larger than the byte bound', () => {
    expect(measureObject({ data: { k: 'x'.repeat(2000) } }, limits)).toEqual({
      ok: false,
      reason: 'object-too-large',
      error: `the object is 2017 bytes as JSON, over the limit of 1000 (EVENT_MAX_OBJECT_BYTES)`,
    });
  });
});
