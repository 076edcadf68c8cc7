// The partitions this replica writes: one write queue and one writer per {repoURL, branch} of the
// configuration, started when a configuration names a new partition, replaced when its credentials
// change, and retired once it is no longer configured and its queue has drained.
import { Queue, type QueueOptions } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/resolved-config.js';
import type { BullBoard } from '../dashboard/bull-board.js';
import type { WriteJob } from '../core/contracts.js';
import type { Partition } from '../queues/names.js';
import type { PartitionWriter } from '../workers/write/partition-writer.js';

export type StartWriter = (partition: Partition, credentials: Record<string, string> | undefined) => PartitionWriter;

export interface PartitionsOptions {
  connection: Valkey;
  prefix: string;
  streams: QueueOptions['streams'];
  /** Bull Board: shows each write queue while it exists. */
  board: Pick<BullBoard, 'addQueue' | 'removeQueue'>;
  logger: Logger;
  startWriter: StartWriter;
}

export interface Partitions {
  /** The write queues by name: the router and reconciles add to them, so a queue exists before routes name it. */
  writeQueues: Map<string, Queue<WriteJob>>;
  writerCount(): number;
  /**
   * Queues and writers for the configuration's partitions that have none yet. Synchronous, so that they
   * exist before the routes that send to them switch.
   */
  ensure(config: ResolvedConfig): void;
  /** The configuration's partitions are configured (again): their retirement checks start anew. */
  configured(): void;
  /**
   * Replaces each writer whose credentials changed: the old one hands its batch back and releases the
   * lease (its queue holds the jobs meanwhile), then a new one takes over.
   */
  renewCredentials(config: ResolvedConfig): Promise<void>;
  /**
   * Stops the writer and closes the queue of each partition that `config()` no longer names and that was
   * empty at the previous check too: a router batch routed by the old rules just before a switch has
   * landed by then.
   */
  retireDrained(config: () => ResolvedConfig): Promise<void>;
  /** Each writer finishes or hands back its batch and releases its lease. */
  stopWriters(): Promise<void>;
  closeQueues(): Promise<void>;
}

const fingerprint = (credentials: Record<string, string> | undefined) => JSON.stringify(credentials ?? null);

export function createPartitions(opts: PartitionsOptions): Partitions {
  const { connection, prefix, streams, board, logger } = opts;
  const writeQueues = new Map<string, Queue<WriteJob>>();
  const writers = new Map<string, { writer: PartitionWriter; credentials: string }>();
  /** Unconfigured partitions found empty at the last retirement check. */
  const emptyUnconfigured = new Set<string>();

  const ensureQueue = (partition: Partition): void => {
    if (writeQueues.has(partition.queueName)) return;
    const queue = new Queue<WriteJob>(partition.queueName, { connection, prefix, streams });
    writeQueues.set(partition.queueName, queue);
    board.addQueue(queue as Queue, partition.repoURL);
  };

  const retire = async (name: string, queue: Queue<WriteJob>): Promise<void> => {
    const [id, entry] = [...writers.entries()].find(([, w]) => w.writer.partition.queueName === name) ?? [];
    if (id && entry) {
      writers.delete(id);
      await entry.writer.stop();
    }
    writeQueues.delete(name);
    board.removeQueue(name);
    emptyUnconfigured.delete(name);
    await queue.close();
    logger.info({ queue: name }, 'retired the writer of a partition no longer configured, its queue drained');
  };

  return {
    writeQueues,
    writerCount: () => writers.size,
    ensure(config) {
      for (const { partition, credentials } of config.partitions.values()) {
        ensureQueue(partition);
        if (!writers.has(partition.id)) writers.set(partition.id, { writer: opts.startWriter(partition, credentials), credentials: fingerprint(credentials) });
      }
    },
    configured: () => emptyUnconfigured.clear(),
    async renewCredentials(config) {
      for (const { partition, credentials } of config.partitions.values()) {
        const running = writers.get(partition.id);
        if (!running || running.credentials === fingerprint(credentials)) continue;
        await running.writer.stop();
        writers.set(partition.id, { writer: opts.startWriter(partition, credentials), credentials: fingerprint(credentials) });
      }
    },
    async retireDrained(config) {
      const configured = () => new Set([...config().partitions.values()].map((p) => p.partition.queueName));
      for (const [name, queue] of writeQueues) {
        if (configured().has(name)) {
          emptyUnconfigured.delete(name);
          continue;
        }
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
        const empty = Object.values(counts).every((n) => n === 0);
        // The configuration may have changed while Valkey answered (routes switch synchronously).
        if (configured().has(name)) continue;
        if (empty && emptyUnconfigured.has(name)) await retire(name, queue);
        else if (empty) emptyUnconfigured.add(name);
        else emptyUnconfigured.delete(name);
      }
    },
    async stopWriters() {
      await Promise.all([...writers.values()].map((w) => w.writer.stop()));
    },
    async closeQueues() {
      await Promise.all([...writeQueues.values()].map((q) => q.close()));
    },
  };
}
