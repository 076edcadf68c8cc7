// Writes configuration objects' statuses to the API server: a JSON merge patch of the `/status`
// subresource only (the spec, and so metadata.generation, is never touched).
//
// Writes must never become a bottleneck, and the reporter may hand over every object's status many times
// a second. So a status is written only when it differs from what the cluster shows (or, until the
// informers show our own last write, from that write); per object only the latest desired status is
// kept, and written at most once per `minIntervalMs`; a few writes run at once. A 404 means the object was
// deleted: dropped. Any other error is logged and dropped too: the reporter's next round hands the status
// over again, and repeated failures of one object wait longer each time (up to a minute). One replica
// writes (the status reporter's leader); around a change of leader two may, and each compares with what
// the cluster shows, so once one write of a status landed, the other finds nothing to do.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION } from '../../config/resource-schemas.js';
import type { ObservedObject, StatusKind } from '../../config/sources/config-snapshot.js';
import { statusDiffers, type ObjectStatus } from './conditions.js';
import type { StatusMetrics } from '../../observability/status-metrics.js';
import { apiErrorText } from '../../core/json-body.js';

export const STATUS_FIELD_MANAGER = 'gitops-reverser';

const PLURALS: Record<StatusKind, string> = {
  ClusterProvider: 'clusterproviders',
  GitProvider: 'gitproviders',
  GitTarget: 'gittargets',
  WatchRule: 'watchrules',
  ClusterWatchRule: 'clusterwatchrules',
};

const [GROUP, VERSION] = API_VERSION.split('/') as [string, string];

/** The object to patch; an ObservedObject is one. */
export type StatusRef = Pick<ObservedObject, 'kind' | 'name' | 'namespace'>;

/** Sends one merge patch to the object's /status; rejects with `{ code }` as client-node does. */
export type PatchStatus = (ref: StatusRef, patch: { status: Record<string, unknown> }) => Promise<void>;

export interface StatusWriterOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /**
   * At most one write per object this often: a busy GitTarget, whose backlog changes all the time, is
   * patched once per interval with its latest count. @defaultValue 5000
   */
  minIntervalMs?: number;
  /** Writes at once. @defaultValue 4 */
  concurrency?: number;
  /**
   * How long our own last write counts as what the cluster shows, while the informers catch up with it
   * (and the snapshots still show the status from before it). @defaultValue 15000
   */
  settleMs?: number;
  metrics?: StatusMetrics;
  /** For tests: how a patch is sent (default: client-node's CustomObjectsApi). */
  patchStatus?: PatchStatus;
}

export interface StatusWriter {
  /** `obj` (with the status the cluster shows now) should show `desired`. Cheap; writes happen later. */
  set(obj: ObservedObject, desired: ObjectStatus): void;
  /**
   * Drops the pending statuses and the memory of our own writes (this replica no longer reports: another
   * one writes now, and what we wrote may not be what the cluster shows any more). Writes in flight end.
   */
  discard(): void;
  /** Resolves when nothing is pending or being written (pending writes held back by minIntervalMs included). */
  idle(): Promise<void>;
  /** Stops writing; waits for the writes in flight. Pending statuses are dropped. */
  stop(): Promise<void>;
}

interface Slot {
  ref: StatusRef;
  /** The status the cluster showed at the last `set` (the snapshot's, possibly older than our last write). */
  observed?: Record<string, unknown>;
  desired?: ObjectStatus;
  /** Our last successful write and when; counts as the cluster's status for settleMs. */
  written?: ObjectStatus;
  writtenAt: number;
  /** When the last write was sent (successful or not), for minIntervalMs. */
  sentAt: number;
  /** Failed writes in a row: each doubles the wait before the next (a missing RBAC grant must not flood the log). */
  failures: number;
  inFlight: boolean;
}

export const DEFAULT_MIN_INTERVAL_MS = 5000;

/** The longest wait between two tries of a status whose writes keep failing. */
const MAX_RETRY_MS = 60_000;

