// A bound on how long an HTTP request waits for Valkey. Clients queue commands while Valkey is away
// (so a restart heals by itself); a request must not hang with them.

export class ValkeyTimeoutError extends Error {
  override name = 'ValkeyTimeoutError';
}

/** `work`, or a ValkeyTimeoutError after `ms`; the timer never outlives the race. */
export function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ValkeyTimeoutError(`Valkey did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
