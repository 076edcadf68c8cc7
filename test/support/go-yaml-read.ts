// Reads YAML the way the Go programs that consume this repository's files do: tools/yaml-read decodes
// with gopkg.in/yaml.v2 (YAML 1.1: sigs.k8s.io/yaml, kubectl, Flux's kustomize-controller, Helm) and
// gopkg.in/yaml.v3 (kyaml). Built offline from Debian's Go packages by tools/yaml-read/build.sh (once per
// run in test/global-setup.ts; here again, which is a no-op when the binary is fresh, or which fails
// naming the Debian packages to install).
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILD = resolve(ROOT, 'tools/yaml-read/build.sh');
const BIN = resolve(ROOT, 'tools/yaml-read/.bin/yaml-read');

export interface GoReaderResult {
  /** Each document decoded into interface{} and printed as JSON (see tools/yaml-read/main.go). */
  docs: unknown[];
  /** Map keys the reader decoded as something other than a string: "<JSON pointer>: <Go type> <value>". */
  nonStringKeys: string[];
  /** v3 only: scalars whose resolved tag is not !!str nor the tag of their JSON type (!!timestamp, !!merge …). */
  nonStringTags?: string[];
  error?: string;
}

export interface GoReadResult {
  source: string;
  v2: GoReaderResult;
  v3: GoReaderResult;
}

export class GoYamlReaderMissing extends Error {
  override name = 'GoYamlReaderMissing';
}

let built: string | undefined;

/** The path of the yaml-read binary, built if needed. */
export function goYamlReader(): string {
  if (built) return built;
  const r = spawnSync('bash', [BUILD, BIN], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new GoYamlReaderMissing(
      'tools/yaml-read could not be built; the Go YAML reader tests need the Debian packages ' +
        `golang-go, golang-gopkg-yaml.v2-dev and golang-gopkg-yaml.v3-dev:\n${r.stderr}${r.stdout}`,
    );
  }
  built = BIN;
  return built;
}

/** Decodes each text (one YAML stream each) with yaml.v2 and yaml.v3; results in the same order. */
export async function readWithGo(texts: readonly string[]): Promise<GoReadResult[]> {
  const bin = goYamlReader();
  const dir = await mkdtemp(join(tmpdir(), 'yaml-read-'));
  try {
    const files = texts.map((_, i) => join(dir, `${i}.yaml`));
    for (const [i, text] of texts.entries()) await writeFile(files[i]!, text, 'utf8');
    const results: GoReadResult[] = [];
    // Batches keep the argument list well under the kernel's limit.
    for (let i = 0; i < files.length; i += 500) {
      const { stdout } = await run(bin, files.slice(i, i + 500), { maxBuffer: 512 * 1024 * 1024 });
      for (const line of stdout.split('\n')) if (line) results.push(JSON.parse(line) as GoReadResult);
    }
    if (results.length !== texts.length) throw new Error(`yaml-read answered ${results.length} of ${texts.length} inputs`);
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
