// Starts a local Valkey (or Redis) server process for `npm start` without VALKEY_URL and for tests:
// a real server, because BullMQ is Lua scripts on the server and a mock proves nothing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { Valkey } from 'iovalkey';

export class ValkeyBinaryMissingError extends Error {
  override name = 'ValkeyBinaryMissingError';
  constructor() {
    super(
      'no VALKEY_URL is set and neither valkey-server nor redis-server is on PATH. ' +
        'Install one (Debian/Ubuntu: `apt-get install valkey-server` or `apt-get install redis-server`; ' +
        'macOS: `brew install valkey`) or point VALKEY_URL at a server (redis://user:password@host:6379).',
    );
  }
}

export interface EmbeddedValkey {
  url: string;
  port: number;
  binary: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface EmbeddedValkeyOptions {
  /** Directory for the AOF files; created when missing. */
  dataDir: string;
  /** @defaultValue a free port */
  port?: number;
  /** @defaultValue true — AOF with appendfsync everysec, as the chart ships it */
  appendOnly?: boolean;
}

/** `valkey-server`, else `redis-server`, as found on the PATH of `env`. */
export function findServerBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const name of ['valkey-server', 'redis-server']) {
    if (spawnSync(name, ['--version'], { stdio: 'ignore', env }).status === 0) return name;
  }
  return undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitForPing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the Valkey server exited with code ${child.exitCode}: ${output()}`);
    const client = new Valkey(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // not listening yet
    } finally {
      client.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the Valkey server did not answer PING within 10 s: ${output()}`);
}

export async function startEmbeddedValkey(opts: EmbeddedValkeyOptions): Promise<EmbeddedValkey> {
  const binary = findServerBinary();
  if (!binary) throw new ValkeyBinaryMissingError();
  await mkdir(opts.dataDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', opts.dataDir,
    '--save', '',
    '--appendonly', opts.appendOnly === false ? 'no' : 'yes',
    '--appendfsync', 'everysec',
    // BullMQ requires that no key is ever evicted.
    '--maxmemory-policy', 'noeviction',
    '--daemonize', 'no',
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => (out = (out + b.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `redis://127.0.0.1:${port}`;
  try {
    await waitForPing(url, child, () => out);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
  return { url, port, binary, process: child, stop };
}
