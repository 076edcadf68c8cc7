// A start that fails halfway releases what did start. The failure comes after everything else started,
// with the main HTTP listener already listening: the admin port is taken, so the second listener cannot
// bind (deterministic, no timing). The start must reject with that error, and leave nothing behind: the
// main port can be listened on again, no socket, server or timer of the service is left in the process,
// and Valkey sees none of its connections. Then the same service starts on free ports, and stop() leaves
// nothing behind either.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load-config.js';
import { fixedConfigSource, type ConfigSource } from '../../config/sources/config-snapshot.js';
import { openConnection } from '../../queues/connection.js';
import { startService, type ServiceOptions } from '../../service.js';
import { createBareRemote, waitFor } from '../support/git-repos.js';
import { singleClusterConfig } from '../support/test-service.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

/** The kinds of handle the service opens: listeners, Valkey connections, timers. */
const KINDS = ['TCPServerWrap', 'TCPSocketWrap', 'Timeout'] as const;

function openHandles(): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(KINDS.map((k) => [k, 0]));
  for (const kind of process.getActiveResourcesInfo()) if (kind in counts) counts[kind]! += 1;
  return counts;
}

/** Handles of these kinds beyond `baseline`; empty when none. */
function beyond(baseline: Record<string, number>): Record<string, number> {
  const now = openHandles();
  return Object.fromEntries(KINDS.filter((k) => now[k]! > baseline[k]!).map((k) => [k, now[k]! - baseline[k]!]));
}

/**
 * Waits until no more handles are open than at `baseline`. A closed socket leaves the list only when its
 * close completes, a moment after the release resolved: so this polls, and names what is left if it stays.
 */
async function noHandlesBeyond(baseline: Record<string, number>): Promise<void> {
  let left: Record<string, number> = {};
  await waitFor(async () => Object.keys((left = beyond(baseline))).length === 0, 'no handles left open', 10_000).catch((err: Error) => {
    throw new Error(`${err.message}; still open: ${JSON.stringify(left)}`);
  });
}

function listenOn(port: number): Promise<Server> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));
const portOf = (server: Server) => (server.address() as { port: number }).port;

/** A port nothing listens on now. */
async function freePort(): Promise<number> {
  const server = await listenOn(0);
  const port = portOf(server);
  await closeServer(server);
  return port;
}

/** Valkey's clients other than the test's own connection, when the test has a server of its own. */
async function otherClients(inspect: ReturnType<typeof openConnection>): Promise<number> {
  const list = (await inspect.client('LIST')) as string;
  return list.split('\n').filter((line) => line.trim() !== '').length - 1;
}

describe('a start that fails after the HTTP listener started', () => {
  let valkey: TestValkey;
  let inspect: ReturnType<typeof openConnection>;
  let dir: string;
  let remote: string;

  beforeAll(async () => {
    valkey = await startTestValkey();
    inspect = openConnection(valkey.url);
    await inspect.ping();
    dir = await mkdtemp(join(tmpdir(), 'gr-failed-start-'));
    remote = await createBareRemote(dir);
  });
  afterAll(async () => {
    await inspect?.quit();
    await valkey?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The service's options, with a configuration source that records being stopped. */
  function serviceOptions(port: number, adminPort: number): { options: ServiceOptions; stopped: () => boolean } {
    const fixed = fixedConfigSource(parseConfig(singleClusterConfig(remote)));
    let stopped = false;
    const configSource: ConfigSource = {
      ...fixed,
      stop: async () => {
        stopped = true;
      },
    };
    const options: ServiceOptions = {
      configSource,
      valkeyUrl: valkey.url,
      prefix: uniquePrefix('failed-start'),
      dataDir: join(dir, 'data'),
      port,
      adminPort,
      host: '127.0.0.1',
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      bodyLimitBytes: 1024 * 1024,
      leaseTtlMs: 3000,
      batchSize: 50,
      committer: { name: 'GitOps Reverser', email: 'gitops-reverser@test' },
      dashboardReadOnly: true,
    };
    return { options, stopped: () => stopped };
  }

  it('rejects with the listener error and releases everything that had started', async () => {
    const taken = await listenOn(0);
    const adminPort = portOf(taken);
    const port = await freePort();
    const baseline = openHandles();
    const clientsBefore = valkey.server ? await otherClients(inspect) : 0;
    const { options, stopped } = serviceOptions(port, adminPort);

    try {
      await expect(startService(options)).rejects.toThrow(`listen EADDRINUSE: address already in use 127.0.0.1:${adminPort}`);

      // Released: the configuration source, the main listener's port, and every handle of the service.
      expect(stopped()).toBe(true);
      await closeServer(await listenOn(port));
      await noHandlesBeyond(baseline);
      if (valkey.server) await waitFor(async () => (await otherClients(inspect)) === clientsBefore, 'the service disconnected from Valkey', 10_000);
    } finally {
      await closeServer(taken);
    }
  });

  it('starts with the same options on free ports, and stop() releases everything too', async () => {
    const baseline = openHandles();
    const { options, stopped } = serviceOptions(0, 0);
    const service = await startService(options);
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    await service.stop();

    expect(stopped()).toBe(true);
    await closeServer(await listenOn(service.port));
    await closeServer(await listenOn(service.adminPort));
    await noHandlesBeyond(baseline);
  });
});
