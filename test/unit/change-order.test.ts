import { describe, expect, it } from 'vitest';
import { changeOrder } from '../../core/change-order.js';

const order = (...items: [string, string?, string?][]) =>
  changeOrder(items, ([stageTimestamp, cluster = 'c1', resourceVersion = '']) => ({ stageTimestamp, cluster, resourceVersion }));

describe('changeOrder', () => {
  it('orders by audit time to the microsecond', () => {
    expect(order(['2026-11-25T10:00:01.000002Z'], ['2026-11-25T10:00:01.000001Z'], ['2026-11-25T10:00:00.5Z'])).toEqual([2, 1, 0]);
  });

  it('breaks ties within a cluster by resourceVersion, numerically', () => {
    const t = '2026-11-25T10:00:00.000000Z';
    expect(order([t, 'c1', '1420'], [t, 'c1', '1407'], [t, 'c1', '999'])).toEqual([2, 1, 0]);
  });

  it('keeps queue order for ties it cannot break', () => {
    const t = '2026-11-25T10:00:00Z';
    expect(order([t, 'c1', ''], [t, 'c1', '5'], [t, 'c1', ''])).toEqual([0, 1, 2]);
  });

  it('an unreadable time travels with the item before it, and the order stays total', () => {
    expect(order(['2026-11-25T10:00:02Z'], [''], ['2026-11-25T10:00:01Z'], ['garbage'])).toEqual([2, 3, 0, 1]);
    expect(order([''], ['x'])).toEqual([0, 1]);
  });
});

describe('changeOrder: resourceVersion over audit time', () => {
  it('orders one cluster by resourceVersion although their responses completed in the other order', () => {
    // Two patches of one object: rv 101 finished its response before rv 100 did.
    expect(order(['2026-11-25T10:00:00.000200Z', 'c1', '100'], ['2026-11-25T10:00:00.000100Z', 'c1', '101'])).toEqual([0, 1]);
  });

  it('keeps an item without a resourceVersion at its audit time among the others', () => {
    expect(
      order(['2026-11-25T10:00:03Z', 'c1', '7'], ['2026-11-25T10:00:02Z', 'c1', ''], ['2026-11-25T10:00:01Z', 'c1', '9']),
    ).toEqual([0, 1, 2]);
  });
});

describe('changeOrder across clusters', () => {
  it('orders one cluster by resourceVersion within a tie and leaves the other cluster where it arrived', () => {
    const t = '2026-11-25T10:00:00Z';
    expect(order([t, 'b', '9'], [t, 'a', '20'], [t, 'b', '3'], [t, 'a', '10'])).toEqual([2, 3, 0, 1]);
  });
});
