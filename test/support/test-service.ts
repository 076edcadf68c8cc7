// Runs the real service in-process for a test: its own Valkey key prefix, a temp data dir, port 0.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { demoConfigYaml } from '../../config/demo-config.js';
import { eventList } from './audit-events.js';
import { parseConfig } from '../../config/load-config.js';
import { startService, type RunningService, type ServiceOptions } from '../../service.js';
import { uniquePrefix } from './valkey-server.js';

export interface TestService extends RunningService {
  dir: string;
  prefix: string;
  /** Stops the service and removes its data dir. */
  close(): Promise<void>;
}

export async function startTestService(valkeyUrl: string, configYaml: (dir: string) => Promise<string> | string, overrides: Partial<ServiceOptions> = {}): Promise<TestService> {
  const dir = await mkdtemp(join(tmpdir(), 'gr-svc-'));
  const prefix = uniquePrefix('svc');
  const service = await startService({
    config: parseConfig(await configYaml(dir)),
    valkeyUrl,
    prefix,
    dataDir: join(dir, 'data'),
    port: 0,
    host: '127.0.0.1',
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    bodyLimitBytes: 10 * 1024 * 1024,
    leaseTtlMs: 3000,
    batchSize: 50,
    // A short reorder window keeps the suite quick; the window's own tests set theirs.
    reorderWindowMs: 250,
    committer: { name: 'GitOps Reverser', email: 'gitops-reverser@test' },
    dashboardReadOnly: true,
    ...overrides,
  });
  return {
    ...service,
    dir,
    prefix,
    async close() {
      await service.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The smallest useful configuration: cluster "c1" (token "t0ken-c1"), everything to one bare repo. */
export function singleClusterConfig(remote: string, path = 'clusters/c1'): string {
  return demoConfigYaml(remote, { cluster: 'c1', token: 't0ken-c1', path });
}

/** POSTs an audit EventList to cluster "c1" of singleClusterConfig, as its API server would. */
export function postToC1(serviceUrl: string, events: Record<string, unknown>[]): Promise<Response> {
  return fetch(`${serviceUrl}/audit-webhook/c1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer t0ken-c1' },
    body: JSON.stringify(eventList(events)),
  });
}
