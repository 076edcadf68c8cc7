// collectOverview on a real Valkey with real BullMQ queues: per target the redacted repository, the last
// commit and error, the partition queue's backlog and dead letters, the lease holder and the lag; per
// cluster this replica's counters; and the ingest queue.
import { Queue, Worker } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoConfigYaml } from '../../config/demo-config.js';
import { parseConfig } from '../../config/load-config.js';
import type { ResolvedConfig } from '../../config/resolved-config.js';
import { createMetrics } from '../../observability/metrics.js';
import { collectOverview } from '../../dashboard/overview.js';
import { openConnection } from '../../queues/connection.js';
import { INGEST_QUEUE, ownKeys } from '../../queues/names.js';
import { tryAcquireLease } from '../../queues/lease.js';
import type { WriteJob } from '../../core/contracts.js';
import { recordTargetProgress } from '../../queues/target-progress.js';
import { waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const TARGET = 'gitops-reverser/c1';

function write(n: number, stageTimestamp: string): WriteJob {
  return {
    eventKey: `c1_evt-${n}`,
    clusterId: 'c1',
    auditID: `evt-${n}`,
    target: TARGET,
    identity: { cluster: 'c1', group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: `cm-${n}` },
    operation: 'UPDATE',
    filePath: `clusters/c1/shop/configmaps/cm-${n}.yaml`,
    content: `n: "${n}"\n`,
    resourceVersion: String(1000 + n),
    author: { name: 'user', email: 'user@c1' },
    stageTimestamp,
  };
}

describe('collectOverview', () => {
  let valkey: TestValkey;
  let client: Valkey;
  let config: ResolvedConfig;
  const queues: Queue[] = [];

  beforeAll(async () => {
    valkey = await startTestValkey();
    client = openConnection(valkey.url);
    config = parseConfig(demoConfigYaml('/srv/git/repo.git', { cluster: 'c1', token: 't0ken', path: 'clusters/c1' }));
    // A remote URL with credentials in it (a remote needs a Secret to parse; the overview reads only the URL).
    const target = config.targets.get(TARGET)!;
    target.provider = { ...target.provider, url: 'https://bob:s3cret-token@git.example.com/org/repo.git' };
  });
  afterAll(async () => {
    await Promise.all(queues.map((q) => q.close()));
    await client?.quit();
    await valkey?.stop();
  });

  it('shows each target, cluster and the ingest queue as Valkey, BullMQ and the counters have them', async () => {
    const prefix = uniquePrefix('overview');
    const target = config.targets.get(TARGET)!;
    const writeQueue = new Queue<WriteJob>(target.partition.queueName, { connection: client, prefix });
    const ingestQueue = new Queue(INGEST_QUEUE, { connection: client, prefix });
    queues.push(writeQueue as Queue, ingestQueue);

    // One write completed, one dead letter; then three not written yet.
    const workerConnection = openConnection(valkey.url);
    const worker = new Worker<WriteJob>(
      target.partition.queueName,
      async (job) => {
        if (job.data.auditID === 'evt-2') throw new Error('the remote refused it');
        return { outcome: 'committed' };
      },
      { connection: workerConnection, prefix },
    );
    await writeQueue.add('w', write(1, new Date(Date.now() - 5000).toISOString()));
    await writeQueue.add('w', write(2, new Date().toISOString()), { attempts: 1 });
    await waitFor(async () => (await writeQueue.getCompletedCount()) === 1 && (await writeQueue.getFailedCount()) === 1, 'one written, one dead letter');
    await worker.close();
    await workerConnection.quit();
    await writeQueue.add('w', write(3, new Date().toISOString()));
    await writeQueue.add('w', write(4, new Date().toISOString()));
    await writeQueue.add('w', write(5, new Date().toISOString()), { delay: 60_000 });
    await ingestQueue.add('e', { n: 1 });

    // A replica id may contain ':' (the lease value is `${replicaId}:${fence}`).
    await tryAcquireLease(client, ownKeys(prefix, target.partition.id), 'partition', 'pod-7:abc', 10_000);
    // Written 5 s after the change; then a replayed dead letter with a 10-minute-old change, written later.
    await recordTargetProgress(client, prefix, { jobs: [write(1, '2026-03-01T09:59:55.000Z')], results: [{ outcome: 'committed', commit: 'c0ffee', pushedAs: 'c0ffee' }] }, new Date('2026-03-01T10:00:00.000Z'));
    await recordTargetProgress(client, prefix, { jobs: [write(6, '2026-03-01T09:50:00.000Z')], results: [{ outcome: 'committed', commit: 'c0ffee', pushedAs: 'c0ffee' }] }, new Date('2026-03-01T10:00:00.000Z'));

    const metrics = createMetrics(prefix);
    metrics.eventsIngested.inc({ cluster: 'c1' }, 7);
    metrics.eventsSkipped.inc({ cluster: 'c1', reason: 'not-mutating' }, 3);
    metrics.eventsSkipped.inc({ cluster: 'c1', reason: 'dry-run' }, 1);
    metrics.webhookRejected.inc({ cluster: 'c1', reason: 'unauthorized' }, 2);
    metrics.webhookRejected.inc({ cluster: '', reason: 'unknown-cluster' }, 4);
    metrics.eventsRateLimited.inc({ cluster: 'c1' }, 5);
    metrics.eventsRefused.inc({ cluster: 'c1', reason: 'identity-mismatch' }, 6);
    metrics.filesDeleted.inc({ cluster: 'c1', reason: 'namespace' }, 8);
    metrics.filesDeleted.inc({ cluster: 'c1', reason: 'deletecollection' }, 3);

    const overview = await collectOverview({
      config: () => config,
      connection: client,
      prefix,
      queues: (name) => (name === writeQueue.name ? (writeQueue as Queue) : undefined),
      ingestQueue,
      metrics,
      now: () => new Date('2026-03-01T10:00:05.000Z'),
    });

    expect(overview).toMatchObject({
      generatedAt: '2026-03-01T10:00:05.000Z',
      countsScope: 'this-replica',
      ingest: { queue: INGEST_QUEUE, backlog: 1, deadLetters: 0 },
      clusters: [{ cluster: 'c1', accepted: 7, skipped: { 'not-mutating': 3, 'dry-run': 1 }, refused: { 'identity-mismatch': 6 }, rejectedRequests: { unauthorized: 2 }, rateLimited: 5, filesDeleted: { namespace: 8, deletecollection: 3 } }],
      rejectedUnknownCluster: { 'unknown-cluster': 4 },
    });
    expect(overview.targets).toHaveLength(1);
    const [row] = overview.targets;
    expect(row).toMatchObject({
      target: TARGET,
      repository: 'https://git.example.com/org/repo.git',
      branch: 'main',
      path: 'clusters/c1',
      cluster: 'c1',
      partition: target.partition.id,
      queue: target.partition.queueName,
      backlog: 3,
      deadLetters: 1,
      lastCommit: { sha: 'c0ffee', time: '2026-03-01T10:00:00Z' },
      lagSeconds: 5,
      lastError: null,
      writer: 'pod-7:abc',
      // A dead letter and no error since the last push.
      health: 'needs attention',
    });
    expect(JSON.stringify(overview)).not.toContain('s3cret');
  });

  it('says "unknown here" (null) for a partition queue this replica does not have, and nobody for a free lease', async () => {
    const prefix = uniquePrefix('overview');
    const ingestQueue = new Queue(INGEST_QUEUE, { connection: client, prefix });
    queues.push(ingestQueue);
    const overview = await collectOverview({ config: () => config, connection: client, prefix, queues: () => undefined, ingestQueue, metrics: createMetrics(prefix) });
    expect(overview.targets[0]).toMatchObject({ backlog: null, deadLetters: null, writer: null, lagSeconds: null, lastCommit: null, health: 'no commits yet' });
    expect(overview.clusters).toEqual([{ cluster: 'c1', accepted: 0, skipped: {}, refused: {}, rejectedRequests: {}, rateLimited: 0, filesDeleted: {} }]);
    expect(overview.ingest).toEqual({ queue: INGEST_QUEUE, backlog: 0, deadLetters: 0 });
  });
});
