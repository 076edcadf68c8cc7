// Security item 9: credentials in a GitProvider URL (`https://bot:PASS@host/…`) would reach log lines and
// the writer's mirror config. They are refused: the GitProvider is not Ready (CredentialsInURL, on
// spec.url, saying to use spec.secretRef), a CONFIG_FILE with one does not start, and no message repeats
// them. An ssh user (`ssh://git@host/…`, `git@host:org/repo.git`) is a login name, not a secret: allowed.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile } from '../../config/load-config.js';
import { emptyConfigObjects, resolveConfig, type ConfigObjects } from '../../config/resolve-config.js';
import { redactURL } from '../../git/git-remote.js';

const apiVersion = 'gitopsreverser.io/v1alpha1' as const;
const SECRET = 's3cr3t-PASS';
const provider = (name: string, url: string, secretRef = true) => ({
  apiVersion,
  kind: 'GitProvider' as const,
  metadata: { name, namespace: 'ops' },
  spec: { url, allowedBranches: ['*'], ...(secretRef ? { secretRef: { name: 'creds' } } : {}) },
});
const target = (name: string, providerName: string) => ({
  apiVersion,
  kind: 'GitTarget' as const,
  metadata: { name, namespace: 'ops' },
  spec: { providerRef: { name: providerName }, branch: 'main', path: name, clusterProviderRef: { name: 'c1' }, prune: 'OnEvent' as const, reconcileIntervalSeconds: 3600 },
});
const objects = (parts: Partial<ConfigObjects>): ConfigObjects => ({
  ...emptyConfigObjects(),
  ClusterProvider: [{ apiVersion, kind: 'ClusterProvider', metadata: { name: 'c1' }, spec: { watch: { enabled: true, auditJoinGraceSeconds: 5 }, qps: 20, burst: 40 } }],
  Secret: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'ops' }, stringData: { bearerToken: 'tok', known_hosts: 'git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample' } }],
  ...parts,
});
const MOVE = 'move them to the Secret named by spec.secretRef (username and password, or bearerToken) and take them out of the URL';

describe('credentials in a GitProvider URL', () => {
  it('refuses a user, a password or a token in the URL: not Ready, CredentialsInURL on spec.url, nothing repeated', () => {
    const { config, problems } = resolveConfig(
      objects({
        GitProvider: [
          provider('basic', `https://bot:${SECRET}@git.example.com/org/repo.git`),
          provider('token', `https://${SECRET}@git.example.com/org/repo.git`, false),
          provider('ssh-password', `ssh://git:${SECRET}@git.example.com/org/repo.git`),
          provider('split', `https://bot:${SECRET}@x@git.example.com/org/repo.git`),
        ],
        GitTarget: [target('t', 'basic')],
      }),
    );
    expect(problems).toEqual([
      { kind: 'GitProvider', key: 'ops/basic', field: 'spec.url', reason: 'CredentialsInURL', message: `https://git.example.com/org/repo.git carries credentials in the URL: ${MOVE}` },
      { kind: 'GitProvider', key: 'ops/token', field: 'spec.url', reason: 'CredentialsInURL', message: `https://git.example.com/org/repo.git carries credentials in the URL: ${MOVE}` },
      { kind: 'GitProvider', key: 'ops/ssh-password', field: 'spec.url', reason: 'CredentialsInURL', message: `ssh://git:***@git.example.com/org/repo.git carries credentials in the URL: ${MOVE}` },
      { kind: 'GitProvider', key: 'ops/split', field: 'spec.url', reason: 'CredentialsInURL', message: `https://git.example.com/org/repo.git carries credentials in the URL: ${MOVE}` },
      { kind: 'GitTarget', key: 'ops/t', field: 'spec.providerRef.name', reason: 'GitProviderNotReady', message: 'GitProvider ops/basic is not ready (see its conditions)' },
    ]);
    expect(JSON.stringify(problems)).not.toContain(SECRET);
    expect(config.providers.size).toBe(0);
    expect(config.targets.size).toBe(0);
  });

  it('allows the login name of an ssh URL and of scp-like syntax, and URLs without credentials', () => {
    const { problems, config } = resolveConfig(
      objects({
        GitProvider: [
          provider('ssh', 'ssh://git@git.example.com:2222/org/repo.git'),
          provider('scp', 'git@github.com:org/repo.git'),
          provider('https', 'https://git.example.com/org/repo.git'),
        ],
      }),
    );
    expect(problems).toEqual([]);
    expect([...config.providers.values()].map((p) => p.url)).toEqual(['ssh://git@git.example.com:2222/org/repo.git', 'git@github.com:org/repo.git', 'https://git.example.com/org/repo.git']);
  });

  it('keeps a CONFIG_FILE with one from starting, naming the object and field, without the secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gr-url-creds-'));
    try {
      const file = join(dir, 'config.yaml');
      await writeFile(
        file,
        `${apiVersion.replace(/^/, 'apiVersion: ')}\nkind: GitProvider\nmetadata: { name: fleet, namespace: ops }\nspec:\n  url: https://bot:${SECRET}@git.example.com/org/fleet.git\n  allowedBranches: [main]\n`,
      );
      const error = await loadConfigFile(file).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([`GitProvider ops/fleet: spec.url: https://git.example.com/org/fleet.git carries credentials in the URL: ${MOVE}`]);
      expect((error as ConfigError).message).not.toContain(SECRET);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('strips all of a userinfo that holds an "@" (the last "@" ends it), not only up to the first', () => {
    expect(redactURL(`https://bot:${SECRET}@x@git.example.com/r.git`)).toBe('https://git.example.com/r.git');
    expect(redactURL(`ssh://git:${SECRET}@x@git.example.com/r.git`)).toBe('ssh://git:***@git.example.com/r.git');
    // An "@" in the path is no userinfo.
    expect(redactURL('https://git.example.com/org/r@2.git')).toBe('https://git.example.com/org/r@2.git');
  });
});
