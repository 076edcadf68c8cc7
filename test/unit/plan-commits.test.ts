import { describe, expect, it } from 'vitest';
import type { GitAuthor, WriteJob } from '../../queues/contracts.js';
import { blobSha } from '../../workers/git-writer/git-objects.js';
import { compareResourceVersions, planCommits } from '../../workers/git-writer/plan-commits.js';

const committer: GitAuthor = { name: 'GitOps Reverser', email: 'gitops-reverser@localhost' };
const alice: GitAuthor = { name: 'alice', email: 'alice@cluster.local' };
const NOW = new Date('2030-01-01T00:00:00.000Z');
const FILE = 'clusters/prod/shop/apps/deployments/web.yaml';
const V1 = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n';
const V2 = V1.replace('replicas: 1', 'replicas: 2');

let seq = 0;
function job(over: Partial<WriteJob> = {}): WriteJob {
  seq += 1;
  return {
    eventKey: `prod_audit-${seq}`,
    clusterId: 'prod',
    auditID: `audit-${seq}`,
    target: 'ops/prod',
    identity: { cluster: 'prod', group: 'apps', version: 'v1', resource: 'deployments', namespace: 'shop', name: 'web' },
    operation: 'UPDATE',
    filePath: FILE,
    content: V1,
    resourceVersion: '100',
    author: alice,
    stageTimestamp: '2024-05-01T10:00:00.123456Z',
    ...over,
  };
}

const plan = (jobs: WriteJob[], tree: Record<string, string> = {}, applied: Record<string, string> = {}) =>
  planCommits(jobs, new Map(Object.entries(tree)), new Map(Object.entries(applied)), committer, NOW);

describe('planCommits: idempotent apply', () => {
  it('content the tree already holds is unchanged (same-content), no commit', () => {
    const p = plan([job({ content: V1, resourceVersion: '101' })], { [FILE]: blobSha(V1) }, { [FILE]: '100' });
    expect(p.outcomes).toEqual([{ kind: 'unchanged', reason: 'same-content' }]);
    expect(p.commits).toEqual([]);
    expect(p.tree).toEqual(new Map([[FILE, blobSha(V1)]]));
    // The newer version is still recorded: an older event after it is stale.
    expect(p.versions).toEqual(new Map([[FILE, '101']]));
  });

  it('a delete of a file that is not there is unchanged (already-absent)', () => {
    const p = plan([job({ operation: 'DELETE', content: null, resourceVersion: '200' })], { 'other.yaml': blobSha('x') });
    expect(p.outcomes).toEqual([{ kind: 'unchanged', reason: 'already-absent' }]);
    expect(p.commits).toEqual([]);
    expect(p.tree).toEqual(new Map([['other.yaml', blobSha('x')]]));
    expect(p.versions).toEqual(new Map([[FILE, '200']]));
  });

  it('an event older than the applied resourceVersion is stale: no commit, tree and versions untouched', () => {
    const p = plan([job({ content: V2, resourceVersion: '99' })], { [FILE]: blobSha(V1) }, { [FILE]: '100' });
    expect(p.outcomes).toEqual([{ kind: 'unchanged', reason: 'stale' }]);
    expect(p.commits).toEqual([]);
    expect(p.tree).toEqual(new Map([[FILE, blobSha(V1)]]));
    expect(p.versions).toEqual(new Map());
  });

  it('compares resourceVersions as numbers, not strings ("99" < "100")', () => {
    // As strings "99" > "100"; as numbers it is older.
    expect(plan([job({ content: V2, resourceVersion: '99' })], { [FILE]: blobSha(V1) }, { [FILE]: '100' }).outcomes[0]).toEqual({
      kind: 'unchanged',
      reason: 'stale',
    });
    // And "1000" is newer than "999".
    expect(plan([job({ content: V2, resourceVersion: '1000' })], { [FILE]: blobSha(V1) }, { [FILE]: '999' }).outcomes[0]).toEqual({
      kind: 'commit',
      commitIndex: 0,
    });
  });

  it('an equal resourceVersion is not stale; only the content then decides', () => {
    const p = plan([job({ content: V2, resourceVersion: '100' })], { [FILE]: blobSha(V1) }, { [FILE]: '100' });
    expect(p.outcomes).toEqual([{ kind: 'commit', commitIndex: 0 }]);
  });

  it('non-numeric resourceVersions are never stale', () => {
    const p = plan(
      [job({ content: V2, resourceVersion: 'abc' }), job({ content: V1, resourceVersion: '5', filePath: 'b.yaml' })],
      { [FILE]: blobSha(V1), 'b.yaml': blobSha(V2) },
      { [FILE]: '100', 'b.yaml': 'xyz' },
    );
    expect(p.outcomes).toEqual([
      { kind: 'commit', commitIndex: 0 },
      { kind: 'commit', commitIndex: 1 },
    ]);
    expect(p.versions).toEqual(
      new Map([
        [FILE, 'abc'],
        ['b.yaml', '5'],
      ]),
    );
  });

  it('an event without a resourceVersion is never stale and records none', () => {
    const p = plan([job({ content: V2, resourceVersion: '' })], { [FILE]: blobSha(V1) }, { [FILE]: '100' });
    expect(p.outcomes).toEqual([{ kind: 'commit', commitIndex: 0 }]);
    expect(p.versions).toEqual(new Map());
  });
});

