import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PREFIX,
  eventJobId,
  isReconcileJobId,
  ownKeys,
  partitionOf,
  readinessKey,
  RECONCILE_LIST_QUEUE,
  RECONCILE_QUEUE,
  RECONCILE_SCHEDULE_QUEUE,
  reconcileEventKey,
  reconcileJobId,
  reconcileListJobId,
  reconcileTriggerKey,
  routerKeys,
  statusKeys,
  watchCountsKey,
  writeJobId,
} from '../../queues/names.js';

const URLS = [
  'https://github.com/example/fleet.git',
  'https://github.com/example/other',
  'git@github.com:Example/Fleet.git',
  'ssh://git@git.example:2222/team/repo.git/',
  '/srv/git/local.git',
  'file:///srv/git/other.git',
  '/',
];
const BRANCHES = ['main', 'release/2024.1', 'feature/JIRA-1:x', 'Main', 'caf\u00e9', 'a'.repeat(200)];

describe('partitionOf', () => {
  it('is stable: the same {url, branch} always gives the same partition', () => {
    const a = partitionOf('https://github.com/example/fleet.git', 'main');
    expect(partitionOf('https://github.com/example/fleet.git', 'main')).toEqual(a);
    expect(a).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{12}$/) as unknown as string,
      repoURL: 'https://github.com/example/fleet.git',
      branch: 'main',
      queueName: `write-fleet-main-${a.id}`,
    });
  });

  it('builds readable queue names from the repository name and branch', () => {
    const p = partitionOf('git@github.com:Example/Fleet.git', 'release/2024.1');
    expect(p.queueName).toBe(`write-fleet-release-2024-1-${p.id}`);
    const q = partitionOf('ssh://git@git.example:2222/team/repo.git/', 'main');
    expect(q.queueName).toBe(`write-repo-main-${q.id}`);
  });

  it('never puts ":" in a queue name, always starts it with "write-", and keeps it short', () => {
    for (const url of URLS) {
      for (const branch of BRANCHES) {
        const p = partitionOf(url, branch);
        expect(p.queueName).not.toContain(':');
        expect(p.queueName.startsWith('write-')).toBe(true);
        expect(p.queueName).toMatch(/^write-[a-z0-9-]*-[0-9a-f]{12}$/);
        expect(p.queueName.endsWith(`-${p.id}`)).toBe(true);
        expect(p.queueName.length).toBeLessThanOrEqual('write-'.length + 40 + 1 + 12);
      }
    }
  });

  it('gives different ids to different branches, also when their slugs are equal', () => {
    const url = 'https://github.com/example/fleet.git';
    const ids = BRANCHES.map((b) => partitionOf(url, b).id);
    expect(new Set(ids).size).toBe(BRANCHES.length);
    // 'feature/x' and 'feature-x' read alike in the queue name, but are two partitions.
    const slash = partitionOf(url, 'feature/x');
    const dash = partitionOf(url, 'feature-x');
    expect(slash.id).not.toBe(dash.id);
    expect(slash.queueName).not.toBe(dash.queueName);
    expect(partitionOf(url, 'Main').id).not.toBe(partitionOf(url, 'main').id);
  });

  it('gives different ids to different repositories on the same branch', () => {
    const ids = URLS.map((u) => partitionOf(u, 'main').id);
    expect(new Set(ids).size).toBe(URLS.length);
  });

  it('gives one partition to the spellings of one remote repository, but not to local paths', () => {
    const id = partitionOf('https://github.com/example/fleet.git', 'main').id;
    expect(partitionOf('https://github.com/example/fleet', 'main').id).toBe(id);
    expect(partitionOf('https://GitHub.com/example/fleet/', 'main').id).toBe(id);
    expect(partitionOf('https://github.com/Example/fleet', 'main').id).not.toBe(id); // paths may be case-sensitive
    expect(partitionOf('git@github.com:example/fleet.git', 'main').id).toBe(partitionOf('git@GITHUB.com:example/fleet', 'main').id);
    expect(partitionOf('/srv/git/fleet.git', 'main').id).not.toBe(partitionOf('/srv/git/fleet', 'main').id);
    expect(partitionOf('ssh://git@github.com/example/fleet.git', 'main').id).toBe(id);
    expect(partitionOf('git@github.com:example/fleet.git', 'main').id).toBe(id);
    expect(partitionOf('https://bot@github.com/example/fleet', 'main').id).toBe(id);
    expect(partitionOf('file:///srv/git/fleet.git', 'main').id).toBe(partitionOf('/srv/git/fleet.git', 'main').id);
  });

  it('does not confuse the url/branch boundary', () => {
    expect(partitionOf('a/b', 'c').id).not.toBe(partitionOf('a', 'b/c').id);
  });
});

