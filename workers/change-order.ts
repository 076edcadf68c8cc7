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
  return items
    .map((_, i) => i)
    .sort((a, b) => {
      const x = keys[a]!;
      const y = keys[b]!;
      if (x.time !== y.time) return x.time - y.time;
      if (x.cluster !== y.cluster) return x.cluster < y.cluster ? -1 : 1;
      if (x.rv !== undefined && y.rv !== undefined && x.rv !== y.rv) return x.rv < y.rv ? -1 : 1;
      return a - b;
    });
}
