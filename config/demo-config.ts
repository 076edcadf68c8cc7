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

export function demoConfigYaml(repoPath: string): string {
  return `apiVersion: v1
kind: Secret
metadata: { name: demo-audit-token, namespace: gitops-reverser }
stringData: { token: ${DEMO_TOKEN} }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: ${DEMO_CLUSTER} }
spec:
  audit:
    tokenSecretRef: { name: demo-audit-token, namespace: gitops-reverser, key: token }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitProvider
metadata: { name: demo-repo, namespace: gitops-reverser }
spec:
  url: ${JSON.stringify(repoPath)}
  allowedBranches: ["main"]
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitTarget
metadata: { name: demo, namespace: gitops-reverser }
spec:
  providerRef: { name: demo-repo }
  branch: main
  path: clusters/demo
  clusterProviderRef: { name: ${DEMO_CLUSTER} }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterWatchRule
metadata: { name: everything }
spec:
  targetRef: { name: demo, namespace: gitops-reverser }
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
