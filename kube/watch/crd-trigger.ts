// Says when the set of resource types of a cluster may have changed: a CustomResourceDefinition was
// added, changed (it becomes Established, a version is served) or removed. Watch mode then discovers
// again at once instead of at its next periodic discovery, so a wildcard rule (or a rule naming a CRD
// installed later) starts watching the new type within a second. Nothing is stored: after a gap (410, an
// error) it simply says "changed" once more, since it may have missed something.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { kubeGetJson, KubeApiError, type RequestLimiter } from '../kube-get-json.js';
import { isRecord } from '../../core/json.js';
import { sleepUnlessAborted } from '../../queues/wakeable-pause.js';

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

export interface CrdTriggerOptions {
  kubeConfig: KubeConfig;
  limiter?: RequestLimiter;
  logger: Logger;
  onChange(): void;
  /** @defaultValue { initialMs: 1000, maxMs: 300000 } */
  backoff?: { initialMs: number; maxMs: number };
}

export interface CrdTrigger {
  stop(): Promise<void>;
}


function rvOf(object: unknown): string | undefined {
  const metadata = isRecord(object) && isRecord(object.metadata) ? object.metadata : undefined;
  return typeof metadata?.resourceVersion === 'string' && metadata.resourceVersion !== '' ? metadata.resourceVersion : undefined;
}

type StreamEnd = { kind: 'ended' } | { kind: 'gone' } | { kind: 'failed'; err: unknown };

export function startCrdTrigger(opts: CrdTriggerOptions): CrdTrigger {
  const stopper = new AbortController();
  const signal = stopper.signal;
  const backoff = opts.backoff ?? { initialMs: 1000, maxMs: 300_000 };
  const log = opts.logger.child({ watch: 'customresourcedefinitions' });

  /** One stream from `from`; `seen` is told each resourceVersion that passed. */
  const stream = (from: string, seen: (rv: string) => void): Promise<StreamEnd> =>
    new Promise((resolve) => {
      let controller: AbortController | undefined;
      let ended = false;
      const end = (result: StreamEnd): void => {
        if (ended) return;
        ended = true;
        signal.removeEventListener('abort', onAbort);
        controller?.abort();
        resolve(result);
      };
      const onAbort = (): void => end({ kind: 'ended' });
      signal.addEventListener('abort', onAbort);
      new Watch(opts.kubeConfig)
        .watch(
          CRDS,
          { resourceVersion: from, allowWatchBookmarks: true, timeoutSeconds: Math.round(300 + Math.random() * 300) },
          (type: string, object: unknown) => {
            if (ended) return;
            if (type === 'ERROR') {
              const code = isRecord(object) ? Number(object.code) : NaN;
              return end(code === 410 ? { kind: 'gone' } : { kind: 'failed', err: new Error(`watch ${CRDS}: ERROR ${code}`) });
            }
            const rv = rvOf(object);
            if (rv) seen(rv);
            if (type !== 'BOOKMARK') opts.onChange();
          },
          (err: unknown) => {
            if (err === null || err === undefined) end({ kind: 'ended' });
            else end(isRecord(err) && err.statusCode === 410 ? { kind: 'gone' } : { kind: 'failed', err });
          },
        )
        .then(
          (c) => {
            controller = c;
            if (ended) c.abort();
          },
          (err: unknown) => end({ kind: 'failed', err }),
        );
    });

  const sleep = (ms: number): Promise<void> => sleepUnlessAborted(ms, signal);

  async function run(): Promise<void> {
    let rv: string | undefined;
    let first = true;
    let backoffMs = 0;
    while (!signal.aborted) {
      try {
        if (rv === undefined) {
          await opts.limiter?.take();
          rv = rvOf(await kubeGetJson(opts.kubeConfig, `${CRDS}?limit=1`));
          if (!rv) throw new Error(`GET ${CRDS}: the list carries no resourceVersion`);
          // After a gap, changes may have been missed; the first list follows a discovery anyway.
          if (!first) opts.onChange();
          first = false;
        }
        await opts.limiter?.take();
        const started = Date.now();
        const end = await stream(rv, (seen) => (rv = seen));
        if (end.kind === 'gone') rv = undefined;
        else if (end.kind === 'failed') throw end.err;
        else if (Date.now() - started > 1000) backoffMs = 0;
        else throw new Error('the watch stream ended at once');
      } catch (err) {
        if (signal.aborted) break;
        backoffMs = Math.min(backoff.maxMs, Math.max(backoff.initialMs, backoffMs * 2));
        const forbidden = err instanceof KubeApiError && (err.code === 401 || err.code === 403);
        log.warn(
          { err, retryInMs: backoffMs },
          forbidden
            ? 'cannot list CustomResourceDefinitions: new resource types are found by the periodic discovery only (grant list/watch on customresourcedefinitions.apiextensions.k8s.io)'
            : 'CustomResourceDefinition watch failed; retrying',
        );
        await sleep(backoffMs);
      }
    }
  }

  const running = run().catch((err: unknown) => log.error({ err }, 'CustomResourceDefinition watch ended unexpectedly'));
  return {
    async stop() {
      stopper.abort();
      await running;
    },
  };
}
