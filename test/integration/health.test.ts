// /readyz and /health on the real app over a Valkey server this file owns: /readyz fails with the Valkey
// check named while the server is down (and while it refuses writes), and recovers when it is back on the
// same port; /health shows the server's version, memory against maxmemory and warns on an eviction policy
// other than noeviction.
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../dashboard/app.js';
import { createQueueDashboard } from '../../dashboard/bull-board.js';
import { createHealth, type HealthView, type ProviderReachability, type ReadinessResult } from '../../dashboard/health.js';
import { listen } from '../../dashboard/listen.js';
import { createMetrics } from '../../observability/metrics.js';
import { openConnection } from '../../queues/connection.js';
import { startEmbeddedValkey, type EmbeddedValkey } from '../../queues/embedded-valkey.js';
import { INGEST_QUEUE } from '../../queues/names.js';
import { waitFor } from '../support/git-repos.js';
import { uniquePrefix } from '../support/valkey-server.js';

describe('health: /readyz and /health', () => {
  // Always a server of its own (even with VALKEY_URL set): the test stops and restarts it.
  let dataDir: string;
  let server: EmbeddedValkey | undefined;
  let port: number;
  let connection: Valkey;
  let queue: Queue;
  let http: Server;
  let url: string;
  const prefix = uniquePrefix('health');
  let configLoaded = true;
  let providers: ProviderReachability[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gr-health-'));
    server = await startEmbeddedValkey({ dataDir, appendOnly: false });
    port = server.port;
    connection = openConnection(server.url);
    connection.on('error', () => undefined);
    queue = new Queue(INGEST_QUEUE, { connection, prefix });
    const health = createHealth({ connection, prefix, configLoaded: () => configLoaded, providers: () => providers, timeoutMs: 1000 });
    const app = createApp({
      clusters: () => new Map(),
      ingestQueue: queue,
      bodyLimitBytes: 1024 * 1024,
      logger: pino({ level: 'silent' }),
      metrics: createMetrics(prefix),
      board: createQueueDashboard([queue], true),
      dashboardReadOnly: true,
      queues: () => [queue],
      ping: () => connection.ping(),
      readiness: health.readiness,
      health: health.health,
    });
    http = await listen(app, { port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    http?.closeAllConnections();
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
    await queue?.close();
    connection?.disconnect();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const readyz = async (): Promise<{ code: number; body: ReadinessResult }> => {
    const res = await fetch(`${url}/readyz`);
    return { code: res.status, body: (await res.json()) as ReadinessResult };
  };
  const health = async (): Promise<HealthView> => {
    const res = await fetch(`${url}/health`);
    expect(res.status).toBe(200);
    return (await res.json()) as HealthView;
  };

  it('is ready with every check named; repositories are reported in /health, not made a reason to be unready', async () => {
    providers = [{ key: 'ns/a', reachable: true, message: 'answers' }, { key: 'ns/b', reachable: undefined }];
    const { code, body } = await readyz();
    expect(code).toBe(200);
    expect(body).toEqual({ status: 'ready', failed: [], checks: [{ name: 'valkey', ok: true }, { name: 'config', ok: true }] });
    expect((await health()).checks).toEqual([
      { name: 'valkey', ok: true },
      { name: 'config', ok: true },
      { name: 'provider:ns/a', ok: true, message: 'answers' },
      { name: 'provider:ns/b', ok: true, message: 'not probed yet' },
    ]);
    // The write check left a key with a short TTL under the service prefix.
    const ttl = await connection.pttl(`${prefix}:readyz`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10_000);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('names every failed check: configuration not loaded; an unreachable repository shows in /health only', async () => {
    configLoaded = false;
    providers = [{ key: 'ns/a', reachable: false, message: 'the credentials were refused' }, { key: 'ns/b', reachable: true }];
    try {
      const { code, body } = await readyz();
      expect(code).toBe(503);
      expect(body.status).toBe('not ready');
      expect(body.failed).toEqual(['config']);
      expect((await health()).checks).toContainEqual({ name: 'provider:ns/a', ok: false, message: 'the credentials were refused' });
    } finally {
      configLoaded = true;
      providers = [];
    }
  });

  it('fails the Valkey check when Valkey answers PING but refuses writes (maxmemory reached, noeviction)', async () => {
    await connection.config('SET', 'maxmemory', '1');
    try {
      expect(await connection.ping()).toBe('PONG');
      const { code, body } = await readyz();
      expect(code).toBe(503);
      expect(body.failed).toEqual(['valkey']);
      expect(body.checks[0]).toMatchObject({ name: 'valkey', ok: false, message: expect.stringMatching(/OOM/) });
    } finally {
      await connection.config('SET', 'maxmemory', '0');
    }
    expect((await readyz()).code).toBe(200);
  });

  it('fails with the Valkey check named while Valkey is down, and recovers when it is back on the same port', async () => {
    expect((await readyz()).code).toBe(200);
    await server!.stop();
    server = undefined;
    await waitFor(async () => connection.status !== 'ready', 'the client to notice the server is gone', 10_000);

    const started = Date.now();
    const down = await readyz();
    expect(Date.now() - started).toBeLessThan(1500);
    expect(down.code).toBe(503);
    expect(down.body.status).toBe('not ready');
    expect(down.body.failed).toEqual(['valkey']);
    expect(down.body.checks.find((c) => c.name === 'valkey')?.message).toMatch(/Valkey/);
    const view = await health();
    expect(view.status).toBe('not ready');
    expect(view.valkey.error).toBeDefined();

    // Back on the same port: the service's own connection reconnects, /readyz turns 200 by itself.
    // Tried again until the port is free (the stopped server's socket may linger a moment).
    let refused: unknown;
    server = await waitFor(
      () => startEmbeddedValkey({ dataDir, port, appendOnly: false }).catch((err: unknown) => void (refused = err)),
      'Valkey back on its port',
      10_000,
      200,
    ).catch((err: unknown) => {
      throw refused ?? err;
    });
    await waitFor(async () => (await readyz()).code === 200, '/readyz to recover after Valkey is back', 15_000);
    expect((await readyz()).body.failed).toEqual([]);
  });

  it('/health shows the server version, memory against maxmemory, the service version and uptime', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const view = await health();
    expect(view.status).toBe('ready');
    expect(view.service).toMatchObject({ name: 'gitops-reverser', version: pkg.version });
    expect(view.service.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(view.valkey.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(['valkey', 'redis']).toContain(view.valkey.server);
    expect(view.valkey.memory).toMatchObject({ maxBytes: null, usedRatio: null, policy: 'noeviction' });
    expect(view.valkey.memory!.usedBytes).toBeGreaterThan(0);
    expect(view.warnings).toEqual([]);
    expect(view.checks.map((c) => c.name)).toEqual(['valkey', 'config']);

    await connection.config('SET', 'maxmemory', String(512 * 1024 * 1024));
    try {
      const limited = await health();
      expect(limited.valkey.memory!.maxBytes).toBe(512 * 1024 * 1024);
      expect(limited.valkey.memory!.usedRatio).toBeGreaterThan(0);
      expect(limited.valkey.memory!.usedRatio).toBeLessThan(0.5);
    } finally {
      await connection.config('SET', 'maxmemory', '0');
    }
  });

  it('/health warns when the eviction policy is not noeviction (and readiness is not affected)', async () => {
    await connection.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const view = await health();
      expect(view.valkey.memory!.policy).toBe('allkeys-lru');
      expect(view.warnings).toHaveLength(1);
      expect(view.warnings[0]).toMatch(/allkeys-lru.*noeviction/);
      expect(view.status).toBe('ready');
    } finally {
      await connection.config('SET', 'maxmemory-policy', 'noeviction');
    }
    expect((await health()).warnings).toEqual([]);
  });
});
