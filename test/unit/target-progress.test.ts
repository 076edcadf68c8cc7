// What one written or handed-back batch changes of its targets' progress (pure part of target-progress.ts).
import { describe, expect, it } from 'vitest';
import type { WriteJob, WriteResult } from '../../core/contracts.js';
import { JobFailure } from '../../queues/exclusive-batch-consumer.js';
import { LeaseLostError } from '../../queues/lease.js';
import { progressUpdates, withBatchProgress, type BatchProgress } from '../../queues/target-progress.js';

const job = (n: number, target: string, second: number): WriteJob => ({
  eventKey: `c1_e${n}`,
  clusterId: 'c1',
  auditID: `e${n}`,
  target,
  identity: { cluster: 'c1', group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: `cm${n}` },
  operation: 'UPDATE',
  filePath: `shop/cm${n}.yaml`,
  content: 'x',
  // etcd's revision grows with time: the newest change has the highest.
  resourceVersion: String(100 + second),
  author: { name: 'u', email: 'u@c1' },
  stageTimestamp: `2026-01-10T08:00:${String(second).padStart(2, '0')}.000000Z`,
});
const committed = (sha: string): WriteResult => ({ outcome: 'committed', commit: sha, pushedAs: sha });

describe('progressUpdates', () => {
  it('gives each target the commit of its newest change and clears its error', () => {
    // Arrived out of change order: job 1 happened last.
    const jobs = [job(1, 'a/t', 30), job(2, 'a/t', 10), job(3, 'b/t', 20), job(4, 'c/t', 5)];
    const results = [committed('c'.repeat(40)), committed('a'.repeat(40)), committed('b'.repeat(40)), { outcome: 'unchanged', reason: 'same-content', head: 'h' } as const];
    const updates = progressUpdates({ jobs, results });
    const at = (second: number) => Date.parse(`2026-01-10T08:00:${String(second).padStart(2, '0')}Z`);
    expect(updates.get('a/t')).toEqual({ commit: 'c'.repeat(40), error: null, newestEvent: at(30) });
    expect(updates.get('b/t')).toEqual({ commit: 'b'.repeat(40), error: null, newestEvent: at(20) });
    // Written without a commit (same content): still a change the pipeline has caught up with.
    expect(updates.get('c/t')).toEqual({ error: null, newestEvent: at(5) });
  });

  it('sets the error of a target whose event failed alone, and of every target of a batch handed back', () => {
    const jobs = [job(1, 'a/t', 1), job(2, 'b/t', 2)];
    const alone = progressUpdates({ jobs, results: [new JobFailure(new Error('the remote refused the commit of UPDATE x')), committed('b'.repeat(40))] });
    // A failed write is no progress: it sets no lag.
    expect(alone.get('a/t')).toEqual({ error: 'the remote refused the commit of UPDATE x' });
    expect(alone.get('b/t')).toEqual({ commit: 'b'.repeat(40), error: null, newestEvent: Date.parse('2026-01-10T08:00:02Z') });
    const back = progressUpdates({ jobs, error: new Error('git push failed: unreachable') });
    expect([...back.values()]).toEqual([{ error: 'git push failed: unreachable' }, { error: 'git push failed: unreachable' }]);
  });

  it('changes nothing when the lease was lost (another replica goes on)', () => {
    expect(progressUpdates({ jobs: [job(1, 'a/t', 1)], error: new LeaseLostError('partition p1', 3) }).size).toBe(0);
  });
});

describe('withBatchProgress', () => {
  it('reports results and errors and passes them through, even when the callback throws', async () => {
    const seen: BatchProgress[] = [];
    const ok = withBatchProgress(async (jobs: WriteJob[]) => jobs.map(() => committed('d'.repeat(40))), (p) => {
      seen.push(p);
      throw new Error('ignored');
    });
    const jobs = [job(1, 'a/t', 1)];
    expect(await ok(jobs)).toEqual([committed('d'.repeat(40))]);
    const failing = withBatchProgress(async (): Promise<WriteResult[]> => {
      throw new Error('down');
    }, (p) => seen.push(p));
    await expect(failing(jobs)).rejects.toThrow('down');
    expect(seen).toHaveLength(2);
    expect('results' in seen[0]!).toBe(true);
    expect('error' in seen[1]!).toBe(true);
  });
});
