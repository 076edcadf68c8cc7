// A write job in Valkey is input: the partition writer checks every one against the GitTargets configured
// on its partition before planning (workers/write/validate-write.ts). Forged jobs added straight into
// a partition queue (as Bull Board's `add` did) fail alone as dead letters, with an error that names what
// is wrong, and commit nothing; the valid jobs around them commit. A write for a target this writer does
// not know (yet) is retried through its attempts instead: it commits once the target is configured here,
// and is a dead letter only after its last attempt. On a real Valkey and a real bare remote.
import type { JobsOptions } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { feedReconcile, reconcileAuthor } from '../../flows/reconcile/feed-writes.js';
import type { WriteJob } from '../../core/contracts.js';
import { WRITE_JOB_OPTIONS } from '../../queues/job-options.js';
import { partitionOf, type Partition } from '../../queues/names.js';
import { replayFailed } from '../../queues/replay-failed.js';
import { authorFor } from '../../workers/route/normalize-event.js';
import { objectFilePath } from '../../core/path-layout.js';
import { commitLog, treeFiles, waitFor } from '../support/git-repos.js';
import { PartitionWriterKit, TEST_COMMITTER } from '../support/partition-writer-kit.js';
import { routedWrite } from '../support/write-jobs.js';

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: shop\n`;

/** A write as the router makes it for target ops/c1 (cluster c1, folder clusters/c1). */
function valid(n: number, name = `cm-${n}`): WriteJob {
  return routedWrite(
    { key: 'ops/c1', path: 'clusters/c1', clusterProvider: 'c1' },
    { group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name },
    { eventKey: `c1_evt-${n}`, auditID: `evt-${n}`, operation: 'CREATE', content: cm(name), resourceVersion: String(1000 + n), user: 'alice', stageTimestamp: new Date(Date.UTC(2026, 10, 25, 10, 0, 0) + n * 1000).toISOString() },
  );
}
const identityOf = (j: WriteJob) => JSON.stringify(j.identity);

describe('partition writer: every write job is checked against the configured targets', () => {
  const kit = new PartitionWriterKit('wcheck');
  beforeAll(() => kit.open());
  afterEach(() => kit.cleanUp());
  afterAll(() => kit.close());

  async function setup() {
    const { remote, partition, queue, startWriter } = await kit.rig();
    const elsewhere = partitionOf(remote, 'other');
    // Two targets share this partition (clusters c1 and c2, each its folder); a third writes to another branch.
    const targets = new Map<string, { key: string; path: string; clusterProvider: string; partition: Partition }>([
      ['ops/c1', { key: 'ops/c1', path: 'clusters/c1', clusterProvider: 'c1', partition }],
      ['ops/c2', { key: 'ops/c2', path: 'clusters/c2', clusterProvider: 'c2', partition }],
      ['ops/elsewhere', { key: 'ops/elsewhere', path: 'x', clusterProvider: 'c1', partition: elsewhere }],
    ]);
    const start = () => {
      startWriter(targets);
    };
    // One queue.add per job, as an operator's "add" in Bull Board does (and with the router's options).
    const add = async (jobs: WriteJob[], opts: JobsOptions = WRITE_JOB_OPTIONS) => {
      for (const data of jobs) await queue.add(data.operation, data, { ...opts, jobId: data.eventKey });
    };
    const settled = (n: number) => async () => {
      const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
      return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) === 0 && (c.completed ?? 0) + (c.failed ?? 0) === n;
    };
    const failures = async () => Object.fromEntries((await queue.getFailed()).map((j) => [j.id, { reason: j.failedReason, attempts: j.attemptsMade }]));
    return { remote, queue, partition, elsewhere, targets, start, add, settled, failures };
  }

  it('forged jobs fail alone, each with its error and without retries; the valid ones around them commit', async () => {
    const { remote, queue, start, add, settled, failures } = await setup();
    const ok1 = valid(1);
    const workflow: WriteJob = { ...valid(2), eventKey: 'forged-workflow', filePath: '.github/workflows/pwn.yml', content: 'on: push\njobs: {}\n' };
    const otherFolder: WriteJob = { ...valid(3), eventKey: 'forged-other-folder', filePath: 'clusters/c2/shop/configmaps/cm-3.yaml' };
    const hook: WriteJob = { ...valid(4), eventKey: 'forged-hook', filePath: '.git/hooks/post-update', content: '#!/bin/sh\nrm -rf /\n' };
    const otherCluster: WriteJob = { ...valid(5), eventKey: 'forged-cluster', clusterId: 'c2', identity: { ...valid(5).identity, cluster: 'c2' } };
    const author: WriteJob = { ...valid(8), eventKey: 'forged-author', author: { name: 'Linus Torvalds', email: 'torvalds@kernel.org' } };
    const dotdot: WriteJob = { ...valid(9), eventKey: 'forged-dotdot', identity: { ...valid(9).identity, name: '..' }, filePath: 'clusters/c1/shop/configmaps/...yaml' };
    const ok2 = valid(10);
    // (A target not configured here, or of another partition: retried first; see the tests below.)
    await add([ok1, workflow, otherFolder, hook, otherCluster, author, dotdot, ok2]);
    start();
    await waitFor(settled(8), 'every job completed or failed');

    const path = (j: WriteJob) => `"clusters/c1/shop/configmaps/${j.identity.name}.yaml"`;
    expect(await failures()).toEqual({
      'forged-workflow': { attempts: 1, reason: `write refused: filePath ".github/workflows/pwn.yml" is not the path of identity ${identityOf(workflow)} under target "ops/c1" (${path(workflow)})` },
      'forged-other-folder': { attempts: 1, reason: `write refused: filePath "clusters/c2/shop/configmaps/cm-3.yaml" is not the path of identity ${identityOf(otherFolder)} under target "ops/c1" (${path(otherFolder)})` },
      'forged-hook': { attempts: 1, reason: `write refused: filePath ".git/hooks/post-update" is not the path of identity ${identityOf(hook)} under target "ops/c1" (${path(hook)})` },
      'forged-cluster': { attempts: 1, reason: 'write refused: clusterId "c2" is not the cluster of target "ops/c1" ("c1"); identity.cluster "c2" is not the cluster of target "ops/c1" ("c1")' },
      'forged-author': { attempts: 1, reason: 'write refused: author email "torvalds@kernel.org" is not of cluster "c1" of target "ops/c1" (…@c1.cluster.local)' },
      'forged-dotdot': { attempts: 1, reason: `write refused: identity ${identityOf(dotdot)} has no path under target "ops/c1": name: ".." would escape the repository path` },
    });
    const completed = Object.fromEntries((await queue.getCompleted()).map((j) => [j.id, (j.returnvalue as { outcome: string }).outcome]));
    expect(completed).toEqual({ 'c1_evt-1': 'committed', 'c1_evt-10': 'committed' });
    expect((await commitLog(remote)).map((c) => c.author)).toEqual(['alice', 'alice']);
    expect([...(await treeFiles(remote)).keys()].sort()).toEqual(['clusters/c1/shop/configmaps/cm-1.yaml', 'clusters/c1/shop/configmaps/cm-10.yaml']);
  });

  it('checks reconcile writes too: their run names their target, their files lie in its folder, by the service', async () => {
    const { remote, queue, partition, start, add, settled, failures } = await setup();
    start();
    const target = { key: 'ops/c1', clusterProvider: 'c1', partition };
    const diff = {
      created: [{ path: 'clusters/c1/shop/configmaps/r1.yaml', content: cm('r1'), rv: '10' }],
      updated: [],
      deleted: [],
    };
    // A real run (feed-writes.ts) passes.
    await feedReconcile({ queue, target, runId: 'run-1', diff, author: reconcileAuthor(TEST_COMMITTER.email) });
    await waitFor(settled(1), 'the run committed');
    expect((await commitLog(remote)).map((c) => c.subject)).toEqual(['reconcile ops/c1: 1 created, 0 updated, 0 deleted']);

    const base = (await queue.getCompleted())[0]!.data;
    const forged = (eventKey: string, change: Partial<WriteJob>): WriteJob => ({ ...base, eventKey, ...change });
    const inOtherFolder = 'clusters/c2/shop/configmaps/r2.yaml';
    const dotted = 'clusters/c1/.github/workflows/pwn.yaml';
    await add([
      forged('rec-run-target', { reconcile: { ...base.reconcile!, target: 'ops/c2' } }),
      forged('rec-other-folder', { filePath: inOtherFolder, identity: { ...base.identity, name: inOtherFolder } }),
      forged('rec-dotted', { filePath: dotted, identity: { ...base.identity, name: dotted } }),
      forged('rec-identity', { identity: { ...base.identity, resource: 'secrets' } }),
      forged('rec-author', { author: { name: 'GitOps Reverser (reconcile)', email: 'mallory@evil.example' } }),
    ]);
    await waitFor(settled(6), 'every job completed or failed');
    expect(await failures()).toEqual({
      'rec-run-target': { attempts: 1, reason: 'write refused: reconcile.target "ops/c2" is not the job\'s target "ops/c1"' },
      'rec-other-folder': { attempts: 1, reason: `write refused: filePath "${inOtherFolder}" is not an object file under target "ops/c1" ("clusters/c1"): it lies outside the target's folder` },
      'rec-dotted': { attempts: 1, reason: `write refused: filePath "${dotted}" is not an object file under target "ops/c1" ("clusters/c1"): segment ".github" begins with "."` },
      'rec-identity': {
        attempts: 1,
        reason: `write refused: identity {"cluster":"c1","group":"","version":"","resource":"secrets","namespace":"","name":"clusters/c1/shop/configmaps/r1.yaml"} is not that of a reconcile write of "clusters/c1/shop/configmaps/r1.yaml" ({"cluster":"c1","group":"","version":"","resource":"","namespace":"","name":"clusters/c1/shop/configmaps/r1.yaml"})`,
      },
      'rec-author': { attempts: 1, reason: 'write refused: author email "mallory@evil.example" of a reconcile write is not the service\'s ("gr@test")' },
    });
    expect(await commitLog(remote)).toHaveLength(1);
  });

  it('a write for a target the writer does not know yet is retried, not a dead letter, and commits once it is known', async () => {
    const { remote, queue, partition, targets, start, add, settled, failures } = await setup();
    // Another replica's router already knows GitTarget ops/c3 (cluster c3); this writer's replica not yet.
    const c3 = { key: 'ops/c3', path: 'clusters/c3', clusterProvider: 'c3', partition };
    const identity = { cluster: 'c3', group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: 'new' };
    const early: WriteJob = {
      ...valid(1),
      eventKey: 'c3_evt-1',
      clusterId: 'c3',
      target: c3.key,
      identity,
      filePath: objectFilePath(c3.path, identity),
      content: cm('new'),
      author: authorFor('carol', 'c3'),
    };
    start();
    await add([early], { ...WRITE_JOB_OPTIONS, attempts: 6, backoff: { type: 'exponential', delay: 1000 } });
    // Failed and retried through BullMQ: delayed for its backoff, its attempts counted; not in the failed set.
    await waitFor(async () => (await queue.getJob('c3_evt-1'))!.attemptsMade === 1, 'the first attempt made');
    const retried = (await queue.getJob('c3_evt-1'))!;
    expect(await retried.getState()).toBe('delayed');
    expect(retried.failedReason).toBe(
      'write refused: target "ops/c3" is not configured (deleted or not ready since the write was queued, or never configured); replay the job once it is configured again',
    );
    expect(await queue.getFailedCount()).toBe(0);
    await waitFor(async () => (await queue.getJob('c3_evt-1'))!.attemptsMade === 2, 'the second attempt made, after its backoff');
    expect(await queue.getFailedCount()).toBe(0);
    // Writes of the targets it knows are not held up behind it.
    await add([valid(2)]);
    await waitFor(async () => (await commitLog(remote)).length === 1, 'the write of ops/c1 committed meanwhile');
    // The configuration reaches this replica: the next attempt commits.
    targets.set(c3.key, c3);
    await waitFor(settled(2), 'both jobs completed');
    expect(await failures()).toEqual({});
    const done = (await queue.getJob('c3_evt-1'))!;
    expect(await done.getState()).toBe('completed');
    expect(done.attemptsMade).toBeGreaterThanOrEqual(2);
    expect((done.returnvalue as { outcome: string }).outcome).toBe('committed');
    expect((await commitLog(remote)).map((c) => c.author)).toEqual(['alice', 'carol']);
    expect((await treeFiles(remote)).get('clusters/c3/shop/configmaps/new.yaml')).toBe(cm('new'));
  });

  it('a write for a target that never becomes this partition\'s is a dead letter after its attempts, with its message', async () => {
    const { remote, partition, elsewhere, start, add, settled, failures } = await setup();
    start();
    const notHere: WriteJob = { ...valid(6), eventKey: 'not-here', target: 'ops/elsewhere', filePath: 'x/shop/configmaps/cm-6.yaml' };
    const unknown: WriteJob = { ...valid(7), eventKey: 'unknown', target: 'ops/nobody' };
    await add([notHere, unknown, valid(8)], { ...WRITE_JOB_OPTIONS, attempts: 3, backoff: { type: 'exponential', delay: 100 } });
    await waitFor(settled(3), 'every job completed or failed');
    expect(await failures()).toEqual({
      'not-here': {
        attempts: 3,
        reason: `write refused: target "ops/elsewhere" writes to partition ${elsewhere.id} (branch other), not to this partition ${partition.id} (branch main); replay the job once it writes here again`,
      },
      unknown: { attempts: 3, reason: 'write refused: target "ops/nobody" is not configured (deleted or not ready since the write was queued, or never configured); replay the job once it is configured again' },
    });
    expect((await commitLog(remote)).map((c) => /Audit-ID: (\S+)/.exec(c.body)?.[1])).toEqual(['evt-8']);
  });

  it('writes of a target deleted while they were queued are dead letters after their attempts, and replay once it is back', async () => {
    const { remote, queue, targets, start, add, settled, failures } = await setup();
    start();
    await add([valid(1)]);
    await waitFor(settled(1), 'the first write committed');
    // The GitTarget is deleted; writes routed before the switch are still in the queue.
    const deleted = targets.get('ops/c1')!;
    targets.delete('ops/c1');
    await add([valid(2), valid(3)], { ...WRITE_JOB_OPTIONS, attempts: 2, backoff: { type: 'exponential', delay: 100 } });
    await waitFor(settled(3), 'the queued writes failed');
    const refused = 'write refused: target "ops/c1" is not configured (deleted or not ready since the write was queued, or never configured); replay the job once it is configured again';
    expect(await failures()).toEqual({ 'c1_evt-2': { attempts: 2, reason: refused }, 'c1_evt-3': { attempts: 2, reason: refused } });
    expect(await commitLog(remote)).toHaveLength(1);
    // The target comes back: the dead letters are replayed (Bull Board's retry, or `npm run replay`).
    targets.set('ops/c1', deleted);
    expect((await replayFailed(queue)).replayed.sort()).toEqual(['c1_evt-2', 'c1_evt-3']);
    await waitFor(async () => (await queue.getCompletedCount()) === 3, 'the replayed writes committed');
    expect((await commitLog(remote)).map((c) => /Audit-ID: (\S+)/.exec(c.body)?.[1])).toEqual(['evt-1', 'evt-2', 'evt-3']);
  });
});
