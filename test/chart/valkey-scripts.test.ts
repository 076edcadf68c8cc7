// The bundled Valkey's rendered start and probe scripts, run for real: start.sh computes maxmemory from a
// (fake) cgroup memory limit and starts a real server with the rendered valkey.conf; the server then
// has AOF everysec, noeviction, the computed maxmemory and the password; ping.sh passes and fails as a
// probe should. Only the paths differ from the pod (wrappers for valkey-server and valkey-cli on PATH).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Valkey } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findServerBinary, freePort } from '../../queues/embedded-valkey.js';
import { renderChart } from '../support/chart-render.js';
import { waitFor } from '../support/git-repos.js';
import { createTestPki, type TestPki } from '../support/test-pki.js';
import { fingerprintOf, servedFingerprint } from '../support/tls.js';

const run = promisify(execFile);
const GIB = 1024 ** 3;

let dir = '';
let scripts: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gr-valkey-scripts-'));
  const chart = await renderChart({ set: { 'valkey.enabled': 'true', 'valkey.maxmemoryFallback': '256mb' } });
  const configMap = chart.objects.find((o) => o.object.kind === 'ConfigMap' && o.object.metadata.name === 'gitops-reverser-valkey');
  if (!configMap) throw new Error('the bundled Valkey ConfigMap was not rendered');
  scripts = configMap.object.data as Record<string, string>;
  for (const [name, text] of Object.entries(scripts)) await writeFile(join(dir, name), text);
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A bin dir whose valkey-server prints its arguments, one per line, instead of starting. */
async function recordingServer(): Promise<string> {
  const bin = join(dir, 'record-bin');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'valkey-server'), '#!/bin/sh\nprintf "%s\\n" "$@"\n');
  await chmod(join(bin, 'valkey-server'), 0o755);
  return bin;
}

/**
 * valkey-server and valkey-cli on a PATH of their own, as in the pod but for the paths: the server reads
 * `conf` (the rendered one, paths swapped) and listens on `port` instead of 6379, which the cli is pointed at.
 */
async function podBinaries(bin: string, conf: string, port: number, listen: string): Promise<void> {
  const binary = findServerBinary();
  if (!binary) throw new Error('neither valkey-server nor redis-server is on PATH');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'valkey-server'), `#!/bin/sh\nshift\nexec ${binary} ${conf} "$@" ${listen} ${port} --bind 127.0.0.1\n`);
  await writeFile(join(bin, 'valkey-cli'), `#!/bin/sh\nfor a; do shift; [ "$a" = 6379 ] && a=${port}; set -- "$@" "$a"; done\nexec ${binary.replace('-server', '-cli')} "$@"\n`);
  await chmod(join(bin, 'valkey-server'), 0o755);
  await chmod(join(bin, 'valkey-cli'), 0o755);
}

/** start.sh in a process group of its own: the server and its background loops are killed together. */
function startDetached(script: string, env: Record<string, string>): ChildProcess {
  return spawn('sh', [script], { env: { PATH: process.env.PATH ?? '', ...env }, detached: true, stdio: 'ignore' });
}

function killGroup(child: ChildProcess | undefined): void {
  if (child?.pid && child.exitCode === null && child.signalCode === null) process.kill(-child.pid, 'SIGKILL');
}

