// Builds many commits in one `git fast-import` process. The hot path is a commit per event; starting git
// processes per commit caps the writer at ~9–20 commits/s here, while one streaming fast-import reaches
// ~500/s (see PERFORMANCE-NOTES.md). Commits are written onto a private local ref (e.g.
// refs/reverser/work) of the bare mirror, so no branch that anyone reads moves until the push succeeds.
//
// fast-import moves refs only when it finishes cleanly: when the stream is rejected git dies before
// touching the ref. We also put the ref back ourselves if anything fails after git finished.
import type { GitAuthor } from '../core/contracts.js';
import { resolveRef, runGit, spawnGit } from './git-process.js';
import { rm } from 'node:fs/promises';
import path from 'node:path';

/** One commit to build: who, when, why, and the files it puts (content) or removes (content null). */
export interface PlannedCommit {
  author: GitAuthor;
  authorDate: Date;
  committer: GitAuthor;
  commitDate: Date;
  message: string;
  /** Paths are relative posix paths inside the repository; content null deletes the file. */
  changes: { path: string; content: string | null }[];
}

/**
 * Writes `commits` in order onto `ref` in the repository at `gitDir`, the first on top of `parent`
 * (null: the first commit is a root commit), and returns their ids in the same order.
 * `ref` is set to the last commit whatever it pointed to before (it must be a private ref of the writer).
 * With no commits it returns [] and leaves the ref alone.
 * Throws — leaving `ref` as it was — on invalid input or when git refuses the stream, with git's stderr.
 */
export async function writeCommits(
  gitDir: string,
  ref: string,
  parent: string | null,
  commits: PlannedCommit[],
): Promise<string[]> {
  assertPrivateRef(ref);
  if (parent !== null && !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(parent)) {
    throw new Error(`writeCommits: parent must be a full commit id, got ${JSON.stringify(parent)}`);
  }
  if (commits.length === 0) return [];
  // Validate everything before git sees a byte, so bad input cannot leave a half-written stream behind.
  commits.forEach(validateCommit);

  const before = await resolveRef(gitDir, ref);
  const child = spawnGit(gitDir, ['fast-import', '--quiet', '--done', '--force', '--date-format=raw']);
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => stdout.push(b));
  child.stderr.on('data', (b: Buffer) => stderr.push(b));
  // If git dies mid-stream our writes fail with EPIPE; the exit code and stderr tell the story.
  child.stdin.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });

  let streamError: unknown = null;
  try {
    await write(child.stdin, `reset ${ref}\n${parent === null ? '' : `from ${parent}\n`}\n`);
    for (let i = 0; i < commits.length; i++) {
      if (child.exitCode !== null) break;
      await write(child.stdin, commitCommand(ref, i + 1, commits[i]!));
    }
    await write(child.stdin, 'done\n');
  } catch (err) {
    streamError = err;
  }
  child.stdin.end();
  const { code, signal } = await exited;
  const gitMessage = Buffer.concat(stderr).toString('utf8').trim();

  if (code !== 0) {
    // fast-import leaves a crash report in the repository; the error carries what it says that matters.
    await rm(path.join(gitDir, `fast_import_crash_${child.pid}`), { force: true }).catch(() => undefined);
    await restoreRef(gitDir, ref, before);
    throw new Error(
      `git fast-import of ${commits.length} commit(s) onto ${ref} in ${gitDir} failed ` +
        `(${signal ? `signal ${signal}` : `exit ${code}`}): ${gitMessage || String(streamError ?? 'no message')}`,
    );
  }

  const shas = Buffer.concat(stdout).toString('utf8').split('\n').filter((l) => l !== '');
  if (streamError !== null || shas.length !== commits.length || !shas.every((s) => /^[0-9a-f]{40,64}$/.test(s))) {
    await restoreRef(gitDir, ref, before);
    throw new Error(
      `git fast-import onto ${ref} in ${gitDir} returned ${shas.length} commit id(s) for ${commits.length} commit(s)` +
        (streamError ? `: ${String(streamError)}` : '') + (gitMessage ? `: ${gitMessage}` : ''),
    );
  }
  return shas;
}

