// Readiness (/readyz) and the JSON health view (/health). /healthz stays the process alone (app.ts).
//
// Ready means this replica can do its work now: Valkey answers AND takes a write (a SET with a short TTL
// under the service prefix: a full `noeviction` server or a read-only replica answers PING but refuses
// writes), the configuration was loaded, and no GitProvider's last probe failed (a provider not probed
// yet counts as ready). The health view adds what a person asks when it is not: the Valkey server's
// version, its memory against maxmemory, and a warning when the eviction policy is not `noeviction`
// (BullMQ requires it: an evicted job key is a lost event).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Valkey } from 'iovalkey';
import { readinessKey } from '../queues/names.js';
import { withTimeout } from '../queues/valkey-timeout.js';

/** A GitProvider's last reachability probe; `reachable` undefined = not probed yet (counts as ready). */
export interface ProviderReachability {
  key: string;
  reachable: boolean | undefined;
  message?: string;
}

export interface ReadinessCheck {
  /** `valkey`, `config` or `provider:<namespace/name>`. */
  name: string;
  ok: boolean;
  message?: string;
}

export interface ReadinessResult {
  status: 'ready' | 'not ready';
  checks: ReadinessCheck[];
  /** The names of the failed checks (empty when ready). */
  failed: string[];
}

export interface HealthDeps {
  /** The service's connection; only SET, INFO and its status are used. */
  connection: Pick<Valkey, 'set' | 'info' | 'status'>;
  /** The service's key prefix: the readiness key is readinessKey(prefix), `<prefix>:readyz`. */
  prefix: string;
  configLoaded: () => boolean;
  /** Each GitProvider's last probe (see StatusReporter.providers()); undefined: no provider check. */
  providers?: () => readonly ProviderReachability[];
  /** Per Valkey call. @defaultValue 2000 */
  timeoutMs?: number;
}

export interface ValkeyMemory {
  usedBytes: number;
  /** null = unlimited (maxmemory 0). */
  maxBytes: number | null;
  /** used / max, null when unlimited. */
  usedRatio: number | null;
  /** maxmemory-policy; BullMQ requires `noeviction`. */
  policy: string | undefined;
}

export interface HealthView {
  status: ReadinessResult['status'];
  service: { name: string; version: string; startedAt: string; uptimeSeconds: number };
  valkey: {
    /** `valkey` or `redis`. */
    server?: string;
    version?: string;
    memory?: ValkeyMemory;
    /** Why version or memory is missing (Valkey unreachable, INFO refused). */
    error?: string;
  };
  /** Things to fix that do not make the replica unready (an eviction policy other than noeviction, memory nearly full). */
  warnings: string[];
  checks: ReadinessCheck[];
}

export interface HealthViewDeps extends HealthDeps {
  /** @defaultValue the version in package.json */
  version?: string;
  /** @defaultValue the process start */
  startedAt?: Date;
  now?: () => Date;
}

const READYZ_TTL_MS = 10_000;
/** From here on the health view warns that Valkey memory is nearly full (the webhook's back-pressure default). */
const MEMORY_WARN_RATIO = 0.9;

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function checkValkey(deps: HealthDeps): Promise<ReadinessCheck> {
  const name = 'valkey';
  // Not connected: say so at once instead of queueing a command that waits for the reconnect.
  if (deps.connection.status !== 'ready') return { name, ok: false, message: `the Valkey connection is ${deps.connection.status}` };
  try {
    const reply = await withTimeout(deps.connection.set(readinessKey(deps.prefix), String(Date.now()), 'PX', READYZ_TTL_MS), deps.timeoutMs ?? 2000);
    if (reply !== 'OK') return { name, ok: false, message: `Valkey refused a write: ${String(reply)}` };
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, message: `Valkey is not writable: ${message(err)}` };
  }
}

/** Every check, each named; ready when all pass. Never throws. */
export async function checkReadiness(deps: HealthDeps): Promise<ReadinessResult> {
  const checks: ReadinessCheck[] = [await checkValkey(deps)];
  let loaded = false;
  try {
    loaded = deps.configLoaded();
  } catch {
    loaded = false;
  }
  checks.push(loaded ? { name: 'config', ok: true } : { name: 'config', ok: false, message: 'the configuration is not loaded yet' });
  let providers: readonly ProviderReachability[] = [];
  try {
    providers = deps.providers?.() ?? [];
  } catch (err) {
    checks.push({ name: 'providers', ok: false, message: `cannot read the GitProviders' probes: ${message(err)}` });
  }
  for (const p of [...providers].sort((a, b) => a.key.localeCompare(b.key))) {
    const check: ReadinessCheck = { name: `provider:${p.key}`, ok: p.reachable !== false };
    if (p.reachable === undefined) check.message = 'not probed yet';
    else if (p.message) check.message = p.message;
    checks.push(check);
  }
  const failed = checks.filter((c) => !c.ok).map((c) => c.name);
  return { status: failed.length === 0 ? 'ready' : 'not ready', checks, failed };
}

