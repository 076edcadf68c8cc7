import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { removeStaleLocks } from '../../git/stale-locks.js';

describe('removeStaleLocks', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('removes the lock files a killed git left, and nothing else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gr-locks-'));
    dirs.push(dir);
    const gitDir = join(dir, 'mirror.git');
    await promisify(execFile)('git', ['init', '--bare', '--quiet', gitDir]);
    await mkdir(join(gitDir, 'refs', 'reverser'), { recursive: true });
    await writeFile(join(gitDir, 'refs', 'reverser', 'work.lock'), '');
    await writeFile(join(gitDir, 'packed-refs.lock'), '');
    expect((await removeStaleLocks(gitDir)).sort()).toEqual(['packed-refs.lock', join('refs', 'reverser', 'work.lock')].sort());
    expect(await readdir(join(gitDir, 'refs', 'reverser'))).toEqual([]);
    expect(await readdir(gitDir)).toContain('HEAD');
    expect(await removeStaleLocks(join(dir, 'missing.git'))).toEqual([]);
  });
});
