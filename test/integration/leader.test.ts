// Leader election on a real Valkey: of two replicas one leads, stop() hands over at once (the lease is
// released, not left to expire), and a leader whose lease is gone or whose renewals are late steps down.
import type { Valkey } from 'iovalkey';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openConnection } from '../../queues/connection.js';
import { startLeaderElection, type LeaderElection, type LeaderElectionOptions } from '../../queues/leader.js';
import { statusKeys } from '../../queues/names.js';
import { waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    const election = startLeaderElection({ connection, keys, replicaId, leaseTtlMs: 1500, logger, onChange: (l) => changes.push(l), ...extra });
    running.push(election);
    return { election, changes };
  };
  const leaders = <E extends { election: LeaderElection }>(...es: E[]): E[] => es.filter((e) => e.election.isLeader());

  it('elects exactly one of two replicas, and the leader stays while it renews', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const a = elect(keys, 'replica-a');
    const b = elect(keys, 'replica-b');
    await waitFor(async () => leaders(a, b).length === 1, 'one leader', 5000);
    const first = leaders(a, b)[0]!;
    // Several TTLs: renewed all along, never two leaders, never a change of leader.
    for (let i = 0; i < 40; i++) {
      expect(leaders(a, b)).toEqual([first]);
      await sleep(100);
    }
    expect(first.changes).toEqual([true]);
    expect((first === a ? b : a).changes).toEqual([]);
    expect(await connection.get(keys.lease)).toMatch(new RegExp(`^${first === a ? 'replica-a' : 'replica-b'}:`));
  });

  it('hands over on stop: the lease is released, the other replica leads well before the TTL ran out', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const ttl = 3000;
    const a = elect(keys, 'replica-a', { leaseTtlMs: ttl });
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    const b = elect(keys, 'replica-b', { leaseTtlMs: ttl });
    await sleep(100);
    expect(b.election.isLeader()).toBe(false);

    const stoppedAt = Date.now();
    await a.election.stop();
    expect(a.election.isLeader()).toBe(false);
    expect(a.changes).toEqual([true, false]);
    await waitFor(async () => b.election.isLeader(), 'b takes over', ttl);
    // About a third of the TTL (b's next try), not the TTL: a released the lease.
    expect(Date.now() - stoppedAt).toBeLessThan(ttl * 0.7);
    expect(b.changes).toEqual([true]);
    expect(await connection.get(keys.lease)).toMatch(/^replica-b:/);
  });

  it('steps down at once when the lease was taken over (the leader\'s lease expired meanwhile)', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const a = elect(keys, 'replica-a');
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    // What another replica does once a's lease expired: a new acquisition with a new fence.
    await connection.set(keys.lease, 'replica-x:99', 'PX', 60_000);
    await waitFor(async () => !a.election.isLeader(), 'a steps down', 1200); // by the next renewal (500 ms), not the TTL
    expect(a.changes).toEqual([true, false]);
    await sleep(1200);
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
    // A frozen process: no timer, no renewal for longer than the TTL.
    const end = Date.now() + ttl + 100;
    while (Date.now() < end) {
      /* busy */
    }
    expect(a.election.isLeader()).toBe(false);
    // Meanwhile the lease expired in Valkey; another replica takes it (sent before a's timers run again).
    const taken = connection.set(keys.lease, 'replica-x:99', 'PX', 60_000, 'NX');
    expect(await taken).toBe('OK');
    await waitFor(async () => a.changes.length >= 2, 'a notices', 3000);
    await sleep(500);
    expect(a.changes).toEqual([true, false]);
    expect(a.election.isLeader()).toBe(false);
  });

  it('steps down when a renewal waits too long for Valkey, and leads again once Valkey answers', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    const a = elect(keys, 'replica-a', { leaseTtlMs: 1200 });
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    // Valkey holds every write (the renewal script too) for longer than the TTL; reads still answer.
    await connection.call('CLIENT', 'PAUSE', '3000', 'WRITE');
    const pausedAt = Date.now();
    await waitFor(async () => a.changes.length >= 2, 'a steps down', 4000);
    expect(Date.now() - pausedAt).toBeLessThan(2500); // by the TTL (1.2 s), not when the renewal came back (3 s)
    expect(a.election.isLeader()).toBe(false);
    await waitFor(async () => a.changes.length >= 3, 'a leads again', 6000);
    expect(a.changes).toEqual([true, false, true]);
    expect(a.election.isLeader()).toBe(true);
  });

  it('steps down at once when a renewal fails (Valkey error), and resumes the same lease when renewals work again', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    let failing = false;
    // This replica's connection: eval (the lease scripts) fails while `failing`.
    const flaky = new Proxy(connection, {
      get(target, prop, receiver) {
        if (prop === 'eval') {
          return (...args: unknown[]) => (failing ? Promise.reject(new Error('connection lost')) : (target.eval as (...a: unknown[]) => Promise<unknown>).apply(target, args));
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const a = elect(keys, 'replica-a', { connection: flaky, leaseTtlMs: 3000 });
    await waitFor(async () => a.election.isLeader(), 'a leads', 5000);
    const value = await connection.get(keys.lease);
    failing = true;
    await waitFor(async () => !a.election.isLeader(), 'a steps down', 2500); // the next renewal, ~1 s: not the TTL (3 s)
    expect(a.changes).toEqual([true, false]);
    failing = false;
    await waitFor(async () => a.election.isLeader(), 'a leads again', 3000);
    expect(a.changes).toEqual([true, false, true]);
    // Renewed, not taken anew: the same acquisition (no other replica can have led meanwhile).
    expect(await connection.get(keys.lease)).toBe(value);
  });

  it('stop() does not wait longer than the TTL for a Valkey that does not answer', async () => {
    const keys = statusKeys(uniquePrefix('leader'));
    let hanging = false;
    const stalled = new Proxy(connection, {
      get(target, prop, receiver) {
        if (prop === 'eval') {
          return (...args: unknown[]) => (hanging ? new Promise(() => undefined) : (target.eval as (...a: unknown[]) => Promise<unknown>).apply(target, args));
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const ttl = 900;
    const changes: boolean[] = [];
    const a = startLeaderElection({ connection: stalled, keys, replicaId: 'replica-a', leaseTtlMs: ttl, logger, onChange: (l) => changes.push(l) });
    await waitFor(async () => a.isLeader(), 'a leads', 5000);
    hanging = true;
    await sleep(400); // a renewal is waiting now
    const started = Date.now();
    await a.stop();
    expect(Date.now() - started).toBeLessThan(2 * ttl + 500);
    expect(a.isLeader()).toBe(false);
    expect(changes).toEqual([true, false]);
  });
});
