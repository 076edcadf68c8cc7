// What starts a reconcile flow: service start, a configuration change, a schedule per
// target and an operator's request. All of them go through `request`, which keeps, across replicas, at most
// ONE flow per target running at a time:
//
//  - a per-target hash in Valkey (`<prefix>:reconcile-trigger:<target>`) holds the running runId; a
//    request while it is set only marks the hash `pending` (any number of requests collapse into that one
//    mark, their reasons joined), and the run's end starts exactly one more flow for the mark.
//  - claiming and finishing are two Lua scripts (compare-and-set on the runId), so two replicas asking at
//    once, or two replicas both seeing the same run end, still start one flow.
//  - a run ends when its parent job is completed or failed for good: a QueueEvents listener on the
//    `reconcile` queue (every replica listens; the compare-and-set lets one of them win). A run whose end
//    nobody heard (every replica down at that moment, a parent removed from Bull Board) is found out by
//    the next request, which asks BullMQ for the parent's state before trusting the mark.
//
// BullMQ's own deduplication (`deduplication: { id }` on the parent) would drop a request during a run
// instead of remembering it, so the "exactly one more" rule needs the mark here.
//
// Schedules are BullMQ job schedulers (one per target, id = the target key) on `reconcile-schedule`,
// whose worker only calls `request(target, 'schedule')`.
import { randomBytes } from 'node:crypto';
import { Queue, QueueEvents, Worker, type FlowProducer, type QueueOptions } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import { isReconcileJobId, RECONCILE_QUEUE, RECONCILE_SCHEDULE_QUEUE, reconcileJobId, reconcileTriggerKey } from '../../queues/names.js';
import { addReconcileFlow, type AddReconcileFlowInput, type ReconcileParentData } from './reconcile-flow.js';

// Named in queues/names.ts with every other key and queue; still importable from the module that uses them.
export { RECONCILE_SCHEDULE_QUEUE, reconcileTriggerKey };

export type ReconcileReason = 'start' | 'config-change' | 'schedule' | 'on-demand';

/** What `addReconcileFlow` needs for one target, the run's id (and reason) aside. */
export type ScopeInput = Omit<AddReconcileFlowInput, 'runId' | 'reason'>;

export type RequestOutcome =
  /** A flow was added now, with this runId (its parent: `reconcileJobId(target, runId)`). */
  | { started: string }
  /** A flow of the target runs: one more will run after it (other requests meanwhile share it). */
  | { queued: 'pending' }
  /** `scopeFor` does not know the target (deleted, or never configured): nothing was added. */
  | { skipped: 'target unknown' };

export interface ScheduledTarget {
  key: string;
  /** 0 (or less): no schedule. */
  intervalSeconds: number;
}

export interface ReconcileTriggersOptions {
  /** For the Lua scripts and BullMQ's queues and worker; QueueEvents gets a duplicate of it (it blocks). */
  connection: Valkey;
  prefix: string;
  /** The events streams' trimming of the queues created here (queueStreams). @defaultValue BullMQ's */
  streams?: QueueOptions['streams'];
  flowProducer: FlowProducer;
  logger: Logger;
  /** What addReconcileFlow needs for a target, or undefined if the target is gone. */
  scopeFor(targetKey: string): Promise<ScopeInput | undefined>;
  /**
   * A mark whose parent job BullMQ does not know is taken as a finished run only after this long (the
   * flow is added right after the mark is set, so a fresh mark without its job is a flow being added).
   * @defaultValue 60_000
   */
  addGraceMs?: number;
  /** Scheduler jobs processed at once by this replica. @defaultValue 2 */
  scheduleConcurrency?: number;
}

export interface ReconcileTriggers {
  request(targetKey: string, reason: ReconcileReason): Promise<RequestOutcome>;
  /** Upserts one job scheduler per target with an interval > 0, removes every other one. */
  schedule(targets: readonly ScheduledTarget[]): Promise<void>;
  /**
   * Tells that the run's parent ended (completed, or failed for good). Safe to call from anywhere, any
   * number of times, on any replica: it checks the parent's state first and finishes the run only once.
   * The QueueEvents listener already calls it; the service does not need to.
   */
  onRunFinished(targetKey: string, runId: string): Promise<void>;
  /** The queues of this module, for Bull Board: `reconcile` and `reconcile-schedule`. */
  queues: Queue[];
  stop(): Promise<void>;
}

// KEYS[1] the trigger hash; ARGV[1] the new runId, ARGV[2] the reason, ARGV[3] now (ms).
// Returns {1, runId} when the caller must add the flow, {0, running runId} when a mark was set instead.
const CLAIM = `
local running = redis.call('HGET', KEYS[1], 'running')
if running then
  local pending = redis.call('HGET', KEYS[1], 'pending')
  if not pending then
    pending = ARGV[2]
  elseif not string.find(',' .. pending .. ',', ',' .. ARGV[2] .. ',', 1, true) then
    pending = pending .. ',' .. ARGV[2]
  end
  redis.call('HSET', KEYS[1], 'pending', pending)
  return {0, running}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'running', ARGV[1], 'since', ARGV[3], 'reason', ARGV[2])
return {1, ARGV[1]}`;

