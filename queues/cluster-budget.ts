// The storage budget of each source cluster: how many bytes of its events Valkey holds in flight (stored
// by the webhook, not yet written to Git), so that one cluster sending huge objects fills its own budget
// and gets 429 while the other clusters go on, instead of filling Valkey until every cluster gets 503.
//
// Bookkeeping per job, so that every step is idempotent: the webhook reserves each ingest job's bytes
// before storing it (a resent batch reserves nothing twice), the router moves the reservation from the
// ingest job to the write jobs it adds, the writer releases each write once it is in Git. A step that dies
// halfway leaves an entry whose job is finished or gone; a periodic sweep releases those (after a grace, so
// a reservation made just before its job is stored is never taken for a leak). Reconcile writes are the
// service's own and are not counted. The budget is a guard, not an invariant: it may lag by a sweep.
import type { Valkey } from 'iovalkey';
import { budgetSweepKey, clusterBudgetKeys } from './names.js';

export { DEFAULT_CLUSTER_INFLIGHT_LIMIT_BYTES } from '../config/defaults.js';

/** One job's share: `field` is `<queue name>:<job id>` (budgetField). */
export interface BudgetEntry {
  field: string;
  bytes: number;
}

/** The hash field of a job: BullMQ keeps the job itself at `<prefix>:<queue name>:<job id>`. */
export function budgetField(queueName: string, jobId: string): string {
  return `${queueName}:${jobId}`;
}

// KEYS[1] entries, KEYS[2] bytes. ARGV[1] limit (bytes), ARGV[2] '1' to admit whatever the total,
// ARGV[3] how many fields to release first, then those fields, then field/bytes pairs to reserve.
// Fields already reserved are not counted again. The reservation is refused (nothing written) when it
// adds bytes to a cluster that already has some in flight and the sum would pass the limit: a single
// batch larger than the limit still passes when nothing else is in flight, or it could never pass.
// Returns {1 taken | 0 refused, bytes in flight}.
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local releases = tonumber(ARGV[3])
local freed = 0
for i = 4, 3 + releases do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    freed = freed + tonumber(string.match(v, '^(%d+)'))
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
local add = 0
local fresh = {}
for i = 4 + releases, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
    add = add + tonumber(ARGV[i + 1])
    fresh[#fresh + 1] = i
  end
end
if ARGV[2] ~= '1' and add > 0 and total - freed > 0 and total - freed + add > tonumber(ARGV[1]) then
  return {0, total}
end
for _, i in ipairs(fresh) do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1] .. ':' .. now) end
total = total - freed + add
if total <= 0 then redis.call('DEL', KEYS[2]) total = 0 else redis.call('SET', KEYS[2], total) end
return {1, total}`;

// KEYS[1] entries, KEYS[2] bytes. ARGV[1] the job key prefix, ARGV[2] grace ms, then fields. Releases
// each field reserved longer ago than the grace whose job is gone or finished (completed or failed).
// The job hashes are not declared keys: they share the prefix's hash tag, so on Valkey Cluster they live
// in the same slot. Returns the bytes released.
const SWEEP = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local freed = 0
for i = 3, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local bytes, at = string.match(v, '^(%d+):(%d+)$')
    if bytes == nil or now - tonumber(at) > tonumber(ARGV[2]) then
      local job = ARGV[1] .. ':' .. ARGV[i]
      if redis.call('EXISTS', job) == 0 or redis.call('HEXISTS', job, 'finishedOn') == 1 then
        freed = freed + tonumber(bytes or '0')
        redis.call('HDEL', KEYS[1], ARGV[i])
      end
    end
  end
end
if freed > 0 then
  local left = redis.call('DECRBY', KEYS[2], freed)
  if left <= 0 then redis.call('DEL', KEYS[2]) end
end
return freed`;

export type ReserveResult = { taken: true; inFlight: number } | { taken: false; inFlight: number };