function assertPrivateRef(ref: string): void {
  if (
    !/^refs\/[A-Za-z0-9._\-/]+$/.test(ref) ||
    ref.startsWith('refs/remotes/') ||
    ref.startsWith('refs/tags/') ||
    ref.includes('..') ||
    ref.includes('//') ||
    ref.endsWith('/') ||
    ref.endsWith('.lock')
  ) {
    throw new Error(`writeCommits: ${JSON.stringify(ref)} is not a usable local ref (like refs/reverser/work)`);
  }
}

function validateIdent(what: string, who: GitAuthor, when: Date): void {
  for (const [field, value] of [['name', who.name], ['email', who.email]] as const) {
    if (value === '' || /[<>\n\r\0]/.test(value)) {
      throw new Error(`writeCommits: ${what} ${field} ${JSON.stringify(value)} is empty or contains <, >, NUL or a newline`);
    }
  }
  if (Number.isNaN(when.getTime())) throw new Error(`writeCommits: ${what} date is invalid`);
}

function validateCommit(c: PlannedCommit, i: number): void {
  validateIdent(`commit ${i} author`, c.author, c.authorDate);
  validateIdent(`commit ${i} committer`, c.committer, c.commitDate);
  for (const change of c.changes) {
    const p = change.path;
    if (p === '' || p.includes('\0') || p.startsWith('/') || p.split('/').some((s) => s === '' || s === '.' || s === '..')) {
      throw new Error(`writeCommits: commit ${i} has an invalid path ${JSON.stringify(p)}`);
    }
  }
}

function ident(who: GitAuthor, when: Date): string {
  return `${who.name} <${who.email}> ${Math.floor(when.getTime() / 1000)} +0000`;
}

/** `data <n>` with n the UTF-8 byte length, then the bytes. */
function data(text: string): string {
  return `data ${Buffer.byteLength(text, 'utf8')}\n${text}\n`;
}

/**
 * A path as fast-import reads it: as-is when plain, else C-style quoted (`"` … `"`, with `\\`, `\"`,
 * `\n`, `\t` and octal escapes for other control bytes; UTF-8 bytes may stay raw inside the quotes).
 */
export function quotePath(p: string): string {
  if (!/["\\\x00-\x1f\x7f]/.test(p) && !p.startsWith(' ')) return p;
  let out = '"';
  for (const ch of p) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\${code.toString(8).padStart(3, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function commitCommand(ref: string, mark: number, c: PlannedCommit): string {
  const message = c.message.endsWith('\n') ? c.message : `${c.message}\n`;
  let s = `commit ${ref}\nmark :${mark}\nauthor ${ident(c.author, c.authorDate)}\ncommitter ${ident(c.committer, c.commitDate)}\n${data(message)}`;
  for (const change of c.changes) {
    const p = quotePath(change.path);
    s += change.content === null ? `D ${p}\n` : `M 100644 inline ${p}\n${data(change.content)}`;
  }
  // get-mark answers on stdout (the cat-blob fd) with the new commit's id, one line per commit.
  return `${s}\nget-mark :${mark}\n`;
}

function write(stream: NodeJS.WritableStream, chunk: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = stream.write(chunk, 'utf8', (err) => {
      if (err) reject(err);
    });
    if (ok) resolve();
    else {
      const onDrain = (): void => { cleanup(); resolve(); };
      const onClose = (): void => { cleanup(); reject(new Error('git fast-import closed its input')); };
      const cleanup = (): void => { stream.off('drain', onDrain); stream.off('close', onClose); };
      stream.once('drain', onDrain);
      stream.once('close', onClose);
    }
  });
}

async function restoreRef(gitDir: string, ref: string, before: string | null): Promise<void> {
  const now = await resolveRef(gitDir, ref);
  if (now === before) return;
  await runGit(gitDir, before === null ? ['update-ref', '-d', ref] : ['update-ref', ref, before]);
}
