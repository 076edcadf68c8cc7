// The writer's check of a write job (workers/write/validate-write.ts), without Valkey or Git: what is
// written and what is refused, and that a refused job leaves the others of its batch to be written.
import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { MAX_DELETED_NAMES, WriteJobSchema, type WriteJob, type WriteResult } from '../../core/contracts.js';
import { JobFailure, type JobHistory } from '../../queues/exclusive-batch-consumer.js';
import type { HeldLease } from '../../queues/lease.js';
import { checkWrite, TargetNotConfiguredError, withWriteCheck, WriteRefusedError, type WriteCheckContext } from '../../workers/write/validate-write.js';
import { routedWrite } from '../support/write-jobs.js';

const partition = { id: 'p1', branch: 'main' };
const ctx = (path = 'clusters/c1'): WriteCheckContext => ({
  partition,
  targets: new Map([['ops/t', { key: 'ops/t', path, clusterProvider: 'c1', partition }]]),
  committerEmail: 'gr@test',
});
/** A live write the router makes for ops/t (cluster c1, folder clusters/c1), with `change` on top. */
const live = (change: Partial<WriteJob> = {}): WriteJob => ({
  ...routedWrite(
    { key: 'ops/t', path: 'clusters/c1', clusterProvider: 'c1' },
    { group: 'apps', version: 'v1', resource: 'deployments', namespace: 'shop', name: 'web' },
    { eventKey: 'c1_e1', auditID: 'e1', operation: 'UPDATE', content: 'x: 1\n', resourceVersion: '5', user: 'system:serviceaccount:ci:deployer', stageTimestamp: '2026-11-25T10:00:00.000Z' },
  ),
  ...change,
});
const reconcile = (path: string, base = 'clusters/c1'): [WriteJob, WriteCheckContext] => [
  live({
    filePath: path,
    identity: { cluster: 'c1', group: '', version: '', resource: '', namespace: '', name: path },
    author: { name: 'GitOps Reverser (reconcile)', email: 'gr@test' },
    reconcile: { runId: 'r', target: 'ops/t', index: 0, created: 1, updated: 0, deleted: 0 },
  }),
  ctx(base),
];

