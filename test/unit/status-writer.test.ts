// The status writer's debouncing, with a recording patch function instead of an API server (the wire is
// covered by test/integration/status-reporter.test.ts): only changes are written, the latest per object
// wins, at most one write per object per interval, bounded concurrency, 404 dropped, errors retried.
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ObservedObject } from '../../config/sources/config-snapshot.js';
import { desiredStatus, type ObjectStatus } from '../../kube/status/conditions.js';
import { DEFAULT_MIN_INTERVAL_MS, startStatusWriter, statusPatch, type PatchStatus, type StatusRef, type StatusWriter } from '../../kube/status/status-writer.js';

const logger = pino({ level: 'silent' });
const obj = (name: string, status?: Record<string, unknown>): ObservedObject => ({ kind: 'WatchRule', key: `ns/${name}`, name, namespace: 'ns', generation: 1, status });
const ready = (o: ObservedObject, ok = true): ObjectStatus =>
  desiredStatus(o, { problems: ok ? [] : [{ kind: 'WatchRule', key: o.key, field: 'spec.targetRef.name', reason: 'GitTargetNotFound', message: 'GitTarget ns/x not found' }], now: new Date() });

interface Call {
  ref: StatusRef;
  status: Record<string, unknown>;
  at: number;
}

/**
 * With fake timers: moves the fake clock `ms` on, running the writer's timers that come due (and the
 * recorder's), then waits until the writer is idle.
 */
async function advanceAndIdle(w: StatusWriter, ms: number): Promise<void> {
  const idle = w.idle();
  await vi.advanceTimersByTimeAsync(ms);
  await idle;
}

function recorder(answer: (call: Call) => Promise<void> = async () => undefined) {
  const calls: Call[] = [];
  let active = 0;
  let maxActive = 0;
  const patch: PatchStatus = async (ref, body) => {
    const call = { ref, status: body.status, at: Date.now() };
    calls.push(call);
    active++;
    maxActive = Math.max(maxActive, active);
    try {
      await new Promise((r) => setTimeout(r, 5));
      await answer(call);
    } finally {
      active--;
    }
  };
  return { calls, patch, maxActive: () => maxActive };
}

