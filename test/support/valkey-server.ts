// A real Valkey for a test file: VALKEY_URL when set, else a `valkey-server`/`redis-server` process on a
// free port with its own data dir. Never 127.0.0.1:6379, never a mock: BullMQ is Lua on the server.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startEmbeddedValkey, type EmbeddedValkey } from '../../queues/embedded-valkey.js';

export interface TestValkey {
  url: string;
  /** The spawned server, undefined when VALKEY_URL was given. */
  server?: EmbeddedValkey;
  stop(): Promise<void>;
}

export async function startTestValkey(): Promise<TestValkey> {
  if (process.env.VALKEY_URL) return { url: process.env.VALKEY_URL, stop: async () => undefined };
  const dir = await mkdtemp(join(tmpdir(), 'gr-valkey-'));
  const server = await startEmbeddedValkey({ dataDir: dir, appendOnly: false });
  return {
    url: server.url,
    server,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Why a test that needs a Valkey server of its own (`needsFor`: to stop it, to set its maxmemory, to read
 * its memory use) cannot run: VALKEY_URL names a server others use too. Undefined when it can run; the
 * reason is printed when it cannot, for describe.skipIf / it.skipIf to skip with.
 */
export function ownValkeySkipReason(needsFor: string): string | undefined {
  if (!process.env.VALKEY_URL) return undefined;
  const why = `${needsFor} needs a Valkey server of its own, and VALKEY_URL names one that is shared`;
  console.info(`skipped: ${why}`);
  return why;
}

/** A fresh key prefix per test, so tests sharing a server never see each other's keys. */
export function uniquePrefix(name = 't'): string {
  return `gr-${name}-${randomBytes(4).toString('hex')}`;
}
