import { describe, expect, it } from 'vitest';
import { nextRelease, releasable, type WindowItem } from '../../workers/route/reorder-window.js';

const at = (seconds: number) => `2026-12-07T10:00:${String(seconds).padStart(2, '0')}.000000Z`;
const item = (cluster: string, time: number, rv: string, arrivedAt: number): WindowItem => ({ key: { stageTimestamp: at(time), cluster, resourceVersion: rv }, arrivedAt });

describe('releasable', () => {
  it('routes everything at once with a window of 0', () => {
    expect(releasable([item('c', 2, '2', 1000), item('c', 1, '1', 1000)], { windowMs: 0, now: 1000, drained: true })).toEqual([true, true]);
  });

  it('holds an event until it arrived a window ago, when the queue is drained', () => {
    const items = [item('c', 1, '1', 1000), item('c', 2, '2', 1500)];
    expect(releasable(items, { windowMs: 1000, now: 1999, drained: true })).toEqual([false, false]);
    expect(releasable(items, { windowMs: 1000, now: 2000, drained: true })).toEqual([true, false]);
    expect(releasable(items, { windowMs: 1000, now: 2500, drained: true })).toEqual([true, true]);
    expect(nextRelease(items, [true, false], 1000)).toBe(2500);
  });

  it('holds a newer event of a cluster back while an older one that arrived later is still in its window', () => {
    // The batch of the newer change (rv 7) arrived first; the older one (rv 5) 300 ms later.
    const items = [item('c', 7, '7', 1000), item('c', 5, '5', 1300), item('other', 6, '9', 1000)];
    expect(releasable(items, { windowMs: 1000, now: 2100, drained: true })).toEqual([false, false, true]);
    expect(releasable(items, { windowMs: 1000, now: 2300, drained: true })).toEqual([true, true, true]);
  });

  it('while the queue is not drained, counts only what arrived a window before the newest event in hand', () => {
    const items = [item('c', 1, '1', 1000), item('c', 2, '2', 1800), item('c', 3, '3', 2500)];
    // Long ago by the clock, but whatever still waits in the queue arrived after 2500.
    expect(releasable(items, { windowMs: 1000, now: 99_000, drained: false })).toEqual([true, false, false]);
    expect(releasable(items, { windowMs: 1000, now: 99_000, drained: true })).toEqual([true, true, true]);
  });

  it('orders by time, then by resourceVersion within a cluster', () => {
    const items = [item('c', 1, '12', 1000), item('c', 1, '11', 1900)];
    // rv 11 is older than rv 12 at the same time and still in its window: rv 12 waits for it.
    expect(releasable(items, { windowMs: 1000, now: 2100, drained: true })).toEqual([false, false]);
  });
});
