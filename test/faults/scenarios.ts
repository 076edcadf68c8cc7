// The fault-injection scenarios of the write path. Each runs a fresh world (Valkey process,
// guarded bare remote, N replica processes), streams audit events through the webhook, injects one fault,
// waits for the backlog to drain, and returns one row of exact counts plus the problems it found.
//
// Used by `npm run faults` (bench/faults.ts, a realistic size) and by test/faults/*.test.ts (a small size).
import { CLUSTER, TOKEN, startFaultCluster, type FaultCluster } from './harness/fault-cluster.js';
import { startEventSender, type EventSender } from './harness/event-sender.js';
import { objectPath, verify, countAuditCommits, remoteCommits } from './harness/verifier.js';
import { sleep, type LogLine, type Replica } from './harness/replicas.js';
import type { ForcedOutside, HeldPush, OutsideTiming } from './harness/guarded-remote.js';
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

const short = (sha: string | null) => (sha ?? '(none)').slice(0, 10);

/**
 * Holds the next writer push in the remote's pre-receive hook and returns it with the replica that made it:
 * until releaseHeldPush, that replica's batch is committed (fast-import) and its push is on the wire, not
 * landed. Undefined, with the problem recorded, when no push came (the aimed fault is then not done).
 */
async function holdNextPush(ctx: Context, purpose: string): Promise<{ held: HeldPush; pusher: Replica } | undefined> {
  const { remote } = ctx.cluster;
  await remote.holdNextPush();
  let held: HeldPush;
  try {
    held = await waitFor(() => remote.heldPush(), 'a writer push to reach the remote', 30_000);
  } catch (e) {
    await remote.releaseHeldPush('accept'); // disarmed: a later push passes through
    ctx.problems.push(`no writer push was held in the remote ${purpose}: ${(e as Error).message}`);
    return undefined;
  }
  const pusher = ctx.cluster.replicas.find((r) => r.servicePid !== undefined && held.pushers.includes(r.servicePid));
  if (!pusher) {
    await remote.releaseHeldPush('accept');
    ctx.problems.push(`the held push ${short(held.newSha)} came from none of the replicas (pushers ${held.pushers.join(',')}), so nothing was done ${purpose}`);
    return undefined;
  }
  if (held.auditIDs.length === 0) ctx.problems.push(`the held push ${short(held.newSha)} of ${pusher.id} carries no Audit-ID: no batch of events was in flight ${purpose}`);
  return { held, pusher };
}

/** Right after `replica` was stopped or killed: whether it had the held push's batch in hand (active jobs under its locks). */
async function checkBatchInHand(ctx: Context, replica: Replica, held: HeldPush, what: string): Promise<string[]> {
  let inHand: string[];
  try {
    inHand = await ctx.cluster.jobsInHandOf(replica);
  } catch (e) {
    ctx.problems.push(`could not read the jobs ${replica.id} had in hand when ${what}: ${(e as Error).message}`);
    return [];
  }
  const missing = held.auditIDs.filter((id) => !inHand.includes(id));
  if (inHand.length === 0 || missing.length > 0) {
    ctx.problems.push(`${replica.id} had no batch in flight when ${what}: ${inHand.length} jobs in hand under its locks, ${missing.length} of the ${held.auditIDs.length} events of its held push ${short(held.newSha)} not among them`);
  }
  return inHand;
}

/** After the drain: each of `ids` is committed exactly once on the branch. */
async function checkCommittedOnce(ctx: Context, ids: string[], what: string): Promise<void> {
  const count = new Map<string, number>();
  for (const c of await remoteCommits(ctx.cluster.remote)) for (const id of c.auditIDs) count.set(id, (count.get(id) ?? 0) + 1);
  const missing = ids.filter((id) => !count.has(id));
  const twice = ids.filter((id) => (count.get(id) ?? 0) > 1);
  if (missing.length > 0) ctx.problems.push(`${missing.length} of the ${ids.length} events of ${what} have no commit, e.g. ${missing[0]}`);
  if (twice.length > 0) ctx.problems.push(`${twice.length} of the ${ids.length} events of ${what} are committed more than once, e.g. ${twice[0]}`);
}

