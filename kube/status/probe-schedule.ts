// When each GitProvider is probed: at most once per interval, and again at once when its URL or
// credentials change (a fixed Secret should turn Reachable green without waiting a minute). Probes run in
// the background, a few at a time (each is a git process); `result` answers from memory at once.
import { createHash } from 'node:crypto';
import type { ResolvedGitProvider } from '../../config/resolved-config.js';
import { probeRepository, type ProbeResult } from './provider-probe.js';

export interface ProbeScheduleOptions {
  /** @defaultValue 60000 */
  intervalMs?: number;
  /** @defaultValue 15000 */
  timeoutMs?: number;
  /** Git processes at once. @defaultValue 2 */
  concurrency?: number;
  /** Called after each probe, so the caller can show the result. */
  onResult?: (providerKey: string, result: ProbeResult) => void;
  /** For tests: the probe to run. */
  probe?: typeof probeRepository;
}

export interface ProbeSchedule {
  /** Probes `provider` when due; returns the last result of its current spec (undefined: not probed yet). */
  want(provider: ResolvedGitProvider): ProbeResult | undefined;
  /** The last result of `provider`'s current spec, without probing (undefined: not probed yet). */
  peek(provider: ResolvedGitProvider): ProbeResult | undefined;
  /** Forgets providers not in `keys` (deleted). */
  retain(keys: ReadonlySet<string>): void;
  /** Ends running probes and waits for them. */
  stop(): Promise<void>;
}

interface Entry {
  fingerprint: string;
  result?: ProbeResult;
  probedAt: number;
  running: boolean;
  queued: boolean;
}

function fingerprintOf(p: ResolvedGitProvider): string {
  // Hashed: the fingerprint lives in memory for long, and credentials are not to linger in a plain string.
  return createHash('sha256').update(JSON.stringify([p.url, Object.entries(p.credentials ?? {}).sort()])).digest('hex');
}

export function startProbeSchedule(opts: ProbeScheduleOptions = {}): ProbeSchedule {
  const intervalMs = opts.intervalMs ?? 60_000;
  const concurrency = opts.concurrency ?? 2;
  const probe = opts.probe ?? probeRepository;
  const entries = new Map<string, Entry>();
  const queue: { provider: ResolvedGitProvider; entry: Entry }[] = [];
  const running = new Set<Promise<void>>();
  const abort = new AbortController();

  const pump = (): void => {
    while (!abort.signal.aborted && running.size < concurrency && queue.length > 0) {
      const { provider, entry } = queue.shift()!;
      // Replaced (new URL or credentials, queued on its own) or forgotten meanwhile.
      if (entries.get(provider.key) !== entry) continue;
      entry.queued = false;
      entry.running = true;
      const fingerprint = entry.fingerprint;
      const task = probe(provider.url, provider.credentials, { timeoutMs: opts.timeoutMs, signal: abort.signal })
        .catch((err: unknown): ProbeResult => ({ reachable: false, reason: 'ProbeFailed', message: `the probe failed: ${err instanceof Error ? err.message : String(err)}` }))
        .then((result) => {
          entry.running = false;
          entry.probedAt = Date.now();
          // A probe of a spec that changed meanwhile says nothing about the new one.
          if (abort.signal.aborted || entries.get(provider.key) !== entry || entry.fingerprint !== fingerprint) return;
          entry.result = result;
          opts.onResult?.(provider.key, result);
        })
        .finally(() => {
          running.delete(task);
          pump();
        });
      running.add(task);
    }
  };

  return {
    want(provider) {
      const fingerprint = fingerprintOf(provider);
      let entry = entries.get(provider.key);
      if (!entry || entry.fingerprint !== fingerprint) {
        entry = { fingerprint, probedAt: 0, running: false, queued: false };
        entries.set(provider.key, entry);
      }
      if (!entry.running && !entry.queued && Date.now() - entry.probedAt >= intervalMs && !abort.signal.aborted) {
        entry.queued = true;
        queue.push({ provider, entry });
        pump();
      }
      return entry.result;
    },
    peek(provider) {
      const entry = entries.get(provider.key);
      return entry && entry.fingerprint === fingerprintOf(provider) ? entry.result : undefined;
    },
    retain(keys) {
      for (const key of entries.keys()) if (!keys.has(key)) entries.delete(key);
    },
    async stop() {
      abort.abort();
      queue.length = 0;
      await Promise.all(running);
    },
  };
}
