// The reconcile row of `npm run bench`: a GitTarget whose rule selects 50 resource types, with 10,000
// objects over 20 namespaces in the API-server stand-in (real HTTP, paginated lists), reconciled by the
// running service into an empty local repository (first run: one commit with every file), then again with
// nothing changed (re-run: no commit). Seconds of each run and the peak RSS of this process (service and
// stand-in together) while they ran. What was measured is checked: the files, the commits.
import { Queue } from 'bullmq';
import { join } from 'node:path';
import { parseConfig } from '../config/load-config.js';
import { openConnection } from '../queues/connection.js';
import { RECONCILE_QUEUE } from '../queues/names.js';
import { startService } from '../service.js';
import { startKubeApiStandIn, type ResourceType } from '../test/support/kube-api-stand-in.js';
import { benchServiceOptions, type BenchEnv } from './bench-service.js';
import { commitCount, initBare, treePaths } from './git.js';

export interface ReconcileBenchOptions {
  objects: number;
  types: number;
  namespaces: number;
}

export interface ReconcileFigures {
  objects: number;
  types: number;
  namespaces: number;
  firstSeconds: number;
  firstCommits: number;
  rerunSeconds: number;
  rerunCommits: number;
  peakRssMB: number;
}

const GROUP = 'bench.gitopsreverser.test';

function benchTypes(n: number): ResourceType[] {
  return Array.from({ length: n }, (_, i) => {
    const id = String(i).padStart(2, '0');
    return { group: GROUP, version: 'v1', plural: `widgets${id}`, singular: `widget${id}`, kind: `Widget${id}`, namespaced: true, status: false };
  });
}

function configYaml(repo: string): string {
  return `apiVersion: v1
kind: Secret
metadata: { name: bench-token, namespace: ops }
stringData: { token: bench }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: bench }
spec: { audit: { tokenSecretRef: { name: bench-token, namespace: ops, key: token } } }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitProvider
metadata: { name: repo, namespace: ops }
spec: { url: ${JSON.stringify(repo)}, allowedBranches: ["main"] }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitTarget
metadata: { name: fleet, namespace: ops }
spec: { providerRef: { name: repo }, branch: main, path: fleet, clusterProviderRef: { name: bench }, reconcileIntervalSeconds: 0 }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterWatchRule
metadata: { name: widgets }
spec:
  targetRef: { name: fleet, namespace: ops }
  rules: [{ operations: ["*"], apiGroups: [${JSON.stringify(GROUP)}], resources: ["*"] }]
`;
}

export async function benchReconcile(
  env: BenchEnv,
  opts: ReconcileBenchOptions,
  progress: (msg: string) => void,
  check: (ok: boolean, what: string) => void,
): Promise<ReconcileFigures> {
  const types = benchTypes(opts.types);
  const standIn = await startKubeApiStandIn({ types });
  const perTypeNs = Math.ceil(opts.objects / (opts.types * opts.namespaces));
  let made = 0;
  for (const t of types) {
    for (let n = 0; n < opts.namespaces && made < opts.objects; n++) {
      for (let k = 0; k < perTypeNs && made < opts.objects; k++, made++) {
        standIn.create({ apiVersion: `${GROUP}/v1`, kind: t.kind, metadata: { name: `w-${k}`, namespace: `team-${n}` }, spec: { size: k, color: 'blue', owner: `team-${n}` } });
      }
    }
  }
  progress(`reconcile: ${made} objects of ${opts.types} types in ${opts.namespaces} namespaces in the stand-in`);

  const repo = join(env.root, 'reconcile-remote.git');
  await initBare(repo);
  const serviceOptions = benchServiceOptions(env, 'reconcile');
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const connection = openConnection(env.valkeyUrl);
  const parents = new Queue(RECONCILE_QUEUE, { connection, prefix: serviceOptions.prefix });
  const completed = async () => (await parents.getJobCounts('completed')).completed ?? 0;
  try {
    const t0 = performance.now();
    // Reconcile runs at start by itself: the first run is the seed.
    const service = await startService({ ...serviceOptions, config: parseConfig(configYaml(repo)), kubeConfig: standIn.kubeConfig(), dashboardReadOnly: false });
    try {
      const files = async () => (await treePaths(repo).catch(() => [] as string[])).length;
      while ((await files()) < made) await new Promise((r) => setTimeout(r, 100));
      const firstSeconds = (performance.now() - t0) / 1000;
      const firstCommits = await commitCount(repo);
      check(firstCommits >= 1 && (await files()) === made, `first reconcile: ${made} files in ${firstCommits} commit(s)`);
      progress(`reconcile: first run ${firstSeconds.toFixed(2)} s, ${firstCommits} commit(s)`);
      while ((await completed()) < 1) await new Promise((r) => setTimeout(r, 50));

      const t1 = performance.now();
      const res = await fetch(`${service.url}/admin/api/reconcile/ops/fleet`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      check(res.status === 202, `on-demand reconcile accepted (HTTP ${res.status})`);
      while ((await completed()) < 2) await new Promise((r) => setTimeout(r, 50));
      const rerunSeconds = (performance.now() - t1) / 1000;
      const rerunCommits = (await commitCount(repo)) - firstCommits;
      check(rerunCommits === 0, `unchanged re-run made ${rerunCommits} commits`);
      progress(`reconcile: unchanged re-run ${rerunSeconds.toFixed(2)} s, ${rerunCommits} commits`);
      return {
        objects: made,
        types: opts.types,
        namespaces: opts.namespaces,
        firstSeconds,
        firstCommits,
        rerunSeconds,
        rerunCommits,
        peakRssMB: peakRss / 1024 / 1024,
      };
    } finally {
      await service.stop();
    }
  } finally {
    clearInterval(sampler);
    await parents.close();
    await connection.quit();
    await standIn.stop();
  }
}
