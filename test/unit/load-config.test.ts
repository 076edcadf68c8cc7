import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_CLUSTER, DEMO_TOKEN, demoConfigYaml, loadDemoConfig } from '../../config/demo-config.js';
import { ConfigError, isValidBranchName, loadConfigFile, parseConfig } from '../../config/load-config.js';
import { partitionOf } from '../../queues/names.js';

const V = 'apiVersion: gitopsreverser.io/v1alpha1';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** A full, valid configuration: two clusters, a remote and a local provider, four targets, two rules. */
const VALID = `apiVersion: v1
kind: Secret
metadata: { name: audit-tokens, namespace: ops }
stringData: { prod: prod-token }
data: { stage: ${b64('stage-token')} }
---
apiVersion: v1
kind: Secret
metadata: { name: git-creds, namespace: ops }
data:
  username: ${b64('bot')}
  password: ${b64('p@ss:wörd')}
stringData:
  # stringData wins over data, as in Kubernetes
  username: robot
---
${V}
kind: ClusterProvider
metadata: { name: prod-eu }
spec:
  audit:
    tokenSecretRef: { name: audit-tokens, namespace: ops, key: prod }
  allowedNamespaces: [shop, payments]
---
${V}
kind: ClusterProvider
metadata: { name: stage }
spec:
  audit:
    tokenSecretRef: { name: audit-tokens, namespace: ops, key: stage }
---
${V}
kind: GitProvider
metadata: { name: fleet, namespace: ops }
spec:
  url: https://github.com/example/fleet.git
  secretRef: { name: git-creds }
  allowedBranches: [main, "release/*"]
---
${V}
kind: GitProvider
metadata: { name: local, namespace: ops }
spec:
  url: /srv/git/local.git
  allowedBranches: ["*"]
---
${V}
kind: GitTarget
metadata: { name: prod, namespace: ops }
spec:
  providerRef: { name: fleet }
  branch: main
  path: clusters/prod
  clusterProviderRef: { name: prod-eu }
---
${V}
kind: GitTarget
metadata: { name: stage, namespace: ops }
spec:
  providerRef: { name: fleet }
  branch: main
  path: ./clusters//stage/
  clusterProviderRef: { name: stage }
---
${V}
kind: GitTarget
metadata: { name: release, namespace: ops }
spec:
  providerRef: { name: fleet }
  branch: release/2024.1
  path: .
  clusterProviderRef: { name: prod-eu }
---
${V}
kind: GitTarget
metadata: { name: scratch, namespace: ops }
spec:
  providerRef: { name: local }
  branch: main
  clusterProviderRef: { name: stage }
---
${V}
kind: WatchRule
metadata: { name: web, namespace: ops }
spec:
  targetRef: { name: prod }
  rules:
    - operations: [CREATE, UPDATE]
      apiGroups: [apps]
      apiVersions: [v1]
      resources: [deployments]
---
${V}
kind: ClusterWatchRule
metadata: { name: everything }
spec:
  targetRef: { name: release, namespace: ops }
  rules:
    - operations: ["*"]
      apiGroups: ["*"]
      resources: ["*"]
`;

/** The problems parseConfig reports for `text`; fails the test when it does not throw a ConfigError. */
function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError, parseConfig succeeded');
}

const secret = (name: string, ns: string, data: Record<string, string>) =>
  `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: ${ns} }\nstringData: ${JSON.stringify(data)}\n`;
const clusterProvider = (name: string, secretName = 'tok', key = 'token') =>
  `${V}\nkind: ClusterProvider\nmetadata: { name: ${name} }\nspec: { audit: { tokenSecretRef: { name: ${secretName}, namespace: ops, key: ${key} } } }\n`;
const gitProvider = (name: string, url: string, allowed: string[] = ['*'], secretRef?: string) =>
  `${V}\nkind: GitProvider\nmetadata: { name: ${name}, namespace: ops }\nspec: { url: ${JSON.stringify(url)}, allowedBranches: ${JSON.stringify(allowed)}${secretRef ? `, secretRef: { name: ${secretRef} }` : ''} }\n`;
