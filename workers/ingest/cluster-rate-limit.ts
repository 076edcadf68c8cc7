// Per-cluster rate limit of the audit webhook: one token bucket per ClusterProvider in Valkey, so the
// limit holds over all replicas together (a per-replica bucket would let N replicas accept N times it).
// One Lua script refills by the time elapsed on the server's clock (replicas' clocks never enter) and
// takes a batch's tokens all at once or none: a batch is stored whole or refused whole.
import type { Valkey } from 'iovalkey';
import type { ClusterSource } from '../../config/resolved-config.js';
import { rateLimitKey } from '../../queues/names.js';

type RateLimit = NonNullable<ClusterSource['rateLimit']>;

// KEYS[1] the bucket (hash: tokens, at = ms of the last take); ARGV[1] tokens per second, ARGV[2] burst,
// ARGV[3] tokens wanted. Returns {1, tokens left} when taken, {0, ms until enough} when refused,
// {-1, 0} when more are wanted than the bucket holds when full. A refusal writes nothing: the refill is
// computed from `at` at the next take. The key expires once it would be full again, which is what an
// absent key means.
const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
if wanted > burst then return {-1, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
elseif now > at then
  tokens = tokens + (now - at) * rate / 1000
end
if tokens > burst then tokens = burst end
if tokens >= wanted then
  tokens = tokens - wanted
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
  return {1, math.floor(tokens)}
end
return {0, math.ceil((wanted - tokens) * 1000 / rate)}`;

export type TakeResult =
  | { taken: true; tokensLeft: number }
  | { taken: false; retryAfterMs: number }
  /** The batch wants more tokens than the burst: it can never pass. */
  | { taken: false; exceedsBurst: true };

/** Takes `tokens` from the cluster's bucket, or says how long until they are there. */
export async function takeTokens(connection: Valkey, prefix: string, cluster: string, limit: RateLimit, tokens: number): Promise<TakeResult> {
  const reply = (await connection.eval(TAKE, 1, rateLimitKey(prefix, cluster), limit.eventsPerSecond, limit.burst, tokens)) as [number, number];
  const [code, value] = reply;
  if (code === 1) return { taken: true, tokensLeft: value };
  if (code === -1) return { taken: false, exceedsBurst: true };
  return { taken: false, retryAfterMs: value };
}

export interface RateLimitRefusal {
  status: 429;
  reason: 'rate-limited' | 'batch-exceeds-burst';
  error: string;
  retryAfterSeconds: number;
}

/** What the webhook asks for a cluster that has a rate limit: null to go ahead, else the 429 to answer. */
export type ClusterRateLimit = (cluster: string, limit: RateLimit, events: number) => Promise<RateLimitRefusal | null>;

export function createClusterRateLimit(opts: { connection: Valkey; prefix: string }): ClusterRateLimit {
  return async (cluster, limit, events) => {
    const describe = `${limit.eventsPerSecond} events/s, burst ${limit.burst}`;
    const result = await takeTokens(opts.connection, opts.prefix, cluster, limit, events);
    if (result.taken) return null;
    if ('exceedsBurst' in result) {
      // 429 rather than 413: the body is not too large for the service, only for this cluster's limit,
      // and the fix is in the ClusterProvider, not in the request. Retry-After is a full refill, so an
      // API server that keeps retrying does not hammer the webhook while the burst is being raised.
      return {
        status: 429,
        reason: 'batch-exceeds-burst',
        error:
          `a batch of ${events} events exceeds the burst of cluster provider "${cluster}" (${describe}) and can never be accepted: ` +
          `raise spec.rateLimit.burst of ClusterProvider ${cluster} to at least the API server's --audit-webhook-batch-max-size (default 400)`,
        retryAfterSeconds: Math.max(1, Math.ceil(limit.burst / limit.eventsPerSecond)),
      };
    }
    return {
      status: 429,
      reason: 'rate-limited',
      error: `cluster provider "${cluster}" is over its rate limit (${describe}): ${events} events can be accepted in ${(result.retryAfterMs / 1000).toFixed(1)} s; retry later`,
      retryAfterSeconds: Math.max(1, Math.ceil(result.retryAfterMs / 1000)),
    };
  };
}