// KEYS[1] the trigger hash; ARGV[1] the finished runId, ARGV[2] the runId of a pending next run, ARGV[3]
// now (ms). Returns {0} when that run is not the one marked (finished by someone else already), {1} when
// the target is idle now, {2, reasons} when the caller must add the pending run under ARGV[2].
const FINISH = `
if redis.call('HGET', KEYS[1], 'running') ~= ARGV[1] then return {0} end
local pending = redis.call('HGET', KEYS[1], 'pending')
redis.call('DEL', KEYS[1])
if pending then
  redis.call('HSET', KEYS[1], 'running', ARGV[2], 'since', ARGV[3], 'reason', pending)
  return {2, pending}
end
return {1}`;

// KEYS[1] the trigger hash; ARGV[1] a runId whose flow could not be added. Drops the mark (and a pending
// request with it: the next request starts afresh). Returns 1 when it was that run's.
/** Restarts the age of the mark of run ARGV[1] (still ours): ARGV[2] = now. */
const TOUCH = `if redis.call('HGET', KEYS[1], 'running') == ARGV[1] then redis.call('HSET', KEYS[1], 'since', ARGV[2]) end return 0`;

/** A pending reconcile whose scope could not be worked out is asked for again after this long. */
const PENDING_RETRY_MS = 30_000;

const RELEASE = `
if redis.call('HGET', KEYS[1], 'running') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

/** Sortable, readable, unique; never ':' (BullMQ job ids) nor '/'. */
function newRunId(): string {
  return `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

interface ScheduleJobData {
  target: string;
}