const gitTarget = (name: string, provider: string, branch: string, path: string, cluster = 'c1') =>
  `${V}\nkind: GitTarget\nmetadata: { name: ${name}, namespace: ops }\nspec: { providerRef: { name: ${provider} }, branch: ${JSON.stringify(branch)}, path: ${JSON.stringify(path)}, clusterProviderRef: { name: ${cluster} } }\n`;
const docs = (...parts: string[]) => parts.join('---\n');

describe('parseConfig: a valid configuration', () => {
  const config = parseConfig(VALID, 'valid.yaml');

  it('decodes Secret tokens from stringData and base64 data', () => {
    expect([...config.clusters.values()]).toMatchObject([
      { name: 'prod-eu', token: 'prod-token', allowedNamespaces: ['shop', 'payments'] },
      { name: 'stage', token: 'stage-token', allowedNamespaces: undefined },
    ]);
  });

  it('resolves targets with normalised paths, providers and credentials', () => {
    const fleet = {
      key: 'ops/fleet',
      url: 'https://github.com/example/fleet.git',
      credentials: { username: 'robot', password: 'p@ss:wörd' },
      allowedBranches: ['main', 'release/*'],
    };
    const local = { key: 'ops/local', url: '/srv/git/local.git', credentials: undefined, allowedBranches: ['*'] };
    expect([...config.targets.keys()]).toEqual(['ops/prod', 'ops/stage', 'ops/release', 'ops/scratch']);
    expect(config.targets.get('ops/prod')).toEqual({
      key: 'ops/prod',
      provider: fleet,
      branch: 'main',
      path: 'clusters/prod',
      clusterProvider: 'prod-eu',
      partition: partitionOf('https://github.com/example/fleet.git', 'main'),
      prune: 'OnEvent',
      reconcileIntervalSeconds: 3600,
    });
    expect(config.targets.get('ops/stage')?.path).toBe('clusters/stage');
    expect(config.targets.get('ops/release')).toEqual({
      key: 'ops/release',
      provider: fleet,
      branch: 'release/2024.1',
      path: '',
      clusterProvider: 'prod-eu',
      partition: partitionOf('https://github.com/example/fleet.git', 'release/2024.1'),
      prune: 'OnEvent',
      reconcileIntervalSeconds: 3600,
    });
    // No path at all is the root too.
    expect(config.targets.get('ops/scratch')).toEqual({
      key: 'ops/scratch',
      provider: local,
      branch: 'main',
      path: '',
      clusterProvider: 'stage',
      partition: partitionOf('/srv/git/local.git', 'main'),
      prune: 'OnEvent',
      reconcileIntervalSeconds: 3600,
    });
  });

  it('keys partitions by {url, branch}; two targets on one url and branch share one partition', () => {
    const fleetMain = partitionOf('https://github.com/example/fleet.git', 'main');
    const fleetRelease = partitionOf('https://github.com/example/fleet.git', 'release/2024.1');
    const localMain = partitionOf('/srv/git/local.git', 'main');
    expect(config.targets.get('ops/prod')?.partition).toEqual(config.targets.get('ops/stage')?.partition);
    expect(config.partitions).toEqual(
      new Map([
        [fleetMain.id, { partition: fleetMain, credentials: { username: 'robot', password: 'p@ss:wörd' } }],
        [fleetRelease.id, { partition: fleetRelease, credentials: { username: 'robot', password: 'p@ss:wörd' } }],
        [localMain.id, { partition: localMain, credentials: undefined }],
      ]),
    );
    expect(new Set([fleetMain.id, fleetRelease.id, localMain.id]).size).toBe(3);
  });

  it('resolves WatchRules to their own namespace and ClusterWatchRules without one', () => {
    expect(config.rules).toEqual([
      {
        source: 'WatchRule ops/web',
        kind: 'WatchRule',
        key: 'ops/web',
        namespace: 'ops',
        targetKey: 'ops/prod',
        rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: ['apps'], apiVersions: ['v1'], resources: ['deployments'] }],
      },
      {
        source: 'ClusterWatchRule everything',
        kind: 'ClusterWatchRule',
        key: 'everything',
        namespace: undefined,
        targetKey: 'ops/release',
        rules: [{ operations: ['*'], apiGroups: ['*'], resources: ['*'] }],
      },
    ]);
    expect(config.rules[1]?.namespace).toBeUndefined();
  });

  it('defaults metadata.namespace to "default" and skips empty documents', () => {
    const text = docs(
      'apiVersion: v1\nkind: Secret\nmetadata: { name: tok }\nstringData: { token: t }\n',
      '',
      `${V}\nkind: ClusterProvider\nmetadata: { name: c1 }\nspec: { audit: { tokenSecretRef: { name: tok, namespace: default, key: token } } }\n`,
      `${V}\nkind: GitProvider\nmetadata: { name: repo }\nspec: { url: /tmp/repo.git, allowedBranches: [main] }\n`,
      `${V}\nkind: GitTarget\nmetadata: { name: t }\nspec: { providerRef: { name: repo }, branch: main, clusterProviderRef: { name: c1 } }\n`,
    );
    const c = parseConfig(text);
    expect(c.clusters.get('c1')?.token).toBe('t');
    expect([...c.targets.keys()]).toEqual(['default/t']);
    expect(c.targets.get('default/t')?.provider.key).toBe('default/repo');
  });

  it('accepts an empty file as an empty configuration', () => {
    const c = parseConfig('');
    expect(c.clusters.size).toBe(0);
    expect(c.targets.size).toBe(0);
    expect(c.rules).toEqual([]);
    expect(c.partitions.size).toBe(0);
  });
});