/** How a writer logs a push refused because of an outside commit made at `timing` (outsideCommitOnNextPush). */
const REFUSAL_LOGGED: Record<OutsideTiming, { expected: string; matches: (l: LogLine) => boolean }> = {
  // The branch moved before the push began: git refuses it as stale ("rejected-non-fast-forward").
  after: {
    expected: '"someone else pushed to the branch; planning again on top of it" with "stale info"',
    matches: (l) => l.msg.startsWith('someone else pushed to the branch') && String(l.detail).includes('stale info'),
  },
  // The branch moved while the push was inside the remote: its ref update failed ("[remote rejected] (failed
  // to update ref)"). The writer knows it for what it is, someone else's push that won: it plans again on top.
  during: {
    expected: '"someone else pushed to the branch; planning again on top of it" with "failed to update ref"',
    matches: (l) => l.msg.startsWith('someone else pushed to the branch') && String(l.detail).includes('failed to update ref'),
  },
};

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
    name: 'kill-before-push',
    async fault(ctx) {
      // kill -9 of the holder after its commits were made (fast-import) and before its push landed: the
      // remote's hook holds the push until the whole replica (its git processes too, as when a pod dies) is
      // gone; the push never lands, and whoever takes over must commit that batch exactly once.
      await atShare(ctx, 0.3);
      const hold = await holdNextPush(ctx, 'to kill its writer before the push lands');
      if (!hold) return {};
      const { held, pusher: holder } = hold;
      const pid = holder.servicePid!;
      const t0 = Date.now();
      await holder.killGroup();
      const inHand = await checkBatchInHand(ctx, holder, held, 'it was killed');
      // Whatever of the push outlived the kill is refused: it must never land.
      await ctx.cluster.remote.releaseHeldPush('refuse');
      const takeover = await takeoverAfter(ctx, holder, 'kill -9 (its push held in the remote) of', t0);
      await holder.start(); // the pod comes back
      ctx.notes.push(`${holder.id} was killed with ${inHand.length} jobs in hand, its push ${short(held.newSha)} of ${held.auditIDs.length} events held in the remote`);
      ctx.checks.push(async () => {
        const landed = (await ctx.cluster.remote.landed()).filter((p) => !p.outside && (p.newSha === held.newSha || (p.pushers.includes(pid) && p.at >= t0)));
        if (landed.length > 0) ctx.problems.push(`the killed writer's push landed after all (${landed.length} push(es) from pid ${pid} or of ${short(held.newSha)})`);
        const onBranch = await ctx.cluster.remote.git('merge-base', '--is-ancestor', held.newSha, ctx.cluster.remote.branch).then(
          () => true,
          () => false, // not an ancestor, or the commit never reached the remote at all
        );
        if (onBranch) ctx.problems.push(`the killed writer's commit ${short(held.newSha)} is on the branch although its push was never let through`);
        await checkCommittedOnce(ctx, held.auditIDs, `the batch whose push the kill cut off (${short(held.newSha)})`);
      });
      return { faultEndedAt: t0, takeoverSeconds: takeover };
    },
  },

  {
    name: 'pause-writer',
    async fault(ctx) {
      await atShare(ctx, 0.4);
      // A batch in flight for certain: the holder's next push waits in the remote's hook while it is stopped.
      const hold = await holdNextPush(ctx, 'to stop its writer with a batch in flight');
      if (!hold) return {};
      const { held, pusher: holder } = hold;
      const pid = holder.servicePid!;
      const t0 = Date.now();
      holder.pause();
      // Stopped: the locks it holds now are the ones it held when it stopped (they last ≥ 4 s).
      const inHand = await checkBatchInHand(ctx, holder, held, 'it was stopped');
      const leaseWith = await ctx.cluster.leaseHolder().catch(() => undefined);
      if (leaseWith !== holder) ctx.problems.push(`${holder.id} was stopped while its push was held, but the lease was with ${leaseWith?.id ?? 'nobody'}, not with it`);
      // Its push goes on (one already on the wire reaches the remote) and lands while the writer is stopped.
      await ctx.cluster.remote.releaseHeldPush('accept');
      const landedWhileStopped = await waitFor(async () => (await ctx.cluster.remote.landed()).find((p) => !p.outside && p.newSha === held.newSha), `the held push ${short(held.newSha)} to land`, 30_000).catch(async (e: Error) => {
        ctx.problems.push(`the stopped writer's push, released, did not land: ${e.message}; ${(await ctx.cluster.remote.refusals()).slice(-1)[0] ?? ''}`);
        return undefined;
      });
      const takeover = await takeoverAfter(ctx, holder, 'SIGSTOP (its push held in the remote) of', t0);
      // Keep it stopped well past the lease TTL (and past the takeover), then let it run again.
      const resumeAt = t0 + Math.max(2.5 * ctx.size.leaseTtlMs, Date.now() - t0 + ctx.size.leaseTtlMs);
      await sleep(resumeAt - Date.now());
      const resumedAt = Date.now();
      holder.resume();
      ctx.notes.push(
        `${holder.id} stopped for ${seconds(resumedAt - t0)} s (lease TTL ${seconds(ctx.size.leaseTtlMs)} s) with ${inHand.length} jobs in hand, its push ${short(held.newSha)} of ${held.auditIDs.length} events held in the remote${landedWhileStopped ? '; released, it landed while the writer was stopped' : ''}`,
      );
      // After SIGCONT the paused writer may push only once it has taken the lease again.
      ctx.checks.push(async () => {
        const lines = await holder.logLines();
        const retook = lines.find((l) => l.pid === pid && l.time >= resumedAt && l.msg.includes(`lease of partition ${ctx.cluster.partition.id}`) && l.msg.startsWith('took'));
        const stale = await pushesBy(ctx, pid, resumedAt, retook?.time ?? Number.MAX_SAFE_INTEGER);
        if (stale > 0) ctx.problems.push(`the paused writer ${holder.id} pushed ${stale} time(s) after SIGCONT without holding the lease again`);
        else ctx.notes.push(`${holder.id} made no push after SIGCONT before it took the lease again${retook ? ` (fence ${String(retook.fence)})` : ' (it never took it again)'}`);
        // Its batch landed while it was stopped; the successor must not commit those events again.
        await checkCommittedOnce(ctx, held.auditIDs, `the stopped writer's batch (${short(held.newSha)})`);
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
      const { remote } = ctx.cluster;
      // Aimed, so that the race is hit every run: someone else's commit lands right AFTER a writer push (before
      // the writer hears back), so its next push, built on its own last one, is refused as stale and it must
      // fetch, plan again on top and push again; then one lands DURING a writer push (inside the remote, so
      // the remote's ref update refuses that push) and the batch must be written again on top. Each is armed
      // only once a writer push landed on top of the one before, so that no outside commit hides another.
      const forced: ForcedOutside[] = [];
      const writerPushOnTop = async (sha: string) => (await remote.landed()).find((p) => !p.outside && p.oldSha === sha);
      for (const [timing, share] of [['after', 0.2], ['during', 0.45]] as const) {
        await atShare(ctx, share);
        const path = `outside/${timing}-a-writer-push.md`;
        await remote.outsideCommitOnNextPush(timing, path);
        const made = await waitFor(async () => (await remote.forcedOutside()).find((f) => f.path === path), `a writer push with an outside commit ${timing} it`, 30_000).catch((e: Error) => {
          ctx.problems.push(`no outside commit landed ${timing} a writer push: ${e.message}`);
          return undefined;
        });
        if (!made) continue;
        if (!made.sha) {
          ctx.problems.push(`the remote's hook could not make the outside commit ${timing} the writer push ${short(made.writerNew)}`);
          continue;
        }
        forced.push(made);
        // Checked again after the drain; a timeout here is reported there.
        await waitFor(() => writerPushOnTop(made.sha!), `a writer push on top of ${short(made.sha)}`, 30_000).catch(() => undefined);
      }
      // And one at an arbitrary moment, through a clone of its own, as a person pushes (the race may or may not be hit).
      await atShare(ctx, 0.7);
      await waitUntil(async () => (await countAuditCommits(remote)) > 0, 'the first commit of the writers on the remote', 60_000);
      const unaimed = await remote.pushOutsideCommit(`${ctx.cluster.root}/outside-clone`, 'outside/notes.md', 'an outside change\n');
      ctx.checks.push(async () => {
        for (const sha of [...forced.map((f) => f.sha!), unaimed]) {
          try {
            await remote.git('merge-base', '--is-ancestor', sha, remote.branch);
          } catch {
            ctx.problems.push(`the outside commit ${sha} is not an ancestor of the branch tip: it was lost`);
          }
        }
        const landed = await remote.landed();
        const lines = (await Promise.all(ctx.cluster.replicas.map((r) => r.logLines()))).flat();
        for (const f of forced) {
          const onTop = await writerPushOnTop(f.sha!);
          if (!onTop) ctx.problems.push(`no writer push landed directly on top of the outside commit ${short(f.sha)} made ${f.timing} the writer push ${short(f.writerNew)}: the writers did not fetch it and push again on top`);
          const refusal = lines.find((l) => l.time >= f.at && REFUSAL_LOGGED[f.timing].matches(l));
          if (!refusal) ctx.problems.push(`the writers logged no refused push after the outside commit ${short(f.sha)} made ${f.timing} a writer push; expected ${REFUSAL_LOGGED[f.timing].expected}`);
          ctx.notes.push(`outside commit ${short(f.sha)} ${f.timing} the writer push ${short(f.writerNew)}: ${refusal ? `the writer logged "${refusal.msg}"` : 'no refusal logged'}; ${onTop ? `writer push ${short(onTop.newSha)} landed on top of it` : 'no writer push on top of it'}`);
        }
        const onTopOfUnaimed = landed.some((p) => !p.outside && p.oldSha === unaimed);
        ctx.notes.push(`the unaimed outside commit ${short(unaimed)} ${onTopOfUnaimed ? 'has a writer push directly on top of it' : 'has no writer push directly on top of it (the race was not hit)'}`);
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

/** Polls `probe` until it returns a value; throws, naming `what`, after timeoutMs. */
async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds(timeoutMs)} s waiting for ${what}`);
    await sleep(intervalMs);
  }
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
