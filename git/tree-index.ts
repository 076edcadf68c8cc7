// The file index of a commit: path → blob id for every file in its tree. The writer loads it once per
// batch and then decides per event, in memory, whether the content changed (same blob id: no commit) or
// a delete has anything to delete — no git process per event. `ls-tree -r -z` gives every path
// unquoted and NUL-terminated, so spaces, quotes, `%` and non-ASCII names come through byte-exact.
import { runGit } from './git-process.js';

/**
 * Reads every file (recursively) of `commit`'s tree in the repository at `gitDir`.
 * Returns an empty map for null (a branch that has no commit yet). Submodule entries are skipped.
 * Throws when the commit cannot be read, with git's message.
 */
export async function readTreeIndex(gitDir: string, commit: string | null): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  if (commit === null) return index;
  if (commit === '' || commit.startsWith('-')) throw new Error(`readTreeIndex: invalid commit ${JSON.stringify(commit)}`);
  const r = await runGit(gitDir, ['ls-tree', '-r', '-z', '--full-tree', `${commit}^{commit}`]);
  if (r.exitCode !== 0) {
    throw new Error(`git ls-tree of ${commit} in ${gitDir} failed (exit ${r.exitCode}): ${r.stderr}`);
  }
  const out = r.stdout;
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0, start);
    if (end === -1) end = out.length;
    // "<mode> SP <type> SP <object> TAB <path>"
    const tab = out.indexOf(0x09, start);
    if (tab === -1 || tab > end) throw new Error(`git ls-tree of ${commit}: unexpected entry ${out.subarray(start, end).toString('utf8')}`);
    const [, type, sha] = out.subarray(start, tab).toString('latin1').split(' ');
    if (type === 'blob' && sha !== undefined) index.set(out.subarray(tab + 1, end).toString('utf8'), sha);
    start = end + 1;
  }
  return index;
}
