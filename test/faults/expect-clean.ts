// The assertions every fault scenario's result must pass, with the scenario's row, notes and problems in
// the failure message so a red test says what went wrong without rerunning it.
import { expect } from 'vitest';
import type { ScenarioResult } from './scenarios.js';

export function expectClean(result: ScenarioResult): void {
  const { row } = result;
  const report = `${JSON.stringify(row)}\nnotes:\n  ${result.notes.join('\n  ')}\nproblems:\n  ${result.problems.join('\n  ')}`;
  expect({ lost: row.lost, duplicated: row.duplicated, concurrentPushes: row.concurrentPushes }, report).toEqual({ lost: 0, duplicated: 0, concurrentPushes: 0 });
  expect(row.acknowledged, report).toBe(row.sent);
  expect(row.committed, report).toBe(row.acknowledged - result.expectedNotCommitted);
  expect(result.problems, report).toEqual([]);
}
