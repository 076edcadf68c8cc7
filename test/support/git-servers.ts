// Git hosts as users push to them, for the transport tests: `git http-backend` behind a Node HTTPS server
// (certificates from test-pki.ts) that asks for basic auth (as GitHub and GitLab do, for tokens too: user
// `x-access-token` or `oauth2`) or for a bearer token (as Bitbucket Data Center and Azure DevOps accept),
// and Debian's OpenSSH `sshd` on a free loopback port with its own host key and one authorized deploy key.
// Both serve bare repositories made with createRepo (receive-pack on, a post-receive hook that logs every
// push) and count what they were asked, so a test can tell that a push happened.
//
// Every process runs in a process group of its own and is killed with it by close(), and when the test
// worker exits without calling it (a crash, a timeout): no test leaves sshd or a CGI child running.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../queues/embedded-valkey.js';
import type { TestPki } from './test-pki.js';

const run = promisify(execFile);

/** The environment of the servers' git processes: nothing of the test runner's GIT_* (a GIT_DIR would point git elsewhere). */
function serverEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toUpperCase().startsWith('GIT_')) env[k] = v;
  // No global git config of the machine (credential helpers, url rewrites) in the server's git.
  return { ...env, HOME: home, XDG_CONFIG_HOME: home, LC_ALL: 'C' };
}

