// The per-cluster client registry: which credentials a cluster gets, when a client is rebuilt, and why
// a cluster has none — without quoting a kubeconfig that did not load.
import { describe, expect, it } from 'vitest';
import type { ClusterSource } from '../../config/resolved-config.js';
import { createObjectFetcher } from '../../kube/object-fetcher.js';
import type { IngestJob } from '../../queues/contracts.js';
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
    expect(await fetch(job)).toEqual({ kind: 'failed', reason: registry.whyNoClient('local'), transient: false });
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
