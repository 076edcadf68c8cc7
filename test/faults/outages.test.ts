// Fault injection, part 2: the Git remote down, outside pushes racing ours, a graceful shutdown of the
// writer, a poison event the remote always refuses. Same harness and checks as crashes.test.ts.
import { describe, expect, it } from 'vitest';
import { expectClean } from './expect-clean.js';
import { SMALL, runScenario } from './scenarios.js';

const TIMEOUT = 150_000;

describe('the write path under faults (outages)', () => {
  for (const name of ['remote-down', 'push-conflict', 'graceful-shutdown', 'poison']) {
    it(name, { timeout: TIMEOUT }, async () => {
      const result = await runScenario(name, SMALL);
      if (name === 'poison') expect(result.expectedNotCommitted, 'the poison event is acknowledged and not committed').toBe(1);
      expectClean(result);
    });
  }
});