/** Processes started here and still running: killed when the worker exits without close(). */
const running = new Set<ChildProcess>();
function killGroup(child: ChildProcess): void {
  running.delete(child);
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
/** The servers' directories not removed yet (close() removes its own). */
const dirs = new Set<string>();
process.once('exit', () => {
  for (const child of [...running]) killGroup(child);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function serverDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

async function removeDir(dir: string): Promise<void> {
  dirs.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

export interface GitRepo {
  /** The bare repository on disk. */
  gitDir: string;
  /** The URL a GitProvider names it by. */
  url: string;
}

/** One line per push the repository took (its post-receive hook): `<old> <new> <ref>`. */
export async function pushesTo(gitDir: string): Promise<string[]> {
  try {
    return (await readFile(join(gitDir, 'pushes.log'), 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** A bare repository that takes pushes over http-backend (http.receivepack) and logs each one. */
async function createBareRepo(gitDir: string, home: string): Promise<void> {
  const env = serverEnv(home);
  await run('git', ['init', '--bare', '--quiet', '--initial-branch=main', gitDir], { env });
  await run('git', ['--git-dir', gitDir, 'config', 'http.receivepack', 'true'], { env });
  const hook = join(gitDir, 'hooks', 'post-receive');
  await writeFile(hook, `#!/bin/sh\ncat >> "$(dirname "$0")/../pushes.log"\n`);
  await chmod(hook, 0o755);
}

// ---------------------------------------------------------------------------------------------------------
// HTTPS: git http-backend as CGI behind TLS

export type HttpsGitAuth = { basic: { username: string; password: string } } | { bearerToken: string };

export interface HttpsGitRequest {
  method: string;
  /** PATH_INFO: the repository and the endpoint, e.g. /team/fleet.git/info/refs */
  path: string;
  /** The Git service asked for (git-upload-pack: fetch, git-receive-pack: push). */
  service?: string;
  /** The scheme of the Authorization header, lower case ('' without one). */
  scheme: string;
  status: number;
}

export interface HttpsGitServer {
  /** https://127.0.0.1:<port> */
  origin: string;
  /** GIT_PROJECT_ROOT: the directory holding the repositories. */
  root: string;
  /** Every request, in order of arrival (its status once answered). */
  readonly requests: HttpsGitRequest[];
  /** A new empty repository `name` (e.g. `team/fleet.git`) with its https URL. */
  createRepo(name: string): Promise<GitRepo>;
  /** Pushes that reached git (a POST to git-receive-pack answered 200). */
  receivePacks(): number;
  /** Requests refused for missing or wrong credentials. */
  unauthorized(): number;
  /** Stops listening, ends every connection and CGI child, removes the repositories. */
  close(): Promise<void>;
}

export interface HttpsGitServerOptions {
  pki: TestPki;
  auth: HttpsGitAuth;
  /** The realm of the 401's WWW-Authenticate. @defaultValue "Git" */
  realm?: string;
}

/**
 * What a Git host accepts: the Authorization header it expects, compared exactly (a Basic user and
 * password, or a Bearer token); anything else, or nothing, is 401 with `WWW-Authenticate: Basic`, as GitHub
 * and GitLab answer a git client without credentials (git then asks a credential helper or the terminal,
 * which the service turns off). Returns the user git http-backend runs the push as.
 */
function authenticate(header: string | undefined, auth: HttpsGitAuth): string | undefined {
  const m = /^(\S+)\s+(\S+)$/.exec(header?.trim() ?? '');
  if (!m) return undefined;
  const [scheme, value] = [m[1]!.toLowerCase(), m[2]!];
  if ('basic' in auth) {
    if (scheme !== 'basic') return undefined;
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return decoded === `${auth.basic.username}:${auth.basic.password}` ? auth.basic.username : undefined;
  }
  return scheme === 'bearer' && value === auth.bearerToken ? 'token-user' : undefined;
}

export async function startHttpsGitServer(opts: HttpsGitServerOptions): Promise<HttpsGitServer> {
  const dir = await serverDir('gr-https-git-');
  const root = join(dir, 'repos');
  const home = join(dir, 'home');
  await Promise.all([mkdir(root), mkdir(home)]);
  const requests: HttpsGitRequest[] = [];
  const children = new Set<ChildProcess>();
  const realm = opts.realm ?? 'Git';

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'https://git.test');
    const pathInfo = decodeURIComponent(url.pathname);
    const service = url.searchParams.get('service') ?? /\/(git-(?:upload|receive)-pack)$/.exec(pathInfo)?.[1];
    const scheme = /^(\S+)/.exec(req.headers.authorization ?? '')?.[1]?.toLowerCase() ?? '';
    const seen: HttpsGitRequest = { method: req.method ?? 'GET', path: pathInfo, ...(service ? { service } : {}), scheme, status: 0 };
    requests.push(seen);
    const user = authenticate(req.headers.authorization, opts.auth);
    if (user === undefined) {
      seen.status = 401;
      req.resume();
      res.writeHead(401, { 'www-authenticate': `Basic realm="${realm}"`, 'content-type': 'text/plain' }).end('Authentication required\n');
      return;
    }
    // CGI/1.1 as Apache or nginx+fcgiwrap run it (see git-http-backend(1)).
    const env: NodeJS.ProcessEnv = {
      ...serverEnv(home),
      GATEWAY_INTERFACE: 'CGI/1.1',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      REMOTE_USER: user,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: pathInfo,
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    };
    if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding'] !== undefined) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    const protocol = req.headers['git-protocol'];
    if (typeof protocol === 'string') env.HTTP_GIT_PROTOCOL = protocol;
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    children.add(child);
    running.add(child);
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    req.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
    // The CGI answer: header lines (Status: among them), a blank line, then the body as it comes.
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const text = head.toString('latin1');
      const end = /\r?\n\r?\n/.exec(text);
      if (!end) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, end.index).split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const [name, value] = [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
        else headers[name] = value;
      }
      seen.status = status;
      res.writeHead(status, headers);
      res.write(head.subarray(Buffer.byteLength(text.slice(0, end.index + end[0].length), 'latin1')));
    });
    child.on('close', (code) => {
      children.delete(child);
      running.delete(child);
      if (!headersDone) {
        seen.status = 500;
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`git http-backend exited ${code}: ${stderr}`);
        return;
      }
      res.end();
    });
  };

  const [cert, key] = await Promise.all([readFile(opts.pki.server.cert), readFile(opts.pki.server.key)]);
  const server: Server = createServer({ cert, key }, handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    root,
    requests,
    async createRepo(name) {
      const gitDir = join(root, name);
      await createBareRepo(gitDir, home);
      return { gitDir, url: `${origin}/${name}` };
    },
    receivePacks: () => requests.filter((r) => r.method === 'POST' && r.service === 'git-receive-pack' && r.status === 200).length,
    unauthorized: () => requests.filter((r) => r.status === 401).length,
    async close() {
      for (const child of children) killGroup(child);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeDir(dir);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// SSH: Debian's OpenSSH server

export interface SshKey {
  /** The private key (OpenSSH format): a Secret's `identity`. */
  privateKey: string;
  /** `ssh-ed25519 AAAA…` */
  publicKey: string;
  /** SHA256:… as ssh prints it. */
  fingerprint: string;
}

export interface SshGitServer {
  port: number;
  /** The login the URLs name: the user running the tests (sshd not started by root can log in no one else). */
  user: string;
  /** The deploy key sshd accepts (its public half is in AuthorizedKeysFile). */
  deployKey: SshKey;
  /** The server's host key. */
  hostKey: SshKey;
  /** known_hosts line of this server: `[127.0.0.1]:<port> ssh-ed25519 AAAA…`. */
  knownHosts: string;
  /** A new empty repository `name` with its ssh:// URL. */
  createRepo(name: string): Promise<GitRepo>;
  /** A key sshd does not accept. */
  otherKey(): Promise<SshKey>;
  /** sshd's log (LogLevel VERBOSE): connections, accepted and refused keys, sessions. */
  log(): string;
  /** Sessions that ran a command (one per git fetch, push or ls-remote that got in). */
  sessions(): number;
  /** Kills sshd's process group and removes its directory. */
  close(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';

/** Why sshd cannot run here (not installed); undefined when it can. */
export function sshdMissing(): string | undefined {
  if (spawnSync(SSHD, ['-V'], { stdio: 'ignore' }).error) {
    return `${SSHD} is missing: install Debian's openssh-server (apt-get install -y openssh-server; tools/prerequisites.sh test does it as root)`;
  }
  return undefined;
}

async function makeKey(dir: string, name: string): Promise<SshKey> {
  const file = join(dir, name);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  const [privateKey, pub, fp] = await Promise.all([readFile(file, 'utf8'), readFile(`${file}.pub`, 'utf8'), run('ssh-keygen', ['-l', '-f', `${file}.pub`])]);
  return { privateKey, publicKey: pub.split(' ').slice(0, 2).join(' '), fingerprint: fp.stdout.split(' ')[1]! };
}

export async function startSshGitServer(): Promise<SshGitServer> {
  const missing = sshdMissing();
  if (missing) throw new Error(missing);
  const dir = await serverDir('gr-sshd-');
  const root = join(dir, 'repos');
  const home = join(dir, 'home');
  await Promise.all([mkdir(root), mkdir(home)]);
  const user = userInfo().username;
  // sshd started by root insists on its privilege separation directory; Debian's package makes it at boot.
  if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const [hostKey, deployKey] = await Promise.all([makeKey(dir, 'ssh_host_ed25519_key'), makeKey(dir, 'deploy')]);
  await writeFile(join(dir, 'authorized_keys'), `${deployKey.publicKey} deploy\n`);
  let others = 0;

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = join(dir, 'sshd_config');
    await writeFile(
      config,
      [
        `ListenAddress 127.0.0.1:${port}`,
        `HostKey ${join(dir, 'ssh_host_ed25519_key')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        // The temp dir is not laid out as sshd wants a home's .ssh; PAM is not configured for a test login.
        'StrictModes no',
        'UsePAM no',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        `AllowUsers ${user}`,
        'PermitUserEnvironment no',
        'AllowTcpForwarding no',
        'X11Forwarding no',
        'PrintMotd no',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    // -D: no daemon (it stays our child, in a process group of its own that close() kills), -e: log to stderr.
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: serverEnv(home) });
    running.add(child);
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 10_000;
    while (!output.includes(`Server listening on 127.0.0.1 port ${port}`) && child.exitCode === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!output.includes(`Server listening on 127.0.0.1 port ${port}`)) {
      killGroup(child);
      // Another test may have taken the port freePort() found.
      if (attempt < 3 && /Address already in use|Cannot bind/i.test(output)) continue;
      await removeDir(dir);
      throw new Error(`sshd did not start: ${output.trim() || 'no output'}`);
    }
    return {
      port,
      user,
      deployKey,
      hostKey,
      knownHosts: `[127.0.0.1]:${port} ${hostKey.publicKey}`,
      async createRepo(name) {
        const gitDir = join(root, name);
        await createBareRepo(gitDir, home);
        return { gitDir, url: `ssh://${user}@127.0.0.1:${port}${gitDir}` };
      },
      otherKey: () => makeKey(dir, `other-${++others}`),
      log: () => output,
      sessions: () => output.split('\n').filter((l) => l.startsWith('Starting session: command')).length,
      async close() {
        killGroup(child);
        await exited;
        await removeDir(dir);
      },
    };
  }
}
