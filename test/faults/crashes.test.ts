// Fault injection, part 1: no fault, crashed (also with its push on the wire) and paused writers, a Valkey restart. Real processes: a Valkey server the test starts and kills, replicas started as `npm start`
// would, a bare remote whose hook refuses overlapping pushes. Small size; `npm run faults` runs the same
// scenarios at a realistic size.
import { describe, it } from 'vitest';
import { expectClean } from './expect-clean.js';
import { SMALL, runScenario } from './scenarios.js';

const TIMEOUT = 150_000;

describe('the write path under faults (crashes)', () => {
  for (const name of ['baseline', 'kill-writer', 'kill-before-push', 'pause-writer', 'valkey-restart']) {
    it(name, { timeout: TIMEOUT }, async () => {
      expectClean(await runScenario(name, SMALL));
    });
  }
});
