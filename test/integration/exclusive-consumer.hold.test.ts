// Jobs a consumer's handler holds (the router's reorder window) stay in hand with their locks, come back to
// the handler first with the jobs fetched since, and go back to the head of the queue, in their order, when
// the consumer stops: the next holder starts exactly there.
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openConnection } from '../../queues/connection.js';
import { HOLD, startExclusiveBatchConsumer, type ExclusiveBatchConsumer } from '../../queues/exclusive-batch-consumer.js';
import { routerKeys } from '../../queues/names.js';
import { waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const Payload = z.object({ n: z.number() });
type Payload = z.infer<typeof Payload>;

describe('exclusive batch consumer: held jobs', () => {
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

  const consume = (prefix: string, queueName: string, handle: (jobs: Payload[], addedAt: number[], drained: boolean) => (string | typeof HOLD)[]): ExclusiveBatchConsumer =>
    startExclusiveBatchConsumer<Payload, string>({
      owner: 'test',
      connection,
      prefix,
      queueName,
      leaseKeys: routerKeys(prefix),
      replicaId: 'r1',
      leaseTtlMs: 2000,
      batchSize: 10,
      logger: pino({ level: 'silent' }),
      schema: Payload,
      holds: { max: 100, recheckMs: 20 },
      handle: async (jobs, _lease, history, batch) => handle(jobs, history.map((h) => h.addedAt), batch.drained),
      isTransient: () => true,
    });

  it('offers held jobs again, first, with the jobs fetched since, and completes them when released', async () => {
    const prefix = uniquePrefix('hold');
    const queue = new Queue('q', { connection, prefix });
    await queue.addBulk([1, 2, 3].map((n) => ({ name: 'j', data: { n } })));
    const calls: number[][] = [];
    let release = false;
    const consumer = consume(prefix, 'q', (jobs) => {
      calls.push(jobs.map((j) => j.n));
      return jobs.map((j) => (release || j.n === 1 ? `done ${j.n}` : HOLD));
    });
    try {
      await waitFor(async () => calls.length >= 2, 'a second call with the held jobs');
      await queue.add('j', { n: 4 });
      await waitFor(async () => calls.some((c) => c.includes(4)), 'the new job offered with the held ones');
      // Held jobs come first, in the order they were fetched; job 1 was done at once.
      expect(calls.find((c) => c.includes(4))).toEqual([2, 3, 4]);
      expect(await queue.getJobCounts('active', 'completed')).toEqual({ active: 3, completed: 1 });
      release = true;
      await waitFor(async () => (await queue.getJobCounts('completed')).completed === 4, 'all completed once released');
    } finally {
      await consumer.stop();
      await queue.close();
    }
  });

  it('hands held jobs back to the head of the queue, in their order, when it stops', async () => {
    const prefix = uniquePrefix('hold');
    const queue = new Queue('q', { connection, prefix });
    await queue.addBulk([1, 2, 3].map((n) => ({ name: 'j', data: { n } })));
    let offered = 0;
    const first = consume(prefix, 'q', (jobs) => {
      offered++;
      return jobs.map(() => HOLD);
    });
    await waitFor(async () => offered >= 2 && (await queue.getJobCounts('active')).active === 3, 'all three held');
    await first.stop();
    expect(await queue.getJobCounts('active', 'waiting')).toEqual({ active: 0, waiting: 3 });
    const seen: number[] = [];
    const second = consume(prefix, 'q', (jobs) => jobs.map((j) => (seen.push(j.n), 'done')));
    try {
      await waitFor(async () => seen.length === 3, 'the next holder takes them');
      expect(seen).toEqual([1, 2, 3]);
    } finally {
      await second.stop();
      await queue.close();
    }
  });
});
