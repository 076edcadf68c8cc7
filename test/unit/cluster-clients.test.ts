// The per-cluster client registry: which credentials a cluster gets, when a client is rebuilt, and why
// a cluster has none — without quoting a kubeconfig that did not load, and refusing a Secret's kubeconfig
// that would run commands or read files in the service's pod.
import { describe, expect, it } from 'vitest';
import type { ClusterSource } from '../../config/resolved-config.js';
import { createObjectFetcher } from '../../kube/object-fetcher.js';
import type { IngestJob } from '../../core/contracts.js';
import { kubeSkipReason } from '../support/kube-target.js';

// client-node must load for KubeConfig; where it cannot, the file skips, saying why.
const skipReason = await kubeSkipReason();
if (skipReason) console.warn(`skipping cluster-clients.test.ts: ${skipReason}`);
const k8s = skipReason ? undefined : await import('@kubernetes/client-node');
const { ClusterClients } = skipReason ? ({} as typeof import('../../kube/cluster-clients.js')) : await import('../../kube/cluster-clients.js');

function kubeConfigText(server: string, token: string): string {
  const kc = new k8s!.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'remote', server, skipTLSVerify: true }],
    users: [{ name: 'reader', token }],
    contexts: [{ name: 'remote', cluster: 'remote', user: 'reader' }],
    currentContext: 'remote',
  });
  return kc.exportConfig();
}

const source = (name: string, extra: Partial<ClusterSource> = {}): ClusterSource => ({ name, qps: 20, burst: 40, ...extra });
const clusters = (...sources: ClusterSource[]) => new Map(sources.map((s) => [s.name, s]));

