// Real Git repositories for tests: a bare "remote" to push to, and readers of what it holds.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function git(gitDir: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['--git-dir', gitDir, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export async function createBareRemote(parent?: string): Promise<string> {
  const dir = join(parent ?? (await mkdtemp(join(tmpdir(), 'gr-remote-'))), 'remote.git');
  await run('git', ['init', '--bare', '--quiet', '--initial-branch=main', dir]);
  return dir;
}

export interface CommitInfo {
  sha: string;
  author: string;
  email: string;
  subject: string;
  body: string;
}

/** Commits of a branch, oldest first. */
export async function commitLog(gitDir: string, branch = 'main'): Promise<CommitInfo[]> {
  let out: string;
  try {
    out = await git(gitDir, 'log', '--reverse', '--format=%H%x1f%an%x1f%ae%x1f%s%x1f%b%x1e', branch);
  } catch {
    return [];
  }
  return out
    .split('\x1e')
    .map((r) => r.trim())
    .filter(Boolean)
    .map((r) => {
      const [sha, author, email, subject, body] = r.split('\x1f');
      return { sha: sha!, author: author!, email: email!, subject: subject!, body: body ?? '' };
    });
}

/** path → file content of the branch's tree. */
export async function treeFiles(gitDir: string, branch = 'main'): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  let commit: string;
  let list: string;
  try {
    // One commit, read whole: the branch may move (the writers push) while its files are read.
    commit = (await git(gitDir, 'rev-parse', '--verify', '--quiet', `${branch}^{commit}`)).trim();
    list = await git(gitDir, 'ls-tree', '-r', '-z', '--name-only', commit);
  } catch {
    return files;
  }
  for (const path of list.split('\0').filter(Boolean)) files.set(path, await git(gitDir, 'show', `${commit}:${path}`));
  return files;
}

/**
 * The tests' one polling helper: calls check() every `intervalMs` until it answers something truthy, and
 * returns that answer; fails with the message after timeoutMs. A wait for something to happen goes through
 * here, never through a fixed sleep.
 */
export async function waitFor<T>(check: () => T | Promise<T>, message: string, timeoutMs = 30_000, intervalMs = 100): Promise<Exclude<T, false | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await check();
    if (answer) return answer as Exclude<T, false | null | undefined>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms: ${message}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
