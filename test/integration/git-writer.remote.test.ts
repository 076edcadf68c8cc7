// openMirror / fetch / push against real local bare remotes, and gitAuthEnv's credential handling.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeCommits, type PlannedCommit } from '../../git/fast-import-committer.js';
import { GitRemoteError, gitAuthEnv, openMirror, redactURL } from '../../git/git-remote.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'git-writer-remote-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_')));
function git(gitDir: string, ...args: string[]): string {
  return execFileSync('git', [`--git-dir=${gitDir}`, ...args], { encoding: 'utf8', env: cleanEnv }).trim();
}

let n = 0;
function caseDir(): string {
  const dir = path.join(root, `case-${++n}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
function bareRemote(dir: string): string {
  const remote = path.join(dir, 'remote.git');
  execFileSync('git', ['init', '--bare', '--quiet', remote], { env: cleanEnv });
  return remote;
}

const who = { name: 'alice', email: 'alice@example.com' };
function one(file: string, content: string, message = `put ${file}`): PlannedCommit {
  const now = new Date();
  return { author: who, authorDate: now, committer: who, commitDate: now, message, changes: [{ path: file, content }] };
}
const WORK = 'refs/reverser/work';

describe('Mirror.fetch and Mirror.push', () => {
  it('pushes a root commit into an empty remote and tracks it', async () => {
    const dir = caseDir();
    const remote = bareRemote(dir);
    const mirror = await openMirror({ dir: path.join(dir, 'm.git'), repoURL: remote, branch: 'main', env: {} });
    expect(git(mirror.gitDir, 'rev-parse', '--is-bare-repository')).toBe('true');
    expect(git(mirror.gitDir, 'config', 'remote.origin.url')).toBe(remote);
    expect(await mirror.fetch()).toBeNull();

    const [c1] = await writeCommits(mirror.gitDir, WORK, null, [one('a.yaml', 'a\n')]);
    expect(await mirror.push(c1!, null)).toEqual({ ok: true });
    expect(git(remote, 'rev-parse', 'refs/heads/main')).toBe(c1);
    expect(git(mirror.gitDir, 'rev-parse', 'refs/remotes/origin/main')).toBe(c1);
    // Pushing the same commit again (a retry after a crash) is fine; reopening reuses the repository.
    expect(await mirror.push(c1!, c1!)).toEqual({ ok: true });
    const again = await openMirror({ dir: path.join(dir, 'm.git'), repoURL: remote, branch: 'main', env: {} });
    expect(await again.fetch()).toBe(c1);
  });

  it('reports a lost race as rejected-non-fast-forward, and the remote keeps the other commit', async () => {
    const dir = caseDir();
    const remote = bareRemote(dir);
    const a = await openMirror({ dir: path.join(dir, 'a.git'), repoURL: remote, branch: 'main', env: {} });
    const b = await openMirror({ dir: path.join(dir, 'b.git'), repoURL: remote, branch: 'main', env: {} });
    const [base] = await writeCommits(a.gitDir, WORK, null, [one('x.yaml', '0\n')]);
    expect(await a.push(base!, null)).toEqual({ ok: true });

    expect(await a.fetch()).toBe(base);
    expect(await b.fetch()).toBe(base);
    const [theirs] = await writeCommits(b.gitDir, WORK, base!, [one('x.yaml', 'b\n')]);
    const [ours] = await writeCommits(a.gitDir, WORK, base!, [one('x.yaml', 'a\n')]);
    expect(await b.push(theirs!, base!)).toEqual({ ok: true });

    const lost = await a.push(ours!, base!);
    expect(lost).toMatchObject({ ok: false, reason: 'rejected-non-fast-forward' });
    expect(lost.ok === false && lost.detail).toMatch(/\[rejected\]/);
    expect(git(remote, 'rev-parse', 'refs/heads/main')).toBe(theirs);
    expect(git(a.gitDir, 'rev-parse', 'refs/remotes/origin/main')).toBe(base);

    // The loser fetches, rebuilds on the new tip and wins.
    expect(await a.fetch()).toBe(theirs);
    const [rebuilt] = await writeCommits(a.gitDir, WORK, theirs!, [one('x.yaml', 'a\n')]);
    expect(await a.push(rebuilt!, theirs!)).toEqual({ ok: true });
    expect(git(remote, 'rev-parse', 'refs/heads/main^')).toBe(theirs);
  });

  it('treats an existing branch as non-fast-forward when expectedRemote is null', async () => {
    const dir = caseDir();
    const remote = bareRemote(dir);
    const a = await openMirror({ dir: path.join(dir, 'a.git'), repoURL: remote, branch: 'main', env: {} });
    const b = await openMirror({ dir: path.join(dir, 'b.git'), repoURL: remote, branch: 'main', env: {} });
    const [theirs] = await writeCommits(b.gitDir, WORK, null, [one('x.yaml', 'b\n')]);
    expect(await b.push(theirs!, null)).toEqual({ ok: true });
    const [ours] = await writeCommits(a.gitDir, WORK, null, [one('x.yaml', 'a\n')]);
    expect(await a.push(ours!, null)).toMatchObject({ ok: false, reason: 'rejected-non-fast-forward' });
    // Even a push that would be a fast-forward is refused when the caller believed the branch absent.
    const [child] = await writeCommits(b.gitDir, WORK, theirs!, [one('y.yaml', 'b\n')]);
    expect(await b.push(child!, null)).toMatchObject({ ok: false, reason: 'rejected-non-fast-forward' });
    // The remote already at exactly this commit is success (a retried push after a crash).
    expect(await b.push(theirs!, null)).toEqual({ ok: true });
    expect(git(remote, 'rev-parse', 'refs/heads/main')).toBe(theirs);
  });

  it('refuses to push a commit that does not descend from expectedRemote', async () => {
    const dir = caseDir();
    const remote = bareRemote(dir);
    const m = await openMirror({ dir: path.join(dir, 'm.git'), repoURL: remote, branch: 'main', env: {} });
    const [a] = await writeCommits(m.gitDir, WORK, null, [one('x.yaml', 'a\n')]);
    const [b] = await writeCommits(m.gitDir, WORK, null, [one('x.yaml', 'b\n')]);
    await expect(m.push(b!, a!)).rejects.toThrow(/does not descend from/);
  });

  it('reports a pre-receive hook refusal as rejected-by-remote with the hook\'s message', async () => {
    const dir = caseDir();
    const remote = bareRemote(dir);
    const hook = path.join(remote, 'hooks', 'pre-receive');
    writeFileSync(hook, '#!/bin/sh\necho "policy: direct pushes to main are not allowed" >&2\nexit 1\n');
    chmodSync(hook, 0o755);
    const m = await openMirror({ dir: path.join(dir, 'm.git'), repoURL: remote, branch: 'main', env: {} });
    const [c] = await writeCommits(m.gitDir, WORK, null, [one('x.yaml', 'x\n')]);
    const outcome = await m.push(c!, null);
    expect(outcome).toMatchObject({ ok: false, reason: 'rejected-by-remote' });
    expect(outcome.ok === false && outcome.detail).toContain('policy: direct pushes to main are not allowed');
    expect(outcome.ok === false && outcome.detail).toContain('pre-receive hook declined');
    expect(() => git(remote, 'rev-parse', '--verify', '--quiet', 'refs/heads/main')).toThrow();
  });

  it('throws GitRemoteError naming the operation when the remote does not exist', async () => {
    const dir = caseDir();
    const missing = path.join(dir, 'no-such-remote.git');
    const m = await openMirror({ dir: path.join(dir, 'm.git'), repoURL: missing, branch: 'main', env: {} });
    const fetching = m.fetch();
    await expect(fetching).rejects.toBeInstanceOf(GitRemoteError);
    await expect(fetching).rejects.toThrow(new RegExp(`^git fetch ${missing} failed \\(exit 128\\): fatal: '${missing}' does not appear to be a git repository`));
    const [c] = await writeCommits(m.gitDir, WORK, null, [one('x.yaml', 'x\n')]);
    const pushing = m.push(c!, null);
    await expect(pushing).rejects.toMatchObject({ name: 'GitRemoteError', operation: 'push', repoURL: missing });
    await expect(pushing).rejects.toThrow(/^git push .* failed \(exit 128\)/);
  });

  it('rejects branch names that are not valid refs', async () => {
    const dir = caseDir();
    for (const branch of ['', 'a..b', '-x', 'a b', 'x:y']) {
      await expect(openMirror({ dir: path.join(dir, 'm.git'), repoURL: bareRemote(dir), branch, env: {} })).rejects.toThrow(/not a valid branch name/);
    }
  });
});

describe('gitAuthEnv', () => {
  it('sends https credentials as a header in environment config, never in argv, the URL or an error', async () => {
    const password = 'hunter2-very-secret';
    const auth = await gitAuthEnv('https://127.0.0.1:1/org/repo.git', { username: 'bot', password });
    const header = `Authorization: Basic ${Buffer.from(`bot:${password}`).toString('base64')}`;
    expect(auth.env).toEqual({
      GIT_TERMINAL_PROMPT: '0',
      GIT_ALLOW_PROTOCOL: 'http:https:ssh:git:file',
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.https://127.0.0.1:1/.extraHeader',
      GIT_CONFIG_VALUE_0: header,
    });
    const bearer = await gitAuthEnv('https://git.example.com/r.git', { bearerToken: 'tok-123' });
    expect(bearer.env.GIT_CONFIG_VALUE_0).toBe('Authorization: Bearer tok-123');

    // Record the argv of every git started, through a wrapper first on PATH.
    const dir = caseDir();
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    const argvLog = path.join(dir, 'argv.log');
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    writeFileSync(path.join(bin, 'git'), `#!/bin/sh\nprintf '%s\\n' "$@" >> '${argvLog}'\nexec '${realGit}' "$@"\n`);
    chmodSync(path.join(bin, 'git'), 0o755);
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`;
    try {
      const m = await openMirror({ dir: path.join(dir, 'm.git'), repoURL: 'https://127.0.0.1:1/org/repo.git', branch: 'main', env: auth.env });
      const err = await m.fetch().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(GitRemoteError);
      expect((err as Error).message).toMatch(/^git fetch https:\/\/127\.0\.0\.1:1\/org\/repo\.git failed/);
      const argv = readFileSync(argvLog, 'utf8');
      expect(argv).toContain('fetch');
      for (const leaked of [password, header, Buffer.from(`bot:${password}`).toString('base64')]) {
        expect(argv).not.toContain(leaked);
        expect((err as Error).message).not.toContain(leaked);
      }
    } finally {
      process.env.PATH = oldPath;
    }
    await auth.cleanup();
  });

  it('strips credentials from URLs it shows', async () => {
    expect(redactURL('https://bot:s3cret@git.example.com/r.git')).toBe('https://git.example.com/r.git');
    expect(redactURL('ssh://git:pw@host/r.git')).toBe('ssh://git:***@host/r.git');
    expect(redactURL('git@github.com:org/r.git')).toBe('git@github.com:org/r.git');
    const dir = caseDir();
    const m = await openMirror({ dir: path.join(dir, 'm.git'), repoURL: 'https://bot:s3cret@127.0.0.1:1/r.git', branch: 'main', env: {} });
    const err = (await m.fetch().catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^git fetch https:\/\/127\.0\.0\.1:1\/r\.git failed/);
    expect(err.message).not.toContain('s3cret');
  });

  it('writes the ssh key and known_hosts as 0600 files named in GIT_SSH_COMMAND and removes them on cleanup', async () => {
    const identity = '-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n';
    const knownHosts = 'github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n';
    const auth = await gitAuthEnv('ssh://git@github.com/org/repo.git', { identity, known_hosts: knownHosts });
    expect(Object.keys(auth.env).sort()).toEqual(['GIT_ALLOW_PROTOCOL', 'GIT_SSH_COMMAND', 'GIT_TERMINAL_PROMPT']);
    const cmd = auth.env.GIT_SSH_COMMAND!;
    const keyFile = /-i '([^']+)'/.exec(cmd)?.[1];
    const khFile = /UserKnownHostsFile='([^']+)'/.exec(cmd)?.[1];
    expect(keyFile).toBeDefined();
    expect(cmd).toContain('-o IdentitiesOnly=yes');
    expect(cmd).toContain('-o StrictHostKeyChecking=yes');
    expect(cmd).not.toContain('not-a-real-key');
    expect(statSync(keyFile!).mode & 0o777).toBe(0o600);
    expect(statSync(khFile!).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile!, 'utf8')).toBe(identity);
    expect(readFileSync(khFile!, 'utf8')).toBe(knownHosts);
    await auth.cleanup();
    expect(existsSync(keyFile!)).toBe(false);
    expect(existsSync(path.dirname(keyFile!))).toBe(false);
    await auth.cleanup();

    const scp = await gitAuthEnv('git@github.com:org/repo.git', { identity });
    // No known_hosts (the configuration refuses that): every host key is unknown, and refused.
    expect(scp.env.GIT_SSH_COMMAND).toContain('-o StrictHostKeyChecking=yes');
    await scp.cleanup();
  });

  it('writes an https remote\'s ca.crt to a temp file named by GIT_SSL_CAINFO and removes it on cleanup', async () => {
    const ca = '-----BEGIN CERTIFICATE-----\nnot-a-real-certificate\n-----END CERTIFICATE-----';
    const auth = await gitAuthEnv('https://git.example.com/r.git', { bearerToken: 'tok-123', 'ca.crt': ca });
    // An environment variable, not http.<origin>.sslCAInfo: git lets an inherited GIT_SSL_CAINFO override that.
    expect(Object.keys(auth.env).sort()).toEqual(['GIT_ALLOW_PROTOCOL', 'GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_VALUE_0', 'GIT_SSL_CAINFO', 'GIT_TERMINAL_PROMPT']);
    const file = auth.env.GIT_SSL_CAINFO!;
    expect(readFileSync(file, 'utf8')).toBe(`${ca}\n`);
    await auth.cleanup();
    expect(existsSync(path.dirname(file))).toBe(false);
    // Without one, git keeps its own trust (and an inherited GIT_SSL_CAINFO).
    expect((await gitAuthEnv('https://git.example.com/r.git', { bearerToken: 'tok-123', 'ca.crt': ' \n' })).env.GIT_SSL_CAINFO).toBeUndefined();
  });

  it('needs nothing for local remotes', async () => {
    for (const url of ['file:///srv/git/r.git', '/srv/git/r.git', './relative.git']) {
      const auth = await gitAuthEnv(url, { username: 'u', password: 'p' });
      expect(auth.env).toEqual({ GIT_TERMINAL_PROMPT: '0', GIT_ALLOW_PROTOCOL: 'http:https:ssh:git:file' });
      await auth.cleanup();
    }
  });
});
