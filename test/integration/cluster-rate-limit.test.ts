// The per-cluster token bucket in a real Valkey: all-or-nothing takes, exact under concurrency, refill by
// the server's clock, one bucket per cluster under the service prefix. Refill rates are chosen so that
// the outcome does not depend on how fast the test runs (nothing is asserted about elapsed time).
import type { Valkey } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClusterRateLimit, takeTokens } from '../../workers/ingest/cluster-rate-limit.js';
import { openConnection } from '../../queues/connection.js';
import { rateLimitKey } from '../../queues/names.js';
import { waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

/** One token per 1000 s: nothing refills while a test runs. */
const FROZEN = 0.001;

describe('cluster rate limit (token bucket in Valkey)', () => {
  let valkey: TestValkey;
  let connection: Valkey;
  beforeAll(async () => {
    valkey = await startTestValkey();
    connection = openConnection(valkey.url);
  });
  afterAll(async () => {
    await connection?.quit();
    await valkey?.stop();
  });

  it('takes a batch whole while the tokens last, then refuses it whole with the time until it fits', async () => {
    const prefix = uniquePrefix('rl');
    const limit = { eventsPerSecond: 1, burst: 10 };
    expect(await takeTokens(connection, prefix, 'c1', limit, 4)).toEqual({ taken: true, tokensLeft: 6 });
    expect(await takeTokens(connection, prefix, 'c1', limit, 6)).toEqual({ taken: true, tokensLeft: 0 });
    const refused = await takeTokens(connection, prefix, 'c1', limit, 5);
    // 5 tokens at 1/s: at most 5 s away (less by whatever refilled since the last take).
    expect(refused).toMatchObject({ taken: false });
    const ms = (refused as { retryAfterMs: number }).retryAfterMs;
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThanOrEqual(5000);
  });

  it('a batch larger than the burst can never be taken', async () => {
    const prefix = uniquePrefix('rl');
    expect(await takeTokens(connection, prefix, 'c1', { eventsPerSecond: 100, burst: 10 }, 11)).toEqual({ taken: false, exceedsBurst: true });
    // …and taking nothing away: the full burst is still there.
    expect(await takeTokens(connection, prefix, 'c1', { eventsPerSecond: 100, burst: 10 }, 10)).toEqual({ taken: true, tokensLeft: 0 });
  });

  it('is exact under concurrency: of 60 single-event takes at burst 25, exactly 25 succeed', async () => {
    const prefix = uniquePrefix('rl');
    const limit = { eventsPerSecond: FROZEN, burst: 25 };
    const results = await Promise.all(Array.from({ length: 60 }, () => takeTokens(connection, prefix, 'c1', limit, 1)));
    expect(results.filter((r) => r.taken)).toHaveLength(25);
  });

  it('keeps one bucket per cluster, under the prefix, expiring once it would be full again', async () => {
    const prefix = uniquePrefix('rl');
    const limit = { eventsPerSecond: FROZEN, burst: 3 };
    expect((await takeTokens(connection, prefix, 'noisy', limit, 3)).taken).toBe(true);
    expect((await takeTokens(connection, prefix, 'noisy', limit, 1)).taken).toBe(false);
    expect((await takeTokens(connection, prefix, 'quiet', limit, 3)).taken).toBe(true);
    expect(rateLimitKey(prefix, 'noisy')).toBe(`${prefix}:ratelimit:noisy`);
    const ttl = await connection.pttl(rateLimitKey(prefix, 'noisy'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3 / FROZEN * 1000 + 1000);
  });

  it('refills by elapsed time', async () => {
    const prefix = uniquePrefix('rl');
    const limit = { eventsPerSecond: 200, burst: 10 };
    expect((await takeTokens(connection, prefix, 'c1', limit, 10)).taken).toBe(true);
    await waitFor(async () => (await takeTokens(connection, prefix, 'c1', limit, 10)).taken, 'the bucket refills');
  });

  it('a lowered burst caps the tokens already in the bucket', async () => {
    const prefix = uniquePrefix('rl');
    expect((await takeTokens(connection, prefix, 'c1', { eventsPerSecond: FROZEN, burst: 100 }, 1)).taken).toBe(true);
    const lowered = { eventsPerSecond: FROZEN, burst: 5 };
    expect(await takeTokens(connection, prefix, 'c1', lowered, 5)).toEqual({ taken: true, tokensLeft: 0 });
    expect((await takeTokens(connection, prefix, 'c1', lowered, 1)).taken).toBe(false);
  });

  it('createClusterRateLimit answers 429 refusals naming the cluster and its limit', async () => {
    const prefix = uniquePrefix('rl');
    const take = createClusterRateLimit({ connection, prefix });
    const limit = { eventsPerSecond: 2, burst: 4 };
    expect(await take('c1', limit, 4)).toBeNull();
    const refusal = await take('c1', limit, 4);
    expect(refusal).toMatchObject({ status: 429, reason: 'rate-limited' });
    expect(refusal?.error).toMatch(/^cluster provider "c1" is over its rate limit \(2 events\/s, burst 4\): 4 events can be accepted in \d\.\d s; retry later$/);
    expect(refusal?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(refusal?.retryAfterSeconds).toBeLessThanOrEqual(2);
    expect(await take('c1', limit, 5)).toEqual({
      status: 429,
      reason: 'batch-exceeds-burst',
      error:
        'a batch of 5 events exceeds the burst of cluster provider "c1" (2 events/s, burst 4) and can never be accepted: ' +
        "raise spec.rateLimit.burst of ClusterProvider c1 to at least the API server's --audit-webhook-batch-max-size (default 400)",
      retryAfterSeconds: 2,
    });
  });
});
