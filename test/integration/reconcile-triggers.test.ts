// The reconcile triggers on a real Valkey with a real FlowProducer: the "running flow" is a real BullMQ
// worker on the `reconcile` queue that holds each parent until the test releases it (concurrency 10, so a
// second flow of a target, if the dedupe let one through, would run at the same time and be seen).
// Dedupe of simultaneous requests, five requests during a run → exactly one more, two replicas sharing
// Valkey, a run whose end nobody heard, a failed parent, job schedulers (set, changed, removed, ticking)
// and the HTTP API (202/404/403).
//
// "Nothing more happened" is never shown by waiting a while: a request returns once its flow is added, so
// the reconcile queue's jobs right after it are final for it; and a target's quiet end is shown by a marker
// run (see World.nothingMore) that must pass after anything still pending.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import express from 'express';
import { FlowProducer, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { pino } from 'pino';
import { openConnection } from '../../queues/connection.js';
import { partitionOf } from '../../queues/names.js';
import { RECONCILE_QUEUE, reconcileJobId, type ReconcileParentData } from '../../flows/reconcile/reconcile-flow.js';
import { reconcileTriggerKey, startReconcileTriggers, type ReconcileTriggers, type ScopeInput } from '../../flows/reconcile/triggers.js';
import { reconcileApiRouter } from '../../dashboard/reconcile-api.js';
import { waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const logger = pino({ level: 'silent' });

function scopeOf(key: string): ScopeInput {
  return {
    target: { key, clusterProvider: 'prod', path: `clusters/${key}`, prune: 'OnEvent', partition: partitionOf('file:///srv/repo.git', 'main') },
    scope: [],
  };
}

interface Run {
  target: string;
  runId: string;
  reason: string | undefined;
  release(fail?: boolean): void;
}

/** One test's world: a prefix, a holding parent worker, and any number of trigger "replicas". */
class World {
  readonly prefix = uniquePrefix('trig');
  readonly known = new Set(['team-a/prod', 'team-b/prod']);
  readonly runs: Run[] = [];
  readonly active = new Map<string, number>();
  maxActive = 0;
  private readonly connections: Valkey[] = [];
  private readonly closers: (() => Promise<unknown>)[] = [];
  worker!: Worker<ReconcileParentData>;

  constructor(private readonly url: string) {}

  conn(): Valkey {
    const c = openConnection(this.url);
    this.connections.push(c);
    return c;
  }

  startHolder(): void {
    this.worker = new Worker<ReconcileParentData>(
      RECONCILE_QUEUE,
      async (job) => {
        const { targetKey, runId, reason } = job.data;
        const n = (this.active.get(targetKey) ?? 0) + 1;
        this.active.set(targetKey, n);
        this.maxActive = Math.max(this.maxActive, n);
        try {
          const fail = await new Promise<boolean>((resolve) => this.runs.push({ target: targetKey, runId, reason, release: (f = false) => resolve(f) }));
          if (fail) throw new UnrecoverableError('listing refused');
          return { ok: true };
        } finally {
          this.active.set(targetKey, (this.active.get(targetKey) ?? 1) - 1);
        }
      },
      { connection: this.conn(), prefix: this.prefix, concurrency: 10 },
    );
    this.closers.push(() => this.worker.close(true));
  }

  async replica(): Promise<ReconcileTriggers> {
    const connection = this.conn();
    const flowProducer = new FlowProducer({ connection, prefix: this.prefix });
    const triggers = await startReconcileTriggers({
      connection,
      prefix: this.prefix,
      flowProducer,
      logger,
      scopeFor: async (key) => (this.known.has(key) ? scopeOf(key) : undefined),
      addGraceMs: 500,
    });
    this.closers.unshift(async () => {
      await triggers.stop();
      await flowProducer.close();
    });
    return triggers;
  }

  private parents: Queue<ReconcileParentData> | undefined;
  private parentQueue(): Queue<ReconcileParentData> {
    return (this.parents ??= new Queue<ReconcileParentData>(RECONCILE_QUEUE, { connection: this.conn(), prefix: this.prefix }));
  }

  parentState(target: string, runId: string): Promise<string> {
    return this.parentQueue().getJobState(reconcileJobId(target, runId));
  }

  /** The runIds of every flow ever added for the target (its parent job, in any state), sorted. */
  async flowsOf(target: string): Promise<string[]> {
    const jobs = await this.parentQueue().getJobs(['active', 'waiting', 'waiting-children', 'delayed', 'prioritized', 'completed', 'failed']);
    return jobs.filter((j) => j.data.targetKey === target).map((j) => j.data.runId).sort();
  }

  private reader: Valkey | undefined;
  /** Waits until the target's trigger hash is gone: no run marked, none pending. */
  async idle(target: string): Promise<void> {
    const valkey = (this.reader ??= this.conn());
    await waitFor(async () => (await valkey.exists(reconcileTriggerKey(this.prefix, target))) === 0, `${target} idle`);
  }

  /**
   * Shows that nothing more happened for an idle target since the holder saw its last run, without waiting
   * a while. A marker request starts a run at once (so no run was marked running, nor pending); released,
   * its end is heard and the target is idle again, which a replica does only after every end before it
   * (its QueueEvents hands them over in order). The replicas are then stopped, which waits for what they
   * are still doing about the ends they heard; the reconcile queue then holds exactly the flows whose runs
   * the holder saw, the marker's last.
   */
  async nothingMore(target: string, replicas: ReconcileTriggers[]): Promise<void> {
    const before = this.runsOf(target).length;
    const marker = await replicas[0]!.request(target, 'on-demand');
    expect(marker).toEqual({ started: expect.any(String) });
    await waitFor(async () => this.runsOf(target).length === before + 1, 'the marker run');
    expect(this.runsOf(target).at(-1)!.runId).toBe('started' in marker ? marker.started : '');
    this.runsOf(target).at(-1)!.release();
    await this.idle(target);
    for (const r of replicas) await r.stop();
    expect(await this.flowsOf(target)).toEqual(this.runsOf(target).map((r) => r.runId).sort());
  }

  runsOf(target: string): Run[] {
    return this.runs.filter((r) => r.target === target);
  }

  async stop(): Promise<void> {
    for (const r of this.runs) r.release();
    for (const close of this.closers) await close();
    await this.parents?.close();
    for (const c of this.connections) c.disconnect();
  }
}

describe('reconcile triggers', () => {
  let valkey: TestValkey;
  let world: World;

  beforeAll(async () => {
    valkey = await startTestValkey();
  });
  afterAll(async () => {
    await valkey?.stop();
  });
  afterEach(async () => {
    await world?.stop();
  });

  it('two requests at once start one flow; the second runs once after it', async () => {
    world = new World(valkey.url);
    world.startHolder();
    const t = await world.replica();
    const outcomes = await Promise.all([t.request('team-a/prod', 'start'), t.request('team-a/prod', 'config-change')]);
    expect(outcomes.filter((o) => 'started' in o)).toHaveLength(1);
    expect(outcomes.filter((o) => 'queued' in o)).toEqual([{ queued: 'pending' }]);
    await waitFor(async () => world.runs.length === 1, 'the first run');
    // Both requests have returned, so any flow they added is in the queue: one.
    expect(await world.flowsOf('team-a/prod')).toEqual([world.runs[0]!.runId]);
    const counts = await t.queues[0]!.getJobCounts('active', 'waiting', 'waiting-children', 'delayed');
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1);

    world.runs[0]!.release();
    await waitFor(async () => world.runs.length === 2, 'the pending run');
    expect(world.runs.map((r) => r.reason).sort()).toEqual(['config-change', 'start']);
    world.runs[1]!.release();
    await world.idle('team-a/prod');
    await world.nothingMore('team-a/prod', [t]);
    expect(world.runs).toHaveLength(3);
    expect(world.maxActive).toBe(1);
  });

  it('five requests during a run collapse into exactly one more run', async () => {
    world = new World(valkey.url);
    world.startHolder();
    const t = await world.replica();
    const first = await t.request('team-a/prod', 'start');
    expect(first).toEqual({ started: expect.any(String) });
    await waitFor(async () => world.runs.length === 1, 'the first run');
    expect(world.runs[0]!.runId).toBe('started' in first ? first.started : '');

    const reasons = ['schedule', 'on-demand', 'schedule', 'config-change', 'on-demand'] as const;
    for (const reason of reasons) expect(await t.request('team-a/prod', reason)).toEqual({ queued: 'pending' });
    // The other target is not held back by this one's run.
    expect(await t.request('team-b/prod', 'start')).toEqual({ started: expect.any(String) });
    await waitFor(async () => world.runsOf('team-b/prod').length === 1, 'team-b runs');
    world.runsOf('team-b/prod')[0]!.release();

    world.runs[0]!.release();
    await waitFor(async () => world.runsOf('team-a/prod').length === 2, 'the one more run');
    // Collapsed reasons, each once, in order of arrival; the mark was taken whole: nothing is left pending.
    expect(world.runsOf('team-a/prod')[1]!.reason).toBe('schedule,on-demand,config-change');
    expect(await world.conn().hget(reconcileTriggerKey(world.prefix, 'team-a/prod'), 'pending')).toBeNull();
    expect(await world.flowsOf('team-a/prod')).toHaveLength(2);
    world.runsOf('team-a/prod')[1]!.release();
    await world.idle('team-a/prod');
    await world.nothingMore('team-a/prod', [t]);
    expect(world.runsOf('team-a/prod')).toHaveLength(3);
    expect(world.maxActive).toBe(1);
  });

  it('two replicas sharing Valkey: one flow at a time, one more after it, started by one of them', async () => {
    world = new World(valkey.url);
    world.startHolder();
    const [a, b] = await Promise.all([world.replica(), world.replica()]);
    const outcomes = await Promise.all([
      a.request('team-a/prod', 'start'),
      b.request('team-a/prod', 'start'),
      a.request('team-a/prod', 'on-demand'),
      b.request('team-a/prod', 'schedule'),
      b.request('team-a/prod', 'on-demand'),
    ]);
    expect(outcomes.filter((o) => 'started' in o)).toHaveLength(1);
    expect(outcomes.filter((o) => 'queued' in o)).toHaveLength(4);
    await waitFor(async () => world.runs.length === 1, 'the first run');
    world.runs[0]!.release();
    // Both replicas hear the parent complete; exactly one of them starts the pending run.
    await waitFor(async () => world.runs.length === 2, 'the one more run');
    // The other heard that end when this one did (both read the same stream); stopped, both are done with
    // it: the target is marked with the one more run, nothing is left pending, and no other flow was added.
    await a.stop();
    await b.stop();
    expect(await world.conn().hgetall(reconcileTriggerKey(world.prefix, 'team-a/prod'))).toEqual({
      running: world.runs[1]!.runId,
      since: expect.any(String),
      reason: expect.any(String),
    });
    expect(await world.flowsOf('team-a/prod')).toHaveLength(2);
    // A replica started now hears the end of that run.
    const c = await world.replica();
    world.runs[1]!.release();
    await world.idle('team-a/prod');
    await world.nothingMore('team-a/prod', [c]);
    expect(world.runs).toHaveLength(3);
    expect(world.maxActive).toBe(1);
  });

  it('a run whose end nobody heard is finished by the next request; a call while it runs changes nothing', async () => {
    world = new World(valkey.url);
    world.startHolder();
    const a = await world.replica();
    const first = await a.request('team-a/prod', 'start');
    await waitFor(async () => world.runs.length === 1, 'the first run');
    // onRunFinished while the parent is active (a retried attempt's failure, say): nothing moves. Both calls
    // have returned, so any flow they added is in the queue already: none.
    await a.onRunFinished('team-a/prod', world.runs[0]!.runId);
    expect(await a.request('team-a/prod', 'on-demand')).toEqual({ queued: 'pending' });
    expect(await world.flowsOf('team-a/prod')).toEqual([world.runs[0]!.runId]);

    // No replica is listening when the parent completes.
    await a.stop();
    world.runs[0]!.release();
    await waitFor(async () => (await world.parentState('team-a/prod', 'started' in first ? first.started : '')) === 'completed', 'the parent completed');
    expect(world.runs).toHaveLength(1);

    // A later replica's request notices: the pending run starts, and this request shares it.
    const b = await world.replica();
    const outcome = await b.request('team-a/prod', 'schedule');
    expect(outcome).toEqual({ queued: 'pending' });
    await waitFor(async () => world.runs.length === 2, 'the pending run');
    expect(world.runs[1]!.reason).toBe('on-demand');
    world.runs[1]!.release();
    await waitFor(async () => world.runs.length === 3, 'the run after that');
    expect(world.runs[2]!.reason).toBe('schedule');
    world.runs[2]!.release();
    await world.idle('team-a/prod');
    expect(world.maxActive).toBe(1);
  });

  it('a parent that fails also ends the run; unknown targets are skipped and leave no key', async () => {
    world = new World(valkey.url);
    world.startHolder();
    const t = await world.replica();
    expect(await t.request('nobody/here', 'on-demand')).toEqual({ skipped: 'target unknown' });
    expect(await world.conn().exists(reconcileTriggerKey(world.prefix, 'nobody/here'))).toBe(0);

    await t.request('team-a/prod', 'start');
    await waitFor(async () => world.runs.length === 1, 'the first run');
    expect(await t.request('team-a/prod', 'on-demand')).toEqual({ queued: 'pending' });
    world.runs[0]!.release(true);
    await waitFor(async () => world.runs.length === 2, 'the pending run after a failure');
    // The target is deleted while its next run is pending: nothing more starts.
    expect(await t.request('team-a/prod', 'config-change')).toEqual({ queued: 'pending' });
    world.known.delete('team-a/prod');
    world.runs[1]!.release();
    await world.idle('team-a/prod');
    const failed = await t.queues[0]!.getFailed();
    expect(failed.map((j) => j.failedReason)).toEqual(['listing refused']);
    // Configured again, the target starts a run at once, and it is the only one since.
    world.known.add('team-a/prod');
    await world.nothingMore('team-a/prod', [t]);
    expect(world.runs).toHaveLength(3);
  });

  it('schedule() upserts one job scheduler per target with an interval and removes the others; a tick requests a run', async () => {
    world = new World(valkey.url);
    world.startHolder();
    const t = await world.replica();
    const scheduleQueue = t.queues[1]!;
    const schedulers = async () =>
      Object.fromEntries((await scheduleQueue.getJobSchedulers(0, -1)).map((s) => [s.key, { every: s.every, target: (s.template?.data as { target?: string } | undefined)?.target }]));

    await t.schedule([
      { key: 'team-a/prod', intervalSeconds: 600 },
      { key: 'team-b/prod', intervalSeconds: 0 },
      { key: 'team-c/prod', intervalSeconds: 300 },
    ]);
    expect(await schedulers()).toEqual({ 'team-a/prod': { every: 600_000, target: 'team-a/prod' }, 'team-c/prod': { every: 300_000, target: 'team-c/prod' } });
    // The first tick is one interval away, not now (start and config-change cover now).
    const delayed = await scheduleQueue.getDelayed();
    expect(delayed).toHaveLength(2);
    for (const job of delayed) expect(job.timestamp + job.delay - Date.now()).toBeGreaterThan(250_000);
    expect(await scheduleQueue.getWaitingCount()).toBe(0);

    // Same again: nothing changes (the next tick keeps its slot).
    const before = (await scheduleQueue.getJobSchedulers(0, -1)).map((s) => [s.key, s.next]);
    await t.schedule([
      { key: 'team-a/prod', intervalSeconds: 600 },
      { key: 'team-c/prod', intervalSeconds: 300 },
    ]);
    expect((await scheduleQueue.getJobSchedulers(0, -1)).map((s) => [s.key, s.next])).toEqual(before);

    // Changed interval, a target gone, another set to 0.
    await t.schedule([
      { key: 'team-a/prod', intervalSeconds: 0 },
      { key: 'team-b/prod', intervalSeconds: 1 },
    ]);
    expect(await schedulers()).toEqual({ 'team-b/prod': { every: 1000, target: 'team-b/prod' } });
    expect((await scheduleQueue.getDelayed()).map((j) => j.data)).toEqual([{ target: 'team-b/prod' }]);

    // The 1 s scheduler ticks: runs with reason 'schedule', never two at once.
    await waitFor(async () => world.runs.length === 1, 'a scheduled run', 5000);
    expect(world.runs[0]).toMatchObject({ target: 'team-b/prod', reason: 'schedule' });
    // Two more ticks during that run: each only marks one more run pending.
    const queuedTicks = async () => (await scheduleQueue.getCompleted()).filter((j) => (j.returnvalue as { queued?: string } | null)?.queued === 'pending').length;
    await waitFor(async () => (await queuedTicks()) >= 2, 'two ticks during the scheduled run', 5000);
    expect(world.runs).toHaveLength(1);
    world.runs[0]!.release();
    await waitFor(async () => world.runs.length === 2, 'the run after the ticks during the first', 5000);
    expect(world.runs[1]).toMatchObject({ target: 'team-b/prod', reason: 'schedule' });
    expect(world.maxActive).toBe(1);

    await t.schedule([]);
    expect(await scheduleQueue.getJobSchedulers(0, -1)).toEqual([]);
    expect(await scheduleQueue.getDelayedCount()).toBe(0);
  });

  it('POST /admin/api/reconcile/:namespace/:name answers 202 started/queued, 404 unknown, 403 read-only', async () => {
    world = new World(valkey.url);
    world.startHolder();
    const t = await world.replica();
    const serve = async (readOnly: boolean): Promise<{ url: string; server: Server }> => {
      const app = express();
      app.use(reconcileApiRouter({ request: t.request, readOnly }));
      const server = await new Promise<Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      const address = server.address();
      return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, server };
    };
    const rw = await serve(false);
    const ro = await serve(true);
    try {
      const post = async (base: string, path: string) => {
        const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' } });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      // A plain POST (what a page on another site can make a browser send) is refused.
      const plain = await fetch(`${rw.url}/admin/api/reconcile/team-a/prod`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
      expect(plain.status).toBe(415);
      const started = await post(rw.url, '/admin/api/reconcile/team-a/prod');
      expect(started).toEqual({ status: 202, body: { target: 'team-a/prod', started: expect.any(String) } });
      await waitFor(async () => world.runs.length === 1, 'the run');
      expect(world.runs[0]).toMatchObject({ runId: started.body.started, reason: 'on-demand' });
      expect(await post(rw.url, '/admin/api/reconcile/team-a/prod')).toEqual({ status: 202, body: { target: 'team-a/prod', queued: 'pending' } });
      expect(await post(rw.url, '/admin/api/reconcile/nobody/here')).toMatchObject({ status: 404, body: { error: 'no GitTarget nobody/here' } });
      expect((await post(rw.url, '/admin/api/reconcile/Bad_Name/x')).status).toBe(404);
      expect(await post(ro.url, '/admin/api/reconcile/team-b/prod')).toMatchObject({ status: 403, body: { error: expect.stringContaining('read-only') } });
      // Refused: nothing was requested for team-b.
      expect(await world.conn().exists(reconcileTriggerKey(world.prefix, 'team-b/prod'))).toBe(0);
    } finally {
      rw.server.close();
      ro.server.close();
    }
  });
});