describe('planCommits: one batch', () => {
  it('create → update → delete of one file gives three commits and the final tree lacks the file', () => {
    const jobs = [
      job({ operation: 'CREATE', content: V1, resourceVersion: '10' }),
      job({ operation: 'UPDATE', content: V2, resourceVersion: '11' }),
      job({ operation: 'DELETE', content: null, resourceVersion: '12' }),
    ];
    const p = plan(jobs, { 'keep.yaml': blobSha('k') });
    expect(p.outcomes).toEqual([
      { kind: 'commit', commitIndex: 0 },
      { kind: 'commit', commitIndex: 1 },
      { kind: 'commit', commitIndex: 2 },
    ]);
    expect(p.commits.map((c) => c.changes)).toEqual([[{ path: FILE, content: V1 }], [{ path: FILE, content: V2 }], [{ path: FILE, content: null }]]);
    expect(p.commits.map((c) => c.message.split('\n')[0])).toEqual([
      'CREATE apps/v1 deployments shop/web',
      'UPDATE apps/v1 deployments shop/web',
      'DELETE apps/v1 deployments shop/web',
    ]);
    expect(p.tree).toEqual(new Map([['keep.yaml', blobSha('k')]]));
    expect(p.versions).toEqual(new Map([[FILE, '12']]));
  });

  it('a repeated event (same content twice) commits once', () => {
    const first = job({ content: V2, resourceVersion: '101' });
    const p = plan([first, { ...first }], { [FILE]: blobSha(V1) }, { [FILE]: '100' });
    expect(p.outcomes).toEqual([
      { kind: 'commit', commitIndex: 0 },
      { kind: 'unchanged', reason: 'same-content' },
    ]);
    expect(p.commits).toHaveLength(1);
    expect(p.tree.get(FILE)).toBe(blobSha(V2));
  });

  it('a stale event behind a newer one of the same batch does not overwrite it', () => {
    const p = plan([job({ content: V2, resourceVersion: '12' }), job({ content: V1, resourceVersion: '11' })], { [FILE]: blobSha(V1) }, { [FILE]: '10' });
    expect(p.outcomes).toEqual([
      { kind: 'commit', commitIndex: 0 },
      { kind: 'unchanged', reason: 'stale' },
    ]);
    expect(p.tree.get(FILE)).toBe(blobSha(V2));
    expect(p.versions).toEqual(new Map([[FILE, '12']]));
  });

  it('a delete recorded in the batch makes an older re-create stale', () => {
    const p = plan([job({ operation: 'DELETE', content: null, resourceVersion: '20' }), job({ operation: 'CREATE', content: V1, resourceVersion: '19' })], {
      [FILE]: blobSha(V1),
    });
    expect(p.outcomes).toEqual([
      { kind: 'commit', commitIndex: 0 },
      { kind: 'unchanged', reason: 'stale' },
    ]);
    expect(p.tree.has(FILE)).toBe(false);
  });

  it('the versions map records the newest resourceVersion per file', () => {
    const p = plan(
      [
        job({ filePath: 'a.yaml', content: 'a1', resourceVersion: '5' }),
        job({ filePath: 'b.yaml', content: 'b1', resourceVersion: '7' }),
        job({ filePath: 'a.yaml', content: 'a2', resourceVersion: '9' }),
        job({ filePath: 'a.yaml', content: 'a0', resourceVersion: '6' }),
      ],
      {},
      { 'b.yaml': '3' },
    );
    expect(p.outcomes.map((o) => o.kind)).toEqual(['commit', 'commit', 'commit', 'unchanged']);
    expect(p.versions).toEqual(
      new Map([
        ['a.yaml', '9'],
        ['b.yaml', '7'],
      ]),
    );
    expect(p.tree).toEqual(
      new Map([
        ['a.yaml', blobSha('a2')],
        ['b.yaml', blobSha('b1')],
      ]),
    );
  });

  it('does not change the tree or versions it was given', () => {
    const tree = new Map([[FILE, blobSha(V1)]]);
    const applied = new Map([[FILE, '1']]);
    planCommits([job({ content: null, resourceVersion: '2' })], tree, applied, committer, NOW);
    expect(tree).toEqual(new Map([[FILE, blobSha(V1)]]));
    expect(applied).toEqual(new Map([[FILE, '1']]));
  });

  it('an empty batch plans nothing', () => {
    expect(plan([], { [FILE]: blobSha(V1) })).toEqual({ commits: [], outcomes: [], tree: new Map([[FILE, blobSha(V1)]]), versions: new Map() });
  });
});

