// The scaffolding of the partition-writer tests, on a real Valkey and a real bare remote: per test file
// the Valkey and its connection; per test a bare remote, its main branch's partition queue and the writers
// started on it. The test file calls open, cleanUp and close from its own beforeAll, afterEach, afterAll.
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openConnection } from '../../queues/connection.js';
import type { WriteJob } from '../../core/contracts.js';
import { partitionOf, type Partition } from '../../queues/names.js';
import { startPartitionWriter, type PartitionWriter } from '../../workers/write/partition-writer.js';
import type { BatchProgress } from '../../queues/target-progress.js';
import type { WriteTarget } from '../../workers/write/validate-write.js';
import { createBareRemote } from './git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from './valkey-server.js';

/** The committer of every writer started here (a reconcile write's author must have its email). */
export const TEST_COMMITTER = { name: 'GitOps Reverser', email: 'gr@test' };

/** One test's remote and partition queue, and how to start writers on them. */
export interface WriterRig {
  /** The test's temp dir: the bare remote and the writers' data dirs are in it. */
  dir: string;
  remote: string;
  prefix: string;
  /** The partition of the remote's main branch. */
  partition: Partition;
  queue: Queue<WriteJob>;
  /**
   * Starts a writer of the partition (stopped after the test) that reads `targets` for every batch;
   * `onProgress` hears how each batch ended (its results, or the error that handed it back).
   */
  startWriter(targets: ReadonlyMap<string, WriteTarget>, opts?: { replicaId?: string; batchSize?: number; onProgress?: (progress: BatchProgress) => void }): PartitionWriter;
}

export class PartitionWriterKit {
  /** The test file's Valkey connection, once open() ran. */
  client!: Valkey;
  private valkey?: TestValkey;
  private readonly dirs: string[] = [];
  private readonly writers: PartitionWriter[] = [];
  private readonly queues: Queue[] = [];

  /** `name` names the tests' temp dirs and key prefixes. */
  constructor(private readonly name: string) {}

  async open(): Promise<void> {
    this.valkey = await startTestValkey();
    this.client = openConnection(this.valkey.url);
  }

  /** A fresh bare remote and its main partition's queue, under a fresh key prefix. */
  async rig(): Promise<WriterRig> {
    const dir = await mkdtemp(join(tmpdir(), `gr-${this.name}-`));
    this.dirs.push(dir);
    const remote = await createBareRemote(dir);
    const prefix = uniquePrefix(this.name);
    const partition = partitionOf(remote, 'main');
    const queue = new Queue<WriteJob>(partition.queueName, { connection: this.client, prefix });
    this.queues.push(queue);
    const startWriter: WriterRig['startWriter'] = (targets, { replicaId = 'replica-a', batchSize = 25, onProgress } = {}) => {
      const writer = startPartitionWriter({
        connection: this.client,
        prefix,
        partition,
        dataDir: join(dir, replicaId),
        replicaId,
        leaseTtlMs: 1000,
        batchSize,
        committer: TEST_COMMITTER,
        logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
        targets: () => targets,
        ...(onProgress ? { onProgress } : {}),
      });
      this.writers.push(writer);
      return writer;
    };
    return { dir, remote, prefix, partition, queue, startWriter };
  }

  /** Stops every writer started so far (as a crash or a restart would). */
  async stopWriters(): Promise<void> {
    await Promise.all(this.writers.splice(0).map((w) => w.stop()));
  }

  /** After each test: its writers, queues and temp dirs. */
  async cleanUp(): Promise<void> {
    await this.stopWriters();
    await Promise.all(this.queues.splice(0).map((q) => q.close()));
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }

  async close(): Promise<void> {
    await this.client?.quit();
    await this.valkey?.stop();
  }
}
