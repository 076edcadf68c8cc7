// The health view's reading of INFO (a Valkey 8 and a Redis reply), its warnings, and readiness's
// answers for a connection that is away or too slow (no server needed for those).
import { describe, expect, it } from 'vitest';
import { checkReadiness, healthView, parseInfo, valkeyFacts, type HealthDeps } from '../../dashboard/health.js';

const VALKEY_SERVER = '# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\nredis_mode:standalone\r\n';
const MEMORY = (max: number, policy: string, used = 1_000_000) =>
  `# Memory\r\nused_memory:${used}\r\nused_memory_human:976.56K\r\nmaxmemory:${max}\r\nmaxmemory_human:0B\r\nmaxmemory_policy:${policy}\r\n`;

function fakeConnection(over: Partial<Record<'set' | 'info', (...args: unknown[]) => Promise<unknown>>> & { status?: string } = {}): HealthDeps['connection'] {
  return {
    status: over.status ?? 'ready',
    set: over.set ?? (async () => 'OK'),
    info: over.info ?? (async (section: unknown) => (section === 'server' ? VALKEY_SERVER : MEMORY(0, 'noeviction'))),
  } as unknown as HealthDeps['connection'];
}

describe('health view', () => {
  it('reads a Valkey INFO: server name and valkey_version, unlimited maxmemory', () => {
    const facts = valkeyFacts(parseInfo(VALKEY_SERVER), parseInfo(MEMORY(0, 'noeviction')));
    expect(facts).toEqual({ server: 'valkey', version: '8.1.1', memory: { usedBytes: 1_000_000, maxBytes: null, usedRatio: null, policy: 'noeviction' }, warnings: [] });
  });

  it('reads a Redis INFO (redis_version only) and warns on allkeys-lru and on memory nearly full', () => {
    const facts = valkeyFacts(parseInfo('# Server\nredis_version:7.0.15\n'), parseInfo(MEMORY(1_000_000, 'allkeys-lru', 950_000)));
    expect(facts.server).toBe('redis');
    expect(facts.version).toBe('7.0.15');
    expect(facts.memory).toEqual({ usedBytes: 950_000, maxBytes: 1_000_000, usedRatio: 0.95, policy: 'allkeys-lru' });
    expect(facts.warnings).toHaveLength(2);
    expect(facts.warnings[0]).toMatch(/maxmemory-policy is allkeys-lru, not noeviction/);
    expect(facts.warnings[1]).toMatch(/95% of maxmemory/);
  });

  it('readiness fails at once, naming Valkey, while the connection is not ready', async () => {
    let sets = 0;
    const r = await checkReadiness({ connection: fakeConnection({ status: 'reconnecting', set: async () => (sets++, 'OK') }), prefix: 'gr', configLoaded: () => true });
    expect(r).toMatchObject({ status: 'not ready', failed: ['valkey'] });
    expect(r.checks[0]!.message).toMatch(/reconnecting/);
    expect(sets).toBe(0);
  });

  it('readiness fails when the write does not answer within the timeout', async () => {
    const r = await checkReadiness({ connection: fakeConnection({ set: () => new Promise(() => undefined) }), prefix: 'gr', configLoaded: () => true, timeoutMs: 50 });
    expect(r.failed).toEqual(['valkey']);
    expect(r.checks[0]!.message).toMatch(/within 50 ms/);
  });

  it('readiness writes a key with a short TTL under the prefix, and a throwing dependency is a failed check', async () => {
    const calls: unknown[][] = [];
    const r = await checkReadiness({
      connection: fakeConnection({ set: async (...args) => (calls.push(args), 'OK') }),
      prefix: '{gr}',
      configLoaded: () => {
        throw new Error('boom');
      },
      providers: () => {
        throw new Error('no probes');
      },
    });
    expect(calls[0]).toEqual(['{gr}:readyz', expect.any(String), 'PX', 10_000]);
    expect(r.failed).toEqual(['config', 'providers']);
  });

  it('the view names an INFO that timed out, and counts uptime from the start given', async () => {
    const view = await healthView({
      connection: fakeConnection({ info: () => new Promise(() => undefined) }),
      prefix: 'gr',
      configLoaded: () => true,
      timeoutMs: 50,
      version: '9.9.9',
      startedAt: new Date('2025-01-01T00:00:00Z'),
      now: () => new Date('2025-01-01T01:00:00Z'),
    });
    expect(view.status).toBe('ready');
    expect(view.service).toEqual({ name: 'gitops-reverser', version: '9.9.9', startedAt: '2025-01-01T00:00:00.000Z', uptimeSeconds: 3600 });
    expect(view.valkey.error).toMatch(/INFO.*within 50 ms/);
    expect(view.warnings).toEqual([]);
  });
});
