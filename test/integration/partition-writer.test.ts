// The partition writer on a real Valkey and a real bare remote: two replicas' writers compete for one
// partition, every event is committed once and in order; stale and repeated events change nothing; an
// unreachable remote keeps the events queued in order until it returns.
import type { JobsOptions } from 'bullmq';
import { chmod, rename, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WriteJob } from '../../core/contracts.js';
import { WRITE_JOB_OPTIONS } from '../../queues/job-options.js';
import { ownKeys } from '../../queues/names.js';
import type { WriteTarget } from '../../workers/write/validate-write.js';
import { authorFor } from '../../workers/route/normalize-event.js';
import { objectFilePath } from '../../core/path-layout.js';
import { commitLog, treeFiles, waitFor } from '../support/git-repos.js';
import { PartitionWriterKit } from '../support/partition-writer-kit.js';

/** The one GitTarget of these tests: cluster c1, written at the root of the partition's branch. */
const TARGET = { key: 'ops/all', path: '', clusterProvider: 'c1' };

/** A write as the router makes it for TARGET (its path and author as the router and normalize give them). */
function write(n: number, opts: { name?: string; content?: string | null; rv?: string } = {}): WriteJob {
  const name = opts.name ?? `cm-${n}`;
  const identity = { cluster: TARGET.clusterProvider, group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name };
  return {
    eventKey: `c1_evt-${n}`,
    clusterId: TARGET.clusterProvider,
    auditID: `evt-${n}`,
    target: TARGET.key,
    identity,
    operation: opts.content === null ? 'DELETE' : 'UPDATE',
    filePath: objectFilePath(TARGET.path, identity),
    content: opts.content === undefined ? `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  n: "${n}"\n` : opts.content,
    resourceVersion: opts.rv ?? String(1000 + n),
    author: authorFor(`user-${n % 3}`, TARGET.clusterProvider),
    stageTimestamp: new Date(Date.UTC(2026, 10, 25, 10, 0, 0) + n * 1000).toISOString(),
  };
}

