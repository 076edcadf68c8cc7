import { defineConfig } from 'vitest/config';
import LongFirstSequencer from './test/long-first-sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Three files at a time on two cores: most tests wait on the processes they start (API servers, Valkey,
    // git, replicas), which leaves the cores half idle with two (measured: 410 s with two, 324 s with three,
    // the same tests passing). Tests wait on conditions, never on time, so they hold under the contention.
    maxWorkers: 3,
    sequence: { sequencer: LongFirstSequencer },
  },
});
