// writeCommits and readTreeIndex on a real bare mirror, pushed to a real local bare "remote".
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commitMessage, parseTrailers } from '../../workers/write/commit-message.js';
import { writeCommits, type PlannedCommit } from '../../git/fast-import-committer.js';
import { blobSha } from '../../git/git-objects.js';
import { gitAuthEnv, openMirror } from '../../git/git-remote.js';
import { readTreeIndex } from '../../git/tree-index.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'git-writer-fi-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_')));
function git(gitDir: string, ...args: string[]): string {
  return execFileSync('git', [`--git-dir=${gitDir}`, ...args], { encoding: 'utf8', env: cleanEnv });
}

let n = 0;
async function setup(): Promise<{ remote: string; mirrorDir: string }> {
  const dir = path.join(root, `case-${++n}`);
  const remote = path.join(dir, 'remote.git');
  execFileSync('git', ['init', '--bare', '--quiet', remote], { env: cleanEnv });
  return { remote, mirrorDir: path.join(dir, 'mirror.git') };
}

const alice = { name: 'alice@example.com', email: 'alice@example.com' };
const bot = { name: 'GitOps Reverser', email: 'reverser@example.com' };
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const WORK = 'refs/reverser/work';

function planned(i: number, changes: PlannedCommit['changes'], author = alice): PlannedCommit {
  return {
    author,
    authorDate: new Date(T0 + i * 1000),
    committer: bot,
    commitDate: new Date(T0 + i * 1000 + 500),
    message: commitMessage({
      operation: 'UPDATE',
      identity: { cluster: 'c1', group: 'apps', version: 'v1', resource: 'deployments', namespace: 'ns', name: `app-${i % 10}` },
      auditID: `audit-${i}`,
      clusterId: 'c1',
      resourceVersion: String(1000 + i),
      target: 'default/t1',
    }),
    changes,
  };
}

