// A reconcile diff fed into the ordered write path (flows/reconcile/feed-writes.ts) on a real Valkey, a
// real bare remote and the real partition writer: one commit per run with its counts, nothing for a run
// that changes nothing, a live event newer than the snapshot keeps its content, a run spanning batches
// makes a few commits, and the commit names its writes so a restarted writer finds them applied.
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ReconcileDiff } from '../../flows/reconcile/diff.js';
import { feedReconcile, reconcileAuthor } from '../../flows/reconcile/feed-writes.js';
import type { WriteJob } from '../../core/contracts.js';
import { WRITE_JOB_OPTIONS } from '../../queues/job-options.js';
import { ownKeys, writeJobId, type Partition } from '../../queues/names.js';
import { appliedKey, readAppliedKeys } from '../../workers/write/applied-events.js';
import { reconcileAuditID } from '../../workers/write/commit-message.js';
import type { WriteTarget } from '../../workers/write/validate-write.js';
import { authorFor } from '../../workers/route/normalize-event.js';
import { objectFilePath } from '../../core/path-layout.js';
import { commitLog, git, waitFor } from '../support/git-repos.js';
import { PartitionWriterKit, TEST_COMMITTER } from '../support/partition-writer-kit.js';

const author = reconcileAuthor(TEST_COMMITTER.email);
/** The one GitTarget of these tests: cluster c1, written at the root of the partition's branch. */
const TARGET = { key: 'ns/t', path: '', clusterProvider: 'c1' };
const identity = (n: number | string) => ({ cluster: TARGET.clusterProvider, group: '', version: 'v1', resource: 'configmaps', namespace: 'ns', name: `cm-${n}` });
/** ConfigMap cm-n's file: where the router puts it, and so where a reconcile run finds it. */
const path = (n: number | string) => objectFilePath(TARGET.path, identity(n));
const cm = (n: number | string, v = '1') => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${n}\ndata:\n  v: "${v}"\n`;
/** One time for every live event: the ordering test relies on equal timestamps (then resourceVersion decides). */
const LIVE_AT = new Date(Date.now() - 1000).toISOString();
/** A live write as the router makes it for TARGET. */
function live(n: number, rv: string): WriteJob {
  return {
    eventKey: `c1_live-${n}`,
    clusterId: TARGET.clusterProvider,
    auditID: `live-${n}`,
    target: TARGET.key,
    identity: identity(n),
    operation: 'UPDATE',
    filePath: path(n),
    content: cm(n, 'live'),
    resourceVersion: rv,
    author: authorFor('alice', TARGET.clusterProvider),
    stageTimestamp: LIVE_AT,
  };
}
const diffOf = (d: Partial<ReconcileDiff>): ReconcileDiff => ({ created: [], updated: [], deleted: [], ...d });

describe('reconcile writes through the partition writer', () => {
  const kit = new PartitionWriterKit('recw');
  beforeAll(() => kit.open());
  afterEach(() => kit.cleanUp());
  afterAll(() => kit.close());

  async function setup(batchSize = 500) {
    const { remote, prefix, partition, queue, startWriter } = await kit.rig();
    const target = { ...TARGET, partition };
    const targets = new Map<string, WriteTarget>([[target.key, target]]);
    const start = () => {
      startWriter(targets, { batchSize });
    };
    const feed = (runId: string, diff: ReconcileDiff) => feedReconcile({ queue, target, runId, diff, author });
    const drained = async () => {
      const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) === 0;
    };
    /**
     * Waits until the queue holds no job that could still commit (a write is pushed before its job
     * completes), then the commits are final: exactly `commits` (one more would be a bug).
     */
    const settle = async (commits: number, what: string) => {
      await waitFor(async () => (await drained()) && (await commitLog(remote)).length >= commits, what);
      expect(await commitLog(remote)).toHaveLength(commits);
    };
    const fileCount = async () => (await git(remote, 'ls-tree', '-r', '--name-only', 'main')).split('\n').filter(Boolean).length;
    const show = (p: string) => git(remote, 'show', `main:${p}`);
    const addLive = (...jobs: WriteJob[]) =>
      queue.addBulk(jobs.map((data) => ({ name: data.operation, data, opts: { ...WRITE_JOB_OPTIONS, attempts: 2, backoff: { type: 'fixed', delay: 200 }, jobId: writeJobId(data.eventKey, 'ns/t') } })));
    return { remote, queue, target, prefix, partition, start, feed, settle, fileCount, show, addLive };
  }

  it('300 creates: one commit with 300 files; the same diff again: no commit', async () => {
    const { remote, queue, start, feed, settle, fileCount, show } = await setup();
    const created = Array.from({ length: 300 }, (_, i) => ({ path: path(i), content: cm(i), rv: String(1000 + i) }));
    expect(await feed('run-1', diffOf({ created }))).toEqual({ queued: 300 });
    start();
    await settle(1, 'the reconcile commit');
    const [commit] = await commitLog(remote);
    expect(commit!.subject).toBe('reconcile ns/t: 300 created, 0 updated, 0 deleted');
    expect(commit!.author).toBe('GitOps Reverser (reconcile)');
    expect(commit!.email).toBe('gr@test');
    expect(commit!.body).toContain('Reconcile-Run: run-1\nReconcile-Writes: 0-299\nCluster: c1\nTarget: ns/t');
    expect(await fileCount()).toBe(300);
    expect(await show(path(123))).toBe(cm(123));
    // Every job completed with the one commit.
    const done = await queue.getCompleted(0, 400);
    expect(done).toHaveLength(300);
    expect(new Set(done.map((j) => (j.returnvalue as { commit: string }).commit))).toEqual(new Set([commit!.sha]));

    // The commit names its writes: a writer restarted between push and completion finds each applied.
    const keys = await readAppliedKeys(remote, commit!.sha, 10);
    for (const n of [0, 150, 299]) expect(keys.has(appliedKey({ clusterId: 'c1', auditID: reconcileAuditID('run-1', n), target: 'ns/t' }))).toBe(true);

    // A retried parent feeds the same run again: the job ids add nothing.
    await feed('run-1', diffOf({ created }));
    expect(await queue.getJobCounts('waiting')).toMatchObject({ waiting: 0 });
    // A new run with the same diff (the cluster did not change): no commit.
    expect(await feed('run-2', diffOf({ created }))).toEqual({ queued: 300 });
    await settle(1, 'the second run written');
    const second = await queue.getCompleted(0, 700);
    expect(second.filter((j) => j.data.reconcile?.runId === 'run-2').map((j) => (j.returnvalue as { reason?: string }).reason)).toEqual(
      Array(300).fill('same-content'),
    );
  });

  it('2 updates and 1 delete: one commit with those counts', async () => {
    const { remote, start, feed, settle, fileCount, show } = await setup();
    start();
    await feed('seed', diffOf({ created: [1, 2, 3, 4].map((i) => ({ path: path(i), content: cm(i), rv: '100' })) }));
    await settle(1, 'the seed');
    await feed(
      'run-2',
      diffOf({
        updated: [
          { path: path(1), content: cm(1, '2'), rv: '200' },
          { path: path(2), content: cm(2, '2'), rv: '201' },
        ],
        deleted: [{ path: path(4), rv: '250' }],
      }),
    );
    await settle(2, 'the reconcile commit');
    const log = await commitLog(remote);
    expect(log[1]!.subject).toBe('reconcile ns/t: 0 created, 2 updated, 1 deleted');
    expect(log[1]!.body).toContain('Reconcile-Run: run-2\nReconcile-Writes: 0-2\n');
    expect(await fileCount()).toBe(3);
    expect(await show(path(1))).toBe(cm(1, '2'));
    expect(await show(path(3))).toBe(cm(3));
  });

  it('a live event newer than the snapshot, queued before the reconcile writes, keeps its content', async () => {
    const { remote, queue, start, feed, settle, show, addLive } = await setup();
    await feed('seed', diffOf({ created: [1, 2, 3].map((i) => ({ path: path(i), content: cm(i), rv: '100' })) }));
    start();
    await settle(1, 'the seed');
    await kit.stopWriters();
    // Queued with the writer stopped, so all reach it in one batch, the live events first.
    await addLive(live(1, '900'), live(3, '750'));
    await feed(
      'run-2',
      diffOf({
        // Listed at 800, before the live change at 900: stale. cm-2 was edited by hand in Git: repaired.
        updated: [
          { path: path(1), content: cm(1, 'snapshot'), rv: '800' },
          { path: path(2), content: cm(2, 'snapshot'), rv: '810' },
        ],
        // Not seen by a listing at 700, but written by a live event at 750 since: not deleted.
        deleted: [{ path: path(3), rv: '700' }],
      }),
    );
    start();
    await settle(4, 'two live commits and the reconcile commit');
    const log = await commitLog(remote);
    // The live events share a timestamp: change order puts them by resourceVersion (750, 900).
    expect(log.slice(1).map((c) => c.subject)).toEqual([
      'UPDATE v1 configmaps ns/cm-3',
      'UPDATE v1 configmaps ns/cm-1',
      'reconcile ns/t: 0 created, 1 updated, 0 deleted',
    ]);
    expect(await show(path(1))).toBe(cm(1, 'live'));
    expect(await show(path(2))).toBe(cm(2, 'snapshot'));
    expect(await show(path(3))).toBe(cm(3, 'live'));
    const reasons = (await queue.getCompleted(0, 20)).filter((j) => j.data.reconcile?.runId === 'run-2').map((j) => [j.data.filePath, (j.returnvalue as { reason?: string }).reason]);
    expect(new Map(reasons as [string, string][])).toEqual(new Map([[path(1), 'stale'], [path(2), undefined], [path(3), 'stale']]));
  });

  it('a run larger than the write batch is taken whole: one commit', async () => {
    const { remote, feed, start, settle, fileCount } = await setup(40);
    const created = Array.from({ length: 100 }, (_, i) => ({ path: path(i), content: cm(i), rv: String(1000 + i) }));
    await feed('run-1', diffOf({ created }));
    start();
    await waitFor(async () => (await fileCount().catch(() => 0)) === 100, '100 files');
    await settle(1, 'the run written');
    expect((await commitLog(remote)).map((c) => c.subject)).toEqual(['reconcile ns/t: 100 created, 0 updated, 0 deleted']);
  });

  it('a writer that died after pushing a reconcile commit does not commit its writes again', async () => {
    const { queue, prefix, partition, start, feed, settle, show, addLive } = await setup();
    const created = [1, 2].map((i) => ({ path: path(i), content: cm(i), rv: '100' }));
    await feed('run-1', diffOf({ created }));
    start();
    await settle(1, 'the reconcile commit');
    await addLive(live(1, '200'));
    await settle(2, 'the live commit');
    await kit.stopWriters();
    // The crash: the run's jobs come again (as if never completed) and no resourceVersion was recorded:
    // only the commit's Reconcile-Writes trailer can tell that cm-1's snapshot must not undo the live event.
    await queue.obliterate({ force: true });
    await kit.client.del(ownKeys(prefix, partition.id).versions);
    await feed('run-1', diffOf({ created }));
    start();
    await settle(2, 'nothing new');
    expect(await show(path(1))).toBe(cm(1, 'live'));
    const reasons = (await queue.getCompleted()).map((j) => (j.returnvalue as { reason?: string }).reason);
    expect(reasons).toEqual(['already-applied', 'already-applied']);
  });

  it('a reconcile commit the remote refuses fails all its writes together; the live event before it lands', async () => {
    const { remote, queue, start, addLive, fileCount } = await setup();
    // Refuses pushes whose new commits touch cm-2.
    const hook = join(remote, 'hooks', 'pre-receive');
    await writeFile(
      hook,
      `#!/bin/sh\nwhile read old new ref; do\n  range="$new"; [ "$old" != 0000000000000000000000000000000000000000 ] && range="$old..$new"\n  if git log --format= --name-only $range | grep -qx '${path(2)}'; then echo "policy: no cm-2" >&2; exit 1; fi\ndone\nexit 0\n`,
    );
    await chmod(hook, 0o755);
    await addLive(live(9, '50'));
    await feedReconcile({
      queue,
      target: { key: 'ns/t', clusterProvider: 'c1', partition: { queueName: queue.name } as Partition },
      runId: 'run-1',
      diff: diffOf({ created: [1, 2, 3].map((i) => ({ path: path(i), content: cm(i), rv: '100' })) }),
      author,
      jobOptions: { attempts: 2, backoff: { type: 'fixed', delay: 200 } },
    });
    start();
    await waitFor(async () => (await queue.getFailedCount()) === 3, 'the three writes of the run failed');
    expect((await commitLog(remote)).map((c) => c.subject)).toEqual(['UPDATE v1 configmaps ns/cm-9']);
    expect(await fileCount()).toBe(1);
    for (const job of await queue.getFailed()) {
      expect(job.attemptsMade).toBe(2);
      expect(job.failedReason).toMatch(/^the remote refused the commit of reconcile run run-1 of ns\/t \(3 file\(s\)\): .*policy: no cm-2/s);
    }
  });
});