describe.skipIf(skipReason !== undefined)('ClusterClients', () => {
  it("gives a cluster with a kubeconfig Secret that kubeconfig, and one without the service's own", () => {
    const own = new k8s!.KubeConfig();
    own.loadFromOptions({ clusters: [{ name: 'own', server: 'https://own:6443' }], users: [{ name: 'sa' }], contexts: [{ name: 'own', cluster: 'own', user: 'sa' }], currentContext: 'own' });
    const registry = new ClusterClients({ defaultKubeConfig: own });
    registry.update(clusters(source('remote', { kubeConfig: kubeConfigText('https://remote:6443', 'tok') }), source('local')));
    expect(registry.get('remote')?.kubeConfig.getCurrentCluster()?.server).toBe('https://remote:6443');
    expect(registry.get('remote')?.credentials).toBe('the kubeconfig of spec.kubeConfigSecretRef');
    expect(registry.get('local')?.kubeConfig).toBe(own);
    expect(registry.get('local')?.credentials).toBe("the service's own credentials");
    expect(registry.get('local')?.limiter.ratePerSecond).toBe(20);
    expect(registry.get('local')?.limiter.burst).toBe(40);
  });

  it('rebuilds a client only when its kubeconfig text or its limits change', () => {
    const registry = new ClusterClients();
    const text = kubeConfigText('https://remote:6443', 'tok');
    registry.update(clusters(source('a', { kubeConfig: text }), source('b', { kubeConfig: text })));
    const a = registry.get('a');
    const b = registry.get('b');
    registry.update(clusters(source('a', { kubeConfig: text, allowedNamespaces: ['x'] }), source('b', { kubeConfig: text, qps: 5 })));
    expect(registry.get('a')).toBe(a);
    expect(registry.get('b')).not.toBe(b);
    expect(registry.get('b')?.limiter.ratePerSecond).toBe(5);
    registry.update(clusters(source('a', { kubeConfig: kubeConfigText('https://remote:6443', 'rotated') })));
    expect(registry.get('a')).not.toBe(a);
    expect(registry.get('b')).toBeUndefined();
    expect(registry.whyNoClient('b')).toBe('cluster b is not configured');
  });

  it('has no client for a cluster without a kubeconfig when the service has no credentials, and says why', async () => {
    const registry = new ClusterClients();
    registry.update(clusters(source('local')));
    expect(registry.get('local')).toBeUndefined();
    expect(registry.whyNoClient('local')).toMatch(/^cluster local has no spec.kubeConfigSecretRef and the service runs without credentials of its own/);
    const fetch = createObjectFetcher(registry);
    const job: IngestJob = {
      clusterId: 'local',
      auditID: 'a1',
      verb: 'update',
      stageTimestamp: '',
      user: { username: 'u' },
      objectRef: { resource: 'configmaps', namespace: 'n', name: 'x', apiVersion: 'v1' },
      responseCode: 200,
    };
    // A failure, not a missing body: the event fails, to be retried and replayed once the cluster has a client.
    expect(await fetch(job)).toEqual({ kind: 'failed', reason: `cannot read configmaps n/x: ${registry.whyNoClient('local')}`, transient: false });
    // What names no object stays unaddressable, whatever the client.
    expect(await fetch({ ...job, objectRef: { resource: 'configmaps', namespace: 'n', name: 'x', apiVersion: 'v1', subresource: 'status' } })).toEqual({
      kind: 'unaddressable',
      reason: 'configmaps/status: the status subresource is not an object that can be read back',
    });
  });

  it("refuses a Secret's kubeconfig that would act on the service's pod, and says why when a read needs it", async () => {
    const registry = new ClusterClients();
    const exec = [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: r, cluster: {server: "https://attacker.example:6443"}}]',
      'users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: sh, args: ["-c", "echo pwned-s3cret"]}}}]',
      'contexts: [{name: r, context: {cluster: r, user: u}}]',
      'current-context: r',
    ].join('\n');
    const tokenFile = exec.replace(/users: .*/, 'users: [{name: u, user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}}]');
    registry.update(clusters(source('exec', { kubeConfig: exec }), source('token-file', { kubeConfig: tokenFile })));
    expect(registry.get('exec')).toBeUndefined();
    expect(registry.whyNoClient('exec')).toMatch(
      /^cluster exec: the kubeconfig of spec.kubeConfigSecretRef is refused: users\[0\]\.user\.exec runs a command in the service's pod; a kubeconfig from a Secret may hold only/,
    );
    expect(registry.whyNoClient('exec')).not.toMatch(/pwned|sh\b/);
    expect(registry.get('token-file')).toBeUndefined();
    expect(registry.whyNoClient('token-file')).toMatch(/^cluster token-file: the kubeconfig of spec.kubeConfigSecretRef is refused: users\[0\]\.user\.tokenFile reads a token from a file/);
    expect(registry.whyNoClient('token-file')).not.toContain('/var/run');

    const fetch = createObjectFetcher(registry);
    const job: IngestJob = {
      clusterId: 'exec',
      auditID: 'a1',
      verb: 'update',
      stageTimestamp: '',
      user: { username: 'u' },
      objectRef: { resource: 'configmaps', namespace: 'shop', name: 'settings', apiVersion: 'v1' },
      responseCode: 200,
    };
    expect(await fetch(job)).toEqual({ kind: 'failed', transient: false, reason: `cannot read configmaps shop/settings: ${registry.whyNoClient('exec')}` });
  });

  it("builds a Secret's kubeconfig from its inline credentials only, and trusts the service's own as it is", () => {
    const own = new k8s!.KubeConfig();
    // The service's own kubeconfig may use exec (a developer's KUBECONFIG): it is not checked.
    own.loadFromOptions({
      clusters: [{ name: 'own', server: 'https://own:6443', skipTLSVerify: false }],
      users: [{ name: 'sa', exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' } }],
      contexts: [{ name: 'own', cluster: 'own', user: 'sa' }],
      currentContext: 'own',
    });
    const registry = new ClusterClients({ defaultKubeConfig: own });
    registry.update(clusters(source('remote', { kubeConfig: kubeConfigText('https://remote:6443/', 'tok') }), source('local')));
    expect(registry.get('local')?.kubeConfig).toBe(own);
    const remote = registry.get('remote')!.kubeConfig;
    expect(remote.getCurrentCluster()).toEqual({ name: 'remote', server: 'https://remote:6443', skipTLSVerify: true });
    expect(remote.getCurrentUser()).toEqual({ name: 'reader', token: 'tok' });
  });

  it('says why a kubeconfig did not load without quoting it', () => {
    const registry = new ClusterClients();
    const secretish = 'users:\n- name: u\n  user: { token: "s3cr3t-t0ken\n';
    registry.update(clusters(source('broken', { kubeConfig: secretish }), source('empty', { kubeConfig: 'apiVersion: v1\nkind: Config\n' })));
    expect(registry.get('broken')).toBeUndefined();
    expect(registry.whyNoClient('broken')).toMatch(/^cluster broken: the kubeconfig of spec.kubeConfigSecretRef is not valid YAML at line \d+/);
    expect(registry.whyNoClient('broken')).not.toContain('s3cr3t');
    expect(registry.whyNoClient('empty')).toBe('cluster empty: no current context with a cluster in the kubeconfig of spec.kubeConfigSecretRef');
  });
});

describe.skipIf(skipReason !== undefined)('the object fetcher of the router', () => {
  it('holds an unreachable cluster for a while: its reads fail at once (to be retried), then it is tried again', async () => {
    const { createServer } = await import('node:net');
    // A port that refuses connections: listen, note it, close.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const registry = new ClusterClients();
    registry.update(clusters(source('down', { kubeConfig: kubeConfigText(`http://127.0.0.1:${port}`, 't') })));
    let clock = 0;
    const fetch = createObjectFetcher(registry, { retries: 0, sleep: async () => undefined, unreachableHoldMs: 15_000, now: () => clock });
    const job: IngestJob = {
      clusterId: 'down',
      auditID: 'a1',
      verb: 'update',
      stageTimestamp: '',
      user: { username: 'u' },
      objectRef: { resource: 'configmaps', namespace: 'n', name: 'x', apiVersion: 'v1' },
      responseCode: 200,
    };
    const first = await fetch(job);
    expect(first).toMatchObject({ kind: 'failed', transient: true });
    const held = await fetch(job);
    expect(held).toEqual({ kind: 'failed', transient: true, reason: expect.stringMatching(/^not tried: cluster down was unreachable moments ago/) });
    clock = 15_001;
    const again = await fetch(job);
    expect(again).toMatchObject({ kind: 'failed', transient: true });
    expect((again as { reason: string }).reason).not.toMatch(/^not tried/);
  });
});
