// A git process killed in the middle of a ref update (kill -9 of the replica) leaves `*.lock` files in
// the mirror, and every later fetch or fast-import would fail on them. Only this process uses its mirror
// (each replica has its own DATA_DIR), so locks found when the mirror is opened are dead and can go.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Removes `*.lock` files under refs/ and the top-level ones; returns what it removed (relative paths). */
export async function removeStaleLocks(gitDir: string): Promise<string[]> {
  const removed: string[] = [];
  const candidates: string[] = [];
  try {
    for (const entry of await readdir(gitDir)) if (entry.endsWith('.lock')) candidates.push(entry);
    for (const entry of await readdir(join(gitDir, 'refs'), { recursive: true })) {
      if (entry.endsWith('.lock')) candidates.push(join('refs', entry));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return removed; // no mirror yet
    throw err;
  }
  for (const file of candidates) {
    await rm(join(gitDir, file), { force: true });
    removed.push(file);
  }
  return removed;
}
