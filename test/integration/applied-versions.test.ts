// The partition's applied versions on a real Valkey: raised only by the lease holder, never lowered, compared
// as numbers (exactly, past 2^53); a writer whose lease passed to another replica changes nothing.
import type { Valkey } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raiseAppliedVersions } from '../../queues/applied-versions.js';
import { openConnection } from '../../queues/connection.js';
import { LeaseLostError, tryAcquireLease } from '../../queues/lease.js';
import { ownKeys } from '../../queues/names.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

describe('applied versions', () => {
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

  it('raises what is newer, keeps what is newer already, and compares long revisions exactly', async () => {
    const keys = ownKeys(uniquePrefix('versions'), 'p1');
    const lease = (await tryAcquireLease(client, keys, 'partition p1', 'replica-a', 5000))!;
    await raiseAppliedVersions(client, keys, lease, 'partition p1', new Map([['a.yaml', '100'], ['b.yaml', '9007199254740993'], ['c.yaml', 'opaque-1']]));
    const raised = await raiseAppliedVersions(
      client,
      keys,
      lease,
      'partition p1',
      new Map([['a.yaml', '99'], ['b.yaml', '9007199254740992'], ['c.yaml', 'opaque-2'], ['d.yaml', '7']]),
    );
    expect(raised).toBe(2);
    expect(await client.hgetall(keys.versions)).toEqual({ 'a.yaml': '100', 'b.yaml': '9007199254740993', 'c.yaml': 'opaque-2', 'd.yaml': '7' });
  });

  it('a writer that lost its lease writes nothing and is told so', async () => {
    const keys = ownKeys(uniquePrefix('versions'), 'p2');
    const first = (await tryAcquireLease(client, keys, 'partition p2', 'replica-a', 5000))!;
    await raiseAppliedVersions(client, keys, first, 'partition p2', new Map([['a.yaml', '10']]));
    // Its lease passes on (it was stopped past its TTL); the successor records a newer version.
    await client.del(keys.lease);
    const second = (await tryAcquireLease(client, keys, 'partition p2', 'replica-b', 5000))!;
    await raiseAppliedVersions(client, keys, second, 'partition p2', new Map([['a.yaml', '12']]));
    await expect(raiseAppliedVersions(client, keys, first, 'partition p2', new Map([['a.yaml', '11'], ['b.yaml', '1']]))).rejects.toThrow(
      new LeaseLostError('partition p2', first.fence),
    );
    expect(await client.hgetall(keys.versions)).toEqual({ 'a.yaml': '12' });
  });
});