export interface ClusterBudget {
  /** Reserves the entries unless that takes the cluster past `limitBytes` (see RESERVE). */
  reserve(cluster: string, entries: BudgetEntry[], limitBytes: number): Promise<ReserveResult>;
  /** Releases `from` and reserves `to` in one step, whatever the total (the bytes were admitted already). */
  transfer(cluster: string, from: string[], to: BudgetEntry[]): Promise<void>;
  /** Releases these fields (those not reserved are ignored). */
  release(cluster: string, fields: string[]): Promise<void>;
  /** Bytes in flight per cluster. */
  inFlight(clusters: readonly string[]): Promise<Map<string, number>>;
  /** Releases what finished or vanished without being released; the bytes released. */
  sweep(clusters: readonly string[], graceMs?: number): Promise<number>;
}

/** Fields per Lua call: bounded, so one call never holds Valkey for long. */
const CHUNK = 500;

export function createClusterBudget(connection: Valkey, prefix: string): ClusterBudget {
  const run = async (cluster: string, force: boolean, limit: number, from: string[], to: BudgetEntry[]): Promise<ReserveResult> => {
    const keys = clusterBudgetKeys(prefix, cluster);
    const unique = [...new Map(to.map((e) => [e.field, e])).values()];
    const args = [String(limit), force ? '1' : '0', String(from.length), ...from, ...unique.flatMap((e) => [e.field, String(Math.max(0, Math.round(e.bytes)))])];
    const [taken, total] = (await connection.eval(RESERVE, 2, keys.entries, keys.bytes, ...args)) as [number, number];
    return { taken: taken === 1, inFlight: Number(total) };
  };
  return {
    reserve: (cluster, entries, limitBytes) => run(cluster, false, limitBytes, [], entries),
    async transfer(cluster, from, to) {
      if (from.length === 0 && to.length === 0) return;
      await run(cluster, true, 0, from, to);
    },
    async release(cluster, fields) {
      for (let i = 0; i < fields.length; i += CHUNK) await run(cluster, true, 0, fields.slice(i, i + CHUNK), []);
    },
    async inFlight(clusters) {
      const out = new Map<string, number>();
      if (clusters.length === 0) return out;
      const values = await connection.mget(...clusters.map((c) => clusterBudgetKeys(prefix, c).bytes));
      clusters.forEach((c, i) => out.set(c, Number(values[i] ?? 0)));
      return out;
    },
    async sweep(clusters, graceMs = 60_000) {
      let freed = 0;
      for (const cluster of clusters) {
        const keys = clusterBudgetKeys(prefix, cluster);
        let cursor = '0';
        do {
          const [next, fields] = await connection.hscan(keys.entries, cursor, 'COUNT', CHUNK);
          cursor = next;
          const names = fields.filter((_, i) => i % 2 === 0);
          if (names.length > 0) freed += Number(await connection.eval(SWEEP, 2, keys.entries, keys.bytes, prefix, String(graceMs), ...names));
        } while (cursor !== '0');
      }
      return freed;
    },
  };
}

export interface BudgetSweeper {
  stop(): void;
}

/**
 * Sweeps every configured cluster's budget every `intervalMs`, on one replica at a time (a lock with a
 * TTL of the interval: whoever takes it sweeps, the others skip this round).
 */
export function startBudgetSweeper(opts: {
  connection: Valkey;
  prefix: string;
  budget: ClusterBudget;
  clusters: () => readonly string[];
  replicaId: string;
  /** @defaultValue 60000 */
  intervalMs?: number;
  onError: (err: unknown) => void;
}): BudgetSweeper {
  const intervalMs = opts.intervalMs ?? 60_000;
  const timer = setInterval(() => {
    void (async () => {
      const mine = await opts.connection.set(budgetSweepKey(opts.prefix), opts.replicaId, 'PX', intervalMs, 'NX');
      if (mine === 'OK') await opts.budget.sweep(opts.clusters());
    })().catch(opts.onError);
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
