// The status each configuration object should show: Ready from its problems, a GitTarget's Synced and
// progress, a GitProvider's Reachable; transition times kept while a condition's status stays.
import { describe, expect, it } from 'vitest';
import type { ConfigProblem } from '../../config/resolve-config.js';
import type { ObservedObject } from '../../config/sources/config-snapshot.js';
import { desiredStatus, PENDING_MESSAGE, statusDiffers, type Condition, type ObjectStatus } from '../../kube/status/conditions.js';

const T0 = new Date('2026-01-10T08:00:00.123Z');
const T1 = new Date('2026-01-10T09:30:00Z');

const target = (status?: Record<string, unknown>, generation = 3): ObservedObject => ({
  kind: 'GitTarget',
  key: 'team-a/web',
  name: 'web',
  namespace: 'team-a',
  generation,
  status,
});

const problem = (field: string, reason: ConfigProblem['reason'], message: string): ConfigProblem => ({ kind: 'GitTarget', key: 'team-a/web', field, reason, message });

const cond = (s: ObjectStatus, type: string): Condition | undefined => s.conditions.find((c) => c.type === type);

describe('desiredStatus: Ready', () => {
  it('is True with reason Ready when the object has no problem, at the object generation', () => {
    const s = desiredStatus(target(undefined, 7), { problems: [], now: T0, backlog: 0, progress: {} });
    expect(s.observedGeneration).toBe(7);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready', observedGeneration: 7, lastTransitionTime: '2026-01-10T08:00:00Z' });
  });

  it('is False with the first problem\'s reason and every problem with the field to fix', () => {
    const s = desiredStatus(target(), {
      problems: [
        problem('spec.branch', 'InvalidBranch', '"x..y" is not a valid Git branch name'),
        problem('spec.path', 'InvalidPath', '"../up" leaves the repository'),
        problem('', 'Duplicate', 'defined more than once'),
      ],
      now: T0,
    });
    expect(cond(s, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidBranch',
      message: 'spec.branch: "x..y" is not a valid Git branch name; spec.path: "../up" leaves the repository; defined more than once',
      observedGeneration: 3,
    });
  });

  it('keeps lastTransitionTime while the status stays, and moves it when the status changes', () => {
    const first = desiredStatus(target(), { problems: [problem('spec.branch', 'InvalidBranch', 'bad')], now: T0 });
    // Another problem, same status False: the object has not been Ready since T0.
    const second = desiredStatus(target(first), { problems: [problem('spec.path', 'InvalidPath', 'bad too')], now: T1 });
    expect(cond(second, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidPath', lastTransitionTime: '2026-01-10T08:00:00Z' });
    const fixed = desiredStatus(target(second), { problems: [], now: T1 });
    expect(cond(fixed, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: '2026-01-10T09:30:00Z' });
  });

  it('reports the new generation after a spec change', () => {
    const before = desiredStatus(target(undefined, 1), { problems: [], now: T0, backlog: 0, progress: {} });
    const after = desiredStatus(target(before, 2), { problems: [], now: T1, backlog: 0, progress: {} });
    expect(after.observedGeneration).toBe(2);
    expect(after.conditions.every((c) => c.observedGeneration === 2)).toBe(true);
    expect(cond(after, 'Ready')?.lastTransitionTime).toBe('2026-01-10T08:00:00Z');
    expect(statusDiffers(before, after)).toBe(true);
  });

  it('gives WatchRules and ClusterProviders only Ready (and watchedResources when known)', () => {
    const rule: ObservedObject = { kind: 'WatchRule', key: 'team-a/r', name: 'r', namespace: 'team-a', generation: 1 };
    expect(desiredStatus(rule, { problems: [], now: T0 }).conditions.map((c) => c.type)).toEqual(['Ready']);
    const cp: ObservedObject = { kind: 'ClusterProvider', key: 'prod', name: 'prod', generation: 1, status: { watchedResources: 4 } };
    expect(desiredStatus(cp, { problems: [], now: T0, watchedResources: 12 }).watchedResources).toBe(12);
    expect(desiredStatus(cp, { problems: [], now: T0 }).watchedResources).toBe(4); // unknown: kept
    expect(desiredStatus(cp, { problems: [], now: T0, watchedResources: null }).watchedResources).toBeUndefined();
  });
});

describe('desiredStatus: GitTarget progress and Synced', () => {
  const commit = { sha: 'a'.repeat(40), time: '2026-01-10T07:59:00Z' };

  it('is Synced True when nothing waits and the last push succeeded', () => {
    const s = desiredStatus(target(), { problems: [], now: T0, backlog: 0, progress: { lastCommit: commit } });
    expect(s).toMatchObject({ backlog: 0, lastCommit: commit });
    expect(s.lastError).toBeUndefined();
    expect(cond(s, 'Synced')).toMatchObject({ status: 'True', reason: 'UpToDate' });
    expect(cond(s, 'Synced')?.message).toContain(commit.sha);
  });

  it('is Synced False/Pending with the backlog count in status.backlog, saying it is the partition\'s', () => {
    const s = desiredStatus(target(), { problems: [], now: T0, backlog: 42, progress: { lastCommit: commit } });
    expect(s.backlog).toBe(42);
    expect(cond(s, 'Synced')).toMatchObject({ status: 'False', reason: 'Pending', message: PENDING_MESSAGE });
    expect(PENDING_MESSAGE).toMatch(/^Changes are waiting to be written; see status\.backlog \(the backlog of the partition queue, shared/);
  });

  it('changes only status.backlog when the backlog count changes: the conditions stay as they are', () => {
    const shown = desiredStatus(target(), { problems: [], now: T0, backlog: 42, progress: { lastCommit: commit } });
    const next = desiredStatus(target(shown), { problems: [], now: T1, backlog: 7, progress: { lastCommit: commit } });
    expect(next.conditions).toEqual(shown.conditions);
    expect({ ...next, backlog: 42 }).toEqual(shown);
    expect(statusDiffers(shown, next)).toBe(true); // written, for status.backlog alone
    expect(statusDiffers(shown, { ...next, backlog: 42 })).toBe(false);
    // Likewise while the last write failed.
    const lastError = { message: 'git push failed', time: '2026-01-10T07:58:00Z' };
    const failing = desiredStatus(target(), { problems: [], now: T0, backlog: 3, progress: { lastError } });
    expect(desiredStatus(target(failing), { problems: [], now: T1, backlog: 300, progress: { lastError } }).conditions).toEqual(failing.conditions);
  });

  it('is Synced False/WriteFailed with the last error, which wins over the backlog', () => {
    const lastError = { message: 'git push /srv/r.git failed (exit 128): unable to access', time: '2026-01-10T07:58:00Z' };
    const s = desiredStatus(target(), { problems: [], now: T0, backlog: 5, progress: { lastCommit: commit, lastError } });
    expect(s.lastError).toEqual(lastError);
    expect(cond(s, 'Synced')).toMatchObject({ status: 'False', reason: 'WriteFailed' });
    expect(cond(s, 'Synced')?.message).toBe(`The last write failed at ${lastError.time}: ${lastError.message}`);
    expect(s.backlog).toBe(5);
    // The next successful push clears the error.
    const healed = desiredStatus(target(s), { problems: [], now: T1, backlog: 0, progress: { lastCommit: commit } });
    expect(healed.lastError).toBeUndefined();
    expect(cond(healed, 'Synced')).toMatchObject({ status: 'True', lastTransitionTime: '2026-01-10T09:30:00Z' });
  });

  it('keeps what the cluster shows when Valkey or the queue cannot be read', () => {
    const shown = desiredStatus(target(), { problems: [], now: T0, backlog: 3, progress: { lastCommit: commit } });
    const s = desiredStatus(target(shown), { problems: [], now: T1 });
    expect(s.lastCommit).toEqual(commit);
    expect(s.backlog).toBe(3);
    expect(cond(s, 'Synced')).toEqual(cond(shown, 'Synced'));
    expect(statusDiffers(shown, s)).toBe(false);
  });

  it('says nothing is written while the target is not Ready', () => {
    const s = desiredStatus(target({ backlog: 9 }), { problems: [problem('spec.branch', 'BranchNotAllowed', 'no')], now: T0, progress: { lastCommit: commit } });
    expect(s.backlog).toBeUndefined();
    expect(s.lastCommit).toEqual(commit);
    expect(cond(s, 'Synced')).toMatchObject({ status: 'Unknown', reason: 'NotReady' });
  });
});

describe('desiredStatus: GitProvider Reachable', () => {
  const provider = (status?: Record<string, unknown>, generation = 1): ObservedObject => ({ kind: 'GitProvider', key: 'team-a/gh', name: 'gh', namespace: 'team-a', generation, status });

  it('is Unknown until probed, then the probe\'s answer', () => {
    const unprobed = desiredStatus(provider(), { problems: [], now: T0 });
    expect(cond(unprobed, 'Reachable')).toMatchObject({ status: 'Unknown', reason: 'NotProbed' });
    const failed = desiredStatus(provider(unprobed), { problems: [], now: T1, probe: { reachable: false, reason: 'AuthenticationFailed', message: 'the credentials were refused' } });
    expect(cond(failed, 'Reachable')).toMatchObject({ status: 'False', reason: 'AuthenticationFailed', message: 'the credentials were refused' });
    // Another replica that has not probed yet keeps the answer the cluster shows.
    expect(cond(desiredStatus(provider(failed), { problems: [], now: T1 }), 'Reachable')).toEqual(cond(failed, 'Reachable'));
    // ... but not across a spec change: that answer was about the old spec.
    expect(cond(desiredStatus(provider(failed, 2), { problems: [], now: T1 }), 'Reachable')).toMatchObject({ status: 'Unknown', reason: 'NotProbed' });
  });

  it('is Unknown while the provider is not Ready', () => {
    const p: ConfigProblem = { kind: 'GitProvider', key: 'team-a/gh', field: 'spec.secretRef', reason: 'SecretNotFound', message: 'Secret team-a/x not found' };
    const s = desiredStatus(provider(), { problems: [p], now: T0, probe: { reachable: true, message: 'ok' } });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'SecretNotFound', message: 'spec.secretRef: Secret team-a/x not found' });
    expect(cond(s, 'Reachable')).toMatchObject({ status: 'Unknown', reason: 'NotReady' });
  });
});

describe('statusDiffers', () => {
  const base = desiredStatus(target(), { problems: [], now: T0, backlog: 0, progress: {} });

  it('is false for the same status, whatever the key order and the transition time', () => {
    const reordered = JSON.parse(JSON.stringify({ conditions: [...base.conditions].reverse(), backlog: 0, observedGeneration: 3 })) as Record<string, unknown>;
    expect(statusDiffers(reordered, base)).toBe(false);
    const otherTime = { ...base, conditions: base.conditions.map((c) => ({ ...c, lastTransitionTime: '2020-01-01T00:00:00Z' })) };
    expect(statusDiffers(otherTime, base)).toBe(false);
  });

  it('is true when there is no status, a field or a condition differs, or a field must go', () => {
    expect(statusDiffers(undefined, base)).toBe(true);
    expect(statusDiffers({ ...base, backlog: 1 }, base)).toBe(true);
    expect(statusDiffers({ ...base, lastError: { message: 'x', time: 't' } }, base)).toBe(true);
    expect(statusDiffers({ ...base, conditions: base.conditions.slice(1) }, base)).toBe(true);
    const otherReason = { ...base, conditions: base.conditions.map((c) => (c.type === 'Ready' ? { ...c, reason: 'Other' } : c)) };
    expect(statusDiffers(otherReason, base)).toBe(true);
  });
});

describe('desiredStatus: out-of-order events', () => {
  it("shows a GitTarget's count of events that arrived after a newer version, and keeps the cluster's while Valkey cannot be read", () => {
    expect(desiredStatus(target(), { problems: [], now: T0, backlog: 0, progress: { outOfOrder: 3 } }).outOfOrderEvents).toBe(3);
    expect(desiredStatus(target(), { problems: [], now: T0, backlog: 0, progress: {} }).outOfOrderEvents).toBeUndefined();
    expect(desiredStatus(target({ outOfOrderEvents: 5 }), { problems: [], now: T0, backlog: 0 }).outOfOrderEvents).toBe(5);
  });
});
