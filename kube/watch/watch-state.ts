// The progress of one watch in Valkey: the resourceVersion it resumes from (the checkpoint) and the
// objects it knows (`namespace/name` → `resourceVersion uid`), which a re-list after 410 Gone compares
// against to find what changed and what was deleted while nobody watched. Both move together in one
// script, only after the events up to that point were stored, and only while this replica holds the
// cluster's watch lease: a replica that lost it can no longer move the checkpoint of its successor.
import type { Valkey } from 'iovalkey';
import { LeaseLostError } from '../../queues/lease.js';

export interface KnownObject {
  resourceVersion: string;
  uid: string;
}

export interface WatchStateKeys {
  checkpoint: string;
  index: string;
}

/** The lease that must still be ours for progress to be written. */
export interface WatchFence {
  leaseKey: string;
  /** The lease key's value while we hold it. */
  value: string;
  /** For LeaseLostError: what the lease guards and its fence. */
  owner: string;
  fence: number;
}

export interface WatchProgress {
  /** The new checkpoint; undefined: leave it (a re-list in progress records objects only). */
  checkpoint?: string;
  known?: Iterable<readonly [string, KnownObject]>;
  forgotten?: Iterable<string>;
}

export interface WatchState {
  checkpoint(): Promise<string | undefined>;
  known(): Promise<Map<string, KnownObject>>;
  /** Throws LeaseLostError (and writes nothing) when the fence says the lease is no longer ours. */
  commit(progress: WatchProgress): Promise<void>;
}

export interface WatchStateOptions {
  connection: Valkey;
  keys: WatchStateKeys;
  /**
   * Read before every commit. Undefined option: no fence (a single process). A function that returns
   * null: the lease is not held, nothing may be written.
   */
  fence?: () => WatchFence | null;
  /**
   * State of a watch nobody runs any more (its rule was removed) expires after this long without a
   * commit. A running watch commits at least on every bookmark (about once a minute).
   * @defaultValue 7 days
   */
  ttlMs?: number;
}

// KEYS[1] lease (or any key when unfenced), KEYS[2] checkpoint, KEYS[3] index.
// ARGV[1] expected lease value ('' = unfenced), ARGV[2] ttl ms, ARGV[3] checkpoint ('' = keep),
// ARGV[4] number of index entries to set, then field/value pairs, then fields to delete.
const COMMIT = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[4])
local i = 5
for _ = 1, n do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[3], ARGV[i])
  i = i + 1
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2]) else redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 1`;

const WEEK_MS = 7 * 24 * 3600 * 1000;

/** Progress is written in chunks: a Lua call's arguments live on its stack. */
const MAX_ENTRIES_PER_CALL = 2000;

export function openWatchState(opts: WatchStateOptions): WatchState {
  const { connection, keys } = opts;
  const ttlMs = opts.ttlMs ?? WEEK_MS;

  const run = async (checkpoint: string, set: [string, KnownObject][], del: string[]): Promise<void> => {
    let leaseKey = keys.checkpoint;
    let expected = '';
    let fence: WatchFence | null | undefined;
    if (opts.fence) {
      fence = opts.fence();
      if (!fence) throw new LeaseLostError('watch', 0);
      leaseKey = fence.leaseKey;
      expected = fence.value;
    }
    const args: (string | number)[] = [expected, ttlMs, checkpoint, set.length];
    for (const [name, k] of set) args.push(name, `${k.resourceVersion} ${k.uid}`);
    args.push(...del);
    const ok = Number(await connection.eval(COMMIT, 3, leaseKey, keys.checkpoint, keys.index, ...args));
    if (!ok) throw new LeaseLostError(fence?.owner ?? 'watch', fence?.fence ?? 0);
  };

  return {
    async checkpoint() {
      return (await connection.get(keys.checkpoint)) ?? undefined;
    },
    async known() {
      const raw = await connection.hgetall(keys.index);
      const out = new Map<string, KnownObject>();
      for (const [name, value] of Object.entries(raw)) {
        const space = value.indexOf(' ');
        out.set(name, space < 0 ? { resourceVersion: value, uid: '' } : { resourceVersion: value.slice(0, space), uid: value.slice(space + 1) });
      }
      return out;
    },
    async commit(progress) {
      const set = [...(progress.known ?? [])].map(([name, k]) => [name, k] as [string, KnownObject]);
      const del = [...(progress.forgotten ?? [])];
      // Chunks before the last write index entries only; the checkpoint moves with the last chunk, so
      // it never gets ahead of the objects it stands for.
      while (set.length + del.length > MAX_ENTRIES_PER_CALL) {
        const s = set.splice(0, MAX_ENTRIES_PER_CALL);
        const d = del.splice(0, MAX_ENTRIES_PER_CALL - s.length);
        await run('', s, d);
      }
      await run(progress.checkpoint ?? '', set, del);
    },
  };
}