const idOf = (ref: StatusRef): string => `${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;

/** The merge patch that turns what the cluster may show (`shown`) into `desired`: fields no longer reported are removed (null). */
export function statusPatch(desired: ObjectStatus, ...shown: (Record<string, unknown> | undefined)[]): { status: Record<string, unknown> } {
  const status: Record<string, unknown> = {};
  for (const known of shown) for (const key of Object.keys(known ?? {})) status[key] = null;
  for (const [key, value] of Object.entries(desired)) if (value !== undefined) status[key] = value;
  return { status };
}

/** client-node's CustomObjectsApi, loaded lazily (it cannot load on every Node version; see kube-target). */
function clientNodePatcher(kubeConfig: KubeConfig): PatchStatus {
  const api = import('@kubernetes/client-node').then((k8s) => ({
    custom: kubeConfig.makeApiClient(k8s.CustomObjectsApi),
    // The generated client sends json-patch by default; a merge patch needs its content type set.
    options: k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  }));
  return async (ref, patch) => {
    const { custom, options } = await api;
    const common = { group: GROUP, version: VERSION, plural: PLURALS[ref.kind], name: ref.name, body: patch, fieldManager: STATUS_FIELD_MANAGER };
    if (ref.namespace) await custom.patchNamespacedCustomObjectStatus({ ...common, namespace: ref.namespace }, options);
    else await custom.patchClusterCustomObjectStatus(common, options);
  };
}

export function startStatusWriter(opts: StatusWriterOptions): StatusWriter {
  const minIntervalMs = opts.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
  const concurrency = opts.concurrency ?? 4;
  const settleMs = opts.settleMs ?? 15_000;
  const patchStatus = opts.patchStatus ?? clientNodePatcher(opts.kubeConfig);
  const log = opts.logger;
  const slots = new Map<string, Slot>();
  /** Ids with a desired status to write, in the order they were handed over. */
  const pending = new Set<string>();
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;
  let stopped = false;
  const idleWaiters: (() => void)[] = [];
  const flights = new Set<Promise<void>>();

  /** What the cluster shows as far as we know: our own write until the informers show it (or settleMs passed). */
  const shown = (slot: Slot, now: number): Record<string, unknown> | undefined =>
    slot.written && now - slot.writtenAt < settleMs ? slot.written : slot.observed;
  const needed = (slot: Slot, desired: ObjectStatus, now: number): boolean => statusDiffers(shown(slot, now), desired);

  /** Runs pump at `at` (or earlier, if it is already due earlier). */
  const schedule = (at: number): void => {
    if (stopped || (timer && timerAt <= at)) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(pump, Math.max(0, at - Date.now()));
  };

  /** When `slot` may be written again. */
  const readyAt = (slot: Slot): number => slot.sentAt + Math.min(minIntervalMs * 2 ** slot.failures, Math.max(minIntervalMs, MAX_RETRY_MS));

  const checkIdle = (): void => {
    if (pending.size === 0 && inFlight === 0) for (const resolve of idleWaiters.splice(0)) resolve();
  };

  const pump = (): void => {
    clearTimeout(timer);
    timer = undefined;
    timerAt = Infinity;
    if (stopped) return;
    const now = Date.now();
    let nextAt = Infinity;
    for (const id of pending) {
      if (inFlight >= concurrency) break;
      const slot = slots.get(id);
      if (!slot?.desired) {
        pending.delete(id);
        continue;
      }
      if (slot.inFlight) continue; // written again after this write, if still needed
      if (!needed(slot, slot.desired, now)) {
        pending.delete(id);
        slot.desired = undefined;
        continue;
      }
      const at = readyAt(slot);
      if (at > now) {
        nextAt = Math.min(nextAt, at);
        continue;
      }
      pending.delete(id);
      const desired = slot.desired;
      slot.desired = undefined;
      write(id, slot, desired);
    }
    // At full concurrency the end of a write pumps again.
    if (nextAt !== Infinity && inFlight < concurrency) schedule(nextAt);
    checkIdle();
  };

  const write = (id: string, slot: Slot, desired: ObjectStatus): void => {
    inFlight++;
    slot.inFlight = true;
    slot.sentAt = Date.now();
    const flight = patchStatus(slot.ref, statusPatch(desired, slot.observed, slot.written))
      .then(() => {
        slot.written = desired;
        slot.writtenAt = Date.now();
        slot.failures = 0;
        opts.metrics?.statusWrites.inc({ kind: slot.ref.kind, outcome: 'written' });
      })
      .catch((err: unknown) => {
        const code = (err as { code?: unknown }).code;
        if (code === 404) {
          // Deleted meanwhile: nothing to report on.
          slots.delete(id);
          pending.delete(id);
          opts.metrics?.statusWrites.inc({ kind: slot.ref.kind, outcome: 'gone' });
          return;
        }
        slot.written = undefined;
        slot.failures++;
        opts.metrics?.statusWrites.inc({ kind: slot.ref.kind, outcome: 'failed' });
        log.warn({ kind: slot.ref.kind, name: slot.ref.name, namespace: slot.ref.namespace, code, err: apiErrorText(err) }, 'writing the status failed; trying again on the next round');
      })
      .finally(() => {
        inFlight--;
        slot.inFlight = false;
        flights.delete(flight);
        pump();
      });
    flights.add(flight);
  };

  // Slots of objects that were deleted are forgotten once their timing no longer matters.
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, slot] of slots) {
      if (!slot.inFlight && !pending.has(id) && now - slot.sentAt > Math.max(settleMs, minIntervalMs, MAX_RETRY_MS)) slots.delete(id);
    }
  }, Math.max(settleMs, minIntervalMs, 10_000));
  sweep.unref();

  return {
    set(obj, desired) {
      if (stopped) return;
      const id = idOf(obj);
      let slot = slots.get(id);
      if (!slot) {
        slot = { ref: { kind: obj.kind, name: obj.name, namespace: obj.namespace }, writtenAt: 0, sentAt: -Infinity, failures: 0, inFlight: false };
        slots.set(id, slot);
      }
      slot.observed = obj.status;
      // The cluster shows what we wrote: the informers caught up, our memory of the write is not needed.
      if (slot.written && !statusDiffers(obj.status, slot.written)) slot.written = undefined;
      if (!needed(slot, desired, Date.now())) {
        slot.desired = undefined;
        if (pending.delete(id)) checkIdle();
        return;
      }
      slot.desired = desired;
      pending.add(id);
      // In flight or at full concurrency: the end of a write pumps again.
      if (slot.inFlight || inFlight >= concurrency) return;
      const at = readyAt(slot);
      if (at <= Date.now()) pump();
      else schedule(at);
    },
    discard() {
      pending.clear();
      for (const slot of slots.values()) {
        slot.desired = undefined;
        slot.written = undefined;
      }
      clearTimeout(timer);
      timer = undefined;
      timerAt = Infinity;
      checkIdle();
    },
    idle() {
      if (pending.size === 0 && inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(sweep);
      pending.clear();
      await Promise.all(flights);
      for (const resolve of idleWaiters.splice(0)) resolve();
    },
  };
}

