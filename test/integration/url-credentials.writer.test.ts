// Defence in depth for security item 9: whatever URL a partition carries (a GitProvider refuses credentials
// in spec.url, but the writer must not depend on it), no log line of the partition writer and no mirror's
// git config holds the URL's credentials. On a real Valkey and real git; the remote is unreachable.
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConnection } from '../../queues/connection.js';
import type { WriteJob } from '../../core/contracts.js';
import { partitionOf } from '../../queues/names.js';
import { openMirror } from '../../git/git-remote.js';
import { startPartitionWriter } from '../../workers/write/partition-writer.js';
import { authorFor } from '../../workers/route/normalize-event.js';
import { objectFilePath } from '../../core/path-layout.js';
import { waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const SECRET = 's3cr3t-PASS';
const URL_WITH_CREDENTIALS = `https://bot:${SECRET}@127.0.0.1:1/org/fleet.git`;
const SHOWN = 'https://127.0.0.1:1/org/fleet.git';

describe('credentials in a remote URL reach no log line and no git config', () => {
  let valkey: TestValkey;
  let client: Valkey;
  let dir: string;

  beforeAll(async () => {
    valkey = await startTestValkey();
    client = openConnection(valkey.url);
    dir = await mkdtemp(join(tmpdir(), 'gr-url-creds-'));
  });
  afterAll(async () => {
    await client?.quit();
    await valkey?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the mirror\'s remote URL is written without them, also over a mirror that had them', async () => {
    const gitDir = join(dir, 'old.git');
    await promisify(execFile)('git', ['init', '--bare', '--quiet', gitDir]);
    // A mirror made before the fix kept the URL as given.
    await promisify(execFile)('git', ['--git-dir', gitDir, 'config', 'remote.origin.url', URL_WITH_CREDENTIALS]);
    await openMirror({ dir: gitDir, repoURL: URL_WITH_CREDENTIALS, branch: 'main', env: {} });
    const config = await readFile(join(gitDir, 'config'), 'utf8');
    expect(config).not.toContain(SECRET);
    expect(config).toContain(`url = ${SHOWN}`);
  });

  it('the partition writer logs the repository without them, and its mirror holds none', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const prefix = uniquePrefix('urlcreds');
    const partition = partitionOf(URL_WITH_CREDENTIALS, 'main');
    const queue = new Queue<WriteJob>(partition.queueName, { connection: client, prefix });
    // The job's target, so that the job passes the writer's check and reaches the remote.
    const target = { key: 'ops/t', path: '', clusterProvider: 'c1', partition };
    const identity = { cluster: 'c1', group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: 'a' };
    const writer = startPartitionWriter({
      connection: client,
      prefix,
      partition,
      dataDir: join(dir, 'data'),
      replicaId: 'replica-a',
      leaseTtlMs: 1000,
      batchSize: 10,
      committer: { name: 'GitOps Reverser', email: 'gr@test' },
      logger: pino({ level: 'debug' }, sink),
      targets: () => new Map([[target.key, target]]),
    });
    try {
      await queue.add('UPDATE', {
        eventKey: 'c1_e1',
        clusterId: 'c1',
        auditID: 'e1',
        target: target.key,
        identity,
        operation: 'UPDATE',
        filePath: objectFilePath(target.path, identity),
        content: 'a: 1\n',
        resourceVersion: '1',
        author: authorFor('alice', 'c1'),
        stageTimestamp: new Date().toISOString(),
      });
      // The remote cannot be reached: the batch is handed back, with the repository in the log line.
      await waitFor(async () => lines.some((l) => l.includes('batch handed back')), 'the batch handed back');
    } finally {
      await writer.stop();
      await queue.close();
    }
    const handedBack = JSON.parse(lines.find((l) => l.includes('batch handed back'))!) as { repo: string };
    expect(handedBack.repo).toBe(SHOWN);
    for (const line of lines) expect(line).not.toContain(SECRET);
    const config = await readFile(join(dir, 'data', 'git', `${partition.id}.git`, 'config'), 'utf8');
    expect(config).not.toContain(SECRET);
  });
});
