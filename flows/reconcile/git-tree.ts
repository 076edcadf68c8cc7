// A target's current tree as the remote has it, for the reconcile diff: a bare, read-only mirror of the
// partition's repository under `${dataDir}/reconcile/<partition id>.git` (apart from the writer's mirror,
// which only the partition's writer touches), fetched, then every file under the target's base folder
// read with one `git ls-tree -r` and one `git cat-file --batch`. Credentials travel as the writer's do
// (git-remote.ts gitAuthEnv: environment variables, never the command line). Nothing is ever pushed.
import { join } from 'node:path';
import type { Partition } from '../../queues/names.js';
import { spawnGit } from '../../git/git-process.js';
import { gitAuthEnv, openMirror } from '../../git/git-remote.js';
import { removeStaleLocks } from '../../git/stale-locks.js';
import { readTreeIndex } from '../../git/tree-index.js';
import { isUnderBase } from './diff.js';

export interface ReadTargetTreeOptions {
  dataDir: string;
  partition: Pick<Partition, 'id' | 'repoURL' | 'branch'>;
  /** The partition's resolved Secret data; undefined for local remotes. */
  credentials?: Record<string, string>;
  /** The target's base folder; only files under it are read. */
  basePath: string;
  /** @defaultValue 120000 */
  timeoutMs?: number;
}

export interface TargetTree {
  /** The branch's commit the tree was read from; null when the branch does not exist (an empty tree). */
  commit: string | null;
  /** File path → content (UTF-8) of every file under the base folder. */
  files: Map<string, string>;
}

/** One fetch at a time per mirror in this process: two targets of one partition share it. */
const busy = new Map<string, Promise<unknown>>();

function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = busy.get(key) ?? Promise.resolve();
  const run = before.then(fn, fn);
  const settled = run.catch(() => undefined);
  busy.set(key, settled);
  void settled.then(() => {
    if (busy.get(key) === settled) busy.delete(key);
  });
  return run;
}

/** Reads the blobs `shas` with one `git cat-file --batch`: sha → content. */
export function readBlobs(gitDir: string, shas: readonly string[]): Promise<Map<string, string>> {
  const unique = [...new Set(shas)];
  const out = new Map<string, string>();
  if (unique.length === 0) return Promise.resolve(out);
  return new Promise((resolve, reject) => {
    const child = spawnGit(gitDir, ['cat-file', '--batch']);
    const chunks: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => errs.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`git cat-file --batch in ${gitDir} failed (exit ${code}): ${Buffer.concat(errs).toString('utf8').trim()}`));
      // Each answer: "<sha> <type> <size>\n<content>\n" (or "<sha> missing\n").
      const buf = Buffer.concat(chunks);
      let pos = 0;
      while (pos < buf.length) {
        const nl = buf.indexOf(0x0a, pos);
        if (nl === -1) return reject(new Error(`git cat-file --batch: truncated answer`));
        const [sha, type, size] = buf.subarray(pos, nl).toString('latin1').split(' ');
        if (type === 'missing' || sha === undefined || size === undefined) return reject(new Error(`git cat-file --batch: object ${sha} is missing`));
        const start = nl + 1;
        const end = start + Number(size);
        out.set(sha, buf.subarray(start, end).toString('utf8'));
        pos = end + 1;
      }
      resolve(out);
    });
    child.stdin.on('error', reject);
    child.stdin.end(unique.map((s) => `${s}\n`).join(''));
  });
}

/**
 * Fetches the target's branch into the reconcile mirror and reads the files under its base folder. A
 * branch that does not exist yet (an empty repository) is an empty tree. Throws GitRemoteError when the
 * remote cannot be read.
 */
export async function readTargetTree(opts: ReadTargetTreeOptions): Promise<TargetTree> {
  const dir = join(opts.dataDir, 'reconcile', `${opts.partition.id}.git`);
  return serialized(dir, async () => {
    // Only this process uses the mirror (each replica has its own data dir): a lock left there is dead.
    await removeStaleLocks(dir);
    const auth = await gitAuthEnv(opts.partition.repoURL, opts.credentials);
    try {
      const mirror = await openMirror({ dir, repoURL: opts.partition.repoURL, branch: opts.partition.branch, env: auth.env, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
      const commit = await mirror.fetch();
      const index = await readTreeIndex(mirror.gitDir, commit);
      const wanted = [...index].filter(([path]) => isUnderBase(path, opts.basePath));
      const blobs = await readBlobs(mirror.gitDir, wanted.map(([, sha]) => sha));
      const files = new Map<string, string>();
      for (const [path, sha] of wanted) files.set(path, blobs.get(sha)!);
      return { commit, files };
    } finally {
      await auth.cleanup();
    }
  });
}
