// Whether a GitProvider's repository answers with its credentials: `git ls-remote --heads`, with the same
// environment the writer pushes with (gitAuthEnv), under a timeout. The answer names the cause a person
// can act on (credentials, URL, network) and never carries a credential: the URL is shown redacted and
// every secret value is blanked out of git's words.
import { spawn } from 'node:child_process';
import { plumbingEnv } from '../../git/git-process.js';
import { gitAuthEnv, redactText, redactURL, remoteKind } from '../../git/git-remote.js';

export type ProbeFailure = 'AuthenticationFailed' | 'RepositoryNotFound' | 'Unreachable' | 'ProbeFailed';

export type ProbeResult = { reachable: true; message: string } | { reachable: false; reason: ProbeFailure; message: string };

export interface ProbeOptions {
  /** @defaultValue 15000 */
  timeoutMs?: number;
  /** Ends the probe early (the service stops). */
  signal?: AbortSignal;
}

/** Inherited settings git needs behind a corporate proxy or with a private CA; every other GIT_* is dropped. */
const PASSTHROUGH = ['GIT_SSL_CAINFO', 'GIT_SSL_CAPATH'];

/** The host ssh names in a refused host key (`[host]:port` for another port than 22). */
const sshHost = (stderr: string): string => /host key (?:is known )?for (\S+)/i.exec(stderr)?.[1] ?? 'the server';

/**
 * git's words for each cause, most specific first ("access rights" follows many causes, so it comes last).
 * A refused host key is the server failing to authenticate itself: AuthenticationFailed, with its own hint.
 */
const CAUSES: [ProbeFailure, RegExp, string | ((stderr: string) => string)][] = [
  [
    'AuthenticationFailed',
    /No \S+ host key is known for/i,
    (stderr) => `the ssh host key of ${sshHost(stderr)} is not in known_hosts of the Secret of spec.secretRef: add it (ssh-keyscan) after checking its fingerprint`,
  ],
  [
    'AuthenticationFailed',
    /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for \S+ has changed/i,
    (stderr) => {
      // ssh names the key the server presented: "The fingerprint for the ED25519 key sent by the remote host is\nSHA256:…."
      const presented = /fingerprint for the (\S+) key sent by the remote host is\s+(\S+?)\.?\s/i.exec(stderr);
      const key = presented ? ` (${presented[1]} ${presented[2]})` : '';
      return `the ssh host key of ${sshHost(stderr)}${key} is not the one known_hosts of the Secret of spec.secretRef names: someone may be intercepting the connection, or the host key was changed (then replace its line)`;
    },
  ],
  [
    'AuthenticationFailed',
    /Authentication failed|could not read (Username|Password)|terminal prompts disabled|returned error: 40[13]|HTTP 40[13]|Permission denied \(|Host key verification failed|invalid credentials|Invalid username or (password|token)|access denied|not authorized/i,
    'the credentials were refused: check the Secret of spec.secretRef',
  ],
  [
    'RepositoryNotFound',
    /does not appear to be a git repository|repository .*not found|Repository not found|returned error: 404|HTTP 404|No such file or directory|not a git repository/i,
    'the repository does not exist (or these credentials cannot see it): check spec.url',
  ],
  [
    // GnuTLS builds of git (Debian's) and OpenSSL builds say it differently.
    'Unreachable',
    /server certificate verification failed|SSL certificate problem|certificate verify failed|unable to get local issuer certificate|self[- ]signed certificate/i,
    "the server's TLS certificate is not trusted: give the CA that signed it as ca.crt in the Secret of spec.secretRef",
  ],
  [
    'Unreachable',
    /Could not resolve host|Connection refused|Connection timed out|Operation timed out|Network is unreachable|No route to host|Failed to connect|Connection reset|Connection closed|SSL|TLS|certificate|unable to access|Could not read from remote repository/i,
    'the server cannot be reached: check spec.url and the network path to it',
  ],
];

export function classifyProbeError(stderr: string): { reason: ProbeFailure; hint: string } {
  for (const [reason, pattern, hint] of CAUSES) if (pattern.test(stderr)) return { reason, hint: typeof hint === 'string' ? hint : hint(stderr) };
  return { reason: 'ProbeFailed', hint: 'git could not list the branches' };
}

/** Blanks every credential value (and URL userinfo) out of `text`. */
export function redactCredentials(text: string, credentials: Record<string, string> | undefined): string {
  const secrets = Object.values(credentials ?? {})
    .flatMap((v) => [v, v.trim()])
    .filter((v) => v.length >= 4)
    .sort((a, b) => b.length - a.length);
  return redactText(text, secrets);
}

/** git's last meaningful lines, short enough for a condition message. */
function gitSaid(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^(fatal|error|remote):\s*/i, '').trim())
    .filter((l) => l !== '' && !/^Please make sure you have the correct access rights$|^and the repository exists\.?$/i.test(l));
  const text = lines.slice(-3).join(' / ');
  return text.length > 500 ? `${text.slice(0, 499)}…` : text;
}

