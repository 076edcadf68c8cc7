// The reorder window: which stored events may be routed now, so that each cluster's changes reach the
// partition queues in the order the API server made them although its batches may reach the webhook in
// another. An API server's audit backend sends batches concurrently: a batch holding older changes can be
// stored after a newer one, and a newer version of an object written to Git first makes the older one
// stale, a version missing from the history. So an event waits in the router until no older change of its
// cluster can still arrive, then goes out with the others in change order (time, then resourceVersion).
//
// "Can still arrive" is bounded by the window W: a change older than an event arrives at most W after that
// event did (W is measured against real API servers; REORDER_WINDOW_MS). An event is safe once it arrived
// at least W before the horizon, the newest moment up to which every arrival is in hand: now, when the
// queue held nothing more when the router fetched (drained), else the arrival of the newest event fetched
// (whatever waits behind it arrived later). Within a cluster an event goes only when every older event of
// that cluster in hand is safe too: an older one that arrived late holds back the newer ones, at most W.
// Arrival is the time the webhook (or the watch) stored the event, on its replica's clock: its audit time
// is no measure, the API server sends a batch up to --audit-webhook-batch-max-wait after the events in it.
import { changeOrder, type ChangeKey } from '../../core/change-order.js';

export { DEFAULT_REORDER_WINDOW_MS } from '../../config/defaults.js';

export interface WindowItem {
  key: ChangeKey;
  /** When the event was stored (ms since the epoch): its job's timestamp. */
  arrivedAt: number;
}

export interface WindowState {
  /** REORDER_WINDOW_MS; 0 routes everything at once, in the order of each batch. */
  windowMs: number;
  now: number;
  /** Whether the queue had no more events when these were fetched. */
  drained: boolean;
}

/** Whether each item may be routed now (see the top of this file). Items of one cluster go in change order. */
export function releasable(items: readonly WindowItem[], state: WindowState): boolean[] {
  const out = new Array<boolean>(items.length).fill(state.windowMs <= 0);
  if (state.windowMs <= 0 || items.length === 0) return out;
  const newest = items.reduce((max, item) => Math.max(max, item.arrivedAt), -Infinity);
  const horizon = state.drained ? state.now : Math.min(state.now, newest);
  const blocked = new Set<string>();
  for (const i of changeOrder(items, (item) => item.key)) {
    const item = items[i]!;
    if (blocked.has(item.key.cluster)) continue;
    if (item.arrivedAt + state.windowMs <= horizon) out[i] = true;
    else blocked.add(item.key.cluster);
  }
  return out;
}

/** When the first item held now becomes safe, if nothing new arrives (ms since the epoch); undefined: none held. */
export function nextRelease(items: readonly WindowItem[], released: readonly boolean[], windowMs: number): number | undefined {
  let next: number | undefined;
  items.forEach((item, i) => {
    if (!released[i]) next = Math.min(next ?? Infinity, item.arrivedAt + windowMs);
  });
  return next;
}
