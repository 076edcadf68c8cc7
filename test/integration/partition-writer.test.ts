// The partition writer on a real Valkey and a real bare remote: two replicas' writers compete for one
// partition, every event is committed once and in order; stale and repeated events change nothing; an
// unreachable remote keeps the events queued in order until it returns.
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openConnection } from '../../queues/connection.js';
import type { WriteJob } from '../../queues/contracts.js';
import { WRITE_JOB_OPTIONS } from '../../queues/job-options.js';
import { partitionOf } from '../../queues/names.js';
import { startPartitionWriter, type PartitionWriter } from '../../workers/git-writer/partition-writer.js';
import { commitLog, createBareRemote, treeFiles, waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

function write(n: number, opts: { name?: string; content?: string | null; rv?: string } = {}): WriteJob {
  const name = opts.name ?? `cm-${n}`;
  return {
    eventKey: `c1_evt-${n}`,
    clusterId: 'c1',
    auditID: `evt-${n}`,
    target: 'ops/all',
    identity: { cluster: 'c1', group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name },
    operation: opts.content === null ? 'DELETE' : 'UPDATE',
    filePath: `shop/configmaps/${name}.yaml`,
    content: opts.content === undefined ? `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  n: "${n}"\n` : opts.content,
    resourceVersion: opts.rv ?? String(1000 + n),
    author: { name: `user-${n % 3}`, email: `user-${n % 3}@c1.cluster.local` },
    stageTimestamp: new Date(Date.UTC(2026, 10, 25, 10, 0, 0) + n * 1000).toISOString(),
  };
}

describe('partition writer', () => {
  let valkey: TestValkey;
  let client: Valkey;
  let dir: string;
  const writers: PartitionWriter[] = [];
  const queues: Queue[] = [];

  beforeAll(async () => {
    valkey = await startTestValkey();
    client = openConnection(valkey.url);
  });
  afterEach(async () => {
    await Promise.all(writers.splice(0).map((w) => w.stop()));
    await Promise.all(queues.splice(0).map((q) => q.close()));
    await rm(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await client?.quit();
    await valkey?.stop();
  });

  async function setup() {
    dir = await mkdtemp(join(tmpdir(), 'gr-writer-'));
    const remote = await createBareRemote(dir);
    const prefix = uniquePrefix('writer');
    const partition = partitionOf(remote, 'main');
    const queue = new Queue<WriteJob>(partition.queueName, { connection: client, prefix });
    queues.push(queue);
    const start = (replicaId: string, batchSize = 25) => {
      const w = startPartitionWriter({
        connection: client,
        prefix,
        partition,
        dataDir: join(dir, replicaId),
        replicaId,
        leaseTtlMs: 1000,
        batchSize,
        committer: { name: 'GitOps Reverser', email: 'gr@test' },
        logger: pino({ level: 'silent' }),
      });
      writers.push(w);
      return w;
    };
    const add = (jobs: WriteJob[]) => queue.addBulk(jobs.map((data) => ({ name: data.operation, data, opts: { ...WRITE_JOB_OPTIONS, jobId: data.eventKey } })));
    const drained = async () => {
      const c = await queue.getJobCounts('waiting', 'active', 'delayed');
      return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0;
    };
    return { remote, queue, start, add, drained };
  }

  it('two replicas: each event committed once, in queue order', async () => {
    const { remote, queue, start, add, drained } = await setup();
    start('replica-a');
    start('replica-b');
    const jobs = Array.from({ length: 120 }, (_, i) => write(i, { name: `cm-${i % 40}` }));
    for (let i = 0; i < jobs.length; i += 30) await add(jobs.slice(i, i + 30));
    await waitFor(async () => (await commitLog(remote)).length >= 120 && (await drained()), '120 commits');
    const log = await commitLog(remote);
    expect(log.map((c) => /Audit-ID: (\S+)/.exec(c.body)?.[1])).toEqual(jobs.map((j) => j.auditID));
    expect(log.map((c) => c.author)).toEqual(jobs.map((j) => j.author.name));
    const completed = await queue.getCompleted(0, 200);
    expect(completed).toHaveLength(120);
    expect(new Set(completed.map((j) => (j.returnvalue as { commit: string }).commit)).size).toBe(120);
  });

  it('events that arrived out of order within one batch are committed in the order they happened', async () => {
    const { remote, start, add, drained } = await setup();
    // Two audit batches overtook each other on the way: 3 and 4 arrived before 1 and 2.
    await add([write(3), write(4), write(1), write(2)]);
    start('replica-a');
    await waitFor(async () => (await commitLog(remote)).length === 4 && (await drained()), 'four commits');
    expect((await commitLog(remote)).map((c) => /Audit-ID: (\S+)/.exec(c.body)?.[1])).toEqual(['evt-1', 'evt-2', 'evt-3', 'evt-4']);
  });

  it('stale, repeated and already-absent events make no commit and say why', async () => {
    const { remote, queue, start, add, drained } = await setup();
    start('replica-a');
    await add([write(1, { name: 'app', rv: '500' }), write(2, { name: 'app', rv: '600' })]);
    await waitFor(async () => (await commitLog(remote)).length === 2 && (await drained()), 'two commits');
    // An old event delivered late, the same event again under a new id, and a delete of a missing file.
    await add([
      { ...write(3, { name: 'app', rv: '550' }) },
      { ...write(2, { name: 'app', rv: '600' }), eventKey: 'c1_evt-2-again', auditID: 'evt-2-again' },
      write(4, { name: 'gone', content: null, rv: '700' }),
    ]);
    await waitFor(drained, 'drained');
    expect(await commitLog(remote)).toHaveLength(2);
    const results = Object.fromEntries((await queue.getCompleted()).map((j) => [j.id, (j.returnvalue as { outcome: string; reason?: string }).reason ?? j.returnvalue.outcome]));
    expect(results).toMatchObject({ 'c1_evt-3': 'stale', 'c1_evt-2-again': 'same-content', 'c1_evt-4': 'already-absent' });
    expect((await treeFiles(remote)).get('shop/configmaps/app.yaml')).toContain('n: "2"');
  });

  it('an unreachable remote keeps events queued in order; when it returns they drain', async () => {
    const { remote, start, add, drained } = await setup();
    start('replica-a', 10);
    await add([write(1)]);
    await waitFor(async () => (await commitLog(remote)).length === 1 && (await drained()), 'first commit');
    await rename(remote, `${remote}.away`);
    await add(Array.from({ length: 30 }, (_, i) => write(10 + i)));
    await new Promise((r) => setTimeout(r, 1500));
    expect(await drained()).toBe(false); // nothing was dropped or failed while the remote was away
    await rename(`${remote}.away`, remote);
    await waitFor(async () => (await commitLog(remote)).length === 31 && (await drained()), 'drained after return', 45_000);
    const ids = (await commitLog(remote)).map((c) => /Audit-ID: (\S+)/.exec(c.body)?.[1]);
    expect(ids).toEqual(['evt-1', ...Array.from({ length: 30 }, (_, i) => `evt-${10 + i}`)]);
  });
});