export async function probeRepository(url: string, credentials: Record<string, string> | undefined, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const shown = redactURL(url);
  // A URL beginning with '-' would be read as an option (spec.url is user input).
  if (url === '' || url.startsWith('-') || /[\0\n]/.test(url)) {
    return { reachable: false, reason: 'ProbeFailed', message: `${JSON.stringify(shown)} is not a repository URL: check spec.url` };
  }
  let auth;
  try {
    auth = await gitAuthEnv(url, credentials);
  } catch (err) {
    const text = redactCredentials(err instanceof Error ? err.message : String(err), credentials);
    return { reachable: false, reason: 'AuthenticationFailed', message: `${text}: check the Secret of spec.secretRef` };
  }
  try {
    const env = plumbingEnv();
    for (const k of PASSTHROUGH) if (process.env[k] !== undefined) env[k] = process.env[k];
    Object.assign(env, auth.env);
    const run = await runLsRemote(url, env, timeoutMs, opts.signal);
    if (run.timedOut) {
      return { reachable: false, reason: 'Unreachable', message: `git ls-remote ${shown}: no answer within ${Math.round(timeoutMs / 1000)} s: check spec.url and the network path to it` };
    }
    if (run.exitCode === 0) {
      const kind = remoteKind(url);
      return { reachable: true, message: `git ls-remote ${shown} succeeded${kind === 'local' ? '' : ' with the configured credentials'}.` };
    }
    const stderr = redactCredentials(run.stderr, credentials);
    const { reason, hint: cause } = classifyProbeError(stderr);
    const anonymous = Object.keys(credentials ?? {}).length === 0;
    const hint = reason === 'AuthenticationFailed' && anonymous ? 'the server asks for credentials: set spec.secretRef' : cause;
    const said = gitSaid(stderr);
    return { reachable: false, reason, message: `git ls-remote ${shown} failed: ${hint}${said ? ` (git: ${said})` : ''}` };
  } finally {
    await auth.cleanup();
  }
}

interface LsRemoteRun {
  exitCode: number | null;
  stderr: string;
  timedOut: boolean;
}

function runLsRemote(url: string, env: NodeJS.ProcessEnv, timeoutMs: number, signal: AbortSignal | undefined): Promise<LsRemoteRun> {
  return new Promise((resolve) => {
    // stdout (the branch list) is not needed; only whether git could list it. In its own process group:
    // git hands the transport to a helper (git-remote-https, ssh) that holds stderr open, and a timeout
    // must end them all, or the probe would wait for the helper.
    const child = spawn('git', ['ls-remote', '--heads', url], { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const err: Buffer[] = [];
    let timedOut = false;
    const kill = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is gone already
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    signal?.addEventListener('abort', kill, { once: true });
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 64) err.push(b);
    });
    const done = (exitCode: number | null, stderr: string) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', kill);
      resolve({ exitCode, stderr, timedOut });
    };
    child.on('error', (e) => done(null, e.message));
    child.on('close', (code) => done(code, Buffer.concat(err).toString('utf8')));
  });
}