describe('parseConfig: an invalid configuration', () => {
  const INVALID = docs(
    // 1: the token Secret has a different key than the one referenced
    secret('tok', 'ops', { other: 'x' }),
    // 2: unknown kind
    `${V}\nkind: Bogus\nmetadata: { name: b }\n`,
    // 3: bad DNS name and a missing spec field
    `${V}\nkind: ClusterProvider\nmetadata: { name: Prod_EU }\nspec: {}\n`,
    // 4: Secret missing
    clusterProvider('missing-secret', 'nope'),
    // 5: Secret without the key
    clusterProvider('c1'),
    // 6: duplicate
    clusterProvider('c1', 'tok', 'other'),
    // 7: remote https URL without secretRef
    gitProvider('gh', 'https://github.com/org/repo.git', ['main', 'release/*']),
    // 8: missing allowedBranches
    `${V}\nkind: GitProvider\nmetadata: { name: nobranches, namespace: ops }\nspec: { url: /tmp/x.git }\n`,
    // 9: branch not allowed by release/* (a glob does not cross '/')
    gitTarget('t1', 'gh', 'release/1.0/x', 'one'),
    // 10: invalid branch, '..' in path, missing ClusterProvider
    gitTarget('t2', 'gh', 'feature..x', '../up', 'zz'),
    // 11: missing GitProvider
    gitTarget('t3', 'missing', 'main', 'three'),
    // 12, 13: overlapping paths on one partition
    gitTarget('t4', 'gh', 'release/1', 'a/b'),
    gitTarget('t5', 'gh', 'release/1', './a/'),
    // 14: a subresource in resources
    `${V}\nkind: WatchRule\nmetadata: { name: w, namespace: ops }\nspec:\n  targetRef: { name: t4 }\n  rules: [{ operations: ["*"], apiGroups: [apps], resources: ["deployments/scale"] }]\n`,
    // 15: WatchRule to a missing GitTarget
    `${V}\nkind: WatchRule\nmetadata: { name: w2, namespace: ops }\nspec:\n  targetRef: { name: nope }\n  rules: [{ operations: ["*"], apiGroups: [""], resources: [pods] }]\n`,
    // 16: ClusterWatchRule to a missing GitTarget
    `${V}\nkind: ClusterWatchRule\nmetadata: { name: cw }\nspec:\n  targetRef: { name: nope, namespace: other }\n  rules: [{ operations: [DELETE], apiGroups: ["*"], resources: ["*"] }]\n`,
    // 17: YAML syntax error
    'a: [1, 2\n',
    // 18: a duplicate Secret (still without the key "token")
    secret('tok', 'ops', { other: 'y' }),
  );

  it('throws one ConfigError naming the source and listing every problem', () => {
    let error: unknown;
    try {
      parseConfig(INVALID, 'config.yaml');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.name).toBe('ConfigError');
    expect(e.source).toBe('config.yaml');
    expect(e.message.startsWith('invalid configuration in config.yaml:\n  - document 2 (Bogus b): kind: unknown kind')).toBe(true);
    expect(e.message.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(e.problems.length);
    const lines = [
      '  - document 2 (Bogus b): kind: unknown kind, expected one of ClusterProvider, GitProvider, GitTarget, WatchRule, ClusterWatchRule, Secret',
      '  - document 3 (ClusterProvider Prod_EU): metadata.name: must be a DNS-1123 name (lowercase letters, digits, "-" and ".")',
      '  - document 3 (ClusterProvider Prod_EU): spec: a ClusterProvider needs spec.audit (audit webhook) or spec.watch.enabled: true (watch mode)',
      '  - ClusterProvider missing-secret: spec.audit.tokenSecretRef: Secret ops/nope not found',
      '  - ClusterProvider c1: spec.audit.tokenSecretRef.key: Secret ops/tok has no key "token"',
      '  - ClusterProvider c1: defined more than once',
      '  - Secret ops/tok: defined more than once',
      '  - GitProvider ops/gh: spec.secretRef: required for remote URL https://github.com/org/repo.git',
      '  - document 8 (GitProvider ops/nobranches): spec.allowedBranches: Invalid input: expected array, received undefined',
      '  - GitTarget ops/t1: spec.branch: "release/1.0/x" is not allowed by GitProvider ops/gh (allowedBranches: main, release/*)',
      '  - GitTarget ops/t2: spec.branch: "feature..x" is not a valid Git branch name',
      '  - GitTarget ops/t2: spec.clusterProviderRef.name: ClusterProvider zz not found',
      '  - GitTarget ops/t3: spec.providerRef.name: GitProvider ops/missing not found',
      '  - GitTarget ops/t5: spec.path: "a" overlaps GitTarget ops/t4 ("a/b") on the same repository and branch',
      '  - document 14 (WatchRule ops/w): spec.rules[0].resources[0]: subresources cannot be selected',
      '  - WatchRule ops/w2: spec.targetRef.name: GitTarget ops/nope not found',
      '  - ClusterWatchRule cw: spec.targetRef: GitTarget other/nope not found',
    ];
    for (const line of lines) expect(e.message.split('\n')).toContain(line);
    expect(e.problems.some((p) => p.startsWith('document 17: YAML error: Flow sequence in block collection must be sufficiently indented and end with a ]'))).toBe(
      true,
    );
  });

  it('reports a ".." base path once, naming the field once', () => {
    const problems = problemsOf(INVALID);
    expect(problems).toContain('GitTarget ops/t2: spec.path: "../up" has a ".." segment, which would escape the repository');
  });

  it('reports the other problems of a GitTarget whose GitProvider is missing', () => {
    const problems = problemsOf(
      docs(secret('tok', 'ops', { token: 't' }), clusterProvider('c1'), gitTarget('orphan', 'missing', 'feature..x', '../up', 'zz')),
    );
    expect(problems).toContain('GitTarget ops/orphan: spec.providerRef.name: GitProvider ops/missing not found');
    expect(problems).toContain('GitTarget ops/orphan: spec.clusterProviderRef.name: ClusterProvider zz not found');
    expect(problems).toContain('GitTarget ops/orphan: spec.branch: "feature..x" is not a valid Git branch name');
    expect(problems.some((p) => p.startsWith('GitTarget ops/orphan: spec.path: '))).toBe(true);
  });

  it('does not claim a GitTarget that is defined (but broken) is "not found"', () => {
    const problems = problemsOf(
      docs(
        secret('tok', 'ops', { token: 't' }),
        clusterProvider('c1'),
        gitTarget('broken', 'missing', 'main', 'x'),
        `${V}\nkind: WatchRule\nmetadata: { name: w, namespace: ops }\nspec:\n  targetRef: { name: broken }\n  rules: [{ operations: ["*"], apiGroups: ["*"], resources: ["*"] }]\n`,
      ),
    );
    expect(problems).toEqual(['GitTarget ops/broken: spec.providerRef.name: GitProvider ops/missing not found']);
  });

  it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty'])('reports kind %j as an unknown kind instead of crashing', (kind) => {
    expect(problemsOf(`${V}\nkind: ${kind}\nmetadata: { name: x }\n`)).toEqual([
      `document 1 (${kind} x): kind: unknown kind, expected one of ClusterProvider, GitProvider, GitTarget, WatchRule, ClusterWatchRule, Secret`,
    ]);
  });

  it('reports a document without a kind, and a non-object document', () => {
    expect(problemsOf('metadata: { name: x }\n---\n- a\n- b\n')).toEqual([
      'document 1 (? x): kind: unknown kind, expected one of ClusterProvider, GitProvider, GitTarget, WatchRule, ClusterWatchRule, Secret',
      'document 2 (? ?): kind: unknown kind, expected one of ClusterProvider, GitProvider, GitTarget, WatchRule, ClusterWatchRule, Secret',
    ]);
  });

  it('refuses data that is not base64', () => {
    expect(problemsOf('apiVersion: v1\nkind: Secret\nmetadata: { name: s, namespace: ops }\ndata: { token: "not base64!" }\n')).toEqual([
      'document 1 (Secret ops/s): data.token: must be base64',
    ]);
  });

  it('requires a secretRef for every remote URL form, not for local ones', () => {
    const urls = ['https://h/r.git', 'http://h/r.git', 'ssh://git@h/r.git', 'git@github.com:org/r.git'];
    const problems = problemsOf(docs(...urls.map((u, i) => gitProvider(`p${i}`, u))));
    expect(problems).toEqual(urls.map((u, i) => `GitProvider ops/p${i}: spec.secretRef: required for remote URL ${u}`));
    expect(() => parseConfig(docs(gitProvider('a', '/srv/r.git'), gitProvider('b', 'file:///srv/r.git'), gitProvider('c', 'relative/r.git')))).not.toThrow();
  });

  it('reports a GitProvider secretRef to a missing Secret in its own namespace', () => {
    expect(problemsOf(docs(secret('creds', 'other', { password: 'x' }), gitProvider('gh', 'https://h/r.git', ['main'], 'creds')))).toEqual([
      'GitProvider ops/gh: spec.secretRef: Secret ops/creds not found',
    ]);
  });

  it('reports overlapping paths: the root overlaps everything, equal paths overlap, siblings do not', () => {
    const base = [secret('tok', 'ops', { token: 't' }), clusterProvider('c1'), gitProvider('repo', '/srv/r.git')];
    expect(problemsOf(docs(...base, gitTarget('root', 'repo', 'main', '.'), gitTarget('sub', 'repo', 'main', 'x/y')))).toEqual([
      'GitTarget ops/sub: spec.path: "x/y" overlaps GitTarget ops/root (".") on the same repository and branch',
    ]);
    expect(problemsOf(docs(...base, gitTarget('a', 'repo', 'main', 'x/'), gitTarget('b', 'repo', 'main', '/x')))).toEqual([
      'GitTarget ops/b: spec.path: "x" overlaps GitTarget ops/a ("x") on the same repository and branch',
    ]);
    // `x` and `xy` are siblings, not nested; another branch is another partition.
    expect(() =>
      parseConfig(docs(...base, gitTarget('a', 'repo', 'main', 'x'), gitTarget('b', 'repo', 'main', 'xy'), gitTarget('c', 'repo', 'other', '.'))),
    ).not.toThrow();
  });
});

