// Once before all test files: build tools/helm-render (the chart tests' renderer where no helm is
// installed) and tools/yaml-read (the Go YAML readers the YAML output is checked with), so no test
// worker blocks on a cold Go build inside a test's time limit. Where Go is missing this does nothing:
// the tests that need them then fail themselves, naming the Debian packages to install.
// Then the run's shared Kubernetes control plane (etcd + kube-apiserver, test/support/shared-control-plane.ts),
// stopped by the returned teardown.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { setupSharedControlPlane } from './support/shared-control-plane.js';

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  buildGoTools();
  return setupSharedControlPlane(project);
}

function buildGoTools(): void {
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).status !== 0) return;
  spawnSync('bash', [fileURLToPath(new URL('../tools/yaml-read/build.sh', import.meta.url))], { stdio: 'inherit' });
  if (spawnSync('helm', ['version', '--short'], { stdio: 'ignore' }).status === 0) return;
  spawnSync('bash', [fileURLToPath(new URL('../tools/helm-render/build.sh', import.meta.url))], { stdio: 'inherit' });
}
