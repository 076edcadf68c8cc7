// An exclusive lease in Valkey: at most one replica holds it, with a fencing token that grows on every
// acquisition. BullMQ's global concurrency and job locks are not a fence (a job whose lock expired is
// started again while the first run still works), so whoever acts on the lease checks it right before
// the side effect (the Git writer before every push, whose fast-forward-only push is the last guard).
import type { Valkey } from 'iovalkey';

// KEYS[1] lease, KEYS[2] fence counter; ARGV[1] holder, ARGV[2] ttl ms. Returns the new fence or 0.
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
return fence`;

// KEYS[1] lease; ARGV[1] expected value, ARGV[2] ttl ms. 1 when still ours (and extended), else 0.
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(
    /** What the lease guards, e.g. `partition 2b0f5489634d`. */
    readonly owner: string,
    readonly fence: number,
  ) {
    super(`${owner}: the lease (fence ${fence}) was lost; stopping before the next side effect`);
  }
}

export interface HeldLease {
  fence: number;
  /** The lease key's value while we hold it: `${holder}:${fence}`. */
  value: string;
  /** Extends the lease; false when another replica holds it now. */
  renew(): Promise<boolean>;
  /** Throws LeaseLostError unless the lease is still ours (and extends it). */
  assertHeld(): Promise<void>;
  release(): Promise<void>;
}

export interface LeaseKeys {
  lease: string;
  fence: string;
}

export async function tryAcquireLease(
  client: Valkey,
  keys: LeaseKeys,
  owner: string,
  holder: string,
  ttlMs: number,
): Promise<HeldLease | null> {
  const fence = Number(await client.eval(ACQUIRE, 2, keys.lease, keys.fence, holder, ttlMs));
  if (!fence) return null;
  const value = `${holder}:${fence}`;
  const renew = async () => Number(await client.eval(RENEW, 1, keys.lease, value, ttlMs)) === 1;
  return {
    fence,
    value,
    renew,
    assertHeld: async () => {
      if (!(await renew())) throw new LeaseLostError(owner, fence);
    },
    release: async () => {
      await client.eval(RELEASE, 1, keys.lease, value);
    },
  };
}
