// The partition's record of the newest resourceVersion applied to each file (the stale-event guard of
// workers/write/plan-commits.ts), written by the lease holder only and never lowered. A writer stopped
// after its push (SIGSTOP, a long GC pause) may run on after its lease passed to another replica: its
// write must not replace the newer versions its successor recorded meanwhile, so the lease check and the
// write are one script.
import type { Valkey } from 'iovalkey';
import { LeaseLostError, type HeldLease } from './lease.js';

// KEYS[1] lease, KEYS[2] versions hash; ARGV[1] the lease value we hold; ARGV[2..] path, version pairs.
// -1 when the lease is not ours, else how many versions were raised. Numeric versions (etcd revisions,
// no leading zeros) compare by length, then as text: exact beyond 2^53; anything else is replaced.
const RAISE_IF_HELD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local raised = 0
for i = 2, #ARGV, 2 do
  local path, version = ARGV[i], ARGV[i + 1]
  local current = redis.call('HGET', KEYS[2], path)
  local newer = true
  if current and string.match(current, '^%d+$') and string.match(version, '^%d+$') then
    if #current ~= #version then newer = #version > #current else newer = version > current end
  end
  if newer then
    redis.call('HSET', KEYS[2], path, version)
    raised = raised + 1
  end
end
return raised`;

/** Raises the recorded versions to `versions` where they are newer; throws LeaseLostError unless `lease` is still held. */
export async function raiseAppliedVersions(
  connection: Valkey,
  keys: { lease: string; versions: string },
  lease: Pick<HeldLease, 'value' | 'fence'>,
  owner: string,
  versions: ReadonlyMap<string, string>,
): Promise<number> {
  if (versions.size === 0) return 0;
  const args = [...versions].flat();
  const raised = Number(await connection.eval(RAISE_IF_HELD, 2, keys.lease, keys.versions, lease.value, ...args));
  if (raised < 0) throw new LeaseLostError(owner, lease.fence);
  return raised;
}
