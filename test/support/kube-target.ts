// Where Kubernetes-facing tests run: against the in-process API-server stand-in (always), or against a real
// cluster when KUBECONFIG is set. Tests talk to either one only through @kubernetes/client-node over HTTP,
// so the same test body runs against both; cases that need what only the stand-in can do (compact its
// history, drop every watch) ask `standInOnly()` and are skipped with the printed reason on a real cluster.
//
// Real cluster: `KUBECONFIG=~/.kube/config npm test -- test/k8s`. The CRDs of charts/gitops-reverser/crds
// are applied (server-side) first; each test works in its own namespace `grt-<random>`, deleted afterwards.
// The account needs to create namespaces, CRDs, and the objects the tests create.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { loadClientNode, startKubeApiStandIn, type KubeApiStandIn, type StandInOptions } from './kube-api-stand-in.js';

export interface KubeTarget {
  kind: 'stand-in' | 'cluster';
  kubeConfig(): KubeConfig;
  /** The stand-in, when that is what runs. */
  standIn?: KubeApiStandIn;
  /** Creates an object (namespaced objects default to the test namespace); returns what the server stored. */
  create<T extends KubernetesObject>(obj: T): Promise<T>;
  /** Reads an object; undefined when it does not exist. */
  read<T extends KubernetesObject>(obj: T): Promise<T | undefined>;
  /** Merge-patches an object's spec/data/metadata (not its status). */
  patch<T extends KubernetesObject>(obj: T): Promise<T>;
  remove(obj: KubernetesObject): Promise<void>;
  /** A fresh namespace for this test (created on a real cluster). */
  namespace(): Promise<string>;
  stop(): Promise<void>;
}

/** Why Kubernetes tests cannot run at all here; undefined when they can. */
export async function kubeSkipReason(): Promise<string | undefined> {
  const client = await loadClientNode();
  return client instanceof Error ? `@kubernetes/client-node cannot load on Node ${process.versions.node}: ${client.message}` : undefined;
}

/** The reason a stand-in-only case is skipped on a real cluster, printed once per case. */
export function standInOnly(target: KubeTarget | undefined, what: string): boolean {
  if (target?.kind !== 'cluster') return false;
  console.info(`skipped on the real cluster: ${what} needs the stand-in (a real API server cannot be told to do it)`);
  return true;
}

export const usesRealCluster = (): boolean => Boolean(process.env.KUBECONFIG);

export async function startKubeTarget(opts: StandInOptions = {}): Promise<KubeTarget> {
  const k8s = await loadClientNode();
  if (k8s instanceof Error) throw k8s;
  let standIn: KubeApiStandIn | undefined;
  let kc: KubeConfig;
  if (usesRealCluster()) {
    kc = new k8s.KubeConfig();
    kc.loadFromDefault();
  } else {
    standIn = await startKubeApiStandIn(opts);
    kc = standIn.kubeConfig();
  }
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  const namespaces: string[] = [];
  if (!standIn) await applyCrds(api);

  const withDefaults = <T extends KubernetesObject>(obj: T): T => ({
    ...obj,
    metadata: { ...obj.metadata, namespace: obj.metadata?.namespace },
  });
  return {
    kind: standIn ? 'stand-in' : 'cluster',
    standIn,
    kubeConfig: () => kc,
    create: async (obj) => (await api.create(withDefaults(obj))) as typeof obj,
    read: async (obj) => {
      try {
        return (await api.read(obj as KubernetesObject & { metadata: { name: string } })) as typeof obj;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    },
    patch: async (obj) => (await api.patch(obj, undefined, undefined, undefined, undefined, k8s.PatchStrategy.MergePatch)) as typeof obj,
    remove: async (obj) => {
      await api.delete(obj).catch((err: { code?: number }) => {
        if (err.code !== 404) throw err;
      });
    },
    async namespace() {
      const name = `grt-${randomBytes(4).toString('hex')}`;
      await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
      namespaces.push(name);
      return name;
    },
    async stop() {
      if (standIn) return standIn.stop();
      await Promise.all(namespaces.map((name) => api.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }).catch(() => undefined)));
    },
  };
}

/** Server-side applies the generated CRDs to a real cluster (the stand-in serves them built in). */
async function applyCrds(api: import('@kubernetes/client-node').KubernetesObjectApi): Promise<void> {
  const { parse } = await import('yaml');
  const dir = join(import.meta.dirname, '../../charts/gitops-reverser/crds');
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.yaml'))) {
    const crd = parse(await readFile(join(dir, file), 'utf8')) as KubernetesObject;
    await api.patch(crd, undefined, undefined, 'gitops-reverser-tests', true, 'application/apply-patch+yaml');
  }
}
