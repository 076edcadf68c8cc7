// Small Git helpers for the benchmark: create bare repositories and read what a branch holds.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function git(gitDir: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['--git-dir', gitDir, ...args], { maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

export async function initBare(dir: string): Promise<void> {
  await run('git', ['init', '--bare', '--quiet', '--initial-branch=main', dir]);
}

/** Commits on the branch; 0 while the branch does not exist. */
export async function commitCount(gitDir: string, branch = 'main'): Promise<number> {
  try {
    return Number((await git(gitDir, 'rev-list', '--count', `refs/heads/${branch}`)).trim());
  } catch {
    return 0;
  }
}

/** The Audit-ID trailer of every commit of the branch, oldest first. */
export async function auditIdTrailers(gitDir: string, branch = 'main'): Promise<string[]> {
  const out = await git(gitDir, 'log', '--reverse', '--format=%(trailers:key=Audit-ID,valueonly,separator=%x2C)%x1e', `refs/heads/${branch}`);
  return out
    .split('\x1e')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Paths of the files in the branch's tree. */
export async function treePaths(gitDir: string, branch = 'main'): Promise<string[]> {
  const out = await git(gitDir, 'ls-tree', '-r', '-z', '--name-only', `refs/heads/${branch}`);
  return out.split('\0').filter(Boolean);
}
