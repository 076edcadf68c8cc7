// Reads file contents from the mirror by blob id, many in one `git cat-file --batch` process: the writer
// needs the labels of the files a deletecollection's label selector is evaluated against.
import { spawnGit } from './git-process.js';

/** sha → content (UTF-8) of each blob of `shas` the repository holds; a missing one is left out. */
export async function readBlobs(gitDir: string, shas: Iterable<string>): Promise<Map<string, string>> {
  const wanted = [...new Set(shas)].filter((s) => /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(s));
  const out = new Map<string, string>();
  if (wanted.length === 0) return out;
  const child = spawnGit(gitDir, ['cat-file', '--batch']);
  const chunks: Buffer[] = [];
  const errors: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => chunks.push(b));
  child.stderr.on('data', (b: Buffer) => errors.push(b));
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  child.stdin.end(`${wanted.join('\n')}\n`);
  const code = await exited;
  if (code !== 0) throw new Error(`git cat-file --batch in ${gitDir} failed (exit ${code}): ${Buffer.concat(errors).toString('utf8').trim()}`);
  const data = Buffer.concat(chunks);
  let at = 0;
  while (at < data.length) {
    const eol = data.indexOf(0x0a, at);
    if (eol < 0) break;
    const header = data.subarray(at, eol).toString('latin1');
    at = eol + 1;
    // "<sha> blob <size>" or "<sha> missing"
    const [sha, type, size] = header.split(' ');
    if (type === 'missing' || size === undefined) continue;
    const n = Number(size);
    if (type === 'blob' && sha) out.set(sha, data.subarray(at, at + n).toString('utf8'));
    at += n + 1; // the content, then a newline
  }
  return out;
}
