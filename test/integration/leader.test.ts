// Leader election on a real Valkey: of two replicas one leads, stop() hands over at once (the lease is
// released, not left to expire), and a leader whose lease is gone or whose renewals are late steps down.
import type { Valkey } from 'iovalkey';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { openConnection } from '../../queues/connection.js';
import { startLeaderElection, type LeaderElection, type LeaderElectionOptions } from '../../queues/leader.js';
import { statusKeys } from '../../queues/names.js';
import { waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/**
 * A replica's connection whose lease scripts (eval) are counted, and made to fail or to hang on demand:
 * what the tests wait on instead of time (so many renewals happened; a renewal is still waiting).
 */
function instrumented(connection: Valkey) {
  const state = { evals: 0, pending: 0, mode: 'normal' as 'normal' | 'failing' | 'hanging' };
  const proxy = new Proxy(connection, {
    get(target, prop, receiver) {
      if (prop === 'eval') {
        return (...args: unknown[]) => {
          state.evals++;
          if (state.mode === 'failing') return Promise.reject(new Error('connection lost'));
          if (state.mode === 'hanging') {
            state.pending++;
            return new Promise(() => undefined);
          }
          state.pending++;
          return (target.eval as (...a: unknown[]) => Promise<unknown>).apply(target, args).finally(() => state.pending--);
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { connection: proxy, state };
}

describe('leader election', () => {
  let valkey: TestValkey;
  let connection: Valkey;
  const running: LeaderElection[] = [];

  beforeAll(async () => {
    valkey = await startTestValkey();
    connection = openConnection(valkey.url);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((e) => e.stop()));
  });
  afterAll(async () => {
    await connection?.quit();
    await valkey?.stop();
  });

  /** An election with its onChange calls recorded. */
  const elect = (keys: ReturnType<typeof statusKeys>, replicaId: string, extra: Partial<LeaderElectionOptions> = {}) => {
    const changes: boolean[] = [];
    const conn = instrumented(connection);
    /** Lease scripts still waiting for Valkey when each change was made. */
    const pendingAtChange: number[] = [];
    /** Lease scripts sent so far when each change was made. */
    const evalsAtChange: number[] = [];
    const election = startLeaderElection({
      connection: conn.connection,
      keys,
      replicaId,
      leaseTtlMs: 1500,
      logger,
      onChange: (l) => {
        changes.push(l);
        pendingAtChange.push(conn.state.pending);
        evalsAtChange.push(conn.state.evals);
      },
      ...extra,
    });
    running.push(election);
    /** Resolves once `n` more lease scripts (renewals or acquisitions) were sent. */
    const attempts = async (n: number) => {
      const target = conn.state.evals + n;
      await waitFor(() => conn.state.evals >= target, `${replicaId}: ${n} more renewals or acquisitions`, 20_000, 10);
    };
    return { election, changes, state: conn.state, pendingAtChange, evalsAtChange, attempts };
  };
  const leaders = <E extends { election: LeaderElection }>(...es: E[]): E[] => es.filter((e) => e.election.isLeader());

  it('elects exactly one of two replicas, and the leader stays while it renews', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const a = elect(keys, 'replica-a');
    const b = elect(keys, 'replica-b');
    await waitFor(async () => leaders(a, b).length === 1, 'one leader', 5000);
    const first = leaders(a, b)[0]!;
    // Several TTLs (a renewal every third of one): renewed all along, never a change of leader.
    await first.attempts(12);
    expect(leaders(a, b)).toEqual([first]);
    expect(first.changes).toEqual([true]);
    expect((first === a ? b : a).changes).toEqual([]);
    expect(await connection.get(keys.lease)).toMatch(new RegExp(`^${first === a ? 'replica-a' : 'replica-b'}:`));
  });

  it('hands over on stop: the lease is released at once (not left to expire), and the other replica leads', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const ttl = 3000;
    const a = elect(keys, 'replica-a', { leaseTtlMs: ttl });
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    const b = elect(keys, 'replica-b', { leaseTtlMs: ttl });
    await b.attempts(1);
    expect(b.election.isLeader()).toBe(false);

    await a.election.stop();
    expect(a.election.isLeader()).toBe(false);
    expect(a.changes).toEqual([true, false]);
    // Released, not left to expire: the moment stop() is done, the lease names a no more.
    expect((await connection.get(keys.lease)) ?? '(none)').not.toMatch(/^replica-a:/);
    await waitFor(async () => b.election.isLeader(), 'b takes over', 10_000);
    expect(b.changes).toEqual([true]);
    expect(await connection.get(keys.lease)).toMatch(/^replica-b:/);
  });

  it('steps down at once when the lease was taken over (the leader\'s lease expired meanwhile)', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const a = elect(keys, 'replica-a');
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    // What another replica does once a's lease expired: a new acquisition with a new fence.
    await connection.set(keys.lease, 'replica-x:99', 'PX', 60_000);
    await waitFor(async () => !a.election.isLeader(), 'a steps down', 10_000);
    expect(a.changes).toEqual([true, false]);
    // It keeps trying, and keeps out while x holds the lease.
    await a.attempts(3);
    expect(a.election.isLeader()).toBe(false);
    expect(a.changes).toEqual([true, false]);
    // x's lease ends: a leads again, with a new acquisition.
    await connection.del(keys.lease);
    await waitFor(async () => a.election.isLeader(), 'a leads again', 3000);
    expect(a.changes).toEqual([true, false, true]);
    expect(await connection.get(keys.lease)).toMatch(/^replica-a:.*:\d+$/);
  });

  it('steps down when its lease key is gone, then takes the free lease again', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const a = elect(keys, 'replica-a');
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    const fence = Number(await connection.get(keys.fence));
    await connection.del(keys.lease);
    await waitFor(async () => a.changes.length >= 3, 'a steps down and leads again', 3000);
    expect(a.changes).toEqual([true, false, true]);
    expect(Number(await connection.get(keys.fence))).toBe(fence + 1);
  });

  it('is no leader once its renewals are late, before it ran again; another replica takes the expired lease', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const ttl = 800;
    const a = elect(keys, 'replica-a', { leaseTtlMs: ttl });
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    // A frozen process: its monotonic clock moves past the TTL while no timer of it runs, so no renewal.
    const frozenUntil = performance.now() + ttl + 100;
    const clock = vi.spyOn(performance, 'now').mockReturnValue(frozenUntil);
    try {
      expect(a.election.isLeader()).toBe(false);
    } finally {
      clock.mockRestore();
    }
    // Meanwhile the lease expired in Valkey and another replica took it.
    await connection.set(keys.lease, 'replica-x:99', 'PX', 60_000);
    await waitFor(async () => a.changes.length >= 2, 'a notices', 10_000);
    await a.attempts(2);
    expect(a.changes).toEqual([true, false]);
    expect(a.election.isLeader()).toBe(false);
  });

  it('steps down when a renewal waits too long for Valkey, and leads again once Valkey answers', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const a = elect(keys, 'replica-a', { leaseTtlMs: 1200 });
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    // Valkey holds every write (the renewal script too) for longer than the TTL; reads still answer.
    await connection.call('CLIENT', 'PAUSE', '3000', 'WRITE');
    await waitFor(async () => a.changes.length >= 2, 'a steps down', 10_000);
    // By its TTL, while the renewal still waited for Valkey's answer, not when that answer came.
    expect(a.pendingAtChange[1]).toBeGreaterThan(0);
    expect(a.election.isLeader()).toBe(false);
    await waitFor(async () => a.changes.length >= 3, 'a leads again', 6000);
    expect(a.changes).toEqual([true, false, true]);
    expect(a.election.isLeader()).toBe(true);
  });

  it('steps down at once when a renewal fails (Valkey error), and resumes the same lease when renewals work again', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const a = elect(keys, 'replica-a', { leaseTtlMs: 3000 });
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    const value = await connection.get(keys.lease);
    a.state.mode = 'failing';
    const before = a.state.evals;
    await waitFor(async () => !a.election.isLeader(), 'a steps down', 10_000);
    // At the first failed renewal, not at the end of the TTL.
    expect(a.evalsAtChange[1]! - before).toBe(1);
    expect(a.changes).toEqual([true, false]);
    a.state.mode = 'normal';
    await waitFor(async () => a.election.isLeader(), 'a leads again', 10_000);
    expect(a.changes).toEqual([true, false, true]);
    // Renewed, not taken anew: the same acquisition (no other replica can have led meanwhile).
    expect(await connection.get(keys.lease)).toBe(value);
  });

  it('stop() does not wait for a Valkey that does not answer', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const a = elect(keys, 'replica-a', { leaseTtlMs: 900 });
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    a.state.mode = 'hanging';
    await waitFor(() => a.state.pending > 0, 'a renewal waiting for Valkey', 10_000, 10);
    // That renewal never gets an answer: stop() returns all the same (the lease then expires by itself).
    await a.election.stop();
    expect(a.state.pending).toBeGreaterThan(0);
    expect(a.election.isLeader()).toBe(false);
    expect(a.changes).toEqual([true, false]);
  });
});
