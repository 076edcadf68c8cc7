import { describe, expect, it } from 'vitest';
import { changeOrder } from '../../workers/change-order.js';

const at = (...stamps: string[]) => stamps.map((stageTimestamp) => ({ stageTimestamp }));

describe('changeOrder', () => {
  it('orders by audit time, microseconds included', () => {
    expect(changeOrder(at('2026-11-25T10:00:03.000002Z', '2026-11-25T10:00:01.5Z', '2026-11-25T10:00:02Z'))).toEqual([1, 2, 0]);
  });

  it('keeps queue order for equal times', () => {
    expect(changeOrder(at('2026-11-25T10:00:00Z', '2026-11-25T10:00:00Z', '2026-11-25T09:00:00Z'))).toEqual([2, 0, 1]);
  });

  it('an unreadable time travels with the item before it, and the order stays total', () => {
    expect(changeOrder(at('2026-11-25T10:00:02Z', '', '2026-11-25T10:00:01Z', 'garbage'))).toEqual([2, 3, 0, 1]);
    expect(changeOrder(at('', 'x'))).toEqual([0, 1]);
  });
});
