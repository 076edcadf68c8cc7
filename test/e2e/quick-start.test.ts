// The README's first command, as a newcomer runs it: `npm start` with nothing configured starts an
// embedded Valkey and the demo configuration; the sample audit batch becomes commits in the demo
// repository; SIGTERM stops the service and its Valkey. And without any server binary it says how to get one.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../queues/embedded-valkey.js';
import { commitLog, waitFor } from '../support/git-repos.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';

describe('quick start', () => {
  const dirs: string[] = [];
  let service: ServiceProcess | undefined;
  afterAll(async () => {
    service?.kill();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('npm start: embedded Valkey + demo configuration; the sample batch becomes commits; SIGTERM stops it all', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gr-quickstart-'));
    dirs.push(dataDir);
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: String(port) };
    delete env.VALKEY_URL;
    delete env.CONFIG_FILE;
    delete env.CONFIG_SOURCE;
    delete env.KUBERNETES_SERVICE_HOST;
    const svc = (service = startServiceProcess(env));
    const output = () => svc.output();
    try {
      await svc.alive(waitFor(async () => output().includes('"msg":"ready"'), 'the service to be ready', 30_000));
      expect(output()).toContain('VALKEY_URL is not set: started an embedded Valkey server with AOF persistence');
      expect(output()).toContain('CONFIG_FILE is not set: running the demo configuration');

      const res = await fetch(`http://127.0.0.1:${port}/audit-webhook/demo`, {
        method: 'POST',
        headers: { authorization: 'Bearer demo-token', 'content-type': 'application/json' },
        body: await readFile('samples/audit-batch.json', 'utf8'),
      });
      expect(await res.json()).toEqual({ received: 7, accepted: 5, skipped: { 'not-mutating': 1, 'dry-run': 1 } });
      const repo = join(dataDir, 'demo-remote.git');
      await svc.alive(waitFor(async () => (await commitLog(repo)).length === 5, 'five commits in the demo repository'));
      expect((await commitLog(repo)).map((c) => `${c.author}: ${c.subject}`)).toEqual([
        'alice@example.com: CREATE v1 configmaps shop/app-settings',
        'bob@example.com: UPDATE apps/v1 deployments shop/web',
        'alice@example.com: CREATE v1 secrets shop/db-credentials',
        'carol@example.com: UPDATE v1 configmaps shop/app-settings',
        'alice@example.com: DELETE v1 secrets shop/db-credentials',
      ]);
    } finally {
      svc.child.kill('SIGTERM');
    }
    expect(await svc.exited).toBe(0);
    expect(output()).toContain('"msg":"stopped"');
    // The embedded server is gone with it: nothing listens on its port any more.
    const valkeyPort = /"url":"redis:\/\/127\.0\.0\.1:(\d+)"/.exec(output())?.[1];
    expect(valkeyPort).toBeDefined();
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(Number(valkeyPort), '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(false)));
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });

  it('without VALKEY_URL and without a server binary, says how to get one', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: '/nonexistent', DATA_DIR: join(tmpdir(), 'gr-nobinary'), CONFIG_FILE: 'samples/config.yaml' };
    delete env.VALKEY_URL;
    const run = spawnSync(process.execPath, [join(process.cwd(), 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'main.ts'], { env, encoding: 'utf8', timeout: 30_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('gitops-reverser: no VALKEY_URL is set and neither valkey-server nor redis-server is on PATH.');
    expect(run.stderr).toContain('apt-get install valkey-server');
  });
});
