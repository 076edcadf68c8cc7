// The exclusive lease on a real Valkey: one holder at a time, a fence that grows with every acquisition,
// renewal and release only by the holder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConnection } from '../../queues/connection.js';
import { ownKeys } from '../../queues/names.js';
import { LeaseLostError, tryAcquireLease } from '../../queues/lease.js';
import { waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';
import type { Valkey } from 'iovalkey';

describe('lease', () => {
  let valkey: TestValkey;
  let client: Valkey;
  beforeAll(async () => {
    valkey = await startTestValkey();
    client = openConnection(valkey.url);
  });
  afterAll(async () => {
    await client?.quit();
    await valkey?.stop();
  });

  it('admits one holder; the next acquisition after expiry gets a higher fence and the old holder cannot renew', async () => {
    const keys = ownKeys(uniquePrefix('lease'), 'p1');
    const a = await tryAcquireLease(client, keys, 'p1', 'replica-a', 300);
    expect(a?.fence).toBe(1);
    expect(await tryAcquireLease(client, keys, 'p1', 'replica-b', 300)).toBeNull();
    // A paused holder: its lease runs out (its TTL, brought forward).
    await client.pexpire(keys.lease, 1);
    await waitFor(async () => (await client.exists(keys.lease)) === 0, 'the lease to expire', 5000, 10);
    const b = await tryAcquireLease(client, keys, 'p1', 'replica-b', 5000);
    expect(b?.fence).toBe(2);
    expect(await a!.renew()).toBe(false);
    await expect(a!.assertHeld()).rejects.toThrow(new LeaseLostError('p1', 1));
    await expect(a!.assertHeld()).rejects.toThrow('p1: the lease (fence 1) was lost; stopping before the next side effect');
    await a!.release(); // not the holder: changes nothing
    expect(await client.get(keys.lease)).toBe('replica-b:2');
    await b!.assertHeld();
    await b!.release();
    expect(await client.get(keys.lease)).toBeNull();
    const c = await tryAcquireLease(client, keys, 'p1', 'replica-a', 5000);
    expect(c?.fence).toBe(3);
  });
});
