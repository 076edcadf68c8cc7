// Local git plumbing (ls-tree, rev-parse, update-ref, fast-import) run as plain child processes against
// a bare mirror. Local plumbing needs no credentials, so the child gets the parent's environment minus
// every inherited GIT_* variable: a GIT_DIR or GIT_INDEX_FILE leaking in from a hook or a test runner
// would silently point git at another repository.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

/** The environment for local plumbing: process.env without inherited GIT_* variables, messages in C locale. */
export function plumbingEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toUpperCase().startsWith('GIT_')) env[key] = value;
  }
  env.LC_ALL = 'C';
  env.GIT_TERMINAL_PROMPT = '0';
  return env;
}

/** Starts `git --git-dir=<gitDir> <args>` with stdin/stdout/stderr as pipes. */
export function spawnGit(gitDir: string, args: readonly string[]): ChildProcessWithoutNullStreams {
  return spawn('git', [`--git-dir=${gitDir}`, ...args], { env: plumbingEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
}

export interface GitRunResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs one plumbing command to completion and collects its output; never throws for a non-zero exit. */
export function runGit(gitDir: string, args: readonly string[]): Promise<GitRunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnGit(gitDir, args);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.end();
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({
        exitCode: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8').trim(),
      });
    });
  });
}

/** The commit a ref points to, or null when it does not exist. */
export async function resolveRef(gitDir: string, ref: string): Promise<string | null> {
  const r = await runGit(gitDir, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
  return r.exitCode === 0 ? r.stdout.toString('utf8').trim() : null;
}
