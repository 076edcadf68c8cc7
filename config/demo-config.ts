// The configuration used when no CONFIG_FILE is given: one cluster provider "demo" (token "demo-token")
// whose every change is written to a local bare repository under DATA_DIR, so a newcomer sees events
// become commits without setting anything up.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseConfig } from './load-config.js';
import type { ResolvedConfig } from './resolved-config.js';

export const DEMO_CLUSTER = 'demo';
export const DEMO_TOKEN = 'demo-token';

/**
 * One cluster whose every change goes to one repository: the demo, and the shape tests and benchmarks
 * start from. The token is kept in a Secret, as a real configuration keeps it.
 */
export function demoConfigYaml(repoPath: string, opts: { cluster?: string; token?: string; path?: string } = {}): string {
  const cluster = opts.cluster ?? DEMO_CLUSTER;
  return `apiVersion: v1
kind: Secret
metadata: { name: ${cluster}-audit-token, namespace: gitops-reverser }
stringData: { token: ${JSON.stringify(opts.token ?? DEMO_TOKEN)} }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: ${cluster} }
spec:
  audit:
    tokenSecretRef: { name: ${cluster}-audit-token, namespace: gitops-reverser, key: token }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitProvider
metadata: { name: ${cluster}-repo, namespace: gitops-reverser }
spec:
  url: ${JSON.stringify(repoPath)}
  allowedBranches: ["main"]
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitTarget
metadata: { name: ${cluster}, namespace: gitops-reverser }
spec:
  providerRef: { name: ${cluster}-repo }
  branch: main
  path: ${JSON.stringify(opts.path ?? `clusters/${cluster}`)}
  clusterProviderRef: { name: ${cluster} }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterWatchRule
metadata: { name: ${cluster}-everything }
spec:
  targetRef: { name: ${cluster}, namespace: gitops-reverser }
  rules:
    - operations: ["*"]
      apiGroups: ["*"]
      resources: ["*"]
`;
}

/** Creates the demo's bare repository when missing and returns the demo configuration. */
export async function loadDemoConfig(dataDir: string): Promise<{ config: ResolvedConfig; repoPath: string }> {
  const repoPath = join(dataDir, 'demo-remote.git');
  if (!existsSync(join(repoPath, 'HEAD'))) {
    await mkdir(repoPath, { recursive: true });
    await promisify(execFile)('git', ['init', '--bare', '--quiet', '--initial-branch=main', repoPath]);
  }
  return { config: parseConfig(demoConfigYaml(repoPath), 'the demo configuration'), repoPath };
}
