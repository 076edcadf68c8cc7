// The fault scenarios are small files that run for a minute or more each: in vitest's order for a fresh
// clone (no timings cached yet: larger files first) they come last and leave one worker alone with them at
// the end of the run. They go first; everything else keeps vitest's order.
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const LONG = /[\\/]test[\\/]faults[\\/][^\\/]+\.test\.ts$/;

export default class LongFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return [...sorted.filter((f) => LONG.test(f.moduleId)), ...sorted.filter((f) => !LONG.test(f.moduleId))];
  }
}
