// Writes the CRDs generated from config/resource-schemas.ts to charts/gitops-reverser/crds, one file per
// CRD. Run after changing a schema: npm run crds
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_GROUP, crdDefinitions, crdFileName, crdFileYaml } from '../config/crd-definitions.js';

export const CRD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'charts', 'gitops-reverser', 'crds');

export async function writeCrds(dir = CRD_DIR): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const crds = crdDefinitions();
  const wanted = new Set(crds.map(crdFileName));
  // A CRD that no longer exists must not linger in the chart.
  for (const file of await readdir(dir)) {
    if (file.endsWith(`.${CRD_GROUP}.yaml`) && !wanted.has(file)) await rm(join(dir, file));
  }
  for (const crd of crds) {
    const file = join(dir, crdFileName(crd));
    await writeFile(file, crdFileYaml(crd));
    written.push(file);
  }
  return written;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const file of await writeCrds()) console.log(`wrote ${file}`);
}
