// The rules of lenient resolution that protect one tenant from another: one set of credentials per
// partition, one cluster per client-certificate subject, no local repositories from the cluster's objects.
import { describe, expect, it } from 'vitest';
import { emptyConfigObjects, resolveConfig, type ConfigObjects } from '../../config/resolve-config.js';

const apiVersion = 'gitopsreverser.io/v1alpha1' as const;
const secret = (namespace: string, name: string, stringData: Record<string, string>) => ({ apiVersion: 'v1' as const, kind: 'Secret' as const, metadata: { name, namespace }, stringData });
const provider = (namespace: string, name: string, url: string, secretName?: string) => ({
  apiVersion,
  kind: 'GitProvider' as const,
  metadata: { name, namespace },
  spec: { url, allowedBranches: ['*'], ...(secretName ? { secretRef: { name: secretName } } : {}) },
});
const target = (namespace: string, name: string, providerName: string, path: string) => ({
  apiVersion,
  kind: 'GitTarget' as const,
  metadata: { name, namespace },
  spec: { providerRef: { name: providerName }, branch: 'main', path, clusterProviderRef: { name: 'c1' }, prune: 'OnEvent' as const, reconcileIntervalSeconds: 3600 },
});
const cluster = (name: string, spec: ConfigObjects['ClusterProvider'][number]['spec']) => ({ apiVersion, kind: 'ClusterProvider' as const, metadata: { name }, spec });

function objects(parts: Partial<ConfigObjects>): ConfigObjects {
  return { ...emptyConfigObjects(), ClusterProvider: [cluster('c1', { watch: { enabled: true, auditJoinGraceSeconds: 5 }, qps: 20, burst: 40 })], ...parts };
}

describe('resolveConfig between tenants', () => {
  it('refuses a target that would push to another tenant\'s repository and branch with other credentials', () => {
    const { config, problems } = resolveConfig(
      objects({
        Secret: [secret('team-a', 'creds', { bearerToken: 'a-token' }), secret('team-b', 'creds', { bearerToken: 'b-token' })],
        GitProvider: [provider('team-a', 'repo', 'https://git.example.com/org/repo.git', 'creds'), provider('team-b', 'repo', 'https://git.example.com/org/repo', 'creds')],
        GitTarget: [target('team-a', 'a', 'repo', 'a'), target('team-b', 'b', 'repo', 'b')],
      }),
    );
    expect(problems).toEqual([
      {
        kind: 'GitTarget',
        key: 'team-b/b',
        field: 'spec.providerRef.name',
        reason: 'PartitionConflict',
        message: 'repository https://git.example.com/org/repo branch main is already written by GitTarget team-a/a through GitProvider team-a/repo with other credentials; use that GitProvider or another branch',
      },
    ]);
    expect([...config.targets.keys()]).toEqual(['team-a/a']);
    expect([...config.partitions.values()].map((p) => p.credentials)).toEqual([{ bearerToken: 'a-token' }]);
  });

  it('lets two providers with the same credentials share a repository and branch', () => {
    const { problems } = resolveConfig(
      objects({
        Secret: [secret('team-a', 'creds', { bearerToken: 't' }), secret('team-b', 'creds', { bearerToken: 't' })],
        GitProvider: [provider('team-a', 'repo', 'https://git.example.com/org/repo.git', 'creds'), provider('team-b', 'repo', 'https://git.example.com/org/repo.git', 'creds')],
        GitTarget: [target('team-a', 'a', 'repo', 'a'), target('team-b', 'b', 'repo', 'b')],
      }),
    );
    expect(problems).toEqual([]);
  });

  it('gives one client-certificate subject to one cluster only', () => {
    const { config, problems } = resolveConfig({
      ...emptyConfigObjects(),
      ClusterProvider: [
        cluster('first', { audit: { clientCertificate: { commonName: 'kube-apiserver' } }, qps: 20, burst: 40 }),
        cluster('second', { audit: { clientCertificate: { commonName: 'kube-apiserver' } }, qps: 20, burst: 40 }),
      ],
    });
    expect(problems).toEqual([
      {
        kind: 'ClusterProvider',
        key: 'second',
        field: 'spec.audit.clientCertificate.commonName',
        reason: 'DuplicateCommonName',
        message: '"kube-apiserver" is already the certificate of ClusterProvider first',
      },
    ]);
    expect([...config.clusters.keys()]).toEqual(['first']);
  });

  it('refuses local repositories when told to (configuration from the cluster), and allows them otherwise', () => {
    const parts = objects({ GitProvider: [provider('ops', 'local', '/var/lib/gitops-reverser/git/other.git'), provider('ops', 'file', 'file:///etc')] });
    expect(resolveConfig(parts).problems).toEqual([]);
    const { problems } = resolveConfig(parts, { allowLocalRepositories: false });
    expect(problems.map((p) => [p.key, p.field, p.reason])).toEqual([
      ['ops/local', 'spec.url', 'LocalRepositoryRefused'],
      ['ops/file', 'spec.url', 'LocalRepositoryRefused'],
    ]);
    expect(problems[0]?.message).toContain('set ALLOW_LOCAL_GIT_REPOSITORIES=true');
  });
});

describe('resolveConfig of a ClusterProvider kubeconfig', () => {
  it('refuses a kubeconfig that would run a command in the service, naming the field and no value', () => {
    const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://10.0.0.1:6443" } }]
users: [{ name: u, user: { exec: { apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: ["-c", "curl evil"] } } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`;
    const { config, problems } = resolveConfig({
      ...emptyConfigObjects(),
      Secret: [secret('ops', 'remote', { kubeconfig })],
      ClusterProvider: [cluster('remote', { watch: { enabled: true, auditJoinGraceSeconds: 5 }, kubeConfigSecretRef: { name: 'remote', namespace: 'ops', key: 'kubeconfig' }, qps: 20, burst: 40 })],
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ kind: 'ClusterProvider', key: 'remote', field: 'spec.kubeConfigSecretRef', reason: 'InvalidKubeConfig' });
    expect(problems[0]?.message).toMatch(/^the kubeconfig is refused: users\[0\]\.user\.exec /);
    expect(problems[0]?.message).not.toContain('curl');
    // Still a cluster for its audit webhook: reads fail (and are kept) until the kubeconfig is fixed.
    expect(config.clusters.has('remote')).toBe(true);
  });
});
