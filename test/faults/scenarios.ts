// The fault-injection scenarios of the write path (issue 3). Each runs a fresh world (Valkey process,
// guarded bare remote, N replica processes), streams audit events through the webhook, injects one fault,
// waits for the backlog to drain, and returns one row of exact counts plus the problems it found.
//
// Used by `npm run faults` (bench/faults.ts, a realistic size) and by test/faults/*.test.ts (a small size).
import { CLUSTER, TOKEN, startFaultCluster, type FaultCluster } from './harness/fault-cluster.js';
import { startEventSender, type EventSender } from './harness/event-sender.js';
import { objectPath, verify, countAuditCommits } from './harness/verifier.js';
import { sleep, type Replica } from './harness/replicas.js';
import { classifyLost } from './harness/diagnose.js';

export interface Row {
  scenario: string;
  sent: number;
  acknowledged: number;
  committed: number;
  lost: number;
  duplicated: number;
  concurrentPushes: number;
  takeoverSeconds: number | null;
  drainSeconds: number | null;
}

export interface ScenarioResult {
  row: Row;
  /** Everything else that went wrong (order, final tree, bounds, dead letters); empty when it passed. */
  problems: string[];
  /** What happened, for the report (takeover of each kill, sender failures, …). */
  notes: string[];
  /** Acknowledged events that are expected not to be committed (the poison event). */
  expectedNotCommitted: number;
}

export interface ScenarioSize {
  replicas: number;
  events: number;
  objects: number;
  lanes: number;
  eventsPerBatch: number;
  ratePerSecond: number;
  leaseTtlMs: number;
  writeBatchSize: number;
  /** WRITE_BACKOFF_MS of the replicas: the first retry delay of a refused write, doubling per attempt. */
  writeBackoffMs: number;
  /** How long to wait for the backlog after the fault and the stream ended. */
  drainTimeoutMs: number;
  /** How long the poison event may take to reach the failed set (its attempts back off). */
  deadLetterTimeoutMs: number;
}

export const SMALL: ScenarioSize = { replicas: 2, events: 100, objects: 10, lanes: 2, eventsPerBatch: 5, ratePerSecond: 20, leaseTtlMs: 2000, writeBatchSize: 100, writeBackoffMs: 500, drainTimeoutMs: 60_000, deadLetterTimeoutMs: 75_000 };
export const REALISTIC: ScenarioSize = { replicas: 3, events: 2000, objects: 50, lanes: 4, eventsPerBatch: 20, ratePerSecond: 250, leaseTtlMs: 2000, writeBatchSize: 200, writeBackoffMs: 2000, drainTimeoutMs: 120_000, deadLetterTimeoutMs: 120_000 };

interface Context {
  cluster: FaultCluster;
  sender: EventSender;
  size: ScenarioSize;
  notes: string[];
  problems: string[];
  /** Checks a fault leaves for after the drain (they need the final state). */
  checks: (() => Promise<void>)[];
}

interface FaultOutcome {
  /** When the fault ended (epoch ms); drain time counts from max(this, end of sending). */
  faultEndedAt?: number;
  takeoverSeconds?: number | null;
}

interface Scenario {
  name: string;
  poison?: boolean;
  fault?(ctx: Context): Promise<FaultOutcome>;
  /** Checks after the backlog drained (before the remote is verified). */
  afterDrain?(ctx: Context): Promise<void>;
}

const POISON_OBJECT = 'poison-pill';
const seconds = (ms: number) => Math.round(ms / 10) / 100;

/** Acknowledged so far reaches this share of the stream. */
const atShare = (ctx: Context, share: number) => ctx.sender.waitForAcknowledged(Math.floor(ctx.size.events * share), 120_000);

async function takeoverAfter(ctx: Context, holder: Replica, what: string, startedAt: number, timeoutMs = 30_000): Promise<number> {
  const at = await ctx.cluster.waitForTakeover(holder, timeoutMs);
  const s = seconds(at - startedAt);
  const next = await ctx.cluster.leaseHolder().catch(() => undefined);
  ctx.notes.push(`${what} ${holder.id}: ${next?.id ?? 'another replica'} took the lease after ${s} s`);
  return s;
}