/** Runs start.sh with a cgroup tree holding `files` (path → content). */
async function startArgs(files: Record<string, string>, env: Record<string, string> = {}): Promise<string[]> {
  const cgroup = await mkdtemp(join(dir, 'cgroup-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(cgroup, path, '..'), { recursive: true });
    await writeFile(join(cgroup, path), `${content}\n`);
  }
  const bin = await recordingServer();
  const { stdout } = await run('sh', [join(dir, 'start.sh')], { env: { PATH: `${bin}:${process.env.PATH}`, CGROUP_ROOT: cgroup, ...env } });
  return stdout.trim().split('\n').slice(1); // the first line is start.sh's own log line
}

describe('bundled Valkey start.sh', () => {
  it('sets maxmemory to 80% of a cgroup v2 limit and keeps noeviction in the config', async () => {
    expect(await startArgs({ 'memory.max': String(GIB) })).toEqual(['/etc/valkey/valkey.conf', '--maxmemory', String(Math.floor(GIB / 100) * 80)]);
    expect(scripts['valkey.conf']).toMatch(/^maxmemory-policy noeviction$/m);
  });

  it('uses a cgroup v1 limit, and the fallback when there is no limit', async () => {
    expect(await startArgs({ 'memory/memory.limit_in_bytes': String(2 * GIB) })).toContain(String(Math.floor((2 * GIB) / 100) * 80));
    expect(await startArgs({ 'memory.max': 'max' })).toEqual(['/etc/valkey/valkey.conf', '--maxmemory', '256mb']);
    expect(await startArgs({ 'memory/memory.limit_in_bytes': '9223372036854771712' })).toEqual(['/etc/valkey/valkey.conf', '--maxmemory', '256mb']);
    expect(await startArgs({})).toEqual(['/etc/valkey/valkey.conf', '--maxmemory', '256mb']);
  });

  it('passes the password from the environment, not from a file', async () => {
    expect(await startArgs({ 'memory.max': String(GIB) }, { VALKEY_PASSWORD: 's3cret-pw' })).toEqual([
      '/etc/valkey/valkey.conf', '--maxmemory', String(Math.floor(GIB / 100) * 80), '--requirepass', 's3cret-pw',
    ]);
    expect(scripts['valkey.conf']).not.toContain('requirepass');
  });
});

describe('bundled Valkey on a real server', () => {
  let port = 0;
  let bin = '';
  let server: ChildProcess | undefined;
  let client: Valkey | undefined;
  const password = 'probe-pw-1234';

  beforeAll(async () => {
    port = await freePort();
    bin = join(dir, 'real-bin');
    const data = join(dir, 'data');
    await mkdir(data, { recursive: true });
    // The config's data dir must exist when the server reads it: /data becomes a temp dir.
    const conf = join(dir, 'real-valkey.conf');
    expect(scripts['valkey.conf']).toMatch(/^dir \/data$/m);
    await writeFile(conf, (scripts['valkey.conf'] ?? '').replace(/^dir \/data$/m, `dir ${data}`));
    await podBinaries(bin, conf, port, '--port');
    const cgroup = join(dir, 'real-cgroup');
    await mkdir(cgroup, { recursive: true });
    await writeFile(join(cgroup, 'memory.max'), `${GIB}\n`);
    server = startDetached(join(dir, 'start.sh'), { PATH: `${bin}:${process.env.PATH}`, CGROUP_ROOT: cgroup, VALKEY_PASSWORD: password });
    client = new Valkey({ port, host: '127.0.0.1', password, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on('error', () => undefined);
    await waitFor(async () => (await client!.ping().catch(() => '')) === 'PONG', 'the started server answers', 10_000);
  });
  afterAll(() => {
    client?.disconnect();
    killGroup(server);
  });

  it('runs with AOF everysec, noeviction, the computed maxmemory and the password', async () => {
    const get = async (key: string) => ((await client!.config('GET', key)) as string[])[1];
    expect(await get('appendonly')).toBe('yes');
    expect(await get('appendfsync')).toBe('everysec');
    expect(await get('maxmemory-policy')).toBe('noeviction');
    expect(await get('maxmemory')).toBe(String(Math.floor(GIB / 100) * 80));
    expect(await get('save')).toBe('');
    const anonymous = new Valkey({ port, host: '127.0.0.1', lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    anonymous.on('error', () => undefined);
    await anonymous.connect();
    await expect(anonymous.set('k', 'v')).rejects.toThrow(/NOAUTH/);
    anonymous.disconnect();
  });

  it('ping.sh passes with the password and fails, saying why, without it', async () => {
    const env = { PATH: `${bin}:${process.env.PATH}` };
    await expect(run('sh', [join(dir, 'ping.sh')], { env: { ...env, VALKEY_PASSWORD: password } })).resolves.toBeTruthy();
    const failed = await run('sh', [join(dir, 'ping.sh')], { env }).catch((e: { code: number; stdout: string }) => e);
    expect(failed).toMatchObject({ code: 1, stdout: expect.stringMatching(/valkey-cli ping: .*NOAUTH/) });
  });
});

describe('bundled Valkey over TLS', () => {
  let tlsDir = '';
  let port = 0;
  let pki: TestPki;
  let server: ChildProcess | undefined;
  const password = 'tls-pw-1234';
  const env = () => ({ PATH: `${join(tlsDir, 'bin')}:${process.env.PATH}`, VALKEY_PASSWORD: password });

  beforeAll(async () => {
    tlsDir = await mkdtemp(join(tmpdir(), 'gr-valkey-tls-'));
    pki = await createTestPki(tlsDir);
    const chart = await renderChart({ set: { 'valkey.enabled': 'true', 'valkey.tls.enabled': 'true', 'valkey.tls.secretName': 'valkey-tls' } });
    const data = chart.objects.find((o) => o.object.kind === 'ConfigMap' && o.object.metadata.name === 'gitops-reverser-valkey')?.object.data as Record<string, string>;
    // The pod's Secret mount, its data dir and the config file's place become temp paths; nothing else changes.
    const certs = join(tlsDir, 'valkey-tls');
    const dataDir = join(tlsDir, 'data');
    const bin = join(tlsDir, 'bin');
    await Promise.all([certs, dataDir, bin].map((d) => mkdir(d, { recursive: true })));
    await copyFile(pki.server.cert, join(certs, 'tls.crt'));
    await copyFile(pki.server.key, join(certs, 'tls.key'));
    await copyFile(pki.ca.cert, join(certs, 'ca.crt'));
    const swap = (text: string | undefined) => (text ?? '').replaceAll('/etc/valkey-tls', certs).replace(/^dir \/data$/m, `dir ${dataDir}`);
    for (const name of ['valkey.conf', 'start.sh', 'ping.sh']) await writeFile(join(tlsDir, name), swap(data[name]));
    port = await freePort();
    await podBinaries(bin, join(tlsDir, 'valkey.conf'), port, '--tls-port');
    server = startDetached(join(tlsDir, 'start.sh'), { ...env(), CGROUP_ROOT: join(tlsDir, 'no-cgroup'), TLS_RELOAD_SECONDS: '1' });
    await waitFor(async () => (await run('sh', [join(tlsDir, 'ping.sh')], { env: env() }).then(() => true, () => false)), 'ping.sh answers over TLS', 10_000);
  });
  afterAll(async () => {
    killGroup(server);
    await rm(tlsDir, { recursive: true, force: true });
  });

  it('speaks only TLS, passes ping.sh, and serves a renewed certificate without a restart', async () => {
    const served = () => servedFingerprint(port);
    expect(await served()).toBe(await fingerprintOf(pki.server.cert));
    // Plain TCP gets no answer in Valkey's protocol: the port speaks TLS only.
    const plain = new Valkey({ port, host: '127.0.0.1', lazyConnect: true, enableReadyCheck: false, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    plain.on('error', () => undefined);
    await expect(plain.connect().then(() => plain.ping())).rejects.toThrow();
    plain.disconnect();
    const renewed = await pki.client('renewed-valkey');
    await copyFile(renewed.key, join(tlsDir, 'valkey-tls', 'tls.key'));
    await copyFile(renewed.cert, join(tlsDir, 'valkey-tls', 'tls.crt'));
    const expected = await fingerprintOf(renewed.cert);
    await waitFor(async () => (await served()) === expected, 'the renewed certificate is served', 15_000);
  });
});
