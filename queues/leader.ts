// Leader election on the exclusive lease (queues/lease.ts): of the replicas that run it with the same
// keys, at most one is the leader at a time, for work that one replica does for all (the status reporter:
// one replica patches the configuration objects' statuses and probes the Git providers).
//
// Each replica tries to take the lease every ~TTL/3; the leader renews it every ~TTL/3. Leadership is
// counted from the moment a successful acquisition or renewal was SENT: it lasts at most the TTL from then,
// so isLeader() turns false by itself when the renewals are late (a frozen event loop, a slow Valkey),
// before another replica can have taken the lease, and a timer at that moment steps down (onChange(false))
// even while a renewal still waits for its answer. A renewal that fails steps down at once; if it failed
// only because Valkey did not answer, the lease may still be ours, and the next renewal that succeeds
// resumes it (the lease value names one acquisition, so a successful renewal proves nobody took it
// meanwhile). stop() releases the lease, so another replica takes over within ~TTL/3, not after the TTL.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import { tryAcquireLease, type HeldLease, type LeaseKeys } from './lease.js';
import { wakeablePause } from './wakeable-pause.js';

export interface LeaderElectionOptions {
  connection: Valkey;
  /** The lease, e.g. statusKeys(prefix) (queues/names.ts). */
  keys: LeaseKeys;
  replicaId: string;
  /** How long the lease outlives the last renewal; tries and renewals run every third of it. */
  leaseTtlMs: number;
  logger: Logger;
  /** What is led, for logs. @defaultValue 'leader' */
  role?: string;
  /**
   * Called on every change: true when this replica became the leader, false when it stepped down (lost or
   * late lease, Valkey not answering, stop()). Never called twice in a row with the same value.
   */
  onChange?: (leader: boolean) => void;
}

export interface LeaderElection {
  /** Whether this replica leads now: it holds the lease and renewed it less than the TTL ago. */
  isLeader(): boolean;
  /** Steps down (onChange(false) if it led) and releases the lease. */
  stop(): Promise<void>;
}

export function startLeaderElection(opts: LeaderElectionOptions): LeaderElection {
  const ttl = opts.leaseTtlMs;
  const role = opts.role ?? 'leader';
  const log = opts.logger.child({ component: 'leader', role });
  // Unique per start: a restarted replica (same hostname-pid in a container) is not its predecessor.
  const holder = `${opts.replicaId}:${randomUUID()}`;
  const owner = `the ${role} lease`;
  const period = Math.max(50, Math.floor(ttl / 3));

  /** Our acquisition: the lease while we lead, or one we may still hold after a failed renewal. */
  let held: HeldLease | null = null;
  let leader = false;
  /**
   * Leadership ends here unless renewed: the TTL counted from when the last good renewal was sent. On the
   * monotonic clock, so that a step of the wall clock neither extends nor cuts it.
   */
  let validUntil = 0;
  const now = (): number => performance.now();
  let stopping = false;
  /** Steps down when validUntil passes without a renewal (one may be waiting for Valkey's answer). */
  let deadline: NodeJS.Timeout | undefined;

  const change = (next: boolean, why: string): void => {
    if (leader === next) return;
    leader = next;
    if (next) log.info({ fence: held?.fence, replica: opts.replicaId }, `became the ${role}`);
    else log.warn({ fence: held?.fence, replica: opts.replicaId }, `stepped down as the ${role}: ${why}`);
    try {
      opts.onChange?.(next);
    } catch (err) {
      log.error({ err }, `the ${role} change handler failed`);
    }
  };

  const { pause, wake } = wakeablePause(() => stopping);

  /** Steps down at validUntil unless a renewal moved it (a timer may fire a little early: then again). */
  const watchDeadline = (): void => {
    clearTimeout(deadline);
    deadline = setTimeout(
      () => {
        if (stopping || !leader) return;
        if (now() >= validUntil) change(false, `the lease was not renewed within ${ttl} ms`);
        else watchDeadline();
      },
      Math.max(1, Math.ceil(validUntil - now())),
    );
    deadline.unref();
  };

  /** Leadership confirmed by a renewal or acquisition sent at `sentAt`: it lasts the TTL from then. */
  const confirmed = (sentAt: number): void => {
    validUntil = sentAt + ttl;
    // An answer that came back after the TTL confirms nothing usable: do not announce a leadership that
    // would end at once (the next renewal decides).
    if (now() >= validUntil) return;
    change(true, '');
    watchDeadline();
  };

  /** One renewal or acquisition; leaves `leader`, `held` and `validUntil` as Valkey says. */
  async function tick(): Promise<void> {
    if (held) {
      const sentAt = now();
      // Late: the lease may have expired since the last renewal, and another replica may lead by now.
      if (leader && sentAt >= validUntil) change(false, `the lease was not renewed within ${ttl} ms`);
      let ours: boolean | undefined;
      try {
        ours = await held.renew();
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, `could not renew ${owner}`);
      }
      if (stopping) return;
      // Sent before the lease could have expired, and it was still our acquisition: nobody led meanwhile.
      if (ours === true) return confirmed(sentAt);
      change(false, ours === false ? 'another replica holds the lease (or it expired)' : 'Valkey did not answer the renewal');
      if (ours === undefined) return; // maybe still ours: renewed again next time
      held = null;
    }
    const sentAt = now();
    const got = await tryAcquireLease(opts.connection, opts.keys, owner, holder, ttl);
    if (!got) return;
    if (stopping) {
      await got.release();
      return;
    }
    held = got;
    confirmed(sentAt);
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      try {
        await tick();
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, `could not try to take ${owner}`);
      }
      // Followers spread their tries a little, so that replicas started together do not try in lockstep.
      await pause(held ? period : period + Math.floor(Math.random() * Math.min(200, period / 2)));
    }
  }

  const looping = loop();

  return {
    isLeader: () => leader && now() < validUntil,
    async stop() {
      stopping = true;
      wake();
      clearTimeout(deadline);
      change(false, 'stopping');
      // A renewal waiting for a Valkey that is away (commands wait for it to come back) does not hold up
      // a shutdown longer than the TTL: the lease then simply expires. An acquisition that lands after
      // this releases itself.
      const bounded = <T>(work: Promise<T>): Promise<unknown> => {
        let timer: NodeJS.Timeout | undefined;
        const limit = new Promise((resolve) => (timer = setTimeout(resolve, ttl)));
        return Promise.race([work, limit]).finally(() => clearTimeout(timer));
      };
      await bounded(looping);
      const last = held;
      held = null;
      if (last) await bounded(last.release().catch((err: unknown) => log.warn({ err }, `could not release ${owner}; it expires after ${ttl} ms`)));
    },
  };
}