describe('partition writer', () => {
  const kit = new PartitionWriterKit('writer');
  beforeAll(() => kit.open());
  afterEach(() => kit.cleanUp());
  afterAll(() => kit.close());

  async function setup() {
    const { dir, remote, prefix, partition, queue, startWriter } = await kit.rig();
    const targets = new Map<string, WriteTarget>([[TARGET.key, { ...TARGET, partition }]]);
    /** The errors that handed a batch back, in order (a batch that ended with results adds none). */
    const handedBack: unknown[] = [];
    const start = (replicaId: string, batchSize = 25) =>
      startWriter(targets, { replicaId, batchSize, onProgress: (p) => void ('error' in p && handedBack.push(p.error)) });
    const add = (jobs: WriteJob[], opts: JobsOptions = WRITE_JOB_OPTIONS) =>
      queue.addBulk(jobs.map((data) => ({ name: data.operation, data, opts: { ...opts, jobId: data.eventKey } })));
    const drained = async () => {
      const c = await queue.getJobCounts('waiting', 'active', 'delayed');
      return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0;
    };
    return { dir, remote, queue, start, add, drained, prefix, partition, handedBack };
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

  it('repeated and already-absent events make no commit and say why; a stale one is an out-of-order dead letter', async () => {
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
    expect(results).toMatchObject({ 'c1_evt-2-again': 'same-content', 'c1_evt-4': 'already-absent' });
    // The old event delivered late: its version is missing from the history, and it says so.
    const late = await queue.getJob('c1_evt-3');
    expect(await late?.getState()).toBe('failed');
    expect(late?.failedReason).toMatch(/^out of order: UPDATE shop\/configmaps\/app\.yaml at resourceVersion 550 \(audit ID evt-3\) arrived after resourceVersion 600 of it was committed/);
    expect((await treeFiles(remote)).get('shop/configmaps/app.yaml')).toContain('n: "2"');
  });

  it('an unreachable remote keeps events queued in order; when it returns they drain', async () => {
    const { remote, queue, start, add, drained, handedBack } = await setup();
    start('replica-a', 10);
    await add([write(1)]);
    await waitFor(async () => (await commitLog(remote)).length === 1 && (await drained()), 'first commit');
    await rename(remote, `${remote}.away`);
    await add(Array.from({ length: 30 }, (_, i) => write(10 + i)));
    // The writer tried, found the remote away, and tried again after its backoff: nothing was dropped or
    // failed meanwhile.
    await waitFor(async () => handedBack.length >= 2, 'two batches handed back while the remote is away');
    expect(await drained()).toBe(false);
    expect(await queue.getFailedCount()).toBe(0);
    await rename(`${remote}.away`, remote);
    await waitFor(async () => (await commitLog(remote)).length === 31 && (await drained()), 'drained after return', 45_000);
    const ids = (await commitLog(remote)).map((c) => /Audit-ID: (\S+)/.exec(c.body)?.[1]);
    expect(ids).toEqual(['evt-1', ...Array.from({ length: 30 }, (_, i) => `evt-${10 + i}`)]);
  });

  /** A pre-receive hook that refuses pushes whose new commits touch `path` ('*': refuses every push). */
  async function refusePushesTouching(remote: string, path: string) {
    const hook = join(remote, 'hooks', 'pre-receive');
    const check =
      path === '*'
        ? 'echo "pushes are frozen" >&2; exit 1'
        : `while read old new ref; do
  range="$new"; [ "$old" != 0000000000000000000000000000000000000000 ] && range="$old..$new"
  if git log --format= --name-only $range | grep -qx '${path}'; then echo "policy: ${path} may not change" >&2; exit 1; fi
done`;
    await writeFile(hook, `#!/bin/sh\n${check}\nexit 0\n`);
    await chmod(hook, 0o755);
  }
  const ids = async (remote: string) => (await commitLog(remote)).map((c) => /Audit-ID: (\S+)/.exec(c.body)?.[1]);

  it('a poison event fails alone after bounded attempts, with its error; the others are committed in order', async () => {
    const { remote, queue, start, add } = await setup();
    await refusePushesTouching(remote, 'shop/configmaps/poison.yaml');
    start('replica-a');
    await add([write(1), write(2, { name: 'poison' }), write(3), write(4)], { attempts: 2, backoff: { type: 'fixed', delay: 200 } });
    await waitFor(async () => (await queue.getFailedCount()) === 1 && (await ids(remote)).length === 3, 'the poison in the failed set, three commits');
    expect(await ids(remote)).toEqual(['evt-1', 'evt-3', 'evt-4']);
    const [dead] = await queue.getFailed();
    expect(dead!.id).toBe('c1_evt-2');
    expect(dead!.attemptsMade).toBe(2);
    expect(dead!.failedReason).toMatch(/^the remote refused the commit of UPDATE shop\/configmaps\/poison\.yaml \(audit ID evt-2\): .*policy: shop\/configmaps\/poison\.yaml may not change/s);
  });

  it('a remote that refuses everything blames no event: all wait, in order, and drain when it accepts again', async () => {
    const { remote, queue, start, add, drained, handedBack } = await setup();
    await refusePushesTouching(remote, '*');
    start('replica-a');
    await add(Array.from({ length: 12 }, (_, i) => write(i)), { attempts: 1 });
    // Each round tries the suspects one by one, finds every commit refused, and hands the batch back whole;
    // after two such rounds (the second after the backoff), with one attempt per job, none has failed.
    await waitFor(async () => handedBack.length >= 2, 'two rounds handed back whole');
    for (const err of handedBack) expect((err as Error).message).toMatch(/^the remote refused every commit tried/);
    expect(await queue.getFailedCount()).toBe(0);
    expect(await drained()).toBe(false);
    await rm(join(remote, 'hooks', 'pre-receive'));
    await waitFor(async () => (await ids(remote)).length === 12 && (await drained()), 'twelve commits after the remote accepts again', 45_000);
    // Every event once, none failed. (Twelve objects: when the remote comes back in the middle of a
    // round, a few suspects of other objects may land just after later events; one object's events
    // never reorder.)
    expect([...(await ids(remote))].sort()).toEqual(Array.from({ length: 12 }, (_, i) => `evt-${i}`).sort());
    expect(await queue.getFailedCount()).toBe(0);
  });

  it('writes the remote already holds (a writer died after its push) are not committed again', async () => {
    const { remote, queue, start, add, drained, prefix, partition } = await setup();
    start('replica-a');
    await add([write(1, { name: 'app', rv: '10' }), write(2, { name: 'app', rv: '11' }), write(3, { name: 'other', rv: '12' })]);
    await waitFor(async () => (await ids(remote)).length === 3 && (await drained()), 'three commits');
    await kit.stopWriters();
    // The crash: the jobs were pushed but never completed (so they come again), and the resourceVersions
    // were never recorded. Only the commits' trailers can tell.
    await queue.obliterate({ force: true });
    await kit.client.del(ownKeys(prefix, partition.id).versions);
    await add([write(1, { name: 'app', rv: '10' }), write(2, { name: 'app', rv: '11' }), write(3, { name: 'other', rv: '12' }), write(4, { name: 'app', rv: '13' })]);
    start('replica-b');
    await waitFor(async () => (await ids(remote)).length === 4 && (await drained()), 'one new commit');
    expect(await ids(remote)).toEqual(['evt-1', 'evt-2', 'evt-3', 'evt-4']);
    const reasons = Object.fromEntries((await queue.getCompleted()).map((j) => [j.id, (j.returnvalue as { reason?: string }).reason ?? 'committed']));
    expect(reasons).toEqual({ 'c1_evt-1': 'already-applied', 'c1_evt-2': 'already-applied', 'c1_evt-3': 'already-applied', 'c1_evt-4': 'committed' });
  });

  it('someone else pushed to the branch: their commit stays, ours goes on top, nothing forced', async () => {
    const { dir, remote, start, add, drained } = await setup();
    start('replica-a');
    await add([write(1)]);
    await waitFor(async () => (await ids(remote)).length === 1 && (await drained()), 'first commit');
    // A person pushes a commit of their own while the writer still builds on the tip it pushed.
    const clone = join(dir, 'person');
    const run = promisify(execFile);
    await run('git', ['clone', '--quiet', remote, clone]);
    await writeFile(join(clone, 'README.md'), 'hand-written\n');
    await run('git', ['-C', clone, 'add', 'README.md']);
    await run('git', ['-C', clone, '-c', 'user.name=Person', '-c', 'user.email=p@example.com', 'commit', '--quiet', '-m', 'docs: by hand']);
    await run('git', ['-C', clone, 'push', '--quiet', 'origin', 'HEAD:main']);
    const outside = (await run('git', ['-C', clone, 'rev-parse', 'HEAD'])).stdout.trim();
    await add([write(2), write(3)]);
    await waitFor(async () => (await commitLog(remote)).length === 4 && (await drained()), 'our two commits on top of theirs');
    const log = await commitLog(remote);
    expect(log.map((c) => c.subject)).toEqual(['UPDATE v1 configmaps shop/cm-1', 'docs: by hand', 'UPDATE v1 configmaps shop/cm-2', 'UPDATE v1 configmaps shop/cm-3']);
    expect(log[1]!.sha).toBe(outside);
    expect((await treeFiles(remote)).get('README.md')).toBe('hand-written\n');
  });
});