describe('writeCommits', () => {
  it('writes 200 commits in one fast-import, pushes them, and the remote shows them in order', async () => {
    const { remote, mirrorDir } = await setup();
    const auth = await gitAuthEnv(remote, undefined);
    const mirror = await openMirror({ dir: mirrorDir, repoURL: remote, branch: 'main', env: auth.env });
    expect(await mirror.fetch()).toBeNull();

    const commits: PlannedCommit[] = [];
    const expected = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      const p = `ns/apps/deployments/app-${i % 10}.yaml`;
      const content = `kind: Deployment\nmetadata:\n  name: app-${i % 10}\nspec:\n  replicas: ${i} # ü\n`;
      expected.set(p, content);
      const author = i % 2 === 0 ? alice : { name: 'Bob Ünicode', email: 'bob@example.com' };
      commits.push(planned(i, [{ path: p, content }], author));
    }
    const shas = await writeCommits(mirror.gitDir, WORK, null, commits);
    expect(shas).toHaveLength(200);
    expect(new Set(shas).size).toBe(200);
    expect(git(mirror.gitDir, 'rev-parse', WORK).trim()).toBe(shas[199]);
    expect(git(mirror.gitDir, 'rev-list', '--max-parents=0', WORK).trim()).toBe(shas[0]);

    expect(await mirror.push(shas[199]!, null)).toEqual({ ok: true });
    expect(git(remote, 'rev-parse', 'refs/heads/main').trim()).toBe(shas[199]);

    const log = git(remote, 'log', '--reverse', '--format=%H|%an|%ae|%at|%cn|%ce|%ct|%s|%(trailers:key=Audit-ID,valueonly,separator=%x2C)', 'main')
      .trim()
      .split('\n');
    expect(log).toHaveLength(200);
    log.forEach((line, i) => {
      const [sha, an, ae, at, cn, ce, ct, subject, auditID] = line.split('|');
      expect(sha).toBe(shas[i]);
      expect([an, ae]).toEqual(i % 2 === 0 ? [alice.name, alice.email] : ['Bob Ünicode', 'bob@example.com']);
      expect(Number(at)).toBe((T0 + i * 1000) / 1000);
      expect([cn, ce]).toEqual([bot.name, bot.email]);
      expect(Number(ct)).toBe(Math.floor((T0 + i * 1000 + 500) / 1000));
      expect(subject).toBe(`UPDATE apps/v1 deployments ns/app-${i % 10}`);
      expect(auditID).toBe(`audit-${i}`);
    });
    const fullMessage = git(remote, 'log', '-1', '--format=%B', 'main');
    expect(parseTrailers(fullMessage)).toEqual({ 'Audit-ID': 'audit-199', Cluster: 'c1', 'Resource-Version': '1199', Target: 'default/t1' });

    // Final tree: exactly the last content of each file, as git and blobSha agree.
    const index = await readTreeIndex(remote, shas[199]!);
    expect(new Map([...index].sort())).toEqual(new Map([...expected].map(([p, c]) => [p, blobSha(c)] as const).sort()));
    for (const [p, c] of expected) expect(git(remote, 'show', `main:${p}`)).toBe(c);
    await auth.cleanup();
  });

  it('continues from a parent, deletes files, and moves only its own ref', async () => {
    const { mirrorDir } = await setup();
    const mirror = await openMirror({ dir: mirrorDir, repoURL: path.join(root, 'unused.git'), branch: 'main', env: {} });
    const [base] = await writeCommits(mirror.gitDir, WORK, null, [
      planned(0, [{ path: 'a.yaml', content: 'a\n' }, { path: 'dir/b.yaml', content: 'b\n' }]),
    ]);
    // The private ref points at an unrelated commit now: writeCommits still sets it to the new line.
    await writeCommits(mirror.gitDir, WORK, null, [planned(1, [{ path: 'other.yaml', content: 'x\n' }])]);
    const [del, put] = await writeCommits(mirror.gitDir, WORK, base!, [
      planned(2, [{ path: 'dir/b.yaml', content: null }]),
      planned(3, [{ path: 'c.yaml', content: 'c\n' }]),
    ]);
    expect(git(mirror.gitDir, 'rev-parse', `${del}^`).trim()).toBe(base);
    expect(git(mirror.gitDir, 'rev-parse', `${put}^`).trim()).toBe(del);
    expect([...(await readTreeIndex(mirror.gitDir, del!)).keys()]).toEqual(['a.yaml']);
    expect([...(await readTreeIndex(mirror.gitDir, put!)).keys()].sort()).toEqual(['a.yaml', 'c.yaml']);
    expect(await readTreeIndex(mirror.gitDir, null)).toEqual(new Map());
    expect(git(mirror.gitDir, 'for-each-ref', '--format=%(refname)').trim()).toBe(WORK);
  });

  it('round-trips paths with spaces, unicode, %, quotes, backslashes and tabs', async () => {
    const { mirrorDir } = await setup();
    const mirror = await openMirror({ dir: mirrorDir, repoURL: path.join(root, 'unused.git'), branch: 'main', env: {} });
    const paths = [
      'team a/config map.yaml',
      'ünïcödé/日本語 ✓.yaml',
      'pct/%2Fescaped%20name.yaml',
      'q/"quoted" name.yaml',
      'q/back\\slash.yaml',
      'q/tab\there.yaml',
      '"leading-quote.yaml',
    ];
    const [sha] = await writeCommits(mirror.gitDir, WORK, null, [planned(0, paths.map((p) => ({ path: p, content: `${p}\n` })))]);
    const index = await readTreeIndex(mirror.gitDir, sha!);
    expect([...index.keys()].sort()).toEqual([...paths].sort());
    for (const p of paths) expect(index.get(p)).toBe(blobSha(`${p}\n`));
    const [after] = await writeCommits(mirror.gitDir, WORK, sha!, [planned(1, paths.map((p) => ({ path: p, content: null })))]);
    expect((await readTreeIndex(mirror.gitDir, after!)).size).toBe(0);
  });

  it('fails with git\'s message and leaves the ref as it was', async () => {
    const { mirrorDir } = await setup();
    const mirror = await openMirror({ dir: mirrorDir, repoURL: path.join(root, 'unused.git'), branch: 'main', env: {} });
    const [first] = await writeCommits(mirror.gitDir, WORK, null, [planned(0, [{ path: 'a.yaml', content: 'a\n' }])]);

    const missing = 'deadbeef'.repeat(5);
    const failure = writeCommits(mirror.gitDir, WORK, missing, [planned(1, [{ path: 'b.yaml', content: 'b\n' }])]);
    await expect(failure).rejects.toThrow(/git fast-import of 1 commit\(s\) onto refs\/reverser\/work .* failed \(exit 128\): fatal: .*deadbeef/);
    expect(git(mirror.gitDir, 'rev-parse', WORK).trim()).toBe(first);

    await expect(
      writeCommits(mirror.gitDir, WORK, first!, [planned(1, [{ path: 'x', content: 'x' }], { name: 'Eve <evil>', email: 'e@x' })]),
    ).rejects.toThrow(/commit 0 author name "Eve <evil>"/);
    await expect(writeCommits(mirror.gitDir, WORK, first!, [planned(1, [{ path: '../escape', content: 'x' }])])).rejects.toThrow(/invalid path/);
    await expect(writeCommits(mirror.gitDir, 'refs/remotes/origin/main', null, [planned(1, [])])).rejects.toThrow(/not a usable local ref/);
    expect(git(mirror.gitDir, 'rev-parse', WORK).trim()).toBe(first);
  });

  it('prints commits/s for 1,000 commits (a figure, not an assertion)', async () => {
    const { remote, mirrorDir } = await setup();
    const mirror = await openMirror({ dir: mirrorDir, repoURL: remote, branch: 'main', env: {} });
    const commits = Array.from({ length: 1000 }, (_, i) =>
      planned(i, [{ path: `ns/cm/cm-${i % 200}.yaml`, content: `kind: ConfigMap\ndata:\n  i: "${i}"\n` }]),
    );
    const t0 = performance.now();
    const shas = await writeCommits(mirror.gitDir, WORK, null, commits);
    const t1 = performance.now();
    const pushed = await mirror.push(shas[999]!, null);
    const t2 = performance.now();
    expect(pushed.ok).toBe(true);
    console.log(
      `[git-writer bench] fast-import: 1000 commits in ${(t1 - t0).toFixed(0)} ms = ${(1000 / ((t1 - t0) / 1000)).toFixed(0)} commits/s; ` +
        `push of them: ${(t2 - t1).toFixed(0)} ms`,
    );
  }, 60_000);
});