describe('job ids', () => {
  it('eventJobId joins cluster and audit ID with "_" and never contains ":"', () => {
    const id = eventJobId('prod-eu', '4c0f4d1e-8a9b-4c3d-9e2f-1a2b3c4d5e6f');
    expect(id).toBe('prod-eu_4c0f4d1e-8a9b-4c3d-9e2f-1a2b3c4d5e6f');
    expect(id).not.toContain(':');
    expect(id).not.toMatch(/^\d+$/);
    expect(eventJobId('1', '2')).not.toMatch(/^\d+$/);
  });

  it('eventJobId differs per cluster and per audit ID', () => {
    expect(eventJobId('a', 'x')).not.toBe(eventJobId('b', 'x'));
    expect(eventJobId('a', 'x')).not.toBe(eventJobId('a', 'y'));
  });

  it('writeJobId names event and target and never contains ":" or "/"', () => {
    const event = eventJobId('prod-eu', '4c0f4d1e-8a9b-4c3d-9e2f-1a2b3c4d5e6f');
    const id = writeJobId(event, 'ops/prod');
    expect(id).toBe('prod-eu_4c0f4d1e-8a9b-4c3d-9e2f-1a2b3c4d5e6f_ops.prod');
    expect(id).not.toContain(':');
    expect(id).not.toContain('/');
    expect(writeJobId(event, 'ops/prod')).not.toBe(writeJobId(event, 'ops/stage'));
    expect(writeJobId(event, 'ops/prod')).not.toBe(writeJobId(event, 'team-a/prod'));
  });
});

describe('ownKeys', () => {
  it('puts every key of a partition under the prefix', () => {
    expect(ownKeys(DEFAULT_PREFIX, 'abc123def456')).toEqual({
      lease: 'gitops-reverser:partition:abc123def456:lease',
      fence: 'gitops-reverser:partition:abc123def456:fence',
      versions: 'gitops-reverser:partition:abc123def456:versions',
    });
    expect(ownKeys('{gr}', 'p').lease).toBe('{gr}:partition:p:lease');
  });
});

describe('statusKeys', () => {
  it('is the status reporter\'s own lease under the prefix, apart from the router\'s', () => {
    expect(statusKeys(DEFAULT_PREFIX)).toEqual({ lease: 'gitops-reverser:status:lease', fence: 'gitops-reverser:status:fence' });
    expect(statusKeys('p').lease).not.toBe(routerKeys('p').lease);
  });
});

// These spellings are in Valkey already (and in Bull Board's links): a change would orphan a running
// service's state, so they are pinned letter for letter.
describe('keys, queues and job ids of the reconcile flow, the readiness check and watch mode', () => {
  it('keeps the queue names', () => {
    expect([RECONCILE_QUEUE, RECONCILE_LIST_QUEUE, RECONCILE_SCHEDULE_QUEUE]).toEqual(['reconcile', 'reconcile-list', 'reconcile-schedule']);
  });

  it('keeps the keys under the prefix', () => {
    expect(reconcileTriggerKey(DEFAULT_PREFIX, 'ops/prod')).toBe('gitops-reverser:reconcile-trigger:ops/prod');
    expect(readinessKey('{gr}')).toBe('{gr}:readyz');
    expect(watchCountsKey(DEFAULT_PREFIX)).toBe('gitops-reverser:watch:counts');
  });

  it('keeps the job ids, with no ":" in them', () => {
    const parent = reconcileJobId('ops/prod', 'run:1');
    expect(parent).toBe('reconcile_ops.prod_run.1');
    expect(reconcileListJobId(parent, 3)).toBe('reconcile_ops.prod_run.1_3');
    expect(reconcileEventKey('run:1', 7)).toBe('reconcile_run.1_7');
    expect(writeJobId(reconcileEventKey('r1', 0), 'ops/prod')).toBe('reconcile_r1_0_ops.prod');
  });

  it('tells a run\'s parent id from other job ids', () => {
    expect(isReconcileJobId(reconcileJobId('ops/prod', 'r1'))).toBe(true);
    expect(isReconcileJobId(eventJobId('c1', 'a1'))).toBe(false);
  });
});
