// Service replicas as separate OS processes, started the way an operator starts one
// (`node node_modules/tsx/dist/cli.mjs main.ts`) with their own DATA_DIR, PORT and REPLICA_ID, logs in files.
//
// tsx runs the service in a child process of its own CLI process. Faults are aimed at the service process
// itself (its pid comes from its first pino log line): a kill -9 or SIGSTOP of that process leaves the git
// processes it had already started running, as a push already on the wire reaches a real remote. Every
// replica runs in its own process group, which teardown kills whole.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../../queues/embedded-valkey.js';

const TSX_CLI = join(process.cwd(), 'node_modules', 'tsx', 'dist', 'cli.mjs');

export interface ReplicaSettings {
  configFile: string;
  valkeyUrl: string;
  leaseTtlMs: number;
  batchSize: number;
  backoffMs: number;
  keyPrefix: string;
}

export type ReplicaState = 'running' | 'stopped' | 'paused' | 'killed';

export interface LogLine {
  time: number;
  level: number;
  msg: string;
  pid: number;
  [k: string]: unknown;
}

export class Replica {
  readonly url: string;
  readonly logFile: string;
  state: ReplicaState = 'stopped';
  /** Pid of the service process (tsx's child), from its log. */
  servicePid: number | undefined;
  /** All service pids this replica has had (one per start). */
  readonly pastPids: number[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  private starts = 0;

  constructor(
    readonly id: string,
    readonly port: number,
    readonly dataDir: string,
    private readonly settings: ReplicaSettings,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.logFile = join(dataDir, '..', `${id}.log`);
  }

  async start(readyTimeoutMs = 60_000): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) throw new Error(`${this.id} is already running`);
    await mkdir(this.dataDir, { recursive: true });
    const logOffset = (await readFile(this.logFile, 'utf8').catch(() => '')).length;
    const fd = openSync(this.logFile, 'a');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CONFIG_FILE: this.settings.configFile,
      VALKEY_URL: this.settings.valkeyUrl,
      DATA_DIR: this.dataDir,
      PORT: String(this.port),
      REPLICA_ID: this.id,
      LEASE_TTL_MS: String(this.settings.leaseTtlMs),
      WRITE_BATCH_SIZE: String(this.settings.batchSize),
      WRITE_BACKOFF_MS: String(this.settings.backoffMs),
      KEY_PREFIX: this.settings.keyPrefix,
      LOG_LEVEL: 'info',
    };
    const child = spawn(process.execPath, [TSX_CLI, 'main.ts'], { env, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    this.child = child;
    this.starts++;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.state = 'running';
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const text = (await readFile(this.logFile, 'utf8')).slice(logOffset);
      const lines = parseLogLines(text);
      const ready = lines.find((l) => l.msg === 'ready');
      if (ready) {
        this.servicePid = ready.pid;
        this.pastPids.push(ready.pid);
        return;
      }
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`replica ${this.id} exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready; log ${this.logFile}:\n${text.slice(-3000)}`);
      }
      if (Date.now() > deadline) throw new Error(`replica ${this.id} was not ready within ${readyTimeoutMs} ms; log ${this.logFile}:\n${text.slice(-3000)}`);
      await sleep(100);
    }
  }

  private signalService(signal: NodeJS.Signals): void {
    if (this.servicePid === undefined) throw new Error(`replica ${this.id} has no service pid`);
    process.kill(this.servicePid, signal);
  }

  /** kill -9 of the service process: no shutdown code runs. */
  async kill(): Promise<void> {
    this.signalService('SIGKILL');
    this.state = 'killed';
    await this.exited; // the tsx parent exits once its child is gone
  }

  /**
   * kill -9 of the replica's whole process group, as when its pod dies: the git processes it started die
   * with it (a push held in the remote's hook never lands). Resolves once the replica has exited.
   */
  async killGroup(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined || this.servicePid === undefined) throw new Error(`replica ${this.id} is not running`);
    process.kill(-pid, 'SIGKILL');
    try {
      process.kill(this.servicePid, 'SIGKILL'); // in case it left the group
    } catch {
      // gone with the group
    }
    this.state = 'killed';
    await this.exited;
  }

  pause(): void {
    this.signalService('SIGSTOP');
    this.state = 'paused';
  }

  resume(): void {
    this.signalService('SIGCONT');
    this.state = 'running';
  }

  /**
   * SIGTERM to the service process, as a container runtime signals its main process; resolves with the
   * exit code and how long the exit took. Not through the tsx CLI: it relays a signal only when its child
   * confirms it within 30 ms over a socket, and SIGKILLs the child otherwise, which under load turns a
   * graceful shutdown into a kill -9.
   */
  async terminate(timeoutMs = 30_000): Promise<{ code: number | null; seconds: number }> {
    const started = Date.now();
    this.signalService('SIGTERM');
    const code = await Promise.race([this.exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
    if (code === 'timeout') throw new Error(`replica ${this.id} did not exit within ${timeoutMs} ms of SIGTERM; log ${this.logFile}`);
    this.state = 'stopped';
    return { code, seconds: (Date.now() - started) / 1000 };
  }

  /** Teardown: SIGCONT (a paused process ignores everything else) and SIGKILL of the whole process group. */
  async destroy(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // group already gone
      }
    }
    if (this.servicePid !== undefined) {
      try {
        process.kill(this.servicePid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await Promise.race([this.exited, sleep(5000)]);
    this.state = 'killed';
  }

  /** Synchronous last resort (process 'exit' handler). */
  destroySync(): void {
    const pid = this.child?.pid;
    if (!pid) return;
    try {
      process.kill(-pid, 'SIGCONT');
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }

  async logLines(): Promise<LogLine[]> {
    return parseLogLines(await readFile(this.logFile, 'utf8').catch(() => ''));
  }
}

export function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(raw) as LogLine);
    } catch {
      // a line cut by a kill
    }
  }
  return lines;
}

export async function createReplicas(root: string, count: number, settings: ReplicaSettings): Promise<Replica[]> {
  const replicas: Replica[] = [];
  for (let i = 1; i <= count; i++) replicas.push(new Replica(`replica-${i}`, await freePort(), join(root, `replica-${i}`, 'data'), settings));
  return replicas;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
