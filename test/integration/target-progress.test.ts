// A partition writer's onProgress, recorded in a real Valkey: the target's last commit is the remote's
// commit of its newest change; a remote that went away sets the target's last error, and the next
// successful push clears it. Backlog is read from the partition queue.
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openConnection } from '../../queues/connection.js';
import type { WriteJob } from '../../core/contracts.js';
import { WRITE_JOB_OPTIONS } from '../../queues/job-options.js';
import { partitionOf } from '../../queues/names.js';
import { startPartitionWriter, type PartitionWriter } from '../../workers/write/partition-writer.js';
import { readPartitionBacklog, readTargetProgress, recordTargetProgress } from '../../queues/target-progress.js';
import type { WriteTarget } from '../../workers/write/validate-write.js';
import { authorFor } from '../../workers/route/normalize-event.js';
import { objectFilePath } from '../../core/path-layout.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** The GitTargets of this test: both of cluster c1, each its folder of the one partition. */
const TARGETS = {
  'ns/a': { key: 'ns/a', path: 'ns-a', clusterProvider: 'c1' },
  'ns/b': { key: 'ns/b', path: 'ns-b', clusterProvider: 'c1' },
};

/** A write as the router makes it for one of TARGETS. */
function write(n: number, key: keyof typeof TARGETS): WriteJob {
  const target = TARGETS[key];
  const identity = { cluster: target.clusterProvider, group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: `cm-${n}` };
  return {
    eventKey: `c1_evt-${n}`,
    clusterId: target.clusterProvider,
    auditID: `evt-${n}`,
    target: target.key,
    identity,
    operation: 'UPDATE',
    filePath: objectFilePath(target.path, identity),
    content: `n: "${n}"\n`,
    resourceVersion: String(1000 + n),
    author: authorFor('user', target.clusterProvider),
    stageTimestamp: new Date(Date.UTC(2026, 0, 10, 8, 0, n)).toISOString(),
  };
}

describe('target progress from the partition writer', () => {
  let valkey: TestValkey;
  let client: Valkey;
  let dir: string;
  let writer: PartitionWriter | undefined;
  let queue: Queue<WriteJob> | undefined;

  beforeAll(async () => {
    valkey = await startTestValkey();
    client = openConnection(valkey.url);
  });
  afterEach(async () => {
    await writer?.stop();
    await queue?.close();
    await rm(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await client?.quit();
    await valkey?.stop();
  });

  it('records last commit and last error per target, and clears the error on the next push', async () => {
    dir = await mkdtemp(join(tmpdir(), 'gr-progress-'));
    const remote = await createBareRemote(dir);
    const prefix = uniquePrefix('progress');
    const partition = partitionOf(remote, 'main');
    const targets = new Map<string, WriteTarget>(Object.values(TARGETS).map((t) => [t.key, { ...t, partition }]));
    queue = new Queue<WriteJob>(partition.queueName, { connection: client, prefix });
    const add = (jobs: WriteJob[]) => queue!.addBulk(jobs.map((data) => ({ name: data.operation, data, opts: { ...WRITE_JOB_OPTIONS, jobId: data.eventKey } })));
    const drained = async () => (await readPartitionBacklog(queue!)) === 0;

    await add([write(1, 'ns/a'), write(2, 'ns/b'), write(3, 'ns/a')]);
    expect(await readPartitionBacklog(queue)).toBe(3);
    writer = startPartitionWriter({
      connection: client,
      prefix,
      partition,
      dataDir: join(dir, 'replica'),
      replicaId: 'replica',
      leaseTtlMs: 1000,
      batchSize: 25,
      committer: { name: 'GitOps Reverser', email: 'gr@test' },
      logger,
      targets: () => targets,
      onProgress: (p) => void recordTargetProgress(client, prefix, p).catch(() => undefined),
    });
    await waitFor(async () => (await commitLog(remote)).length === 3 && (await drained()), 'three commits');
    const commits = await commitLog(remote);
    await waitFor(async () => (await readTargetProgress(client, prefix, ['ns/b'])).get('ns/b')?.lastCommit !== undefined, 'progress recorded');
    let progress = await readTargetProgress(client, prefix, ['ns/a', 'ns/b', 'ns/none']);
    expect(progress.get('ns/a')?.lastCommit?.sha).toBe(commits[2]!.sha);
    expect(progress.get('ns/b')?.lastCommit?.sha).toBe(commits[1]!.sha);
    expect(progress.get('ns/none')).toEqual({});
    // The lag of the newest change written: from its event time to the end of its batch.
    const newestOfA = write(3, 'ns/a').stageTimestamp;
    expect(progress.get('ns/a')?.lag).toEqual({ eventTime: new Date(newestOfA).toISOString(), seconds: expect.any(Number) });
    expect(progress.get('ns/a')!.lag!.seconds).toBeGreaterThanOrEqual(0);

    // The remote goes away: the batch is handed back, and its target has an error.
    await rename(remote, `${remote}.away`);
    await add([write(4, 'ns/a')]);
    await waitFor(async () => (await readTargetProgress(client, prefix, ['ns/a'])).get('ns/a')?.lastError !== undefined, 'the error recorded');
    progress = await readTargetProgress(client, prefix, ['ns/a']);
    expect(progress.get('ns/a')?.lastError?.message).toMatch(/^git (fetch|push) \S+ failed .*does not appear to be a git repository/);
    expect(progress.get('ns/a')?.lastCommit?.sha).toBe(commits[2]!.sha);

    await rename(`${remote}.away`, remote);
    await waitFor(async () => (await commitLog(remote)).length === 4 && (await drained()), 'the fourth commit', 45_000);
    await waitFor(async () => (await readTargetProgress(client, prefix, ['ns/a'])).get('ns/a')?.lastError === undefined, 'the error cleared');
    expect((await readTargetProgress(client, prefix, ['ns/a'])).get('ns/a')?.lastCommit?.sha).toBe((await commitLog(remote))[3]!.sha);
  });
});
