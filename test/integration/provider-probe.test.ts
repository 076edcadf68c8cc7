// The GitProvider probe with a real git: a local bare repository answers; a missing path, an HTTP server
// refusing the credentials, one without the repository and a closed port each fail with their own reason,
// and no credential ever appears in the message.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeRepository } from '../../kube/status/provider-probe.js';
import { startProbeSchedule } from '../../kube/status/probe-schedule.js';
import { createBareRemote, waitFor } from '../support/git-repos.js';

const TOKEN = 'tok-3b1f9c0d2e7a';
const PASSWORD = 's3cr3t-pa55word';

describe('provider probe', () => {
  let remote: string;
  let http: Server;
  let httpUrl: string;

  beforeAll(async () => {
    remote = await createBareRemote();
    // An HTTP "Git host": 401 for /private (credentials refused), 404 for anything else.
    http = createServer((req, res) => {
      if (req.url?.startsWith('/private')) res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => http?.close(() => resolve()));
    if (remote) await rm(dirname(remote), { recursive: true, force: true });
  });

  it('finds a local bare repository reachable, even an empty one', async () => {
    expect(await probeRepository(remote, undefined)).toEqual({ reachable: true, message: `git ls-remote ${remote} succeeded.` });
  });

  it('reports a missing path as RepositoryNotFound', async () => {
    const missing = join(dirname(remote), 'nope.git');
    const r = await probeRepository(missing, undefined);
    expect(r).toMatchObject({ reachable: false, reason: 'RepositoryNotFound' });
    expect(r.message).toContain('check spec.url');
    expect(r.message).toContain(missing);
  });

  it('reports refused credentials as AuthenticationFailed without showing them', async () => {
    const r = await probeRepository(`${httpUrl}/private/repo.git`, { username: 'bot', password: PASSWORD });
    expect(r).toMatchObject({ reachable: false, reason: 'AuthenticationFailed' });
    expect(r.message).toContain('spec.secretRef');
    expect(r.message).not.toContain(PASSWORD);
    expect(r.message).not.toContain(Buffer.from(`bot:${PASSWORD}`).toString('base64'));
  });

  it('reports an HTTP 404 as RepositoryNotFound and a closed port as Unreachable', async () => {
    expect(await probeRepository(`${httpUrl}/other/repo.git`, { bearerToken: TOKEN })).toMatchObject({ reachable: false, reason: 'RepositoryNotFound' });
    // Userinfo in the URL is redacted too.
    const r = await probeRepository(`http://user:${TOKEN}@127.0.0.1:1/repo.git`, { bearerToken: TOKEN });
    expect(r).toMatchObject({ reachable: false, reason: 'Unreachable' });
    expect(r.message).not.toContain(TOKEN);
  });

  it('gives up after the timeout', async () => {
    // A server that accepts the connection and never answers.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const r = await probeRepository(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/repo.git`, undefined, { timeoutMs: 300 });
      expect(r).toMatchObject({ reachable: false, reason: 'Unreachable', message: expect.stringContaining('no answer within') });
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('probes a provider once per interval, and again at once when its spec or credentials change', async () => {
    const seen: string[] = [];
    const started: string[] = [];
    const schedule = startProbeSchedule({
      intervalMs: 60_000,
      onResult: (key, result) => seen.push(`${key}:${result.reachable}`),
      // The real probe, counted when it starts: want() starts a probe there and then, or never.
      probe: (url, ...rest) => {
        started.push(url);
        return probeRepository(url, ...rest);
      },
    });
    try {
      const provider = { key: 'ns/repo', url: remote, allowedBranches: ['main'] };
      expect(schedule.want(provider)).toBeUndefined();
      await waitFor(async () => seen.length === 1, 'the first probe');
      expect(schedule.want(provider)).toMatchObject({ reachable: true });
      schedule.want(provider);
      expect(started).toEqual([remote]);
      expect(seen).toEqual(['ns/repo:true']);
      // A new URL is a new spec: probed at once, the old answer not shown for it.
      expect(schedule.want({ ...provider, url: join(dirname(remote), 'moved.git') })).toBeUndefined();
      await waitFor(async () => seen.length === 2, 'the probe of the changed spec');
      expect(seen[1]).toBe('ns/repo:false');
      expect(started).toEqual([remote, join(dirname(remote), 'moved.git')]);
    } finally {
      await schedule.stop();
    }
  });
});
