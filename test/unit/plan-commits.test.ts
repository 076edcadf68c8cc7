import { describe, expect, it } from 'vitest';
import type { GitAuthor, WriteJob } from '../../core/contracts.js';
import { blobSha } from '../../git/git-objects.js';
import { compareResourceVersions, planCommits, versionLeft } from '../../workers/write/plan-commits.js';
import { appliedKey } from '../../workers/write/applied-events.js';
import { formatIndexRanges, parseIndexRanges, parseTrailers, reconcileAuditID } from '../../workers/write/commit-message.js';
import type { ReconcileDiff } from '../../flows/reconcile/diff.js';
import { reconcileAuthor, reconcileWriteJobs } from '../../flows/reconcile/feed-writes.js';

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

  it('a delete without a resourceVersion (answered with a Status) makes the deleted version delivered again stale; a new object is written', () => {
    const again = job({ operation: 'UPDATE', content: V2, resourceVersion: '100', auditID: 'watch-uid-100' });
    const p = plan([job({ operation: 'DELETE', content: null, resourceVersion: '' }), again, job({ operation: 'CREATE', content: V1, resourceVersion: '105' })], { [FILE]: blobSha(V2) }, { [FILE]: '100' });
    expect(p.outcomes).toEqual([
      { kind: 'commit', commitIndex: 0 },
      { kind: 'unchanged', reason: 'stale' },
      { kind: 'commit', commitIndex: 1 },
    ]);
    expect(p.tree.get(FILE)).toBe(blobSha(V1));
    expect(p.versions).toEqual(new Map([[FILE, '105']]));
    // Across batches: the bound is what the partition keeps.
    expect(plan([job({ operation: 'DELETE', content: null, resourceVersion: '' })], { [FILE]: blobSha(V2) }, { [FILE]: '100' }).versions).toEqual(new Map([[FILE, '101']]));
  });

  it('versionLeft: a delete without a version leaves the newest applied + 1; everything else its own version', () => {
    expect(versionLeft({ content: null, resourceVersion: '' }, '193')).toBe('194');
    expect(versionLeft({ content: null, resourceVersion: '' }, '9007199254740993')).toBe('9007199254740994');
    expect(versionLeft({ content: null, resourceVersion: '' }, undefined)).toBe('');
    expect(versionLeft({ content: null, resourceVersion: '' }, 'opaque')).toBe('');
    expect(versionLeft({ content: null, resourceVersion: '200' }, '193')).toBe('200');
    expect(versionLeft({ content: 'x', resourceVersion: '' }, '193')).toBe('');
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

describe('planCommits: reconcile writes', () => {
  const target = { key: 'ops/prod', clusterProvider: 'prod', partition: { queueName: 'q' } } as Parameters<typeof reconcileWriteJobs>[0]['target'];
  const author: GitAuthor = reconcileAuthor('gr@localhost');
  const path = (n: string) => `clusters/prod/shop/configmaps/${n}.yaml`;
  const cm = (n: string, v = '1') => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${n}\ndata:\n  v: "${v}"\n`;
  const writes = (diff: Partial<ReconcileDiff>, runId = 'run-1') =>
    reconcileWriteJobs({ target, runId, diff: { created: [], updated: [], deleted: [], ...diff }, author, now: NOW }).map((j) => j.data);

  it('the writes of one run become ONE commit with the counts of what changed', () => {
    const jobs = writes({
      created: [{ path: path('a'), content: cm('a'), rv: '10' }, { path: path('b'), content: cm('b'), rv: '11' }],
      updated: [{ path: path('c'), content: cm('c', '2'), rv: '12' }],
      deleted: [{ path: path('d'), rv: '20' }],
    });
    const p = plan(jobs, { [path('c')]: blobSha(cm('c')), [path('d')]: blobSha(cm('d')) });
    expect(p.commits).toHaveLength(1);
    expect(p.outcomes).toEqual(jobs.map(() => ({ kind: 'commit', commitIndex: 0 })));
    const [commit] = p.commits;
    expect(commit!.changes).toEqual([
      { path: path('a'), content: cm('a') },
      { path: path('b'), content: cm('b') },
      { path: path('c'), content: cm('c', '2') },
      { path: path('d'), content: null },
    ]);
    expect(commit!.author).toEqual(author);
    expect(commit!.message).toBe(
      'reconcile ops/prod: 2 created, 1 updated, 1 deleted\n\nReconcile-Run: run-1\nReconcile-Writes: 0-3\nCluster: prod\nTarget: ops/prod\n',
    );
    expect(parseTrailers(commit!.message)).toMatchObject({ 'Reconcile-Run': 'run-1', 'Reconcile-Writes': '0-3', Target: 'ops/prod' });
    expect([...p.tree.keys()].sort()).toEqual([path('a'), path('b'), path('c')]);
    expect(p.versions.get(path('a'))).toBe('10');
  });

  it('a run whose files are already equal (or absent) plans no commit', () => {
    const jobs = writes({ updated: [{ path: path('a'), content: cm('a'), rv: '10' }], deleted: [{ path: path('gone'), rv: '20' }] });
    const p = plan(jobs, { [path('a')]: blobSha(cm('a')) });
    expect(p.commits).toEqual([]);
    expect(p.outcomes).toEqual([
      { kind: 'unchanged', reason: 'same-content' },
      { kind: 'unchanged', reason: 'already-absent' },
    ]);
  });

  it('counts only what changed, and says the run holds more', () => {
    const jobs = writes({
      created: [{ path: path('a'), content: cm('a'), rv: '10' }, { path: path('b'), content: cm('b'), rv: '11' }],
      updated: [{ path: path('c'), content: cm('c', '2'), rv: '12' }],
    });
    const p = plan(jobs, { [path('b')]: blobSha(cm('b')), [path('c')]: blobSha(cm('c')) });
    expect(p.commits).toHaveLength(1);
    expect(p.commits[0]!.message).toMatch(/^reconcile ops\/prod: 1 created, 1 updated, 0 deleted\n\nThe run's diff: 2 created, 1 updated, 0 deleted;/);
    expect(p.commits[0]!.message).toMatch(/\nReconcile-Writes: 0,2\n/);
  });

  it('a reconcile write older than the live write applied to its file is stale (the live content stays)', () => {
    const [write] = writes({ updated: [{ path: FILE, content: V1, rv: '150' }] });
    // Applied before (the versions hash): a live event at rv 200.
    const before = plan([write!], { [FILE]: blobSha(V2) }, { [FILE]: '200' });
    expect(before.outcomes).toEqual([{ kind: 'unchanged', reason: 'stale' }]);
    expect(before.commits).toEqual([]);
    // In the same batch, the live event first.
    const live = job({ content: V2, resourceVersion: '200' });
    const same = plan([live, write!], { [FILE]: blobSha(V1) });
    expect(same.outcomes).toEqual([{ kind: 'commit', commitIndex: 0 }, { kind: 'unchanged', reason: 'stale' }]);
    expect(same.tree.get(FILE)).toBe(blobSha(V2));
    expect(same.versions.get(FILE)).toBe('200');
    // The same object listed at the live event's version is no older: a hand edit is repaired.
    const equal = plan(writes({ updated: [{ path: FILE, content: V2, rv: '200' }] }), { [FILE]: blobSha('edited by hand') }, { [FILE]: '200' });
    expect(equal.commits).toHaveLength(1);
  });

  it('a reconcile delete is skipped when the file was written after the listing (applied version newer)', () => {
    const jobs = writes({ deleted: [{ path: path('new'), rv: '300' }, { path: path('old'), rv: '300' }] });
    const p = plan(jobs, { [path('new')]: blobSha(cm('new')), [path('old')]: blobSha(cm('old')) }, { [path('new')]: '310', [path('old')]: '250' });
    expect(p.outcomes).toEqual([
      { kind: 'unchanged', reason: 'stale' },
      { kind: 'commit', commitIndex: 0 },
    ]);
    expect(p.commits[0]!.message).toMatch(/^reconcile ops\/prod: 0 created, 0 updated, 1 deleted\n/);
    expect([...p.tree.keys()]).toEqual([path('new')]);
  });

  it('a live event between writes of a run closes its commit; another run gets its own', () => {
    const [a, b] = writes({ created: [{ path: path('a'), content: cm('a'), rv: '10' }, { path: path('b'), content: cm('b'), rv: '11' }] });
    const [c] = writes({ created: [{ path: path('c'), content: cm('c'), rv: '12' }] }, 'run-2');
    const live = job({ content: V1, resourceVersion: '100' });
    const p = plan([a!, live, b!, c!]);
    expect(p.outcomes.map((o) => (o.kind === 'commit' ? o.commitIndex : o.reason))).toEqual([0, 1, 2, 3]);
    expect(p.commits.map((m) => m.message.split('\n')[0])).toEqual([
      'reconcile ops/prod: 1 created, 0 updated, 0 deleted',
      'UPDATE apps/v1 deployments shop/web',
      'reconcile ops/prod: 1 created, 0 updated, 0 deleted',
      'reconcile ops/prod: 1 created, 0 updated, 0 deleted',
    ]);
    expect(parseTrailers(p.commits[3]!.message)['Reconcile-Run']).toBe('run-2');
  });

  it('writes named by a landed reconcile commit are already applied (a crash between push and completion)', () => {
    const jobs = writes({ created: [{ path: path('a'), content: cm('a'), rv: '10' }, { path: path('b'), content: cm('b'), rv: '11' }] });
    const message = plan(jobs).commits[0]!.message;
    const t = parseTrailers(message);
    const keys = new Set(parseIndexRanges(t['Reconcile-Writes']!).map((n) => appliedKey({ clusterId: t.Cluster!, auditID: reconcileAuditID(t['Reconcile-Run']!, n), target: t.Target! })));
    // The files are gone from the tree since (a live delete after the push): the writes are not redone.
    const p = planCommits(jobs, new Map(), new Map(), committer, NOW, keys);
    expect(p.outcomes).toEqual([
      { kind: 'unchanged', reason: 'already-applied' },
      { kind: 'unchanged', reason: 'already-applied' },
    ]);
  });

  it('index ranges round-trip, and a hostile range is bounded', () => {
    expect(formatIndexRanges([5, 0, 1, 2, 9, 7, 8, 2])).toBe('0-2,5,7-9');
    expect(parseIndexRanges('0-2,5,7-9')).toEqual([0, 1, 2, 5, 7, 8, 9]);
    expect(parseIndexRanges('x,3,-1,4-')).toEqual([3]);
    expect(parseIndexRanges('0-999999999', 10)).toHaveLength(10);
  });
});

describe('planCommits: collection writes (a deletecollection, a deleted namespace)', () => {
  const folder = 'clusters/prod/shop/configmaps';
  const cmYaml = (name: string, labels: Record<string, string> = {}) =>
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: shop\n${Object.keys(labels).length ? `  labels:\n${Object.entries(labels).map(([k, v]) => `    ${k}: ${v}\n`).join('')}` : ''}data:\n  v: "1"\n`;
  const files: Record<string, string> = {
    a: cmYaml('a', { app: 'web' }),
    b: cmYaml('b', { app: 'web', tier: 'front' }),
    c: cmYaml('c', { app: 'db' }),
    'made by hand': 'not: [yaml',
  };
  const tree = (): Record<string, string> => ({
    ...Object.fromEntries(Object.entries(files).map(([n, content]) => [`${folder}/${n === 'made by hand' ? 'made%20by%20hand' : n}.yaml`, blobSha(content)])),
    'clusters/prod/shop/secrets/token.yaml': blobSha('s'),
    'clusters/prod/shop/apps/deployments/web.yaml': blobSha(V1),
    'clusters/prod/shop-2/configmaps/a.yaml': blobSha('x'),
    'clusters/prod/_cluster/namespaces/shop.yaml': blobSha('ns'),
    [`${folder}/nested/deeper.yaml`]: blobSha('n'),
  });
  const contents = new Map(Object.values(files).map((c) => [blobSha(c), c]));
  const contentOf = (sha: string) => contents.get(sha);
  const collectionJob = (collection: WriteJob['collection'], over: Partial<WriteJob> = {}) =>
    job({
      identity: { cluster: 'prod', group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: '' },
      operation: 'DELETE',
      content: null,
      resourceVersion: '',
      filePath: folder,
      collection,
      ...over,
    });
  const planned = (jobs: WriteJob[], applied: Record<string, string> = {}) =>
    planCommits(jobs, new Map(Object.entries(tree())), new Map(Object.entries(applied)), committer, NOW, new Set(), contentOf);

  it("names: removes the files of the answer's objects that are there, in one commit by the user", () => {
    const j = collectionJob({ names: ['a', 'c', 'gone'] });
    const p = planned([j]);
    expect(p.outcomes).toEqual([{ kind: 'commit', commitIndex: 0, removed: [`${folder}/a.yaml`, `${folder}/c.yaml`] }]);
    expect(p.commits).toHaveLength(1);
    expect(p.commits[0]!.changes).toEqual([{ path: `${folder}/a.yaml`, content: null }, { path: `${folder}/c.yaml`, content: null }]);
    expect(p.commits[0]!.author).toEqual(alice);
    expect(p.commits[0]!.message).toBe(`DELETECOLLECTION v1 configmaps shop: 2 deleted\n\nAudit-ID: ${j.auditID}\nCluster: prod\nResource-Version: \nTarget: ops/prod\n`);
    expect(p.tree.has(`${folder}/b.yaml`)).toBe(true);
    expect(p.tree.has(`${folder}/a.yaml`)).toBe(false);
    // Its folder is not a file: no version recorded for it.
    expect(p.versions.has(folder)).toBe(false);
  });

  it('nothing to remove plans no commit (already-absent); a write the remote holds is already-applied', () => {
    expect(planned([collectionJob({ names: ['gone'] })]).outcomes).toEqual([{ kind: 'unchanged', reason: 'already-absent' }]);
    const j = collectionJob({ names: ['a'] });
    expect(planCommits([j], new Map(Object.entries(tree())), new Map(), committer, NOW, new Set([appliedKey(j)])).outcomes).toEqual([{ kind: 'unchanged', reason: 'already-applied' }]);
  });

  it('keep: removes every object file directly in the folder but those still in the cluster', () => {
    const p = planned([collectionJob({ keep: ['b'] })]);
    expect(p.outcomes[0]).toEqual({ kind: 'commit', commitIndex: 0, removed: [`${folder}/a.yaml`, `${folder}/c.yaml`, `${folder}/made%20by%20hand.yaml`] });
    // Not below it, not beside it, not of another namespace.
    expect([...p.tree.keys()].filter((k) => !k.startsWith(`${folder}/`) || k.includes('nested'))).toHaveLength(5);
  });

  it('keep with a label selector: only the files whose labels it selects (a file that does not parse has none)', () => {
    const p = planned([collectionJob({ keep: [], labelSelector: 'app in (web),tier notin (front)' })]);
    expect(p.outcomes[0]).toMatchObject({ removed: [`${folder}/a.yaml`] });
    expect(planned([collectionJob({ keep: [], labelSelector: '!app' })]).outcomes[0]).toEqual({ kind: 'unchanged', reason: 'already-absent' });
    expect(planned([collectionJob({ keep: ['a'], labelSelector: 'app=web' })]).outcomes[0]).toMatchObject({ removed: [`${folder}/b.yaml`] });
  });

  it('keep with a field selector: metadata.name and metadata.namespace are read from the file; another field counts as met', () => {
    expect(planned([collectionJob({ keep: [], fieldSelector: 'metadata.name=c' })]).outcomes[0]).toMatchObject({ removed: [`${folder}/c.yaml`] });
    expect(planned([collectionJob({ keep: [], fieldSelector: 'metadata.name!=c,metadata.namespace=shop' })]).outcomes[0]).toMatchObject({
      removed: [`${folder}/a.yaml`, `${folder}/b.yaml`, `${folder}/made%20by%20hand.yaml`],
    });
    expect(planned([collectionJob({ keep: [], fieldSelector: 'metadata.namespace=other' })]).outcomes[0]).toEqual({ kind: 'unchanged', reason: 'already-absent' });
    expect(planned([collectionJob({ keep: ['a', 'b', 'made by hand'], fieldSelector: 'status.phase=Failed' })]).outcomes[0]).toMatchObject({ removed: [`${folder}/c.yaml`] });
  });

  it('a label selector reads the content the batch itself wrote before it', () => {
    const d = cmYaml('d', { app: 'web' });
    contents.set(blobSha(d), d);
    const p = planned([job({ identity: { cluster: 'prod', group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: 'd' }, filePath: `${folder}/d.yaml`, content: d }), collectionJob({ keep: [], labelSelector: 'app=web' })]);
    expect(p.outcomes[1]).toMatchObject({ kind: 'commit', commitIndex: 1, removed: [`${folder}/a.yaml`, `${folder}/b.yaml`, `${folder}/d.yaml`] });
  });

  it('throws rather than guess when a label selector meets content it was not given', () => {
    expect(() => planCommits([collectionJob({ keep: [], labelSelector: 'app=web' })], new Map(Object.entries(tree())), new Map(), committer, NOW)).toThrow(/was not read/);
  });

  it("everythingBelow: a deleted namespace's folder, every type, and the Namespace's own file, in one commit", () => {
    const ns = job({
      identity: { cluster: 'prod', group: '', version: 'v1', resource: 'namespaces', namespace: '', name: 'shop' },
      operation: 'DELETE',
      content: null,
      resourceVersion: '900',
      filePath: 'clusters/prod/shop',
      collection: { everythingBelow: true, objectFile: 'clusters/prod/_cluster/namespaces/shop.yaml' },
    });
    const p = planned([ns]);
    const removed = (p.outcomes[0] as { removed: string[] }).removed;
    expect(removed).toHaveLength(8);
    expect(removed).toContain('clusters/prod/_cluster/namespaces/shop.yaml');
    expect(removed).toContain(`${folder}/nested/deeper.yaml`);
    expect(removed).not.toContain('clusters/prod/shop-2/configmaps/a.yaml');
    expect(p.commits[0]!.message.split('\n')[0]).toBe('DELETE namespace shop: 8 files');
    // Every removed file takes the Namespace's resourceVersion: an older event of one of them is stale after it.
    expect(p.versions.get('clusters/prod/shop/apps/deployments/web.yaml')).toBe('900');
    const late = job({ resourceVersion: '850' });
    expect(planCommits([ns, late], new Map(Object.entries(tree())), new Map(), committer, NOW, new Set(), contentOf).outcomes[1]).toEqual({ kind: 'unchanged', reason: 'stale' });
  });

  it('a cluster-scoped deletecollection says so in its subject', () => {
    const roles = 'clusters/prod/_cluster/rbac.authorization.k8s.io/clusterroles';
    const p = planCommits(
      [collectionJob({ names: ['x'] }, { identity: { cluster: 'prod', group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', namespace: '', name: '' }, filePath: roles })],
      new Map([[`${roles}/x.yaml`, blobSha('x')]]),
      new Map(),
      committer,
      NOW,
    );
    expect(p.commits[0]!.message.split('\n')[0]).toBe('DELETECOLLECTION rbac.authorization.k8s.io/v1 clusterroles: 1 deleted');
  });
});
