// A Valkey (or Redis) server process that a fault scenario owns: AOF on with `appendfsync everysec` (as the
// chart ships it), a fixed port and data dir, so it can be killed (SIGKILL), stopped (SIGTERM) and started
// again on the same port over the same AOF, while the replicas keep their connection URL.
import { startEmbeddedValkey, type EmbeddedValkey } from '../../../queues/embedded-valkey.js';

export interface ValkeyProcess {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** The server's pid, undefined while it is down. */
  pid(): number | undefined;
  /** SIGKILL: no shutdown, only what the AOF already holds survives (at most ~1 s is at risk). */
  kill(): Promise<void>;
  /** SIGTERM: the server flushes the AOF and exits. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data dir; resolves when it answers PING. */
  restart(): Promise<void>;
}

export async function startValkeyProcess(opts: { dataDir: string; port: number }): Promise<ValkeyProcess> {
  let server: EmbeddedValkey | undefined = await startEmbeddedValkey({ dataDir: opts.dataDir, port: opts.port, appendOnly: true });
  const url = server.url;

  const waitExit = (s: EmbeddedValkey) =>
    new Promise<void>((resolve) => {
      if (s.process.exitCode !== null || s.process.signalCode !== null) return resolve();
      s.process.once('exit', () => resolve());
    });

  return {
    url,
    port: opts.port,
    dataDir: opts.dataDir,
    pid: () => server?.process.pid,
    async kill() {
      const s = server;
      server = undefined;
      if (!s) return;
      const exited = waitExit(s);
      s.process.kill('SIGKILL');
      await exited;
    },
    async stop() {
      const s = server;
      server = undefined;
      await s?.stop();
    },
    async restart() {
      if (server) throw new Error(`Valkey on port ${opts.port} is still running; kill or stop it first`);
      // The port may linger for a moment after a kill; retry briefly.
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          server = await startEmbeddedValkey({ dataDir: opts.dataDir, port: opts.port, appendOnly: true });
          return;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`could not restart Valkey on port ${opts.port} over ${opts.dataDir}: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
  };
}
