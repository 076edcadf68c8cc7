// One way to open Valkey connections (iovalkey), so every client has the options BullMQ needs.
import { Valkey, type RedisOptions } from 'iovalkey';

/**
 * A connection for BullMQ and the project's own keys. `maxRetriesPerRequest: null` is required by
 * BullMQ Workers (blocking commands) and makes commands wait through a server restart instead of failing.
 * redis:// and rediss:// URLs carry user, password and TLS.
 */
export function openConnection(url: string, extra: RedisOptions = {}): Valkey {
  const client = new Valkey(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    // Reconnect forever with a capped backoff: a Valkey restart must heal without a manual step.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...extra,
  });
  return client;
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