describe('checkWrite', () => {
  it('passes what the router and a reconcile run make', () => {
    expect(checkWrite(live(), ctx())).toBeUndefined();
    // Names that need encoding: the router's path, encoded (a leading "." never stays a ".").
    const dotted = live({ identity: { ...live().identity, namespace: 'shop', name: '.git' }, filePath: 'clusters/c1/shop/apps/deployments/%2Egit.yaml' });
    expect(checkWrite(dotted, ctx())).toBeUndefined();
    expect(checkWrite(...reconcile('clusters/c1/shop/apps/deployments/web.yaml'))).toBeUndefined();
    expect(checkWrite(...reconcile('clusters/c1/_cluster/namespaces/shop.yaml'))).toBeUndefined();
    // A file made by hand in a listed folder is pruned by name (not the router's encoding).
    expect(checkWrite(...reconcile('clusters/c1/shop/configmaps/made by hand.yaml'))).toBeUndefined();
  });

  it('refuses as an UnrecoverableError, so BullMQ fails the job without retries', () => {
    const err = checkWrite(live({ filePath: '.git/config' }), ctx());
    expect(err).toBeInstanceOf(WriteRefusedError);
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect(err?.target).toBe('ops/t');
  });

  it('a target not configured on this partition (not yet here, or no longer) is a retryable error, not an UnrecoverableError', () => {
    const other = { id: 'p2', branch: 'other' };
    const withElsewhere: WriteCheckContext = { ...ctx(), targets: new Map([...ctx().targets, ['ops/moved', { key: 'ops/moved', path: 'clusters/c1', clusterProvider: 'c1', partition: other }]]) };
    const cases = {
      'not configured': [live({ target: 'ops/new' }), 'write refused: target "ops/new" is not configured (deleted or not ready since the write was queued, or never configured); replay the job once it is configured again'],
      'another partition': [live({ target: 'ops/moved' }), 'write refused: target "ops/moved" writes to partition p2 (branch other), not to this partition p1 (branch main); replay the job once it writes here again'],
    } as const;
    for (const [name, [job, message]] of Object.entries(cases)) {
      const err = checkWrite(job, withElsewhere);
      expect(err, name).toBeInstanceOf(TargetNotConfiguredError);
      expect(err, name).not.toBeInstanceOf(UnrecoverableError);
      // BullMQ retries a failed job unless its error is an UnrecoverableError by class or by name (Job.shouldRetryJob).
      expect(err?.name, name).toBe('TargetNotConfiguredError');
      expect(err?.message, name).toBe(message);
      expect(err?.target, name).toBe(job.target);
    }
  });

  it('every other refusal stays unrecoverable: paths, identity, cluster, author', () => {
    const cases: Record<string, [WriteJob, WriteCheckContext]> = {
      path: [live({ filePath: 'clusters/c1/shop/apps/deployments/other.yaml' }), ctx()],
      identity: [live({ identity: { ...live().identity, name: '..' } }), ctx()],
      cluster: [live({ clusterId: 'c2' }), ctx()],
      'identity cluster': [live({ identity: { ...live().identity, cluster: 'c2' } }), ctx()],
      author: [live({ author: { name: 'x', email: 'x@evil.example' } }), ctx()],
      'reconcile path': reconcile('.github/workflows/pwn.yaml', ''),
      'reconcile author': [{ ...reconcile('clusters/c1/shop/configmaps/a.yaml')[0], author: { name: 'x', email: 'x@c1.cluster.local' } }, ctx()],
    };
    for (const [name, [job, c]] of Object.entries(cases)) {
      const err = checkWrite(job, c);
      expect(err, name).toBeInstanceOf(WriteRefusedError);
      expect(err, name).toBeInstanceOf(UnrecoverableError);
      expect(err, name).not.toBeInstanceOf(TargetNotConfiguredError);
    }
  });

  it('refuses a reconcile write of a root target that would plant a workflow or touch .git', () => {
    expect(checkWrite(...reconcile('.github/workflows/pwn.yaml', ''))?.message).toBe(
      'write refused: filePath ".github/workflows/pwn.yaml" is not an object file under target "ops/t" (""): segment ".github" begins with "."',
    );
    expect(checkWrite(...reconcile('.git/hooks/x.yaml', ''))?.message).toContain('segment ".git" begins with "."');
    expect(checkWrite(...reconcile('shop/configmaps/../../x.yaml', ''))?.message).toContain('segment ".." begins with "."');
    expect(checkWrite(...reconcile('README.yaml', ''))?.message).toContain('it has 1 segments below the folder, an object file has 3 or 4');
    expect(checkWrite(...reconcile('shop/configmaps/x.yml', ''))?.message).toContain('it does not end in .yaml');
    expect(checkWrite(...reconcile('clusters/c1x/shop/configmaps/x.yaml'))?.message).toContain("it lies outside the target's folder");
  });

  it('names every problem of a job at once', () => {
    const err = checkWrite(live({ clusterId: 'c9', filePath: 'clusters/c9/shop/apps/deployments/web.yaml', author: { name: 'x', email: 'x@c9.cluster.local' } }), ctx());
    expect(err).toBeInstanceOf(WriteRefusedError);
    expect((err as WriteRefusedError).problems).toEqual([
      'clusterId "c9" is not the cluster of target "ops/t" ("c1")',
      'filePath "clusters/c9/shop/apps/deployments/web.yaml" is not the path of identity {"cluster":"c1","group":"apps","version":"v1","resource":"deployments","namespace":"shop","name":"web"} under target "ops/t" ("clusters/c1/shop/apps/deployments/web.yaml")',
      'author email "x@c9.cluster.local" is not of cluster "c1" of target "ops/t" (…@c1.cluster.local)',
    ]);
  });
});

