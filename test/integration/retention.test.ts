// Retention: under a steady event rate Valkey keeps a bounded amount of finished work. The real service,
// with a small retention (100 completed jobs per queue, events streams trimmed to ~200), takes two rounds
// of 1,000 audit events through the webhook; once every one is committed, each queue keeps at most 100
// completed jobs and each events stream about 200 entries, and the second round adds less than a third of
// the memory the first added (measured: at most a sixth; without the retention, about four fifths).
import type { Valkey } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConnection } from '../../queues/connection.js';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { createBareRemote, git, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { ownValkeySkipReason, startTestValkey, type TestValkey } from '../support/valkey-server.js';

const skip = ownValkeySkipReason("reading Valkey's used_memory before and after");

const EVENTS = 1000;
const BATCH = 100;
const COMPLETED_COUNT = 100;
const EVENTS_MAX_LEN = 200;
/**
 * The second round, with the retention already full, adds less than this share of the first round's
 * growth. Measured: under 1/6 (what remains are the few bytes each new object's bookkeeping takes); with no
 * retention a round keeps every job and the share is about 4/5. A third leaves a margin of two or more
 * on either side.
 */
const SECOND_ROUND_SHARE = 1 / 3;
/**
 * BullMQ trims with XTRIM MAXLEN ~ (approximate): Valkey drops whole stream nodes only, so a stream may
 * exceed its maximum by up to one node's entries (stream-node-max-entries, 100 by default).
 */
const STREAM_NODE_ENTRIES = 100;

const cm = (name: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v: name } } });

const kib = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KiB`;
const usedMemory = async (admin: Valkey): Promise<number> => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);

describe.skipIf(skip !== undefined)('retention', () => {
  let valkey: TestValkey;
  let service: TestService;
  let admin: Valkey;
  let remote = '';

  beforeAll(async () => {
    valkey = await startTestValkey();
    admin = openConnection(valkey.url);
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))), {
      batchSize: 200,
      retention: { completedCount: COMPLETED_COUNT, eventsMaxLen: EVENTS_MAX_LEN },
    });
  });
  afterAll(async () => {
    await admin?.quit();
    await service?.close();
    await valkey?.stop();
  });

  const commits = async (): Promise<number> => Number(await git(remote, 'rev-list', '--count', 'main').catch(() => '0'));

  it(`keeps at most ${COMPLETED_COUNT} completed jobs per queue and trimmed events streams after ${2 * EVENTS} events`, async () => {
    const send = async (round: number): Promise<void> => {
      for (let i = 0; i < EVENTS; i += BATCH) {
        const events = Array.from({ length: BATCH }, (_, j) => auditEvent('create', cm(`cm-${round}-${i + j}`), { user: 'alice' }));
        expect((await postToC1(service.url, events)).status).toBe(200);
      }
      await waitFor(async () => (await commits()) === (round + 1) * EVENTS, `${(round + 1) * EVENTS} commits`, 20_000);
      // Measured once every job has finished: none still holds its data on the way to being completed.
      await waitFor(async () => {
        const counts = await Promise.all([service.ingestQueue, ...service.writeQueues.values()].map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')));
        return counts.every((c) => Object.values(c).every((n) => n === 0));
      }, 'the queues drained');
    };
    const before = await usedMemory(admin);
    await send(0);
    const afterFirst = await usedMemory(admin);
    // A second round of the same size: with the retention full, Valkey holds about as much as after the first.
    await send(1);
    const after = await usedMemory(admin);

    const queues = [service.ingestQueue, ...service.writeQueues.values()];
    const completed = Object.fromEntries(await Promise.all(queues.map(async (q) => [q.name, await q.getCompletedCount()] as const)));
    // Each queue's events stream, by the key BullMQ itself names it with (no key layout assumed here).
    const streams = Object.fromEntries(await Promise.all(queues.map(async (q) => [q.name, await admin.xlen(q.keys.events!)] as const)));
    console.info(
      `retention: Valkey used_memory ${kib(before)} before, ${kib(afterFirst)} after ${EVENTS} events, ${kib(after)} after ${2 * EVENTS}` +
        ` (second round ${after >= afterFirst ? '+' : ''}${kib(after - afterFirst)}); completed jobs kept ${JSON.stringify(completed)}; events streams ${JSON.stringify(streams)}`,
    );

    expect(queues.length).toBeGreaterThanOrEqual(2); // ingest and the partition's write queue
    for (const [name, n] of Object.entries(completed)) expect(n, `completed jobs kept in ${name}`).toBeLessThanOrEqual(COMPLETED_COUNT);
    // The busy queues had 2,000 completions each, far more than are kept.
    expect(completed[service.ingestQueue.name]).toBe(COMPLETED_COUNT);
    // Every job adds several entries to its queue's stream (added, active, completed, …): thousands here.
    // Trimmed at BullMQ's default (10,000) or this service's (1,000), a stream would be far past this bound,
    // so it shows that the Queue and its Workers' scripts trim by the configured length (no need to read
    // where BullMQ keeps that setting).
    for (const [name, n] of Object.entries(streams)) {
      expect(n, `events stream of ${name}`).toBeGreaterThan(0);
      expect(n, `events stream of ${name}`).toBeLessThanOrEqual(EVENTS_MAX_LEN + STREAM_NODE_ENTRIES);
    }
    // With the retention full after the first round, the second keeps what it takes to the same bounds.
    expect(after - afterFirst, 'growth of the second round').toBeLessThan((afterFirst - before) * SECOND_ROUND_SHARE);
  }, 30_000);
});
