// Acts like a kube-apiserver's audit webhook (batch mode): POSTs EventLists round-robin to the replicas
// (a Service in front of them), and on a non-2xx answer or a connection error sends the SAME batch again
// with backoff, to the next replica, until it is acknowledged or the deadline passes.
//
// Every event is an effective change: ConfigMap `faults/cm-<k>` gets data.seq = a counter, so every
// acknowledged event must become exactly one commit. Objects are split over lanes; a lane sends its
// batches one after another (the next only after the previous was acknowledged), so the order in which
// one object's events are acknowledged is the order they were made, while lanes run concurrently.
import { auditEvent, eventList, type ObjectSpec } from '../../support/audit-events.js';
import { sleep } from './replicas.js';

export const NAMESPACE = 'faults';

export interface SentEvent {
  auditID: string;
  /** Object name, e.g. cm-3 */
  object: string;
  /** The n-th event of this object (0 = its create). */
  seq: number;
  /** Global index in the stream. */
  index: number;
  acknowledged: boolean;
  /** Expected not to be committed (the poison event). */
  poison: boolean;
}

export interface SenderOptions {
  /** Webhook base URLs, tried round-robin. */
  targets: string[];
  cluster: string;
  token: string;
  total: number;
  objects: number;
  lanes: number;
  eventsPerBatch: number;
  /** The stream is paced to this many events per second. */
  ratePerSecond: number;
  /** Give up on a batch still unacknowledged at this time (epoch ms). */
  deadline: number;
  /** Insert one event for ConfigMap `<name>` at this index (the poison event). */
  poison?: { index: number; name: string };
}

export interface EventSender {
  events: SentEvent[];
  /** Resolves when at least n events were acknowledged (or rejects after timeoutMs). */
  waitForAcknowledged(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves when every lane is done (all acknowledged, or given up at the deadline). */
  done: Promise<void>;
  /** When the last batch was acknowledged (epoch ms). */
  finishedAt(): number;
  /** Answers other than 2xx and connection errors, by kind: { "503": 12, "ECONNREFUSED": 3 }. */
  failures: Record<string, number>;
  stop(): void;
}

function configMap(name: string, seq: number, index: number): ObjectSpec {
  return { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: NAMESPACE, name, body: { data: { seq: String(seq), index: String(index) } } };
}

export function startEventSender(opts: SenderOptions): EventSender {
  const events: SentEvent[] = [];
  const failures: Record<string, number> = {};
  let acknowledged = 0;
  let rotation = 0;
  let stopped = false;
  let finished = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const started = Date.now();

  // Plan the stream: which object each index touches, and which lane sends it.
  type Planned = { index: number; object: string; lane: number; poison: boolean };
  const plan: Planned[] = [];
  let regular = 0;
  for (let index = 0; index < opts.total; index++) {
    if (opts.poison && index === opts.poison.index) {
      plan.push({ index, object: opts.poison.name, lane: 0, poison: true });
      continue;
    }
    const k = regular++ % opts.objects;
    plan.push({ index, object: `cm-${k}`, lane: k % opts.lanes, poison: false });
  }
  const seqOf = new Map<string, number>();

  const notify = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (acknowledged >= waiters[i]!.n) {
        waiters[i]!.resolve();
        waiters.splice(i, 1);
      }
    }
  };

  async function post(body: string): Promise<void> {
    let backoff = 200;
    for (;;) {
      if (stopped) throw new Error('sender stopped');
      if (Date.now() > opts.deadline) throw new Error('deadline passed');
      const target = opts.targets[rotation++ % opts.targets.length]!;
      try {
        const res = await fetch(`${target}/audit-webhook/${opts.cluster}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(20_000),
        });
        await res.arrayBuffer();
        if (res.ok) return;
        failures[String(res.status)] = (failures[String(res.status)] ?? 0) + 1;
        const retryAfter = Number(res.headers.get('retry-after'));
        // The API server honours Retry-After loosely; keep the test moving with a capped wait.
        if (retryAfter > 0) backoff = Math.max(backoff, Math.min(retryAfter * 1000, 1000));
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        const kind = e.cause?.code ?? e.name;
        failures[kind] = (failures[kind] ?? 0) + 1;
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 2000);
    }
  }

  async function lane(l: number): Promise<void> {
    const mine = plan.filter((p) => p.lane === l);
    for (let i = 0; i < mine.length && !stopped; i += opts.eventsPerBatch) {
      const slice = mine.slice(i, i + opts.eventsPerBatch);
      const last = slice[slice.length - 1]!;
      const due = started + (last.index / opts.ratePerSecond) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
      // The events are made when the batch is first sent (their timestamps are "now"); retries resend them as they are.
      const batch: SentEvent[] = [];
      const items = slice.map((p) => {
        const seq = seqOf.get(p.object) ?? 0;
        seqOf.set(p.object, seq + 1);
        const ev = auditEvent(seq === 0 ? 'create' : 'update', configMap(p.object, seq, p.index), { user: `lane-${l}@example.com` });
        const sent: SentEvent = { auditID: ev.auditID, object: p.object, seq, index: p.index, acknowledged: false, poison: p.poison };
        batch.push(sent);
        events.push(sent);
        return ev;
      });
      try {
        await post(JSON.stringify(eventList(items)));
      } catch {
        return; // deadline or stop: the rest of the lane is not sent
      }
      for (const s of batch) s.acknowledged = true;
      acknowledged += batch.length;
      finished = Date.now();
      notify();
    }
  }

  const done = Promise.all(Array.from({ length: opts.lanes }, (_, l) => lane(l))).then(() => {
    stopped = true;
  });

  return {
    events,
    failures,
    done,
    finishedAt: () => finished,
    stop: () => {
      stopped = true;
    },
    waitForAcknowledged(n, timeoutMs = 60_000) {
      if (acknowledged >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${n} acknowledged events (have ${acknowledged}; failures ${JSON.stringify(failures)})`)), timeoutMs);
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}
