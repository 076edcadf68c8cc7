// Where Kubernetes-facing tests run: on the run's shared real control plane (etcd + kube-apiserver 1.20.2,
// shared-control-plane.ts) by default, or on a cluster of your own when KUBECONFIG is set. Tests talk to it
// only through @kubernetes/client-node over HTTPS, so the same test body runs on both.
//
// On the control plane, every request of kubeConfig() passes a proxy of this file's target
// (counting-proxy.ts, TLS with a CA of its own), which gives the tests what they cannot ask of an API
// server: end every watch stream, refuse one request, count requests; and etcd's compaction (compact())
// makes old resourceVersions and continue tokens really expire. The proxy also keeps the test files that
// share the API server apart: each target labels the gitopsreverser.io objects it creates with a scope of
// its own, and lists and watches of those kinds through its proxy select that label, so a service
// configured by the cluster sees its own test file's configuration only. Other objects live in
// namespaces of the target's own (`grt-<random>`; they stay Terminating after deletion: no controllers).
//
// A cluster of your own: `KUBECONFIG=~/.kube/config npm test -- test/integration`. The CRDs of
// charts/gitops-reverser/crds are applied (server-side) first; the account needs to create namespaces, CRDs
// and the test objects. Cases that need the proxy or etcd (`needs(...)`) are skipped there, with the reason,
// and test files running at once may see each other's configuration objects.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { startCountingProxy, type CountingProxy, type SeenRequest } from './counting-proxy.js';
import { loadClientNode } from './kube-api-stand-in.js';
import { compactEtcd } from './kube-control-plane.js';
import { sharedControlPlane, UNCACHED_RESOURCE } from './shared-control-plane.js';
import { createTestPki } from './test-pki.js';

export { UNCACHED_RESOURCE };

/** `control-plane`: the run's shared etcd + kube-apiserver 1.20.2; `cluster`: the one KUBECONFIG names. */
export type KubeTargetKind = 'control-plane' | 'cluster';

/** What some cases need beyond an API server. */
export type KubeCapability =
  /** etcd's history compacted on demand (a real 410 Gone). */
  | 'compaction'
  /** The proxy: end every watch stream, refuse a request, count requests. */
  | 'proxy';

export interface KubeTarget {
  kind: KubeTargetKind;
  /** Through the target's proxy on the control plane; KUBECONFIG's own on a cluster of your own. */
  kubeConfig(): KubeConfig;
  /** The proxy every request of kubeConfig() passes (control plane only). */
  proxy?: CountingProxy;
  /** The label every gitopsreverser.io object this target creates carries (control plane only). */
  scopeLabel?: { key: string; value: string };
  /**
   * From now on, answers the requests `rule` picks with its HTTP error instead of passing them on (proxy);
   * a promise holds the request until it settles, so a test can write or compact between two requests.
   */
  refuse(rule: (req: SeenRequest) => number | undefined | Promise<number | undefined>): void;
  /** Ends every open watch stream from the server side (proxy). */
  dropWatches(): Promise<void>;
  /** Watch streams open through the proxy right now. */
  openWatches(): number;
  /** Compacts etcd's history up to now: older resourceVersions and continue tokens expire. */
  compact(): Promise<void>;
  /** Creates an object (namespaced objects default to the test namespace); returns what the server stored. */
  create<T extends KubernetesObject>(obj: T): Promise<T>;
  /** Reads an object; undefined when it does not exist. */
  read<T extends KubernetesObject>(obj: T): Promise<T | undefined>;
  /** Merge-patches an object's spec/data/metadata (not its status). */
  patch<T extends KubernetesObject>(obj: T): Promise<T>;
  remove(obj: KubernetesObject): Promise<void>;
  /** A fresh namespace for this test. */
  namespace(): Promise<string>;
  /** Removes the namespaces and the cluster-scoped configuration objects it made, and stops its proxy. */
  stop(): Promise<void>;
}

/** Why Kubernetes tests cannot run at all here; undefined when they can. */
export async function kubeSkipReason(): Promise<string | undefined> {
  const client = await loadClientNode();
  return client instanceof Error ? `@kubernetes/client-node cannot load on Node ${process.versions.node}: ${client.message}` : undefined;
}

/** Where this run's Kubernetes tests go (known before any test starts, for skipIf and test names). */
export const kubeTargetKind = (): KubeTargetKind => (process.env.KUBECONFIG ? 'cluster' : 'control-plane');

/** Why a case that needs `capability` cannot run on this run's target; undefined when it can. */
export function missing(capability: KubeCapability, kind: KubeTargetKind = kubeTargetKind()): string | undefined {
  if (kind === 'control-plane') return undefined;
  return capability === 'compaction'
    ? 'compacting etcd on demand needs the test control plane (KUBECONFIG names a cluster of your own)'
    : 'the test proxy (dropping every watch, refusing a request, counting requests) runs on the test control plane only (KUBECONFIG names a cluster of your own)';
}

/** Skips the running case, printing why, when the target lacks `capability`. */
export function needs(ctx: { skip(note?: string): never }, capability: KubeCapability, target?: KubeTarget): void {
  const why = missing(capability, target?.kind);
  if (!why) return;
  console.info(`skipped: ${why}`);
  ctx.skip(why);
}

