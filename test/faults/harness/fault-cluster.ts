// One scenario's world: a Valkey server process, a guarded bare remote, a configuration file and N
// replica processes, all under one temp dir; helpers to find the lease holder and read the queues; and a
// teardown that kills every process and removes the dir, also when the scenario failed (and, as a last
// resort, when the harness process itself exits).
import { Queue } from 'bullmq';
import { Valkey } from 'iovalkey';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoConfigYaml } from '../../../config/demo-config.js';
import { freePort } from '../../../queues/embedded-valkey.js';
import { INGEST_QUEUE, ownKeys, partitionOf, type Partition } from '../../../queues/names.js';
import { createGuardedRemote, type GuardedRemote } from './guarded-remote.js';
import { createReplicas, sleep, type Replica } from './replicas.js';
import { startValkeyProcess, type ValkeyProcess } from './valkey-process.js';

export const CLUSTER = 'faults';
export const TOKEN = 'faults-token';
export const KEY_PREFIX = 'gitops-reverser';

export interface ClusterOptions {
  replicas: number;
  leaseTtlMs: number;
  writeBatchSize: number;
  writeBackoffMs: number;
}

export interface FaultCluster {
  root: string;
  valkey: ValkeyProcess;
  remote: GuardedRemote;
  replicas: Replica[];
  partition: Partition;
  leaseTtlMs: number;
  /** The replica whose id the partition's lease names, or undefined when nobody holds it. */
  leaseHolder(): Promise<Replica | undefined>;
  /** Waits until some replica holds the partition's lease. */
  waitForHolder(timeoutMs?: number): Promise<Replica>;
  /** Polls (every 20 ms) until a replica other than `previous` holds the lease; returns when (epoch ms). */
  waitForTakeover(previous: Replica, timeoutMs?: number): Promise<number>;
  /** Jobs not yet finished (waiting, active, delayed, …) in the ingest and the write queue. */
  pendingJobs(): Promise<number>;
  /**
   * The Audit-IDs of the write jobs `replica` has in hand: active, under a lock whose token it made (the
   * consumer's tokens begin with the replica id). Read while the replica is stopped, its batch in flight.
   */
  jobsInHandOf(replica: Replica): Promise<string[]>;
  writeQueue(): Queue;
  ingestQueue(): Queue;
  /** Keep the temp dir (logs, remote, AOF) for a post-mortem; processes are still killed. */
  keepFiles(): void;
  teardown(): Promise<void>;
}

const live = new Set<FaultCluster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) {
      for (const r of c.replicas) r.destroySync();
      const pid = c.valkey.pid();
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      if (!process.env.FAULTS_KEEP) rmSync(c.root, { recursive: true, force: true });
    }
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startFaultCluster(opts: ClusterOptions): Promise<FaultCluster> {
  installExitHook();
  const root = await mkdtemp(join(tmpdir(), 'gr-faults-'));
  let valkey: ValkeyProcess | undefined;
  let replicas: Replica[] = [];
  const queues: Queue[] = [];
  const connections: Valkey[] = [];
  let keep = false;
  const teardown = async () => {
    await Promise.all(replicas.map((r) => r.destroy()));
    await Promise.all(queues.map((q) => q.close().catch(() => undefined)));
    for (const c of connections) c.disconnect();
    await valkey?.kill().catch(() => undefined);
    if (!keep) await rm(root, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    valkey = await startValkeyProcess({ dataDir: join(root, 'valkey'), port: await freePort() });
    const remote = await createGuardedRemote(join(root, 'remote'));
    const configFile = join(root, 'config.yaml');
    await writeFile(configFile, demoConfigYaml(remote.gitDir, { cluster: CLUSTER, token: TOKEN }));
    const partition = partitionOf(remote.gitDir, 'main');
    const leaseKey = ownKeys(KEY_PREFIX, partition.id).lease;
    replicas = await createReplicas(root, opts.replicas, { configFile, valkeyUrl: valkey.url, leaseTtlMs: opts.leaseTtlMs, batchSize: opts.writeBatchSize, backoffMs: opts.writeBackoffMs, keyPrefix: KEY_PREFIX });
    // Harness reads fail fast while Valkey is down instead of queueing forever.
    const open = (maxRetriesPerRequest: number | null) => {
      const c = new Valkey(valkey!.url, { maxRetriesPerRequest, retryStrategy: (n) => Math.min(n * 100, 1000) });
      c.on('error', () => undefined);
      connections.push(c);
      return c;
    };
    const connection = open(1);
    const ingest = new Queue(INGEST_QUEUE, { connection: open(null), prefix: KEY_PREFIX });
    const write = new Queue(partition.queueName, { connection: open(null), prefix: KEY_PREFIX });
    ingest.on('error', () => undefined);
    write.on('error', () => undefined);
    queues.push(ingest, write);
    await Promise.all(replicas.map((r) => r.start()));

    const leaseHolder = async () => {
      const value = await withTimeout(connection.get(leaseKey), 2000, `GET ${leaseKey}`);
      if (!value) return undefined;
      const id = value.slice(0, value.lastIndexOf(':'));
      return replicas.find((r) => r.id === id);
    };

    const cluster: FaultCluster = {
      root,
      valkey,
      remote,
      replicas,
      partition,
      leaseTtlMs: opts.leaseTtlMs,
      leaseHolder,
      async waitForHolder(timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const holder = await leaseHolder().catch(() => undefined);
          if (holder) return holder;
          if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: no replica took the lease ${leaseKey}`);
          await sleep(50);
        }
      },
      async waitForTakeover(previous, timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const holder = await leaseHolder().catch(() => undefined);
          if (holder && holder !== previous) return Date.now();
          if (Date.now() > deadline) {
            throw new Error(`timed out after ${timeoutMs} ms: no replica other than ${previous.id} took the lease ${leaseKey} (holder now: ${holder?.id ?? 'nobody'})`);
          }
          await sleep(20);
        }
      },
      async pendingJobs() {
        const states = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;
        const [a, b] = await withTimeout(Promise.all([ingest.getJobCounts(...states), write.getJobCounts(...states)]), 5000, 'job counts');
        return [a, b].reduce((sum, counts) => sum + Object.values(counts).reduce((x, y) => x + y, 0), 0);
      },
      async jobsInHandOf(replica) {
        const active = await withTimeout(write.getActive(0, -1), 5000, 'active write jobs');
        const ids: string[] = [];
        for (const job of active) {
          const token = await withTimeout(connection.get(`${write.toKey(job.id!)}:lock`), 2000, `the lock of job ${job.id}`);
          if (token?.startsWith(`${replica.id}:`)) ids.push((job.data as { auditID?: string }).auditID ?? `job ${job.id}`);
        }
        return ids;
      },
      writeQueue: () => write,
      ingestQueue: () => ingest,
      keepFiles: () => {
        keep = true;
      },
      async teardown() {
        live.delete(cluster);
        await teardown();
      },
    };
    live.add(cluster);
    return cluster;
  } catch (err) {
    await teardown();
    throw err;
  }
}
