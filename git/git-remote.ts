// Everything that talks to the Git remote: credentials from a Flux-style Secret turned into environment
// variables, and the writer's bare mirror with its two remote operations, fetch and push.
//
// Secrets never appear on a command line (visible in `ps`), in the remote URL (stored in config, echoed
// by git) or in an error message: https credentials travel as an `http.<origin>.extraHeader` set through
// GIT_CONFIG_COUNT/KEY/VALUE environment variables, ssh keys as 0600 temp files named in GIT_SSH_COMMAND.
//
// A push never rewrites the remote: it is accepted only when the remote branch is still exactly the
// commit we built on (`expectedRemote`; null = the branch must not exist yet), checked by the remote's
// own compare-and-swap. Losing that race (another writer pushed first) or a hook refusing the push is an
// outcome the caller handles; only an unreachable or broken remote throws (GitRemoteError).
import { access, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import { redactText, redactURL, remoteKind, SCHEME, stripURLCredentials } from '../core/remote-url.js';
import { resolveRef, runGit } from './git-process.js';

/** Thrown when the remote cannot be reached or git fails talking to it. Messages carry no credentials. */
export class GitRemoteError extends Error {
  override readonly name = 'GitRemoteError';
  constructor(
    /** The operation that failed: 'fetch' or 'push'. */
    readonly operation: string,
    /** The remote URL with any credentials removed. */
    readonly repoURL: string,
    /** git's exit code (null when it could not be started). */
    readonly exitCode: number | null,
    /** git's stderr with secrets removed. */
    readonly stderr: string,
  ) {
    super(`git ${operation} ${repoURL} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${stderr || 'no message from git'}`);
  }
}

export type PushOutcome =
  | { ok: true }
  | { ok: false; reason: 'rejected-non-fast-forward' | 'rejected-by-remote'; detail: string };

export interface Mirror {
  /** The bare repository's directory. */
  readonly gitDir: string;
  /** Fetches the branch into refs/remotes/origin/<branch>; returns its commit, or null when the remote has no such branch. */
  fetch(): Promise<string | null>;
  /**
   * Pushes `commit` to the branch, accepted only if the remote branch is `expectedRemote` now (null: absent).
   * `commit` must descend from `expectedRemote` (checked; an Error otherwise). A remote already at
   * `commit` is success too (a retried push). On success refs/remotes/origin/<branch> is set to `commit`.
   * Never forces: the push lands only on top of `expectedRemote` (git's --force-with-lease
   * compare-and-swap, used here only after checking that the update is a fast-forward).
   */
  push(commit: string, expectedRemote: string | null): Promise<PushOutcome>;
}

export interface GitAuth {
  env: Record<string, string>;
  /** Removes temporary key files; safe to call more than once. */
  cleanup(): Promise<void>;
}

export { hasURLCredentials, redactText, redactURL, redactURLsIn, remoteKind, stripURLCredentials } from '../core/remote-url.js';

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The environment git needs for `repoURL` with the Flux GitRepository-style `secret`:
 * - https: `bearerToken`, or `username` + `password` → an Authorization header for that origin;
 *   `ca.crt` (PEM) → the CAs this remote's certificate is checked against (a temp file, GIT_SSL_CAINFO);
 * - ssh: `identity` (private key) and optional `known_hosts` → 0600 temp files and GIT_SSH_COMMAND
 *   (StrictHostKeyChecking=yes: a host whose key known_hosts does not hold is refused);
 * - file:// and local paths: nothing.
 * GIT_TERMINAL_PROMPT=0 always: a missing credential fails instead of waiting for a terminal.
 */
export async function gitAuthEnv(repoURL: string, secret: Record<string, string> | undefined): Promise<GitAuth> {
  // Only the transports a GitProvider may name: never ext:: (runs a command) or any other helper protocol.
  const env: Record<string, string> = { GIT_TERMINAL_PROMPT: '0', GIT_ALLOW_PROTOCOL: 'http:https:ssh:git:file' };
  let tempDir: string | null = null;
  const cleanup = async (): Promise<void> => {
    if (tempDir !== null) {
      const dir = tempDir;
      tempDir = null;
      await rm(dir, { recursive: true, force: true });
    }
  };
  const kind = remoteKind(repoURL);

  if (kind === 'http' && secret) {
    let header: string | null = null;
    if (secret.bearerToken) header = `Authorization: Bearer ${secret.bearerToken}`;
    else if (secret.username !== undefined && secret.password !== undefined) {
      header = `Authorization: Basic ${Buffer.from(`${secret.username}:${secret.password}`, 'utf8').toString('base64')}`;
    } else if (secret.password !== undefined) {
      throw new Error(`credentials for ${redactURL(repoURL)}: a password needs a username`);
    }
    if (header !== null) {
      // Scoped to the remote's origin so a redirect to another host does not receive it.
      const u = new URL(repoURL);
      env.GIT_CONFIG_COUNT = '1';
      env.GIT_CONFIG_KEY_0 = `http.${u.protocol}//${u.host}/.extraHeader`;
      env.GIT_CONFIG_VALUE_0 = header;
    }
    const ca = secret['ca.crt'];
    if (ca !== undefined && ca.trim() !== '') {
      // A private CA (Flux's `ca.crt`), trusted instead of the system's bundle by the git processes of this
      // remote only. As GIT_SSL_CAINFO, not http.<origin>.sslCAInfo: git lets that variable override any
      // config, so one inherited from the service's environment (extraEnv) would silently win over it.
      tempDir = await mkdtemp(path.join(os.tmpdir(), 'gitops-reverser-ca-'));
      env.GIT_SSL_CAINFO = path.join(tempDir, 'ca.crt');
      try {
        await writeFile(env.GIT_SSL_CAINFO, ca.endsWith('\n') ? ca : `${ca}\n`, { mode: 0o600 });
      } catch (err) {
        await cleanup();
        throw err;
      }
    }
  } else if (kind === 'ssh' && secret && (secret.identity !== undefined || secret.known_hosts !== undefined)) {
    if (secret.identity !== undefined && secret.password) {
      throw new Error(`credentials for ${redactURL(repoURL)}: passphrase-protected ssh keys are not supported`);
    }
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'gitops-reverser-ssh-'));
    await chmod(tempDir, 0o700);
    try {
      const knownHosts = path.join(tempDir, 'known_hosts');
      await writeFile(knownHosts, secret.known_hosts ?? '', { mode: 0o600 });
      const parts = ['ssh', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${shellQuote(knownHosts)}`,
        // Never trust a host key on first sight: with no known_hosts (the configuration refuses that:
        // KnownHostsRequired) every host key is unknown and refused, rather than any server accepted.
        '-o', 'StrictHostKeyChecking=yes'];
      if (secret.identity !== undefined) {
        const identity = path.join(tempDir, 'identity');
        // ssh refuses keys without a trailing newline on some versions.
        const key = secret.identity.endsWith('\n') ? secret.identity : `${secret.identity}\n`;
        await writeFile(identity, key, { mode: 0o600 });
        parts.push('-i', shellQuote(identity), '-o', 'IdentitiesOnly=yes');
      }
      env.GIT_SSH_COMMAND = parts.join(' ');
    } catch (err) {
      await cleanup();
      throw err;
    }
  }
  return { env, cleanup };
}

/** Every secret string that could show up in git's output for this environment. */
function secretsIn(env: Record<string, string>): string[] {
  const secrets: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (!/^GIT_CONFIG_VALUE_\d+$/.test(key)) continue;
    const m = /^Authorization:\s*(\S+)\s+(.+)$/i.exec(value);
    if (!m) continue;
    secrets.push(value, m[2]!);
    if (m[1]!.toLowerCase() === 'basic') {
      const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      secrets.push(decoded);
      if (colon >= 0 && colon < decoded.length - 1) secrets.push(decoded.slice(colon + 1));
    }
  }
  return secrets.filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
}

/** Inherited GIT_* settings an operator may rely on (custom CA bundles); simple-git strips all others. */
const PASSTHROUGH = ['GIT_SSL_CAINFO', 'GIT_SSL_CAPATH'];
/**
 * Inherited variables that make git run other programs or read other config (GIT_*, EDITOR, PAGER, …).
 * They are not ours to pass on, and simple-git refuses to run with them in an explicit environment.
 */
const GUARDED = /^(GIT.*|EDITOR|VISUAL|PAGER|PREFIX|SSH_ASKPASS)$/i;

interface RemoteRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface OpenMirrorOptions {
  /** Directory of the bare repository (created when missing). */
  dir: string;
  repoURL: string;
  branch: string;
  /** From gitAuthEnv. */
  env: Record<string, string>;
  /** Kill a fetch or push that shows no progress for this long. @defaultValue 120000 */
  timeoutMs?: number;
}

/**
 * Opens the writer's bare mirror of `repoURL` at `dir`, creating it (`git init --bare`, remote `origin`)
 * when missing and pointing `origin` at `repoURL` otherwise. No network access.
 */
export async function openMirror(opts: OpenMirrorOptions): Promise<Mirror> {
  const gitDir = path.resolve(opts.dir);
  const { branch } = opts;
  const safeURL = redactURL(opts.repoURL);
  if (opts.repoURL === '' || opts.repoURL.startsWith('-') || /[\0\n]/.test(opts.repoURL)) {
    throw new Error(`openMirror: invalid repository URL ${JSON.stringify(safeURL)}`);
  }
  // A relative local path would be read relative to the mirror; make it absolute now.
  // Never a URL's credentials in the mirror's config (kept on disk, echoed by git): they come from the
  // environment (gitAuthEnv). Opening a mirror that kept them from before rewrites its URL without them.
  const url = remoteKind(opts.repoURL) === 'local' && !SCHEME.test(opts.repoURL) ? path.resolve(opts.repoURL) : stripURLCredentials(opts.repoURL);
  const secrets = secretsIn(opts.env);
  const trackingRef = `refs/remotes/origin/${branch}`;

  const run = async (operation: string, args: string[]): Promise<RemoteRun> => {
    let result: { exitCode: number; stdOut: Buffer[]; stdErr: Buffer[] } | undefined;
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && (PASSTHROUGH.includes(k) || !GUARDED.test(k))) childEnv[k] = v;
    }
    Object.assign(childEnv, opts.env, { GIT_DIR: gitDir, LC_ALL: 'C' });
    const git = simpleGit({
      baseDir: gitDir,
      allowEnvironment: [...Object.keys(opts.env), 'GIT_DIR', ...PASSTHROUGH],
      unsafe: { allowUnsafeSshCommand: true, allowUnsafeConfigEnvCount: true },
      timeout: { block: opts.timeoutMs ?? 120_000 },
      // Exit codes are ours to interpret (a rejected push exits 1 with the answer on stdout); a git that
      // could not start or was killed (no exit code) stays an error.
      errors: (error, r) => {
        result = r;
        return Number.isInteger(r.exitCode) && r.exitCode >= 0 ? undefined : error;
      },
    }).env(childEnv);
    try {
      await git.raw(args);
    } catch (err) {
      throw new GitRemoteError(operation, safeURL, null, redactText(err instanceof Error ? err.message : String(err), secrets));
    }
    return {
      exitCode: result?.exitCode ?? -1,
      stdout: Buffer.concat(result?.stdOut ?? []).toString('utf8'),
      stderr: redactText(Buffer.concat(result?.stdErr ?? []).toString('utf8').trim(), secrets),
    };
  };

  await mkdir(gitDir, { recursive: true });
  if (!(await exists(path.join(gitDir, 'HEAD')))) {
    const init = await runGit(gitDir, ['init', '--bare', '--quiet', gitDir]);
    if (init.exitCode !== 0) throw new Error(`git init --bare ${gitDir} failed: ${init.stderr}`);
  }
  const branchCheck = await runGit(gitDir, ['check-ref-format', `refs/heads/${branch}`]);
  if (branch === '' || branch.startsWith('-') || branchCheck.exitCode !== 0) {
    throw new Error(`openMirror: ${JSON.stringify(branch)} is not a valid branch name`);
  }
  const config = await runGit(gitDir, ['config', 'remote.origin.url', url]);
  if (config.exitCode !== 0) throw new Error(`git config remote.origin.url in ${gitDir} failed: ${redactText(config.stderr, secrets)}`);

  return {
    gitDir,

    async fetch() {
      const r = await run('fetch', ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', 'origin', `+refs/heads/${branch}:${trackingRef}`]);
      if (r.exitCode === 0) {
        const sha = await resolveRef(gitDir, trackingRef);
        if (sha === null) throw new GitRemoteError('fetch', safeURL, 0, `fetched ${branch} but ${trackingRef} is missing`);
        return sha;
      }
      if (/couldn't find remote ref/i.test(r.stderr)) {
        // Empty remote or branch not created yet (or deleted): forget what we knew of it.
        if ((await resolveRef(gitDir, trackingRef)) !== null) await runGit(gitDir, ['update-ref', '-d', trackingRef]);
        return null;
      }
      throw new GitRemoteError('fetch', safeURL, r.exitCode, r.stderr);
    },

    async push(commit, expectedRemote) {
      for (const [what, sha] of [['commit', commit], ['expectedRemote', expectedRemote]] as const) {
        if (sha !== null && !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(sha)) {
          throw new Error(`push: ${what} must be a full commit id, got ${JSON.stringify(sha)}`);
        }
      }
      if (expectedRemote !== null && expectedRemote !== commit) {
        // The lease below lets the remote move only from expectedRemote to commit; this makes sure that
        // move is a fast-forward, so a push can never drop a commit from the remote branch.
        const anc = await runGit(gitDir, ['merge-base', '--is-ancestor', expectedRemote, commit]);
        if (anc.exitCode !== 0) {
          throw new Error(`push: ${commit} does not descend from ${expectedRemote}${anc.exitCode === 1 ? '' : `: ${anc.stderr}`}`);
        }
      }
      const dest = `refs/heads/${branch}`;
      // --force-with-lease=<ref>:<expect> is git's compare-and-swap: the remote ref must equal <expect>
      // (empty: must not exist). Together with the ancestry check above it is a fast-forward-only push.
      const r = await run('push', ['push', '--porcelain', `--force-with-lease=${dest}:${expectedRemote ?? ''}`, 'origin', `${commit}:${dest}`]);
      const line = r.stdout.split('\n').find((l) => l.split('\t')[1]?.endsWith(`:${dest}`));
      if (line === undefined) throw new GitRemoteError('push', safeURL, r.exitCode, r.stderr || r.stdout.trim());
      const [flag, , summary = ''] = line.split('\t');
      if (flag !== '!' && r.exitCode === 0) {
        await runGit(gitDir, ['update-ref', trackingRef, commit]);
        return { ok: true };
      }
      const remoteSaid = r.stderr
        .split('\n')
        .filter((l) => l.startsWith('remote:'))
        .map((l) => l.slice('remote:'.length).trim())
        .filter((l) => l !== '')
        .join('\n');
      const detail = redactText([summary.trim(), remoteSaid].filter((s) => s !== '').join('\n'), secrets);
      // The branch moved while the push was inside the remote (someone else's push won the race there):
      // git says so as a remote rejection, but it is the same as a push that was too late to start with.
      if (/\[remote rejected\] \((failed to update ref|failed to lock|cannot lock ref)/.test(summary) || /cannot lock ref .* but expected/.test(remoteSaid)) {
        return { ok: false, reason: 'rejected-non-fast-forward', detail };
      }
      if (summary.includes('[remote rejected]') || summary.includes('[remote failure]')) {
        return { ok: false, reason: 'rejected-by-remote', detail };
      }
      if (summary.includes('[rejected]')) return { ok: false, reason: 'rejected-non-fast-forward', detail };
      throw new GitRemoteError('push', safeURL, r.exitCode, r.stderr || summary);
    },
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

