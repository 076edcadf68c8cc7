// One watch of one resource type in one namespace (or all), that survives restarts without losing or
// repeating changes. client-node's ListWatch/makeInformer cannot start from a stored resourceVersion and
// lists without pagination, so this is built on its plain `Watch` plus paginated lists:
//
// - With a checkpoint (a resourceVersion stored in Valkey), it watches from there directly, with
//   bookmarks. Without one, or when the server answers 410 Gone (the checkpoint was compacted away), it
//   lists (limit + continue; an expired continue restarts the list) and compares the list with the
//   objects it knows: ADDED/MODIFIED for new and changed objects, DELETED for the ones that are gone,
//   nothing for unchanged ones. Then it watches from the list's resourceVersion.
// - Changes go to an async sink in order, in batches. Only after the sink has stored a batch do the
//   checkpoint and the known objects move (watch-state.ts), bookmarks included: a crash re-delivers a
//   batch (the ingest job ids make that add nothing twice), it never skips one.
// - A stream the server ends (its timeout, a restart) resumes from the checkpoint at once; errors back
//   off exponentially; stop() aborts the stream, a list between pages, and a sink that is waiting.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubeApiError, kubeGetJson, type RequestLimiter } from '../kube-get-json.js';
import type { WatchSpec } from './watch-plan.js';
import type { KnownObject, WatchState } from './watch-state.js';
import { isRecord, stringOrEmpty } from '../../core/json.js';
import { sleepUnlessAborted } from '../../queues/wakeable-pause.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchChange {
  type: WatchEventType;
  /** The object as the API server sent it (apiVersion and kind filled in for list items). */
  object: Record<string, unknown>;
  /** watch: it just arrived on the stream; relist: a list found it changed (or gone) since it was known. */
  origin: 'watch' | 'relist';
  /** When it arrived: epoch milliseconds with a fraction (microseconds). */
  receivedAt: number;
}

/** Stores the changes (in order) and resolves only once they are stored; rejects to have them re-delivered. */
export type WatchSink = (changes: WatchChange[], signal: AbortSignal) => Promise<void>;

export interface ResumableWatchOptions {
  kubeConfig: KubeConfig;
  spec: WatchSpec;
  state: WatchState;
  sink: WatchSink;
  logger: Logger;
  /** Lists and discovery wait on it; the long-running watch requests count once each. */
  limiter?: RequestLimiter;
  /** Objects per list page. @defaultValue 500 */
  pageSize?: number;
  /** The most changes per sink call. @defaultValue 500 */
  batchSize?: number;
  /** The server-side timeout of one watch request. @defaultValue 300-600 s at random, as client-go */
  watchTimeoutSeconds?: () => number;
  /** @defaultValue { initialMs: 500, maxMs: 30000 } */
  backoff?: { initialMs: number; maxMs: number };
  /** Start only once this settled (the same watch, stopping, must have written its last progress). */
  startAfter?: Promise<unknown>;
}

export interface ResumableWatch {
  readonly key: string;
  /** Aborts the stream and whatever waits; resolves once nothing of this watch runs or writes any more. */
  stop(): Promise<void>;
}

/** Full lists tried with continue tokens before one list without a limit: the server then answers in one go. */
const MAX_EXPIRED_CONTINUES = 3;
/** A stream that ends sooner than this without delivering anything counts as failed (backs off). */
const MIN_HEALTHY_STREAM_MS = 1000;

type EndOfStream = { kind: 'ended'; healthy: boolean } | { kind: 'gone' } | { kind: 'stopped' } | { kind: 'failed'; err: unknown };

interface RawEvent {
  type: string;
  object: unknown;
  at: number;
}

/** Epoch milliseconds with microsecond precision. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function groupVersionOf(spec: Pick<WatchSpec, 'group' | 'version'>): string {
  return spec.group ? `${spec.group}/${spec.version}` : spec.version;
}

/** The collection URL of a watch: `/api/v1/namespaces/x/configmaps`, `/apis/apps/v1/deployments`. */
export function collectionPath(spec: Pick<WatchSpec, 'group' | 'version' | 'resource' | 'namespaced' | 'namespace'>): string {
  const base = spec.group ? `/apis/${encodeURIComponent(spec.group)}/${encodeURIComponent(spec.version)}` : `/api/${encodeURIComponent(spec.version)}`;
  const scope = spec.namespaced && spec.namespace ? `/namespaces/${encodeURIComponent(spec.namespace)}` : '';
  return `${base}${scope}/${encodeURIComponent(spec.resource)}`;
}

/** `namespace/name` ('/name' when cluster-scoped): how the known objects are keyed. */
function nameKeyOf(object: Record<string, unknown>): string | undefined {
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const name = stringOrEmpty(metadata.name);
  return name ? `${stringOrEmpty(metadata.namespace)}/${name}` : undefined;
}

