// The metrics added for operating the service: event-to-push lag, reconcile durations (histograms) and the
// age of the oldest waiting job per queue (a gauge read from Valkey on scrape); the scrape text has them.
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, observeBatchPushed, observeEventToPush, observeReconcile, oldestWaitingAge, registerQueueGauges } from '../../observability/metrics.js';
import { openConnection } from '../../queues/connection.js';
import type { WriteJob, WriteResult } from '../../core/contracts.js';
import { JobFailure } from '../../queues/exclusive-batch-consumer.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const job = (stageTimestamp: string, extra: Partial<WriteJob> = {}) => ({ stageTimestamp, target: 'ns/t', ...extra }) as WriteJob;
const committed: WriteResult = { outcome: 'committed', commit: 'abc', pushedAs: 'abc' };

describe('service metrics: lag, reconcile durations, oldest job age', () => {
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

  it('event_to_push_seconds observes each pushed event of a batch by partition; skips the rest', async () => {
    const metrics = createMetrics('gr_test');
    const pushedAt = Date.parse('2025-01-01T00:00:10Z');
    observeEventToPush(metrics, 'p1', ['2025-01-01T00:00:08Z', 'not a time', '2025-01-01T00:00:11Z'], pushedAt);
    observeBatchPushed(
      metrics,
      'p2',
      {
        jobs: [
          job('2025-01-01T00:00:05Z'),
          job('2025-01-01T00:00:00Z', { reconcile: { runId: 'r' } } as Partial<WriteJob>),
          job('2025-01-01T00:00:01Z'),
          job('2025-01-01T00:00:02Z'),
        ],
        results: [committed, committed, { outcome: 'unchanged', reason: 'same-content', head: 'abc' }, new JobFailure(new Error('refused'))],
      },
      pushedAt,
    );
    observeBatchPushed(metrics, 'p2', { jobs: [job('2025-01-01T00:00:00Z')], error: new Error('push failed') }, pushedAt);
    const text = await metrics.registry.metrics();
    // p1: 2 s and 0 s (a stamp in the future counts as 0); p2: only the committed live event, 5 s.
    expect(text).toContain('gr_test_event_to_push_seconds_count{partition="p1"} 2');
    expect(text).toContain('gr_test_event_to_push_seconds_sum{partition="p1"} 2');
    expect(text).toContain('gr_test_event_to_push_seconds_bucket{le="2.5",partition="p1"} 2');
    expect(text).toContain('gr_test_event_to_push_seconds_count{partition="p2"} 1');
    expect(text).toContain('gr_test_event_to_push_seconds_sum{partition="p2"} 5');
    expect(text).toContain('# TYPE gr_test_event_to_push_seconds histogram');
  });

  it('reconcile_duration_seconds by result', async () => {
    const metrics = createMetrics('gr_test');
    observeReconcile(metrics, 'succeeded', 3);
    observeReconcile(metrics, 'succeeded', 40);
    observeReconcile(metrics, 'failed', 0.2);
    observeReconcile(metrics, 'failed', Number.NaN);
    const text = await metrics.registry.metrics();
    expect(text).toContain('gr_test_reconcile_duration_seconds_count{result="succeeded"} 2');
    expect(text).toContain('gr_test_reconcile_duration_seconds_sum{result="succeeded"} 43');
    expect(text).toContain('gr_test_reconcile_duration_seconds_count{result="failed"} 1');
  });

  it('queue_oldest_job_age_seconds is the age of the head of each wait list, 0 for an empty queue', async () => {
    const prefix = uniquePrefix('age');
    const busy = new Queue('busy', { connection, prefix });
    const idle = new Queue('idle', { connection, prefix });
    try {
      const now = Date.now();
      await busy.add('a', {}, { timestamp: now - 100_000 });
      await busy.add('b', {}, { timestamp: now - 10_000 });
      await busy.add('c', {}, { timestamp: now - 1_000 });
      expect(await oldestWaitingAge(busy, now)).toBe(100);
      // The oldest one taken off the list: the next is the oldest waiting.
      await busy.remove((await busy.getJobs(['waiting'])).find((j) => j.name === 'a')!.id!);
      expect(await oldestWaitingAge(busy, now)).toBe(10);

      const metrics = createMetrics('gr_test');
      registerQueueGauges(metrics, 'gr_test', () => [busy, idle]);
      const text = await metrics.registry.metrics();
      expect(text).toContain('# TYPE gr_test_queue_oldest_job_age_seconds gauge');
      expect(text).toContain('gr_test_queue_oldest_job_age_seconds{queue="idle"} 0');
      const age = Number(/gr_test_queue_oldest_job_age_seconds\{queue="busy"\} ([\d.]+)/.exec(text)?.[1]);
      expect(age).toBeGreaterThanOrEqual(10);
      expect(age).toBeLessThan(70);
      // The existing depth gauge is still there.
      expect(text).toContain('gr_test_queue_jobs{queue="busy",state="waiting"} 2');
    } finally {
      await busy.obliterate({ force: true });
      await Promise.all([busy.close(), idle.close()]);
    }
  });
});