/** `key:value` lines of an INFO reply (section headers and blank lines skipped). */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** Version and memory from INFO server and INFO memory, with the warnings they call for. */
export function valkeyFacts(server: Map<string, string>, memory: Map<string, string>): { server: string; version?: string; memory: ValkeyMemory; warnings: string[] } {
  const valkeyVersion = server.get('valkey_version');
  const used = Number(memory.get('used_memory') ?? NaN);
  const max = Number(memory.get('maxmemory') ?? 0);
  const policy = memory.get('maxmemory_policy');
  const mem: ValkeyMemory = {
    usedBytes: used,
    maxBytes: max > 0 ? max : null,
    usedRatio: max > 0 && Number.isFinite(used) ? used / max : null,
    policy,
  };
  const warnings: string[] = [];
  if (policy !== undefined && policy !== 'noeviction') {
    warnings.push(`maxmemory-policy is ${policy}, not noeviction: Valkey may evict BullMQ's keys (lost jobs); set maxmemory-policy noeviction`);
  }
  if (mem.usedRatio !== null && mem.usedRatio >= MEMORY_WARN_RATIO) {
    warnings.push(`Valkey uses ${Math.round(mem.usedRatio * 100)}% of maxmemory: new events will be refused soon`);
  }
  return { server: server.get('server_name') ?? (valkeyVersion ? 'valkey' : 'redis'), version: valkeyVersion ?? server.get('redis_version'), memory: mem, warnings };
}

let packageVersion: string | undefined;
/** The version in the service's package.json (found upwards from this file, in the sources or in dist/). */
export function serviceVersion(): string {
  if (packageVersion !== undefined) return packageVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'gitops-reverser' && pkg.version) return (packageVersion = pkg.version);
    } catch {
      // not here
    }
    dir = dirname(dir);
  }
  return (packageVersion = 'unknown');
}

const PROCESS_STARTED = new Date(Date.now() - process.uptime() * 1000);

/** The JSON health view; never throws (what could not be read is named in `valkey.error`). */
export async function healthView(deps: HealthViewDeps): Promise<HealthView> {
  const now = deps.now?.() ?? new Date();
  const startedAt = deps.startedAt ?? PROCESS_STARTED;
  const timeoutMs = deps.timeoutMs ?? 2000;
  const info = async (): Promise<HealthView['valkey'] & { warnings: string[] }> => {
    if (deps.connection.status !== 'ready') return { error: `the Valkey connection is ${deps.connection.status}`, warnings: [] };
    try {
      const [server, memory] = await Promise.all([
        withTimeout(deps.connection.info('server'), timeoutMs),
        withTimeout(deps.connection.info('memory'), timeoutMs),
      ]);
      return valkeyFacts(parseInfo(server), parseInfo(memory));
    } catch (err) {
      return { error: `cannot read Valkey's INFO: ${message(err)}`, warnings: [] };
    }
  };
  const [readiness, { warnings, ...valkey }] = await Promise.all([checkReadiness(deps), info()]);
  return {
    status: readiness.status,
    service: {
      name: 'gitops-reverser',
      version: deps.version ?? serviceVersion(),
      startedAt: startedAt.toISOString(),
      uptimeSeconds: Math.max(0, Math.round((now.getTime() - startedAt.getTime()) / 1000)),
    },
    valkey,
    warnings,
    checks: readiness.checks,
  };
}

/** Both endpoints' functions over one set of dependencies, for createApp's `readiness` and `health`. */
/**
 * `/readyz` without the repositories' reachability, `/health` with it: a pod taken out of its Service
 * because a Git host is down would stop taking audit events, and the API server drops what it cannot
 * deliver. Events are queued in Valkey and written when the remote is back, so an unreachable
 * repository is reported (here, in the GitProvider's status, in metrics), not made a reason to be unready.
 */
export function createHealth(deps: HealthViewDeps): { readiness: () => Promise<ReadinessResult>; health: () => Promise<HealthView> } {
  const { providers: _providers, ...withoutProviders } = deps;
  return { readiness: () => checkReadiness(withoutProviders), health: () => healthView(deps) };
}
