// A token bucket: the client-side limit (qps, burst) a ClusterProvider sets on requests to its API
// server, the same contract as client-go's QPS/Burst. Reservation style, as Go's rate.Limiter: a caller
// takes a token at once and, when the bucket is in debt, sleeps until that token is due. Callers are
// thereby served in the order they asked, without a queue, and a burst never exceeds `burst`.

/** Time as the limiter sees it; injected so tests never depend on the wall clock. */
export interface Clock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export class TokenBucket {
  private tokens: number;
  private last: number;
  private waited = 0;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly clock: Clock = systemClock,
  ) {
    if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) throw new RangeError(`token bucket rate must be a positive number, got ${ratePerSecond}`);
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`token bucket burst must be an integer of at least 1, got ${burst}`);
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes one token; resolves when it is due (at once while the bucket holds tokens). */
  async take(): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) {
      this.waited++;
      await this.clock.sleep(wait);
    }
  }

  /** Takes one token now and returns how many milliseconds the caller must wait before using it. */
  reserve(): number {
    const now = this.clock.now();
    // A clock that goes backwards (it should not) refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, now - this.last);
    this.last = Math.max(this.last, now);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.ratePerSecond;
  }

  /** How many takes had to wait so far: how often the limit held a request back. */
  get waits(): number {
    return this.waited;
  }
}