function knownOf(object: Record<string, unknown>): KnownObject {
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  return { resourceVersion: stringOrEmpty(metadata.resourceVersion), uid: stringOrEmpty(metadata.uid) };
}


function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function startResumableWatch(opts: ResumableWatchOptions): ResumableWatch {
  const { spec, state } = opts;
  const log = opts.logger.child({ watch: spec.key });
  const path = collectionPath(spec);
  const apiVersion = groupVersionOf(spec);
  const pageSize = opts.pageSize ?? 500;
  const batchSize = opts.batchSize ?? 500;
  const backoff = opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
  const timeoutSeconds = opts.watchTimeoutSeconds ?? (() => Math.round(300 + Math.random() * 300));
  const stopper = new AbortController();
  const signal = stopper.signal;

  /** The resourceVersion everything up to which is stored; undefined: unknown, list first. */
  let position: string | undefined;
  /** Grows with each failure in a row; any progress resets it. */
  let backoffMs = 0;

  async function store(changes: WatchChange[]): Promise<void> {
    for (const batch of chunks(changes, batchSize)) {
      if (signal.aborted) throw new Error('stopped');
      await opts.sink(batch, signal);
    }
  }

  /** One list, compared with the known objects. Returns the list's resourceVersion. */
  async function listAndCompare(limit: number | undefined): Promise<string> {
    const known = await state.known();
    const seen = new Set<string>();
    let listRv: string | undefined;
    let cont: string | undefined;
    do {
      if (signal.aborted) throw new Error('stopped');
      const query = new URLSearchParams();
      if (limit) query.set('limit', String(limit));
      if (cont) query.set('continue', cont);
      const q = query.toString();
      const body = await kubeGetJson(opts.kubeConfig, q ? `${path}?${q}` : path, { limiter: opts.limiter });
      if (!isRecord(body) || !Array.isArray(body.items) || !isRecord(body.metadata)) throw new Error(`GET ${path}: the answer is not a list`);
      // Every page of one list is served from the first page's snapshot and repeats its resourceVersion.
      listRv ??= stringOrEmpty(body.metadata.resourceVersion) || undefined;
      cont = stringOrEmpty(body.metadata.continue) || undefined;
      const changes: WatchChange[] = [];
      const recorded: [string, KnownObject][] = [];
      const at = nowMs();
      for (const item of body.items as unknown[]) {
        if (!isRecord(item)) continue;
        // Items of a list come without apiVersion and kind (the list carries them); Git needs them.
        const object: Record<string, unknown> = { apiVersion, kind: spec.kind, ...item };
        const name = nameKeyOf(object);
        if (!name) continue;
        seen.add(name);
        const now = knownOf(object);
        const before = known.get(name);
        if (before && before.resourceVersion === now.resourceVersion) continue;
        changes.push({ type: before ? 'MODIFIED' : 'ADDED', object, origin: 'relist', receivedAt: at });
        recorded.push([name, now]);
      }
      await store(changes);
      if (recorded.length > 0) {
        // Known objects only, not the checkpoint: it moves when the whole list is through.
        await state.commit({ known: recorded });
        for (const [name, k] of recorded) known.set(name, k);
      }
    } while (cont);
    if (!listRv) throw new Error(`GET ${path}: the list carries no resourceVersion`);

    const gone = [...known].filter(([name]) => !seen.has(name));
    const at = nowMs();
    const deletions: WatchChange[] = gone.map(([name, k]) => {
      const slash = name.indexOf('/');
      const namespace = name.slice(0, slash);
      // All that is left of an object deleted while nobody watched: who it was, and when we learned it.
      const metadata: Record<string, unknown> = { name: name.slice(slash + 1), uid: k.uid, resourceVersion: listRv };
      if (namespace) metadata.namespace = namespace;
      return { type: 'DELETED', object: { apiVersion, kind: spec.kind, metadata }, origin: 'relist', receivedAt: at };
    });
    await store(deletions);
    await state.commit({ checkpoint: listRv, forgotten: gone.map(([name]) => name) });
    return listRv;
  }

  async function relist(): Promise<void> {
    for (let expired = 0; ; expired++) {
      try {
        position = await listAndCompare(expired < MAX_EXPIRED_CONTINUES ? pageSize : undefined);
        log.debug({ resourceVersion: position }, 'listed');
        return;
      } catch (err) {
        // The snapshot behind a continue token was compacted: start the list again.
        if (err instanceof KubeApiError && err.code === 410 && !signal.aborted) {
          log.info({ attempt: expired + 1 }, 'list continue token expired; listing again');
          continue;
        }
        throw err;
      }
    }
  }

  /** Hands one run of stream events to the sink, then moves the checkpoint past them. */
  async function deliver(batch: RawEvent[]): Promise<void> {
    const changes: WatchChange[] = [];
    const net = new Map<string, KnownObject | null>();
    let last: string | undefined;
    for (const ev of batch) {
      if (!isRecord(ev.object)) continue;
      const rv = stringOrEmpty(isRecord(ev.object.metadata) ? ev.object.metadata.resourceVersion : undefined);
      if (ev.type === 'BOOKMARK') {
        if (rv) last = rv;
        continue;
      }
      if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED' && ev.type !== 'DELETED') {
        log.warn({ type: ev.type }, 'unknown watch event type; ignored');
        continue;
      }
      const name = nameKeyOf(ev.object);
      if (!name) continue;
      changes.push({ type: ev.type, object: ev.object, origin: 'watch', receivedAt: ev.at });
      net.set(name, ev.type === 'DELETED' ? null : knownOf(ev.object));
      if (rv) last = rv;
    }
    if (changes.length > 0) await opts.sink(changes, signal);
    const known: [string, KnownObject][] = [];
    const forgotten: string[] = [];
    for (const [name, k] of net) {
      if (k) known.push([name, k]);
      else forgotten.push(name);
    }
    await state.commit({ checkpoint: last, known, forgotten });
    if (last) position = last;
    backoffMs = 0;
  }

  async function watchFrom(from: string): Promise<EndOfStream> {
    const buffer: RawEvent[] = [];
    let streamEnd: { err: unknown } | undefined;
    let notify: (() => void) | undefined;
    const poke = (): void => {
      const n = notify;
      notify = undefined;
      n?.();
    };
    let finished = false;
    let controller: AbortController | undefined;
    signal.addEventListener('abort', poke);
    const started = Date.now();
    let delivered = false;

    await opts.limiter?.take();
    new Watch(opts.kubeConfig)
      .watch(
        path,
        { resourceVersion: from, allowWatchBookmarks: true, timeoutSeconds: timeoutSeconds() },
        (type: string, object: unknown) => {
          if (finished) return;
          buffer.push({ type, object, at: nowMs() });
          poke();
        },
        (err: unknown) => {
          streamEnd ??= { err };
          poke();
        },
      )
      .then(
        (c) => {
          controller = c;
          if (finished) c.abort();
        },
        (err: unknown) => {
          streamEnd ??= { err };
          poke();
        },
      );

    try {
      for (;;) {
        if (signal.aborted) return { kind: 'stopped' };
        const head = buffer[0];
        if (!head) {
          // Events that arrived before the stream ended are delivered first.
          if (streamEnd) break;
          await new Promise<void>((resolve) => (notify = resolve));
          continue;
        }
        if (head.type === 'ERROR') {
          const status = isRecord(head.object) ? head.object : {};
          if (Number(status.code) === 410) return { kind: 'gone' };
          return { kind: 'failed', err: new Error(`watch ${path}: ERROR ${String(status.code)} ${stringOrEmpty(status.reason)}: ${stringOrEmpty(status.message)}`) };
        }
        const end = buffer.findIndex((ev) => ev.type === 'ERROR');
        const batch = buffer.splice(0, Math.min(end < 0 ? buffer.length : end, batchSize));
        await deliver(batch);
        delivered = true;
      }
    } finally {
      finished = true;
      controller?.abort();
      signal.removeEventListener('abort', poke);
    }
    const err = streamEnd.err;
    if (err === null || err === undefined) return { kind: 'ended', healthy: delivered || Date.now() - started >= MIN_HEALTHY_STREAM_MS };
    // The watch request itself answered 410 (client-node reports the HTTP status as statusCode).
    if (isRecord(err) && err.statusCode === 410) return { kind: 'gone' };
    return { kind: 'failed', err };
  }

  async function run(): Promise<void> {
    await opts.startAfter?.catch(() => undefined);
    let loaded = false;
    const fail = async (err: unknown): Promise<void> => {
      backoffMs = Math.min(backoff.maxMs, Math.max(backoff.initialMs, backoffMs * 2));
      log.warn({ err, retryInMs: backoffMs }, 'watch failed; retrying');
      await sleepUnlessAborted(backoffMs, signal);
    };
    while (!signal.aborted) {
      try {
        if (!loaded) {
          position = await state.checkpoint();
          loaded = true;
        }
        if (position === undefined) await relist();
        const from = position;
        if (signal.aborted || from === undefined) continue;
        const end = await watchFrom(from);
        if (end.kind === 'gone') {
          log.info({ resourceVersion: position }, 'resourceVersion too old (410 Gone); listing again');
          position = undefined;
        } else if (end.kind === 'failed') {
          await fail(end.err);
        } else if (end.kind === 'ended') {
          if (end.healthy) backoffMs = 0;
          else await fail(new Error('the watch stream ended at once'));
        }
      } catch (err) {
        if (signal.aborted) break;
        await fail(err);
      }
    }
  }

  const running = run().catch((err: unknown) => log.error({ err }, 'watch loop ended unexpectedly'));

  return {
    key: spec.key,
    async stop() {
      stopper.abort();
      await running;
    },
  };
}
