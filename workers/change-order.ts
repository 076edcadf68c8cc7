// The order in which the API server made a batch's changes. Queue order is arrival order, and arrival
// can differ from change order: the API server's buffered audit backend sends batches concurrently, and
// jobs that a crashed holder had in hand come back to the queue in no particular order. Within a batch:
// by the audit stage timestamp (to the microsecond), then, within one cluster, by resourceVersion (the
// etcd revision: exact where timestamps tie), then queue order.

export interface ChangeKey {
  stageTimestamp: string;
  cluster: string;
  /** '' when unknown (e.g. a delete answered with a Status). */
  resourceVersion: string;
}

/** Microseconds since the epoch, or undefined when unreadable. RFC 3339 with up to 9 fraction digits. */
function micros(stamp: string): number | undefined {
  const m = /^(.*?\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(stamp);
  const seconds = Date.parse(m ? `${m[1]}${m[3]}` : stamp);
  if (Number.isNaN(seconds)) return undefined;
  const fraction = m?.[2] ? Number((m[2] + '000000').slice(0, 6)) : 0;
  return seconds * 1000 + fraction;
}

/** Indices of `items` in change order. */
export function changeOrder<T>(items: readonly T[], keyOf: (item: T) => ChangeKey): number[] {
  // An item without a readable time keeps the time of the item before it, so the order stays total.
  let last = -Infinity;
  const keys = items.map((item) => {
    const k = keyOf(item);
    const t = micros(k.stageTimestamp);
    if (t !== undefined) last = t;
    const rv = /^\d+$/.test(k.resourceVersion) ? BigInt(k.resourceVersion) : undefined;
    return { time: last, cluster: k.cluster, rv };
  });
  const order = items.map((_, i) => i).sort((a, b) => keys[a]!.time - keys[b]!.time || a - b);
  // Within a run of equal times, one cluster's items with a resourceVersion take the places they hold
  // in ascending resourceVersion; other items (other clusters, no version) keep their places.
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && keys[order[end]!]!.time === keys[order[start]!]!.time) end++;
    const byCluster = new Map<string, number[]>();
    for (let p = start; p < end; p++) {
      const k = keys[order[p]!]!;
      if (k.rv === undefined) continue;
      // Appended in place: copying the list per item made a run of many equal times quadratic.
      const places = byCluster.get(k.cluster);
      if (places) places.push(p);
      else byCluster.set(k.cluster, [p]);
    }
    for (const places of byCluster.values()) {
      const sorted = places.map((p) => order[p]!).sort((a, b) => (keys[a]!.rv! < keys[b]!.rv! ? -1 : keys[a]!.rv! > keys[b]!.rv! ? 1 : a - b));
      places.forEach((p, i) => (order[p] = sorted[i]!));
    }
    start = end;
  }
  return order;
}
