// Each cluster's storage budget in a real Valkey: reservations counted once per job, refused past the
// limit while something is in flight, moved from an event to its writes, released when written, and swept
// when a job finished or vanished without its release (a crash between the two).
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { budgetField, createClusterBudget } from '../../queues/cluster-budget.js';
import { openConnection } from '../../queues/connection.js';
import { clusterBudgetKeys } from '../../queues/names.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

describe('cluster storage budget', () => {
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

  it('reserves a job once, refuses what would pass the limit while bytes are in flight, and keeps clusters apart', async () => {
    const budget = createClusterBudget(connection, uniquePrefix('budget'));
    expect(await budget.reserve('c1', [{ field: 'ingest:c1_a', bytes: 600 }], 1000)).toEqual({ taken: true, inFlight: 600 });
    // The same job again (a resent batch) adds nothing.
    expect(await budget.reserve('c1', [{ field: 'ingest:c1_a', bytes: 600 }], 1000)).toEqual({ taken: true, inFlight: 600 });
    // 600 + 500 > 1000: refused whole, nothing written.
    expect(await budget.reserve('c1', [{ field: 'ingest:c1_b', bytes: 300 }, { field: 'ingest:c1_c', bytes: 200 }], 1000)).toEqual({ taken: false, inFlight: 600 });
    expect(await budget.inFlight(['c1', 'c2'])).toEqual(new Map([['c1', 600], ['c2', 0]]));
    // Another cluster has its own budget.
    expect(await budget.reserve('c2', [{ field: 'ingest:c2_a', bytes: 900 }], 1000)).toEqual({ taken: true, inFlight: 900 });
    // A batch larger than the limit passes when nothing of its cluster is in flight (else it never could).
    expect(await budget.reserve('c3', [{ field: 'ingest:c3_a', bytes: 5000 }], 1000)).toEqual({ taken: true, inFlight: 5000 });
  });

  it("moves an event's bytes to its writes, and releases each once; the total never goes below zero", async () => {
    const prefix = uniquePrefix('budget');
    const budget = createClusterBudget(connection, prefix);
    await budget.reserve('c1', [{ field: 'ingest:c1_a', bytes: 700 }], 1000);
    await budget.transfer('c1', ['ingest:c1_a'], [{ field: 'write-x:w1', bytes: 400 }, { field: 'write-y:w2', bytes: 400 }]);
    expect((await budget.inFlight(['c1'])).get('c1')).toBe(800);
    await budget.release('c1', ['write-x:w1']);
    await budget.release('c1', ['write-x:w1', 'never-reserved']);
    expect((await budget.inFlight(['c1'])).get('c1')).toBe(400);
    await budget.release('c1', ['write-y:w2']);
    expect((await budget.inFlight(['c1'])).get('c1')).toBe(0);
    const keys = clusterBudgetKeys(prefix, 'c1');
    expect(await connection.exists(keys.entries, keys.bytes)).toBe(0);
  });

  it('sweeps entries whose job finished or vanished, after the grace, and keeps those still in flight', async () => {
    const prefix = uniquePrefix('budget');
    const budget = createClusterBudget(connection, prefix);
    const queue = new Queue('write-sweep', { connection, prefix });
    try {
      const waiting = await queue.add('w', { n: 1 }, { jobId: 'waiting' });
      const done = await queue.add('w', { n: 2 }, { jobId: 'done' });
      await connection.hset(queue.toKey(done.id!), 'finishedOn', String(Date.now()));
      await budget.reserve(
        'c1',
        [
          { field: budgetField(queue.name, waiting.id!), bytes: 100 },
          { field: budgetField(queue.name, done.id!), bytes: 200 },
          { field: budgetField(queue.name, 'gone'), bytes: 400 },
        ],
        10_000,
      );
      // Within the grace nothing is swept: a reservation just made may precede its job by a moment.
      expect(await budget.sweep(['c1'], 60_000)).toBe(0);
      expect(await budget.sweep(['c1'], 0)).toBe(600);
      expect((await budget.inFlight(['c1'])).get('c1')).toBe(100);
      expect(await connection.hkeys(clusterBudgetKeys(prefix, 'c1').entries)).toEqual([budgetField(queue.name, 'waiting')]);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