describe('planCommits: commit metadata', () => {
  it('takes message, author and authorDate from the job, committer and commitDate from the writer', () => {
    const j = job({
      operation: 'CREATE',
      auditID: '4c0f4d1e-8a9b-4c3d-9e2f-1a2b3c4d5e6f',
      clusterId: 'prod-eu',
      resourceVersion: '4711',
      target: 'ops/prod',
      stageTimestamp: '2024-05-01T10:00:00.123456Z',
    });
    const p = plan([j]);
    expect(p.commits).toEqual([
      {
        author: alice,
        authorDate: new Date('2024-05-01T10:00:00.123Z'),
        committer,
        commitDate: NOW,
        message:
          'CREATE apps/v1 deployments shop/web\n\nAudit-ID: 4c0f4d1e-8a9b-4c3d-9e2f-1a2b3c4d5e6f\nCluster: prod-eu\nResource-Version: 4711\nTarget: ops/prod\n',
        changes: [{ path: FILE, content: V1 }],
      },
    ]);
  });

  it('shows the core group as the version alone and a cluster-scoped object by name', () => {
    const p = plan([
      job({ identity: { cluster: 'prod', group: '', version: 'v1', resource: 'namespaces', namespace: '', name: 'shop' }, filePath: 'ns.yaml', content: 'x' }),
    ]);
    expect(p.commits[0]?.message.split('\n')[0]).toBe('UPDATE v1 namespaces shop');
  });

  it.each(['', 'not a date', '2024-13-45T99:99:99Z'])('falls back to now for the invalid stageTimestamp %j', (stageTimestamp) => {
    const p = plan([job({ stageTimestamp })]);
    expect(p.commits[0]?.authorDate).toEqual(NOW);
    expect(p.commits[0]?.commitDate).toEqual(NOW);
  });

  it('defaults now to the current time', () => {
    const before = Date.now();
    const p = planCommits([job({ stageTimestamp: 'bad' })], new Map(), new Map(), committer);
    const after = Date.now();
    expect(p.commits[0]!.commitDate.getTime()).toBeGreaterThanOrEqual(before);
    expect(p.commits[0]!.commitDate.getTime()).toBeLessThanOrEqual(after);
    expect(p.commits[0]!.authorDate).toEqual(p.commits[0]!.commitDate);
  });
});

describe('compareResourceVersions', () => {
  it.each([
    ['1', '2', -1],
    ['2', '1', 1],
    ['7', '7', 0],
    ['99', '100', -1],
    ['007', '7', 0],
    ['9007199254740993', '9007199254740992', 1],
    ['9007199254740992', '9007199254740993', -1],
    ['18446744073709551615', '18446744073709551614', 1],
    ['123456789012345678901234567890', '123456789012345678901234567891', -1],
  ])('%s vs %s → %d', (a, b, expected) => {
    expect(compareResourceVersions(a, b)).toBe(expected);
  });

  it('distinguishes numbers beyond 2^53 that Number would confuse', () => {
    expect(Number('9007199254740993')).toBe(Number('9007199254740992'));
    expect(compareResourceVersions('9007199254740993', '9007199254740992')).toBe(1);
  });

  it.each([
    ['abc', '1'],
    ['1', 'abc'],
    ['', '1'],
    ['1', ''],
    ['-1', '1'],
    ['1.5', '2'],
    ['1e3', '2'],
    [' 1', '2'],
  ])('%j vs %j is not ordered (undefined)', (a, b) => {
    expect(compareResourceVersions(a, b)).toBeUndefined();
  });
});