/** Pushes that landed from `pid` in [from, to): traced through the pushing process chain in post-receive. */
async function pushesBy(ctx: Context, pid: number, from: number, to: number): Promise<number> {
  return (await ctx.cluster.remote.landed()).filter((p) => !p.outside && p.pushers.includes(pid) && p.at >= from && p.at < to).length;
}

export const SCENARIOS: Scenario[] = [
  { name: 'baseline' },

  {
    name: 'kill-writer',
    async fault(ctx) {
      // 1. kill -9 the lease holder at an arbitrary moment of the stream (most likely in the middle of a batch).
      await atShare(ctx, 0.3);
      const first = await ctx.cluster.waitForHolder();
      const t1 = Date.now();
      await first.kill();
      const takeover1 = await takeoverAfter(ctx, first, 'kill -9 (mid-stream) of', t1);
      const restarted = first.start(); // the pod comes back while the stream goes on
      // 2. kill -9 the new holder right after one of its pushes landed, before it could complete its jobs.
      const second = await ctx.cluster.waitForHolder();
      const pid = second.servicePid!;
      const seen = (await ctx.cluster.remote.landed()).length;
      const deadline = Date.now() + 45_000;
      let t2 = 0;
      while (Date.now() < deadline) {
        const landed = await ctx.cluster.remote.landed();
        if (landed.slice(seen).some((p) => p.pushers.includes(pid))) {
          t2 = Date.now();
          await second.kill();
          break;
        }
        await sleep(5);
      }
      await restarted;
      if (!t2) {
        ctx.problems.push(`${second.id} (pid ${pid}) holds the lease but made no push within 45 s after the takeover; the second kill (right after a push) was not done`);
        return { faultEndedAt: t1, takeoverSeconds: takeover1 };
      }
      const takeover2 = await takeoverAfter(ctx, second, 'kill -9 (right after its push landed) of', t2);
      await second.start();
      return { faultEndedAt: t2, takeoverSeconds: Math.max(takeover1, takeover2) };
    },
  },

  {
    name: 'pause-writer',
    async fault(ctx) {
      await atShare(ctx, 0.4);
      const holder = await ctx.cluster.waitForHolder();
      const pid = holder.servicePid!;
      const t0 = Date.now();
      holder.pause();
      const takeover = await takeoverAfter(ctx, holder, 'SIGSTOP of', t0);
      // Keep it stopped well past the lease TTL (and past the takeover), then let it run again.
      const resumeAt = t0 + Math.max(2.5 * ctx.size.leaseTtlMs, Date.now() - t0 + ctx.size.leaseTtlMs);
      await sleep(resumeAt - Date.now());
      const resumedAt = Date.now();
      holder.resume();
      ctx.notes.push(`${holder.id} stopped for ${seconds(resumedAt - t0)} s (lease TTL ${seconds(ctx.size.leaseTtlMs)} s)`);
      // After SIGCONT the paused writer may push only once it has taken the lease again.
      ctx.checks.push(async () => {
        const lines = await holder.logLines();
        const retook = lines.find((l) => l.pid === pid && l.time >= resumedAt && l.msg.includes(`lease of partition ${ctx.cluster.partition.id}`) && l.msg.startsWith('took'));
        const stale = await pushesBy(ctx, pid, resumedAt, retook?.time ?? Number.MAX_SAFE_INTEGER);
        if (stale > 0) ctx.problems.push(`the paused writer ${holder.id} pushed ${stale} time(s) after SIGCONT without holding the lease again`);
        else ctx.notes.push(`${holder.id} made no push after SIGCONT before it took the lease again${retook ? ` (fence ${String(retook.fence)})` : ' (it never took it again)'}`);
      });
      return { faultEndedAt: resumedAt, takeoverSeconds: takeover };
    },
  },

  {
    name: 'valkey-restart',
    async fault(ctx) {
      await atShare(ctx, 0.4);
      const t0 = Date.now();
      await ctx.cluster.valkey.kill();
      await sleep(2000);
      await ctx.cluster.valkey.restart();
      ctx.notes.push(`Valkey SIGKILLed and restarted on port ${ctx.cluster.valkey.port} over its AOF after ${seconds(Date.now() - t0)} s`);
      return { faultEndedAt: Date.now(), takeoverSeconds: null };
    },
  },

  {
    name: 'remote-down',
    async fault(ctx) {
      await atShare(ctx, 0.3);
      const t0 = Date.now();
      await ctx.cluster.remote.refuseAll();
      await sleep(Math.max(4000, ctx.size.leaseTtlMs * 2));
      await ctx.cluster.remote.accept();
      const refused = (await ctx.cluster.remote.refusals()).filter((l) => l.includes('remote down')).length;
      ctx.notes.push(`the remote refused every push for ${seconds(Date.now() - t0)} s (${refused} pushes refused)`);
      return { faultEndedAt: Date.now(), takeoverSeconds: null };
    },
  },

  {
    name: 'push-conflict',
    async fault(ctx) {
      const outside: string[] = [];
      for (const [i, share] of [0.3, 0.5, 0.7].entries()) {
        await atShare(ctx, share);
        // Someone else can only race us on a branch that exists.
        await waitUntil(async () => (await countAuditCommits(ctx.cluster.remote)) > 0, 'the first commit of the writers on the remote', 60_000);
        outside.push(await ctx.cluster.remote.pushOutsideCommit(`${ctx.cluster.root}/outside-${i}`, `outside/notes-${i}.md`, `an outside change #${i}\n`));
      }
      ctx.checks.push(async () => {
      for (const sha of outside) {
        try {
          await ctx.cluster.remote.git('merge-base', '--is-ancestor', sha, ctx.cluster.remote.branch);
        } catch {
          ctx.problems.push(`the outside commit ${sha} is not an ancestor of the branch tip: it was lost`);
        }
      }
      const landed = await ctx.cluster.remote.landed();
      const outsideTips = new Set(landed.filter((p) => p.outside).map((p) => p.newSha));
      const onTop = landed.filter((p) => !p.outside && outsideTips.has(p.oldSha)).length;
      const conflicts = await countLog(ctx, /someone else pushed|push refused|rejected/i);
      ctx.notes.push(`${outside.length} outside commits pushed; ${onTop} writer pushes landed directly on top of one; the writers logged ${conflicts} refused/conflicting pushes`);
      // Timing decides whether a writer pushes right after an outside commit; the invariants above hold either way.
      if (onTop === 0) ctx.notes.push('no writer push landed directly on top of an outside commit this run (the race was not hit)');
      });
      return { faultEndedAt: Date.now(), takeoverSeconds: null };
    },
  },

  {
    name: 'graceful-shutdown',
    async fault(ctx) {
      await atShare(ctx, 0.4);
      const holder = await ctx.cluster.waitForHolder();
      const t0 = Date.now();
      const takeover = takeoverAfter(ctx, holder, 'SIGTERM of', t0);
      const exit = await holder.terminate(30_000);
      // Released at shutdown, not left to expire: the moment it has exited, the lease no longer names it.
      const after = await ctx.cluster.leaseHolder().catch(() => undefined);
      if (after === holder) ctx.problems.push(`${holder.id} exited after SIGTERM still holding the lease of partition ${ctx.cluster.partition.id}: it was not released at shutdown`);
      const s = await takeover;
      ctx.notes.push(`${holder.id} exited with code ${exit.code} ${exit.seconds} s after SIGTERM`);
      if (exit.code !== 0) ctx.problems.push(`${holder.id} exited with code ${exit.code} after SIGTERM (expected 0)`);
      if (exit.seconds > 10) ctx.problems.push(`${holder.id} took ${exit.seconds} s to exit after SIGTERM (bound: 10 s)`);
      return { faultEndedAt: t0, takeoverSeconds: s };
    },
  },

  {
    name: 'poison',
    poison: true,
    async afterDrain(ctx) {
      const poison = ctx.sender.events.find((e) => e.poison);
      if (!poison) return void ctx.problems.push('the poison event was never sent');
      if (!poison.acknowledged) return void ctx.problems.push(`the poison event ${poison.auditID} was not acknowledged by the webhook`);
      const queue = ctx.cluster.writeQueue();
      // Its retries back off (BullMQ attempts); wait, bounded, for the terminal state.
      const stateOf = async () => {
        const jobs = await queue.getJobs(['completed', 'failed', 'waiting', 'active', 'delayed', 'prioritized'], 0, -1);
        const j = jobs.find((x) => (x.data as { auditID?: string }).auditID === poison.auditID);
        return j ? await j.getState() : 'absent';
      };
      const terminalWithin = ctx.size.deadLetterTimeoutMs;
      try {
        await waitUntil(async () => ['failed', 'completed'].includes(await stateOf()), `the poison event's write job to fail for good (state now: ${await stateOf()})`, terminalWithin);
      } catch (e) {
        ctx.problems.push(`${(e as Error).message}`);
      }
      const failed = await queue.getFailed(0, -1);
      const job = failed.find((j) => (j.data as { auditID?: string }).auditID === poison.auditID);
      const others = failed.filter((j) => j !== job).length;
      if (others > 0) ctx.problems.push(`${others} other events ended in the failed set of ${queue.name} with the poison event (not isolated); e.g. ${failed.find((j) => j !== job)?.failedReason ?? ''}`.slice(0, 400));
      if (!job) {
        const all = await queue.getJobs(['completed', 'waiting', 'active', 'delayed', 'prioritized']);
        const found = all.find((j) => (j.data as { auditID?: string }).auditID === poison.auditID);
        const state = found ? await found.getState() : 'absent';
        ctx.problems.push(`the poison event ${poison.auditID} is not in the failed set of ${queue.name} (its job is ${state}${found?.returnvalue ? `: ${JSON.stringify(found.returnvalue)}` : ''})`);
        return;
      }
      const attempts = job.opts.attempts ?? 1;
      ctx.notes.push(`poison event in the failed set after ${job.attemptsMade}/${attempts} attempts: ${job.failedReason.slice(0, 160)}`);
      if (!job.failedReason) ctx.problems.push('the poison event is in the failed set without an error');
      if (job.attemptsMade > attempts) ctx.problems.push(`the poison event was attempted ${job.attemptsMade} times (bound ${attempts})`);
    },
  },
];

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds(timeoutMs)} s waiting for ${what}`);
    await sleep(200);
  }
}

async function countLog(ctx: Context, msg: RegExp): Promise<number> {
  let n = 0;
  for (const r of ctx.cluster.replicas) n += (await r.logLines()).filter((l) => msg.test(l.msg)).length;
  return n;
}

export const SCENARIO_NAMES = SCENARIOS.map((s) => s.name);

/** Runs one scenario in a fresh world and tears it all down afterwards, also on failure. */
export async function runScenario(name: string, size: ScenarioSize, log: (line: string) => void = () => undefined): Promise<ScenarioResult> {
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (!scenario) throw new Error(`unknown scenario "${name}"; known: ${SCENARIO_NAMES.join(', ')}`);
  const cluster = await startFaultCluster({ replicas: size.replicas, leaseTtlMs: size.leaseTtlMs, writeBatchSize: size.writeBatchSize, writeBackoffMs: size.writeBackoffMs });
  try {
    if (scenario.poison) await cluster.remote.refusePath(objectPath(CLUSTER, POISON_OBJECT));
    const sender = startEventSender({
      targets: cluster.replicas.map((r) => r.url),
      cluster: CLUSTER,
      token: TOKEN,
      total: size.events,
      objects: size.objects,
      lanes: size.lanes,
      eventsPerBatch: size.eventsPerBatch,
      ratePerSecond: size.ratePerSecond,
      deadline: Date.now() + size.drainTimeoutMs + 60_000,
      poison: scenario.poison ? { index: Math.floor(size.events / 2), name: POISON_OBJECT } : undefined,
    });
    const ctx: Context = { cluster, sender, size, notes: [], problems: [], checks: [] };
    let outcome: FaultOutcome = {};
    try {
      outcome = (await scenario.fault?.(ctx)) ?? {};
    } catch (err) {
      sender.stop();
      await sender.done;
      throw err;
    }
    await sender.done;
    log(`${name}: sent ${sender.events.length}, acknowledged ${sender.events.filter((e) => e.acknowledged).length}; draining`);
    const failures = Object.entries(sender.failures);
    if (failures.length > 0) ctx.notes.push(`webhook retries: ${failures.map(([k, v]) => `${k}×${v}`).join(', ')}`);

    // Drain: until every acknowledged (non-poison) event is committed, or nothing is left to do, or the timeout.
    const expected = sender.events.filter((e) => e.acknowledged && !e.poison).length;
    const drainFrom = Math.max(outcome.faultEndedAt ?? 0, sender.finishedAt());
    const deadline = Date.now() + size.drainTimeoutMs;
    let committed = await countAuditCommits(cluster.remote);
    let lastChange = Date.now();
    let drainedAt: number | undefined = committed >= expected ? Date.now() : undefined;
    let lastSettleCheck = 0;
    while (drainedAt === undefined && Date.now() < deadline) {
      await sleep(100);
      const now = await countAuditCommits(cluster.remote);
      if (now !== committed) {
        committed = now;
        lastChange = Date.now();
      }
      if (committed >= expected) drainedAt = Date.now();
      else if (Date.now() - lastSettleCheck > 1000 && Date.now() - lastChange > 1000) {
        lastSettleCheck = Date.now();
        // Nothing waiting, active or delayed any more and the branch is quiet: the outcome is final.
        if ((await cluster.pendingJobs().catch(() => 1)) === 0) break;
      }
    }
    if (drainedAt === undefined) {
      const pending = await cluster.pendingJobs().catch((e: Error) => `unknown (${e.message})`);
      ctx.problems.push(`not drained: ${committed} of ${expected} acknowledged events committed; ${pending} jobs still pending ${Date.now() >= deadline ? `after the drain timeout of ${seconds(size.drainTimeoutMs)} s` : '(queues settled)'}`);
    }
    for (const check of ctx.checks) await check();
    await scenario.afterDrain?.(ctx);

    const v = await verify(cluster.remote, CLUSTER, sender.events);
    if (v.lost.length > 0) {
      const classes = await classifyLost(cluster.ingestQueue(), cluster.writeQueue(), CLUSTER, v.lost).catch((e: Error) => new Map([[`(could not look them up: ${e.message})`, v.lost]]));
      const where = [...classes].map(([kind, ids]) => `${ids.length}× ${kind} (e.g. ${ids[0]})`).join('; ');
      ctx.problems.push(`${v.lost.length} acknowledged events have no commit: ${where}`);
    }
    if (v.duplicated.length > 0) ctx.problems.push(`${v.duplicated.length} Audit-IDs are committed more than once, e.g. ${v.duplicated.slice(0, 3).join(', ')}`);
    if (v.concurrentPushes > 0) ctx.problems.push(`the remote refused ${v.concurrentPushes} overlapping pushes: ${(await cluster.remote.concurrentRefusals())[0]}`);
    ctx.problems.push(...v.problems);
    const acknowledged = sender.events.filter((e) => e.acknowledged).length;
    const row: Row = {
      scenario: name,
      sent: sender.events.length,
      acknowledged,
      committed: v.committed,
      lost: v.lost.length,
      duplicated: v.duplicated.length,
      concurrentPushes: v.concurrentPushes,
      takeoverSeconds: outcome.takeoverSeconds ?? null,
      drainSeconds: drainedAt === undefined ? null : seconds(Math.max(0, drainedAt - drainFrom)),
    };
    if (acknowledged < sender.events.length) ctx.problems.push(`${sender.events.length - acknowledged} sent events were never acknowledged by the webhook before the deadline`);
    if (process.env.FAULTS_KEEP && ctx.problems.length > 0) {
      cluster.keepFiles();
      ctx.notes.push(`FAULTS_KEEP: logs, remote and AOF kept in ${cluster.root}`);
    }
    return { row, problems: ctx.problems, notes: ctx.notes, expectedNotCommitted: v.expectedNotCommitted };
  } finally {
    await cluster.teardown();
  }
}
