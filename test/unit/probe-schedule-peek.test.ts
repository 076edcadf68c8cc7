// ProbeSchedule.peek, which /readyz reads (through StatusReporter.providers()): the last result of the
// provider's current spec, without starting a probe.
import { describe, expect, it } from 'vitest';
import { startProbeSchedule } from '../../kube/status/probe-schedule.js';
import { waitFor } from '../support/git-repos.js';

describe('probe schedule peek', () => {
  it('answers the last result of the current spec and never probes', async () => {
    let probes = 0;
    const schedule = startProbeSchedule({ probe: async () => (probes++, { reachable: false, reason: 'Unreachable', message: 'no route' }) });
    try {
      const provider = { key: 'ns/p', url: 'https://git.example/repo.git', allowedBranches: ['main'] };
      expect(schedule.peek(provider)).toBeUndefined();
      expect(probes).toBe(0);
      schedule.want(provider);
      await waitFor(async () => schedule.peek(provider) !== undefined, 'the probe result');
      expect(schedule.peek(provider)).toEqual({ reachable: false, reason: 'Unreachable', message: 'no route' });
      // Another URL is another spec: the old answer says nothing about it.
      expect(schedule.peek({ ...provider, url: 'https://git.example/other.git' })).toBeUndefined();
      expect(probes).toBe(1);
    } finally {
      await schedule.stop();
    }
  });
});