describe('status writer', () => {
  let writer: StatusWriter | undefined;
  afterEach(async () => writer?.stop());
  const start = (patchStatus: PatchStatus, extra: { minIntervalMs?: number; concurrency?: number; settleMs?: number } = {}) =>
    (writer = startStatusWriter({ kubeConfig: {} as KubeConfig, logger, patchStatus, minIntervalMs: 50, ...extra }));

  it('writes nothing when the cluster already shows the desired status', async () => {
    const r = recorder();
    const w = start(r.patch);
    const o = obj('a');
    const desired = ready(o);
    w.set(obj('a', desired), desired);
    await w.idle();
    expect(r.calls).toHaveLength(0);
  });

  it('writes a thousand identical hand-overs once', async () => {
    const r = recorder();
    const w = start(r.patch);
    const o = obj('a');
    for (let i = 0; i < 1000; i++) w.set(o, ready(o));
    await w.idle();
    // Later rounds still see the old status (informers lag): our own write counts as shown meanwhile.
    for (let i = 0; i < 1000; i++) w.set(o, ready(o));
    await w.idle();
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.ref).toEqual({ kind: 'WatchRule', name: 'a', namespace: 'ns' });
  });

  it('coalesces changes of one object: the latest wins, at most one write per interval', async () => {
    vi.useFakeTimers();
    try {
      const r = recorder();
      const w = start(r.patch, { minIntervalMs: 150 });
      const o = obj('a');
      w.set(o, ready(o, true));
      w.set(o, ready(o, false));
      w.set(o, ready(o, true));
      w.set(o, ready(o, false));
      await advanceAndIdle(w, 200);
      expect(r.calls).toHaveLength(2);
      // On the fake clock: the second write went when the interval was over, not before.
      expect(r.calls[1]!.at - r.calls[0]!.at).toBe(150);
      const last = r.calls[1]!.status.conditions as { status: string }[];
      expect(last[0]!.status).toBe('False');
    } finally {
      vi.useRealTimers();
    }
  });

  it('writes at most `concurrency` at once', async () => {
    const r = recorder();
    const w = start(r.patch, { concurrency: 3 });
    for (let i = 0; i < 20; i++) {
      const o = obj(`o${i}`);
      w.set(o, ready(o));
    }
    await w.idle();
    expect(r.calls).toHaveLength(20);
    expect(r.maxActive()).toBe(3);
  });

  it('drops a deleted object (404) and tries other errors again on the next hand-over', async () => {
    let fail: number | undefined = 500;
    const r = recorder(async (call) => {
      if (call.ref.name === 'gone') throw Object.assign(new Error('not found'), { code: 404 });
      if (fail !== undefined) throw Object.assign(new Error('boom'), { code: fail });
    });
    const w = start(r.patch, { minIntervalMs: 20 });
    const gone = obj('gone');
    const flaky = obj('flaky');
    w.set(gone, ready(gone));
    w.set(flaky, ready(flaky));
    await w.idle();
    expect(r.calls.map((c) => c.ref.name).sort()).toEqual(['flaky', 'gone']);
    fail = undefined;
    // Handed over at once: held back until the failed write's interval is over, which idle() waits for.
    w.set(flaky, ready(flaky));
    await w.idle();
    expect(r.calls.map((c) => c.ref.name).sort()).toEqual(['flaky', 'flaky', 'gone']);
  });

  it('writes an object at most once per 5 s by default: a busy target is written with its latest backlog', async () => {
    vi.useFakeTimers();
    try {
      const r = recorder();
      const w = startStatusWriter({ kubeConfig: {} as KubeConfig, logger, patchStatus: r.patch });
      const t: ObservedObject = { kind: 'GitTarget', key: 'ns/t', name: 't', namespace: 'ns', generation: 1 };
      const withBacklog = (on: ObservedObject, n: number) => desiredStatus(on, { problems: [], now: new Date(), backlog: n, progress: {} });
      w.set(t, withBacklog(t, 1));
      await vi.advanceTimersByTimeAsync(10);
      expect(r.calls).toHaveLength(1);
      // The backlog changes every 100 ms; the informers show the first write meanwhile.
      const shown = { ...t, status: r.calls[0]!.status };
      for (let n = 2; n <= 49; n++) {
        w.set(shown, withBacklog(shown, n));
        await vi.advanceTimersByTimeAsync(100);
      }
      expect(r.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(300);
      expect(r.calls).toHaveLength(2);
      expect(r.calls[1]!.at - r.calls[0]!.at).toBe(DEFAULT_MIN_INTERVAL_MS);
      expect(DEFAULT_MIN_INTERVAL_MS).toBe(5000);
      // Only the count moved: the patch carries the same conditions.
      expect(r.calls[1]!.status.backlog).toBe(49);
      expect(r.calls[1]!.status.conditions).toEqual(r.calls[0]!.status.conditions);
      await w.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('discard() drops what is pending and the memory of its own writes (another replica reports now)', async () => {
    vi.useFakeTimers();
    try {
      const r = recorder();
      const w = start(r.patch, { minIntervalMs: 100 });
      const o = obj('a');
      w.set(o, ready(o, true));
      await advanceAndIdle(w, 10);
      expect(r.calls).toHaveLength(1);
      w.set(o, ready(o, false)); // held back by minIntervalMs
      w.discard();
      // The fake clock passes the time the held-back write was due: it is not written.
      await advanceAndIdle(w, 200);
      expect(r.calls).toHaveLength(1);
      // Our own write no longer counts as shown: a stale view of the object is written to again.
      w.set(o, ready(o, true));
      await advanceAndIdle(w, 10);
      expect(r.calls).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('removes fields it no longer reports with null (JSON merge patch)', () => {
    const o = obj('a');
    const patch = statusPatch(ready(o), { lastError: { message: 'x', time: 't' }, conditions: [] });
    expect(patch.status.lastError).toBeNull();
    expect(patch.status.observedGeneration).toBe(1);
    expect(Array.isArray(patch.status.conditions)).toBe(true);
  });
});