describe('checkWrite of collection writes (a deletecollection, a deleted namespace)', () => {
  const author = { name: 'alice', email: 'alice@c1.cluster.local' };
  /** The write the router makes for a deletecollection of ConfigMaps in shop. */
  const collection = (change: Partial<WriteJob> = {}): WriteJob =>
    live({
      identity: { cluster: 'c1', group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: '' },
      operation: 'DELETE',
      content: null,
      resourceVersion: '',
      filePath: 'clusters/c1/shop/configmaps',
      author,
      collection: { names: ['a', 'b'] },
      ...change,
    });
  /** The write the router makes for the delete of Namespace shop. */
  const namespace = (change: Partial<WriteJob> = {}): WriteJob =>
    live({
      identity: { cluster: 'c1', group: '', version: 'v1', resource: 'namespaces', namespace: '', name: 'shop' },
      operation: 'DELETE',
      content: null,
      filePath: 'clusters/c1/shop',
      author,
      collection: { everythingBelow: true, objectFile: 'clusters/c1/_cluster/namespaces/shop.yaml' },
      ...change,
    });

  it("passes what the router makes: the target's folder of the type, or of the namespace", () => {
    expect(checkWrite(collection(), ctx())).toBeUndefined();
    expect(checkWrite(collection({ collection: { keep: ['a'], labelSelector: 'app in (web)', fieldSelector: 'metadata.name!=x' } }), ctx())).toBeUndefined();
    const clusterScoped = { cluster: 'c1', group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', namespace: '', name: '' };
    expect(checkWrite(collection({ identity: clusterScoped, filePath: 'clusters/c1/_cluster/rbac.authorization.k8s.io/clusterroles' }), ctx())).toBeUndefined();
    expect(checkWrite(collection({ filePath: 'shop/configmaps' }), ctx(''))).toBeUndefined();
    expect(checkWrite(namespace(), ctx())).toBeUndefined();
    expect(checkWrite(namespace({ collection: { everythingBelow: true } }), ctx())).toBeUndefined();
    // A namespace whose name needs encoding: the router's folder, encoded.
    expect(checkWrite(namespace({ identity: { ...namespace().identity, name: '_cluster' }, filePath: 'clusters/c1/%5Fcluster', collection: { everythingBelow: true } }), ctx())).toBeUndefined();
  });

  it.each<[string, WriteJob, string]>([
    ['the whole target folder', collection({ filePath: 'clusters/c1' }), 'filePath "clusters/c1" is not the folder of identity'],
    ['another type', collection({ filePath: 'clusters/c1/shop/secrets' }), '("clusters/c1/shop/configmaps")'],
    ['another namespace', collection({ filePath: 'clusters/c1/kube-system/configmaps' }), 'is not the folder of identity'],
    ['outside the target', collection({ filePath: '.git' }), 'filePath ".git" is not the folder'],
    ['a named object', collection({ identity: { ...collection().identity, name: 'a' } }), 'of a deletecollection names an object'],
    ['a write with content', collection({ operation: 'UPDATE', content: 'x: 1\n' }), 'a collection write is a DELETE without content, not UPDATE with content'],
    ["another cluster's user", collection({ author: { name: 'alice', email: 'alice@c2.cluster.local' } }), 'is not of cluster "c1"'],
    ['everything below a type folder', collection({ collection: { everythingBelow: true } }), 'of a write that removes a namespace\'s folder is not a Namespace'],
    ['every cluster-scoped object', namespace({ identity: { ...namespace().identity, name: '' }, filePath: 'clusters/c1/_cluster' }), 'is not a Namespace'],
    ['another namespace folder', namespace({ filePath: 'clusters/c1/kube-system' }), '("clusters/c1/shop")'],
    ['the target folder for a namespace', namespace({ filePath: 'clusters/c1' }), 'is not the folder of identity'],
    ['another objectFile', namespace({ collection: { everythingBelow: true, objectFile: 'clusters/c1/_cluster/namespaces/kube-system.yaml' } }), 'objectFile "clusters/c1/_cluster/namespaces/kube-system.yaml" is not the file of Namespace "shop"'],
    ['a reconcile write with a collection', { ...reconcile('clusters/c1/shop/configmaps/a.yaml')[0], collection: { names: ['a'] } }, 'a reconcile write removes no collection'],
  ])('refuses %s', (_name, job, problem) => {
    const err = checkWrite(job, ctx());
    expect(err).toBeInstanceOf(WriteRefusedError);
    expect(err?.message).toContain(problem);
  });

  it('the schema refuses what no router makes: two ways at once, names that escape, selectors that do not parse', () => {
    const parse = (c: unknown) => WriteJobSchema.safeParse({ ...collection(), collection: c }).success;
    expect(parse({ names: ['a'] })).toBe(true);
    expect(parse({ keep: [], labelSelector: 'a=b' })).toBe(true);
    expect(parse({ names: ['a'], keep: [] })).toBe(false);
    expect(parse({})).toBe(false);
    expect(parse({ names: ['../x'] })).toBe(false);
    expect(parse({ names: [''] })).toBe(false);
    expect(parse({ keep: [], labelSelector: 'a b' })).toBe(false);
    expect(parse({ keep: [], fieldSelector: 'nooperator' })).toBe(false);
    expect(parse({ names: ['a'], labelSelector: 'a=b' })).toBe(false);
    expect(parse({ names: ['a'], objectFile: 'x.yaml' })).toBe(false);
    expect(parse({ names: Array.from({ length: MAX_DELETED_NAMES + 1 }, (_, i) => `n${i}`) })).toBe(false);
  });
});

describe('withWriteCheck', () => {
  const lease = {} as HeldLease;
  const history = (n: number): JobHistory[] => Array.from({ length: n }, (_, i) => ({ attemptsMade: i, addedAt: 0 }));
  const committed = (j: WriteJob): WriteResult => ({ outcome: 'committed', commit: j.eventKey, pushedAs: j.eventKey });

  it('hands the valid jobs on, with their history, and puts each refusal in its place', async () => {
    const seen: { keys: string[]; attempts: number[] }[] = [];
    const handle = withWriteCheck(
      async (jobs, _lease, h) => {
        seen.push({ keys: jobs.map((j) => j.eventKey), attempts: h.map((x) => x.attemptsMade) });
        return jobs.map(committed);
      },
      (job) => checkWrite(job, ctx()),
    );
    const jobs = [live({ eventKey: 'a' }), live({ eventKey: 'bad', filePath: '.git/hooks/post-update' }), live({ eventKey: 'c' })];
    const results = await handle(jobs, lease, history(3));
    expect(seen).toEqual([{ keys: ['a', 'c'], attempts: [0, 2] }]);
    expect(results[0]).toMatchObject({ commit: 'a' });
    expect(results[1]).toBeInstanceOf(JobFailure);
    expect((results[1] as JobFailure).error.message).toMatch(/^write refused: filePath "\.git\/hooks\/post-update" /);
    expect(results[2]).toMatchObject({ commit: 'c' });
  });

  it('does not write at all when every job is refused', async () => {
    let called = false;
    const refusedJobs: string[] = [];
    const handle = withWriteCheck(
      async () => {
        called = true;
        return [];
      },
      (job) => checkWrite(job, ctx()),
      (job) => refusedJobs.push(job.eventKey),
    );
    const results = await handle([live({ eventKey: 'x', target: 'ops/gone' })], lease, history(1));
    expect(called).toBe(false);
    expect(refusedJobs).toEqual(['x']);
    expect((results[0] as JobFailure).error.message).toMatch(/^write refused: target "ops\/gone" is not configured/);
    // Failed with the retryable error: BullMQ retries it through the job's attempts.
    expect((results[0] as JobFailure).error).toBeInstanceOf(TargetNotConfiguredError);
  });
});
