// An ssh remote is trusted only with the Git host's key: a GitProvider whose Secret has no known_hosts is
// not Ready (KnownHostsRequired, naming the Secret and how to get the key); a CONFIG_FILE with one does not
// start. Without it, the first server to answer for the host would receive every push.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../config/load-config.js';
import { demoConfigYaml } from '../../config/demo-config.js';

const sshConfig = (secret: Record<string, string>) =>
  demoConfigYaml('git@git.example.com:org/repo.git', { cluster: 'c1', token: 't0ken-c1' })
    .replace('  allowedBranches: ["main"]', '  allowedBranches: ["main"]\n  secretRef: { name: ssh-key }')
    .concat(`---\napiVersion: v1\nkind: Secret\nmetadata: { name: ssh-key, namespace: gitops-reverser }\nstringData: ${JSON.stringify(secret)}\n`);

describe('ssh remotes need known_hosts', () => {
  it('refuses a GitProvider whose Secret has an identity but no known_hosts, naming the Secret', () => {
    let error: unknown;
    try {
      parseConfig(sshConfig({ identity: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n' }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(
      'spec.secretRef: Secret gitops-reverser/ssh-key has no known_hosts: an ssh remote needs the Git host\'s public key (`ssh-keyscan HOST`, checked against the fingerprints the host publishes), or any server answering for it would receive every push',
    );
  });

  it('takes one with known_hosts', () => {
    const config = parseConfig(sshConfig({ identity: 'key', known_hosts: 'git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample' }));
    expect([...config.providers.values()].map((p) => p.url)).toEqual(['git@git.example.com:org/repo.git']);
  });
});
