// The order in which the API server made a batch's changes. Queue order is arrival order, and arrival
// can differ from change order: the API server's buffered audit backend sends batches concurrently, and
// jobs that a crashed holder had in hand come back to the queue in no particular order.
//
// Within one cluster, resourceVersion is the order: it is etcd's revision, which every write of the cluster
// raises, so it orders the writes themselves. The audit time is not: it is stamped when the response is
// complete, and two requests on one object finish in either order (under load, thousands of times a
// minute). So the items of one cluster that carry a resourceVersion take the places they hold in audit-time
// order in ascending resourceVersion; items without one (a delete answered with a Status, an event without a
// body) and items of other clusters stay at their audit time (to the microsecond), ties in queue order.

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
  // Each cluster's items with a resourceVersion take the places they hold, in ascending resourceVersion.
  const byCluster = new Map<string, number[]>();
  order.forEach((item, p) => {
    const k = keys[item]!;
    if (k.rv === undefined) return;
    const places = byCluster.get(k.cluster);
    if (places) places.push(p);
    else byCluster.set(k.cluster, [p]);
  });
  for (const places of byCluster.values()) {
    const sorted = places.map((p) => order[p]!).sort((a, b) => (keys[a]!.rv! < keys[b]!.rv! ? -1 : keys[a]!.rv! > keys[b]!.rv! ? 1 : a - b));
    places.forEach((p, i) => (order[p] = sorted[i]!));
  }
  return order;
}
