// The per-cluster request limiter, on an injected clock: what it lets through at once, how long it makes
// callers wait, in which order, and that no window ever gets more than burst + rate × window.
import { describe, expect, it } from 'vitest';
import { TokenBucket, type Clock } from '../../kube/token-bucket.js';

/** A clock that moves only when told to, or by as much as a caller sleeps. */
function manualClock(opts: { sleepAdvances: boolean }) {
  let now = 0;
  const sleeps: number[] = [];
  const clock: Clock = {
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      if (opts.sleepAdvances) now += ms;
    },
  };
  return { clock, sleeps, advance: (ms: number) => (now += ms), now: () => now };
}

describe('TokenBucket', () => {
  it('lets a full burst through at once, then makes the next caller wait one interval', async () => {
    const { clock, sleeps } = manualClock({ sleepAdvances: false });
    const bucket = new TokenBucket(10, 3, clock);
    for (let i = 0; i < 3; i++) await bucket.take();
    expect(sleeps).toEqual([]);
    expect(bucket.waits).toBe(0);
    await bucket.take();
    expect(sleeps).toEqual([100]);
    expect(bucket.waits).toBe(1);
  });

  it('serves waiting callers in order, each one interval after the one before', () => {
    const { clock } = manualClock({ sleepAdvances: false });
    const bucket = new TokenBucket(4, 1, clock);
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve(), bucket.reserve()]).toEqual([0, 250, 500, 750]);
  });

  it('refills at the rate, never beyond the burst', () => {
    const { clock, advance } = manualClock({ sleepAdvances: false });
    const bucket = new TokenBucket(2, 2, clock);
    expect([bucket.reserve(), bucket.reserve()]).toEqual([0, 0]);
    advance(500); // one token back
    expect(bucket.reserve()).toBe(0);
    expect(bucket.reserve()).toBe(500);
    advance(60_000); // a long idle time refills only up to the burst
    expect([bucket.reserve(), bucket.reserve()]).toEqual([0, 0]);
    expect(bucket.reserve()).toBe(500);
  });

  it('pays back a debt before it refills', () => {
    const { clock, advance } = manualClock({ sleepAdvances: false });
    const bucket = new TokenBucket(1, 1, clock);
    bucket.reserve();
    expect(bucket.reserve()).toBe(1000); // in debt by one token
    advance(1000); // the debt is paid, nothing saved
    expect(bucket.reserve()).toBe(1000);
  });

  it('grants no window more than burst + rate × window', async () => {
    const { clock, now } = manualClock({ sleepAdvances: true });
    const rate = 5;
    const burst = 4;
    const bucket = new TokenBucket(rate, burst, clock);
    const grants: number[] = [];
    for (let i = 0; i < 60; i++) {
      await bucket.take();
      grants.push(now());
    }
    for (let a = 0; a < grants.length; a++) {
      for (let b = a; b < grants.length; b++) {
        const window = grants[b]! - grants[a]!;
        expect(b - a + 1).toBeLessThanOrEqual(burst + Math.floor((window * rate) / 1000 + 1e-9));
      }
    }
    expect(bucket.waits).toBe(60 - burst);
  });

  it('ignores a clock that steps backwards', () => {
    const { clock, advance } = manualClock({ sleepAdvances: false });
    const bucket = new TokenBucket(1, 1, clock);
    bucket.reserve();
    advance(-5000);
    expect(bucket.reserve()).toBe(1000);
  });

  it('refuses limits that cannot limit', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(RangeError);
    expect(() => new TokenBucket(Number.NaN, 1)).toThrow(RangeError);
    expect(() => new TokenBucket(Infinity, 1)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 1.5)).toThrow(RangeError);
  });
});