/** Starts listening for parents' ends (from the server's present moment on) and the schedule worker. */
export async function startReconcileTriggers(opts: ReconcileTriggersOptions): Promise<ReconcileTriggers> {
  const { connection, prefix, flowProducer, logger } = opts;
  const addGraceMs = opts.addGraceMs ?? 60_000;
  const key = (targetKey: string) => reconcileTriggerKey(prefix, targetKey);
  // Parents' ends are read from the server's clock now, not from '$' whenever the first XREAD happens to
  // be sent: an end that comes between this start and that read is still heard.
  const [seconds, micros] = await connection.time();
  const lastEventId = `${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)}-0`;

  const { streams } = opts;
  const parents = new Queue<ReconcileParentData>(RECONCILE_QUEUE, { connection, prefix, streams });
  const scheduleQueue = new Queue<ScheduleJobData>(RECONCILE_SCHEDULE_QUEUE, { connection, prefix, streams });
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => undefined);
    return p;
  };

  /** Adds the run's flow; on failure drops the mark (so the target is not blocked) and rethrows. */
  async function addFlow(targetKey: string, runId: string, reason: string, scope: ScopeInput): Promise<void> {
    try {
      await addReconcileFlow(flowProducer, { ...scope, runId, reason });
      logger.info({ target: targetKey, runId, reason, children: scope.scope.length }, 'reconcile flow started');
    } catch (err) {
      await connection.eval(RELEASE, 1, key(targetKey), runId);
      throw err;
    }
  }

  /** Whether the marked run's parent is done: completed, failed for good, or gone (after the add's grace). */
  async function runEnded(targetKey: string, runId: string, since: number): Promise<boolean> {
    const state = await parents.getJobState(reconcileJobId(targetKey, runId));
    if (state === 'completed' || state === 'failed') return true;
    return state === 'unknown' && Date.now() - since > addGraceMs;
  }

  async function finishRun(targetKey: string, runId: string): Promise<void> {
    const nextRunId = newRunId();
    const reply = (await connection.eval(FINISH, 1, key(targetKey), runId, nextRunId, Date.now())) as [number, string?];
    if (reply[0] !== 2) return;
    const reasons = reply[1] ?? 'pending';
    const scope = await opts.scopeFor(targetKey).catch(async (err: unknown) => {
      await connection.eval(RELEASE, 1, key(targetKey), nextRunId);
      // The pending request is not dropped: asked for again in a while (the cluster may be back by then).
      const retry = setTimeout(() => {
        if (stopping) return;
        void request(targetKey, 'config-change').catch((e: unknown) => logger.warn({ target: targetKey, err: e instanceof Error ? e.message : String(e) }, 'a pending reconcile could not start'));
      }, PENDING_RETRY_MS);
      retry.unref();
      throw err;
    });
    if (!scope) {
      await connection.eval(RELEASE, 1, key(targetKey), nextRunId);
      logger.info({ target: targetKey, reasons }, 'reconcile requested during a run, but the target is gone');
      return;
    }
    // The scope (discovery) took a while: the mark's age restarts now, so no other replica takes this run,
    // not yet added, for one that ended unnoticed.
    await connection.eval(TOUCH, 1, key(targetKey), nextRunId, Date.now());
    await addFlow(targetKey, nextRunId, reasons, scope);
  }

  async function onRunFinished(targetKey: string, runId: string): Promise<void> {
    const since = Number(await connection.hget(key(targetKey), 'since')) || 0;
    // A call for a run still in progress (a retried attempt's failure, for instance) finishes nothing.
    if (!(await runEnded(targetKey, runId, since))) return;
    await finishRun(targetKey, runId);
  }

  async function request(targetKey: string, reason: ReconcileReason): Promise<RequestOutcome> {
    // The target first: an unknown one never gets a key (the HTTP API passes names from the outside).
    const scope = await opts.scopeFor(targetKey);
    if (!scope) return { skipped: 'target unknown' };
    const [running, since] = await connection.hmget(key(targetKey), 'running', 'since');
    if (running && (await runEnded(targetKey, running, Number(since) || 0))) {
      // Its end was not heard (no replica listening then): finish it now, which starts a pending run.
      logger.info({ target: targetKey, runId: running }, 'a reconcile run ended unnoticed; finishing it');
      await finishRun(targetKey, running);
    }
    const runId = newRunId();
    const [claimed, current] = (await connection.eval(CLAIM, 1, key(targetKey), runId, reason, Date.now())) as [number, string];
    if (claimed !== 1) {
      logger.debug({ target: targetKey, reason, running: current }, 'reconcile requested during a run: one more will follow it');
      return { queued: 'pending' };
    }
    await addFlow(targetKey, runId, reason, scope);
    return { started: runId };
  }

  // Every replica hears every parent's end; FINISH lets one of them act on it.
  const eventsConnection = connection.duplicate();
  eventsConnection.on('error', (err: Error) => logger.warn({ err: err.message }, 'Valkey connection error of the reconcile events (reconnecting)'));
  const events = new QueueEvents(RECONCILE_QUEUE, { connection: eventsConnection, prefix, lastEventId });
  events.on('error', (err) => logger.warn({ err: err.message }, 'reconcile events listener error'));
  const onEnded = ({ jobId }: { jobId: string }) => {
    if (!isReconcileJobId(jobId)) return;
    void track(
      (async () => {
        const job = await parents.getJob(jobId);
        // Removed already: the next request's state check finishes the run.
        if (!job) return;
        await onRunFinished(job.data.targetKey, job.data.runId);
      })(),
    ).catch((err: unknown) => logger.error({ err, jobId }, 'starting the reconcile run requested during this one failed'));
  };
  events.on('completed', onEnded);
  events.on('failed', onEnded);

  const scheduleWorker = new Worker<ScheduleJobData, RequestOutcome>(
    RECONCILE_SCHEDULE_QUEUE,
    async (job) => {
      const outcome = await request(job.data.target, 'schedule');
      if ('skipped' in outcome) logger.info({ target: job.data.target }, 'scheduled reconcile of a target no longer configured: skipped');
      return outcome;
    },
    { connection, prefix, concurrency: opts.scheduleConcurrency ?? 2 },
  );
  scheduleWorker.on('error', (err) => logger.warn({ err: err.message }, 'reconcile schedule worker error'));

  async function schedule(targets: readonly ScheduledTarget[]): Promise<void> {
    const wanted = new Map<string, number>();
    for (const t of targets) if (t.intervalSeconds > 0) wanted.set(t.key, Math.round(t.intervalSeconds * 1000));
    const existing = await scheduleQueue.getJobSchedulers(0, -1);
    for (const s of existing) {
      const id = s.id ?? s.key;
      if (!wanted.has(id)) {
        await scheduleQueue.removeJobScheduler(id);
        logger.info({ target: id }, 'reconcile schedule removed');
      }
    }
    const current = new Map(existing.map((s) => [s.id ?? s.key, s.every]));
    for (const [target, every] of wanted) {
      // Unchanged: left alone (an upsert would keep the slot anyway, but needs no round trip).
      if (current.get(target) === every) continue;
      // The first tick one interval from now: the start and config-change triggers cover "now".
      await scheduleQueue.upsertJobScheduler(
        target,
        { every, startDate: Date.now() + every },
        { name: `reconcile ${target}`, data: { target }, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
      );
      logger.info({ target, intervalSeconds: every / 1000 }, 'reconcile schedule set');
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    request: (targetKey, reason) => track(request(targetKey, reason)),
    schedule,
    onRunFinished: (targetKey, runId) => track(onRunFinished(targetKey, runId)),
    queues: [parents as Queue, scheduleQueue as Queue],
    stop() {
      stopping ??= (async () => {
        await Promise.all([events.close(), scheduleWorker.close()]);
        await Promise.allSettled([...inFlight]);
        await Promise.all([parents.close(), scheduleQueue.close()]);
        eventsConnection.disconnect();
      })();
      return stopping;
    },
  };
}
