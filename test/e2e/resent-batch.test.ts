// An API server re-sends an audit batch it got no answer for (a timeout, a lost connection), right away or
// much later. The webhook stores each event as the ingest job `<cluster>_<auditID>` (eventJobId), so while
// that job exists (waiting, running, or completed and kept) storing the same event again adds no job: the
// batch is stored once, and each change is committed once.
//
// Completed jobs are kept only for the completed-job retention (JOB_RETENTION_COMPLETED_SECONDS and
// JOB_RETENTION_COMPLETED_COUNT). A batch re-sent after its jobs were removed is stored again as new jobs,
// and the writer's own checks keep it from committing twice: an event whose Audit-ID is in the trailers of
// the branch's newest commits is done already, content equal to the file's makes no commit, and a change
// older than the version the file holds is refused as out of order (a dead letter, not a commit). So there
// is still one commit per change. The second case shows it with a retention that keeps no completed job.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventJobId } from '../../queues/names.js';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const cm = (name: string, v: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v } } });

/** Five events, four of them changes: an update of b to the content it has changes nothing. */
function batch() {
  const events = [
    auditEvent('create', cm('a', '1'), { user: 'alice' }),
    auditEvent('create', cm('b', '1'), { user: 'alice' }),
    auditEvent('update', cm('a', '2'), { user: 'bob' }),
    auditEvent('update', cm('b', '1'), { user: 'bob' }),
    auditEvent('create', cm('c', '1'), { user: 'carol' }),
  ];
  const changes = [events[0]!, events[1]!, events[2]!, events[4]!].map((e) => e.auditID);
  return { events, changes };
}

const auditIDs = async (remote: string): Promise<(string | undefined)[]> => (await commitLog(remote)).map((c) => /Audit-ID: (\S+)/.exec(c.body)?.[1]);

describe('a re-sent audit batch', () => {
  let valkey: TestValkey;
  let service: TestService | undefined;
  let remote = '';
  beforeAll(async () => {
    valkey = await startTestValkey();
  });
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });
  afterAll(async () => {
    await valkey?.stop();
  });

  const start = async (overrides: Parameters<typeof startTestService>[2] = {}): Promise<TestService> =>
    (service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))), overrides));

  /** Every job of the queue, in any state, by id. */
  const ingestJobIds = async (s: TestService): Promise<string[]> => {
    const jobs = await s.ingestQueue.getJobs(['completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);
    return jobs.map((j) => j.id!).sort();
  };
  const drained = async (s: TestService): Promise<boolean> => {
    const counts = await Promise.all([s.ingestQueue, ...s.writeQueues.values()].map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')));
    return counts.every((c) => Object.values(c).every((n) => n === 0));
  };
  /** Posts one event that must be committed after everything posted before it, and waits for its commit. */
  const marker = async (s: TestService, name: string): Promise<string> => {
    const event = auditEvent('create', cm(name, '1'), { user: 'dave' });
    expect((await postToC1(s.url, [event])).status).toBe(200);
    await waitFor(async () => (await auditIDs(remote)).includes(event.auditID), `the commit of ${name}`);
    return event.auditID;
  };

  it('is stored once, by job id: one ingest job per audit event, one commit per change', async () => {
    const s = await start();
    const { events, changes } = batch();
    const ids = events.map((e) => eventJobId('c1', e.auditID)).sort();

    expect(await (await postToC1(s.url, events)).json()).toEqual({ received: 5, accepted: 5, skipped: {} });
    // The webhook answers once the jobs are stored: what the store holds now is final for that request.
    expect(await ingestJobIds(s)).toEqual(ids);
    // Re-sent at once, while the first copy is still on its way: accepted, and no job added.
    expect(await (await postToC1(s.url, events)).json()).toEqual({ received: 5, accepted: 5, skipped: {} });
    expect(await ingestJobIds(s)).toEqual(ids);

    await waitFor(async () => (await commitLog(remote)).length === changes.length && (await drained(s)), `${changes.length} commits and the queues drained`);
    expect((await s.ingestQueue.getJobCounts('completed')).completed).toBe(events.length);
    // Re-sent much later, its jobs completed (and kept): still no job added.
    expect((await postToC1(s.url, events)).status).toBe(200);
    expect(await ingestJobIds(s)).toEqual(ids);

    // An event sent after all of that is committed after anything the re-sent batches could have caused.
    const last = await marker(s, 'marker');
    expect(await auditIDs(remote)).toEqual([...changes, last]);
    expect(await ingestJobIds(s)).toEqual([...ids, eventJobId('c1', last)].sort());
  });

  it('re-sent after the completed-job retention, it is stored again and the writer drops it: still one commit per change', async () => {
    // A retention that keeps no completed job: the dedup window closes as soon as a job completes.
    const s = await start({ retention: { completedCount: 0 } });
    const { events, changes } = batch();

    expect((await postToC1(s.url, events)).status).toBe(200);
    await waitFor(async () => (await commitLog(remote)).length === changes.length && (await drained(s)), `${changes.length} commits and the queues drained`);
    expect(await ingestJobIds(s)).toEqual([]);

    // Held in the queue, the re-sent batch is seen to be stored again: five new jobs.
    await s.ingestQueue.pause();
    expect((await postToC1(s.url, events)).status).toBe(200);
    expect(await ingestJobIds(s)).toEqual(events.map((e) => eventJobId('c1', e.auditID)).sort());
    await s.ingestQueue.resume();

    const last = await marker(s, 'marker');
    expect(await auditIDs(remote)).toEqual([...changes, last]);
    // Found done in the newest commits' trailers: none of the repeats was even a dead letter.
    for (const q of [s.ingestQueue, ...s.writeQueues.values()]) expect(await q.getFailedCount(), q.name).toBe(0);
  });
});
