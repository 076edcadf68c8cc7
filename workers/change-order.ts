// The order in which the API server made a batch's changes: by the audit stage timestamp, ties kept in
// queue order. Queue order is arrival order, and arrival can differ from change order: the API server's
// buffered audit backend sends batches concurrently, and jobs that a crashed holder had in hand come
// back to the queue in no particular order. Within one batch, this restores the real order.

/** Indices of `items` in change order. */
export function changeOrder(items: readonly { stageTimestamp: string }[]): number[] {
  // An item without a readable time keeps the time of the item before it, so the order stays total.
  let last = -Infinity;
  const time = items.map((item) => {
    const t = Date.parse(item.stageTimestamp);
    if (!Number.isNaN(t)) last = t;
    return last;
  });
  return items.map((_, i) => i).sort((a, b) => time[a]! - time[b]! || a - b);
}