describe('isValidBranchName', () => {
  it.each([
    ['main', true],
    ['release/2024.1', true],
    ['feature/JIRA-12_fix', true],
    ['caf\u00e9', true],
    ['foo.lock.x', true],
    ['a@b', true],
    ['feature..x', false],
    ['-x', false],
    ['a.lock', false],
    ['a/b.lock', false],
    ['a.lock/b', false],
    ['.hidden', false],
    ['a/.b', false],
    ['ends.', false],
    ['/lead', false],
    ['trail/', false],
    ['a//b', false],
    ['a@{b', false],
    ['has space', false],
    ['tab\there', false],
    ['a~b', false],
    ['a^b', false],
    ['a:b', false],
    ['a?b', false],
    ['a*b', false],
    ['a[b', false],
    ['a\\b', false],
    ['nul\u0000', false],
    ['del\u007f', false],
    ['', false],
    // `git check-ref-format --branch HEAD` refuses it, and `git branch HEAD` too.
    ['HEAD', false],
  ])('%j → %s', (branch, valid) => {
    expect(isValidBranchName(branch)).toBe(valid);
  });
});

describe('loadConfigFile', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reads and resolves a file, naming the file in errors', async () => {
    dir = await mkdtemp(join(tmpdir(), 'load-config-'));
    const good = join(dir, 'good.yaml');
    await writeFile(good, VALID);
    expect([...(await loadConfigFile(good)).targets.keys()]).toEqual(['ops/prod', 'ops/stage', 'ops/release', 'ops/scratch']);

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, `${V}\nkind: Bogus\nmetadata: { name: b }\n`);
    await expect(loadConfigFile(bad)).rejects.toThrow(
      `invalid configuration in ${bad}:\n  - document 1 (Bogus b): kind: unknown kind, expected one of ClusterProvider, GitProvider, GitTarget, WatchRule, ClusterWatchRule, Secret`,
    );
  });

  it('reports a missing file as a ConfigError', async () => {
    const missing = join(tmpdir(), 'does-not-exist-gitops-reverser.yaml');
    const err = await loadConfigFile(missing).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).source).toBe(missing);
    expect((err as ConfigError).problems).toHaveLength(1);
    expect((err as ConfigError).problems[0]).toMatch(/^cannot read CONFIG_FILE: ENOENT/);
  });
});

describe('demo configuration', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('is valid and routes every change of cluster "demo" into clusters/demo on main', () => {
    const c = parseConfig(demoConfigYaml('/data/demo-remote.git'), 'the demo configuration');
    expect(c.clusters.get(DEMO_CLUSTER)).toMatchObject({ name: 'demo', token: DEMO_TOKEN, allowedNamespaces: undefined });
    expect(c.targets.get('gitops-reverser/demo')).toMatchObject({ branch: 'main', path: 'clusters/demo', clusterProvider: 'demo' });
    expect([...c.partitions.values()]).toEqual([{ partition: partitionOf('/data/demo-remote.git', 'main'), credentials: undefined }]);
  });

  it('creates the bare repository once and resolves against it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'demo-config-'));
    const first = await loadDemoConfig(dir);
    expect(first.repoPath).toBe(join(dir, 'demo-remote.git'));
    expect(existsSync(join(first.repoPath, 'HEAD'))).toBe(true);
    expect(first.config.targets.get('gitops-reverser/demo')?.provider.url).toBe(first.repoPath);
    const second = await loadDemoConfig(dir);
    expect(second.config.partitions).toEqual(first.config.partitions);
  });
});