const API_GROUP = 'gitopsreverser.io';
const SCOPE_KEY = 'gitops-reverser.test/scope';
/** A list, watch or deletecollection of a configuration kind (any version, cluster-wide or in a namespace). */
const CONFIG_COLLECTION = /^\/apis\/gitopsreverser\.io\/[^/]+\/(?:watch\/)?(?:namespaces\/[^/]+\/)?(?:clusterproviders|gitproviders|gittargets|watchrules|clusterwatchrules)$/;

/** Adds `label` to the labelSelector of a configuration kind's collection request. */
function scoped(pathAndQuery: string, method: string, label: string): string {
  if (method !== 'GET' && method !== 'DELETE') return pathAndQuery;
  const url = new URL(pathAndQuery, 'http://x');
  if (!CONFIG_COLLECTION.test(url.pathname)) return pathAndQuery;
  const selector = url.searchParams.get('labelSelector');
  url.searchParams.set('labelSelector', selector ? `${selector},${label}` : label);
  return `${url.pathname}${url.search}`;
}

/** One TLS identity for the proxies of this test worker (its CA goes into their kubeconfigs). */
let proxyTls: Promise<{ key: Buffer; cert: Buffer; ca: Buffer }> | undefined;
const tlsForProxies = (): Promise<{ key: Buffer; cert: Buffer; ca: Buffer }> =>
  (proxyTls ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gr-kube-proxy-'));
    try {
      const pki = await createTestPki(dir);
      return { key: await readFile(pki.server.key), cert: await readFile(pki.server.cert), ca: await readFile(pki.ca.cert) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })());

export async function startKubeTarget(): Promise<KubeTarget> {
  const k8s = await loadClientNode();
  if (k8s instanceof Error) throw k8s;
  const kind = kubeTargetKind();
  let kc: KubeConfig;
  let proxy: CountingProxy | undefined;
  let etcdUrl: string | undefined;
  let rule: (req: SeenRequest) => number | undefined | Promise<number | undefined> = () => undefined;
  const scope = { key: SCOPE_KEY, value: randomBytes(4).toString('hex') };
  const label = `${scope.key}=${scope.value}`;
  if (kind === 'cluster') {
    kc = new k8s.KubeConfig();
    kc.loadFromDefault();
  } else {
    const cp = await sharedControlPlane();
    etcdUrl = cp.etcdUrl;
    const tls = await tlsForProxies();
    proxy = await startCountingProxy(cp.server, { tls, refuse: (r) => rule(r), rewrite: (path, method) => scoped(path, method, label) });
    kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'control-plane', server: proxy.url, caData: tls.ca.toString('base64') }],
      users: [{ name: 'admin', token: cp.adminToken }],
      contexts: [{ name: 'control-plane', cluster: 'control-plane', user: 'admin' }],
      currentContext: 'control-plane',
    });
  }
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  const namespaces: string[] = [];
  if (kind === 'cluster') await applyCrds(api);

  const withScope = <T extends KubernetesObject>(obj: T): T =>
    kind === 'control-plane' && obj.apiVersion?.startsWith(`${API_GROUP}/`)
      ? { ...obj, metadata: { ...obj.metadata, labels: { ...obj.metadata?.labels, [scope.key]: scope.value } } }
      : obj;
  const unavailable = (capability: KubeCapability): Error => new Error(missing(capability, kind));
  return {
    kind,
    proxy,
    scopeLabel: kind === 'control-plane' ? scope : undefined,
    kubeConfig: () => kc,
    refuse(r) {
      if (!proxy) throw unavailable('proxy');
      rule = r;
    },
    async dropWatches() {
      if (!proxy) throw unavailable('proxy');
      await proxy.dropWatches();
    },
    openWatches() {
      if (!proxy) throw unavailable('proxy');
      return proxy.openWatches();
    },
    async compact() {
      if (!etcdUrl) throw unavailable('compaction');
      await compactEtcd(etcdUrl);
    },
    create: async (obj) => (await api.create(withScope(obj))) as typeof obj,
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
      const custom = kc.makeApiClient(k8s.CustomObjectsApi);
      const [group, version] = [API_GROUP, 'v1alpha1'];
      await Promise.all([
        ...namespaces.map((name) => api.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }).catch(() => undefined)),
        // Cluster-scoped objects outlive the namespaces: what this target labelled goes with it.
        ...(kind === 'control-plane'
          ? ['clusterproviders', 'clusterwatchrules'].map((plural) =>
              custom.deleteCollectionClusterCustomObject({ group, version, plural, labelSelector: label }).catch(() => undefined),
            )
          : []),
      ]);
      await proxy?.stop();
    },
  };
}

/** Server-side applies the generated CRDs to a cluster of your own (the control plane has them from the run's start). */
async function applyCrds(api: import('@kubernetes/client-node').KubernetesObjectApi): Promise<void> {
  const { parse } = await import('yaml');
  const dir = join(import.meta.dirname, '../../charts/gitops-reverser/crds');
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.yaml'))) {
    const crd = parse(await readFile(join(dir, file), 'utf8')) as KubernetesObject;
    await api.patch(crd, undefined, undefined, 'gitops-reverser-tests', true, 'application/apply-patch+yaml');
  }
}
