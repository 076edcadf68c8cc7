// The direction of imports between the top-level folders (.dependency-cruiser.cjs, README "Layout"): the
// service's own modules break no rule and form no cycle; and the same rules do catch a back edge and a
// cycle, shown on a two-file project made for that.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const ENTRIES = ['main.ts', 'service.ts', 'cli'];

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

/** Runs dependency-cruiser with the project's rules in `cwd`; its violations. */
async function violations(cwd: string, entries: string[]): Promise<Violation[]> {
  const args = [DEPCRUISE, '--config', join(cwd, '.dependency-cruiser.cjs'), '--output-type', 'json', ...entries];
  const out = await promisify(execFile)(process.execPath, args, { cwd, maxBuffer: 64 * 1024 * 1024 }).catch((err: { stdout?: string; stderr?: string }) => {
    // It exits non-zero when it finds violations; the JSON is on stdout all the same.
    if (err.stdout) return { stdout: err.stdout };
    throw new Error(`dependency-cruiser failed: ${err.stderr ?? String(err)}`);
  });
  return (JSON.parse(out.stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

describe('dependency rules', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('the service breaks none: every import between folders points down, and there is no cycle', async () => {
    const found = await violations(ROOT, ENTRIES);
    expect(found.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([]);
  });

  it('catches a back edge (core importing the dashboard) and a cycle', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gr-deps-'));
    dirs.push(dir);
    await copyFile(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
    await Promise.all(['core', 'dashboard', 'cli'].map((d) => mkdir(join(dir, d))));
    await writeFile(join(dir, 'core', 'pure.ts'), "import { app } from '../dashboard/app.js';\nexport const pure = (): string => app();\n");
    await writeFile(join(dir, 'dashboard', 'app.ts'), "import { pure } from '../core/pure.js';\nexport const app = (): string => pure();\n");
    await writeFile(join(dir, 'main.ts'), "import { app } from './dashboard/app.js';\napp();\n");
    const found = await violations(dir, ['main.ts']);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ rule: expect.objectContaining({ name: 'core-imports-only-below' }), from: 'core/pure.ts', to: 'dashboard/app.ts' }),
        expect.objectContaining({ rule: expect.objectContaining({ name: 'no-circular' }) }),
      ]),
    );
  });
});
