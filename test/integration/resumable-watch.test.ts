// One resumable watch against the real API server (the run's control plane, or a cluster of your own with
// KUBECONFIG) and a real Valkey: list then watch, resume from the stored resourceVersion without repeats,
// re-list after a real 410 Gone (etcd compacted; on PodTemplates, which the control plane serves without a
// watch cache) with DELETED for what vanished meanwhile, restart a list whose continue token expired, and
// re-delivery when the sink fails (the checkpoint moves only after it stored the changes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Valkey } from 'iovalkey';
import { pino } from 'pino';
import type { KubernetesObject } from '@kubernetes/client-node';
import { openConnection } from '../../queues/connection.js';
import { watchKeys } from '../../queues/names.js';
import type { WatchChange } from '../../kube/watch/resumable-watch.js';
import type { WatchSpec } from '../../kube/watch/watch-plan.js';
import { waitFor } from '../support/git-repos.js';
import { kubeSkipReason, needs, startKubeTarget, UNCACHED_RESOURCE, type KubeTarget } from '../support/kube-target.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const skipReason = await kubeSkipReason();
if (skipReason) console.warn(`skipping resumable-watch.test.ts: ${skipReason}`);
// Loaded only when client-node can load: the watch imports it.
const { startResumableWatch } = skipReason ? ({} as typeof import('../../kube/watch/resumable-watch.js')) : await import('../../kube/watch/resumable-watch.js');
const { openWatchState } = await import('../../kube/watch/watch-state.js');

const logLines: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });

const configMap = (namespace: string, name: string, data: Record<string, string> = { k: name }): KubernetesObject & { data: Record<string, string> } => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace },
  data,
});

/**
 * A PodTemplate, the type the control plane serves without a watch cache: a watch from a resourceVersion
 * that etcd compacted away is answered 410 Gone (from the cache, it would be served from the cache's window).
 */
const podTemplate = (namespace: string, name: string, k = name): KubernetesObject & { template: Record<string, unknown> } => ({
  apiVersion: 'v1',
  kind: 'PodTemplate',
  metadata: { name, namespace },
  template: { metadata: { labels: { k } }, spec: { containers: [{ name: 'c', image: `example.test/${k}:1` }] } },
});

/** A real cluster puts this ConfigMap into every namespace; it is not one of the test's. */
const ROOT_CA = 'kube-root-ca.crt';
const nameOf = (c: WatchChange): string => String((c.object.metadata as { name: string }).name);

/** `TYPE name` of each change, in order. */
const seen = (changes: WatchChange[]): string[] => changes.map((c) => `${c.type} ${nameOf(c)}`);

describe.skipIf(skipReason)('resumable watch', () => {
  let valkey: TestValkey;
  let connection: Valkey;
  let target: KubeTarget;

  beforeAll(async () => {
    valkey = await startTestValkey();
    connection = openConnection(valkey.url);
    target = await startKubeTarget();
  });
  afterAll(async () => {
    await target?.stop();
    await connection?.quit();
    await valkey?.stop();
  });

  async function setup(type: { resource: 'configmaps'; kind: 'ConfigMap' } | { resource: typeof UNCACHED_RESOURCE; kind: 'PodTemplate' } = { resource: 'configmaps', kind: 'ConfigMap' }) {
    const namespace = await target.namespace();
    const prefix = uniquePrefix('rw');
    const spec: WatchSpec = { key: `/v1/${type.resource}@${namespace}`, group: '', version: 'v1', ...type, namespaced: true, namespace };
    const keys = watchKeys(prefix, 'c1').state(spec.key);
    const state = openWatchState({ connection, keys });
    const received: WatchChange[] = [];
    let hook: ((changes: WatchChange[]) => Promise<void> | void) | undefined;
    const start = (pageSize?: number) =>
      startResumableWatch({
        kubeConfig: target.kubeConfig(),
        spec,
        state,
        logger,
        pageSize,
        backoff: { initialMs: 50, maxMs: 200 },
        sink: async (changes) => {
          await hook?.(changes);
          received.push(...changes.filter((c) => nameOf(c) !== ROOT_CA));
        },
      });
    return { namespace, keys, state, received, start, setHook: (h: typeof hook) => (hook = h) };
  }

  it('lists, then watches: creates, updates and deletes in order; the checkpoint and known objects follow', async () => {
    const t = await setup();
    await target.create(configMap(t.namespace, 'a'));
    await target.create(configMap(t.namespace, 'b'));
    const w = t.start();
    await waitFor(() => t.received.length >= 2, 'the list', 5000, 25);
    expect(seen(t.received)).toEqual(['ADDED a', 'ADDED b']);
    expect(t.received.every((c) => c.origin === 'relist' && c.object.apiVersion === 'v1' && c.object.kind === 'ConfigMap')).toBe(true);
    await target.patch(configMap(t.namespace, 'a', { k: 'a2' }));
    await target.remove(configMap(t.namespace, 'b'));
    const c = await target.create(configMap(t.namespace, 'c'));
    await waitFor(() => t.received.length >= 5, 'the watch events', 5000, 25);
    expect(seen(t.received)).toEqual(['ADDED a', 'ADDED b', 'MODIFIED a', 'DELETED b', 'ADDED c']);
    expect(t.received.slice(2).every((ch) => ch.origin === 'watch')).toBe(true);
    // The checkpoint is at least c's change once it was handed over (a bookmark may carry it further).
    await waitFor(async () => BigInt((await t.state.checkpoint()) ?? '0') >= BigInt(c.metadata!.resourceVersion!), 'the checkpoint', 5000, 25);
    const known = await t.state.known();
    known.delete(`${t.namespace}/${ROOT_CA}`);
    expect([...known.keys()].sort()).toEqual([`${t.namespace}/a`, `${t.namespace}/c`]);
    expect(known.get(`${t.namespace}/c`)).toEqual({ resourceVersion: c.metadata!.resourceVersion, uid: c.metadata!.uid });
    await w.stop();
  });

  it('resumes after stop/start from the stored resourceVersion: only what changed meanwhile, nothing twice', async () => {
    const t = await setup();
    await target.create(configMap(t.namespace, 'x'));
    let w = t.start();
    await waitFor(() => t.received.length >= 1, 'x', 5000, 25);
    await w.stop();
    t.received.length = 0;
    await target.create(configMap(t.namespace, 'y'));
    await target.patch(configMap(t.namespace, 'x', { k: 'x2' }));
    w = t.start();
    await waitFor(() => t.received.length >= 2, 'the changes made while stopped', 5000, 25);
    // A marker made now comes after anything the watch could still repeat.
    await target.create(configMap(t.namespace, 'z'));
    await waitFor(() => seen(t.received).includes('ADDED z'), 'the marker', 5000, 25);
    expect(seen(t.received)).toEqual(['ADDED y', 'MODIFIED x', 'ADDED z']);
    expect(t.received.every((c) => c.origin === 'watch')).toBe(true);
    await w.stop();
  });

  it('after compaction (410 Gone) re-lists: DELETED for what vanished meanwhile, nothing for unchanged objects', async (ctx) => {
    needs(ctx, 'compaction', target);
    const t = await setup({ resource: UNCACHED_RESOURCE, kind: 'PodTemplate' });
    await target.create(podTemplate(t.namespace, 'a'));
    const b = await target.create(podTemplate(t.namespace, 'b'));
    await target.create(podTemplate(t.namespace, 'c'));
    let w = t.start();
    await waitFor(() => t.received.length >= 3, 'the list', 5000, 25);
    await w.stop();
    t.received.length = 0;
    await target.remove(podTemplate(t.namespace, 'b'));
    await target.patch(podTemplate(t.namespace, 'c', 'c2'));
    await target.create(podTemplate(t.namespace, 'd'));
    // etcd forgets the history since the checkpoint: the watch from it is answered 410 Gone.
    await target.compact();
    w = t.start();
    await waitFor(() => t.received.length >= 3, 'the re-list', 5000, 25);
    // And it watches on from the list: e, made now, comes after anything the re-list could still hand over.
    await target.create(podTemplate(t.namespace, 'e'));
    await waitFor(() => seen(t.received).includes('ADDED e'), 'e', 5000, 25);
    expect(seen(t.received).slice(0, -1).sort()).toEqual(['ADDED d', 'DELETED b', 'MODIFIED c']);
    expect(seen(t.received).at(-1)).toBe('ADDED e');
    expect(logLines.some((l) => l.includes('410 Gone') && l.includes(t.namespace))).toBe(true);
    expect(t.received.slice(0, -1).every((c) => c.origin === 'relist')).toBe(true);
    const deleted = t.received.find((c) => c.type === 'DELETED')!;
    expect(deleted.object).toMatchObject({ apiVersion: 'v1', kind: 'PodTemplate', metadata: { name: 'b', namespace: t.namespace, uid: b.metadata!.uid } });
    expect(Number((deleted.object.metadata as { resourceVersion: string }).resourceVersion)).toBeGreaterThan(Number(b.metadata!.resourceVersion));
    // The known objects are stored once the sink took the changes: wait for e's.
    const known = await waitFor(async () => {
      const keys = [...(await t.state.known()).keys()].sort();
      return keys.includes(`${t.namespace}/e`) && keys;
    }, 'e known', 5000, 25);
    expect(known).toEqual([`${t.namespace}/a`, `${t.namespace}/c`, `${t.namespace}/d`, `${t.namespace}/e`]);
    await w.stop();
  });

  it('reconnects from the checkpoint when the server ends the stream, without repeats', async (ctx) => {
    needs(ctx, 'proxy', target);
    const t = await setup();
    await target.create(configMap(t.namespace, 'a'));
    const w = t.start();
    await waitFor(() => t.received.length >= 1, 'a', 5000, 25);
    await waitFor(() => target.openWatches() > 0, 'the watch', 5000, 25);
    await target.dropWatches();
    await target.create(configMap(t.namespace, 'b'));
    await waitFor(() => t.received.length >= 2, 'b', 5000, 25);
    await waitFor(() => target.openWatches() > 0, 'the watch again', 5000, 25);
    await target.dropWatches();
    await target.patch(configMap(t.namespace, 'a', { k: 'a2' }));
    await waitFor(() => t.received.length >= 3, 'a changed', 5000, 25);
    // A marker made now comes after anything the reconnected watch could still repeat.
    await target.create(configMap(t.namespace, 'z'));
    await waitFor(() => seen(t.received).includes('ADDED z'), 'the marker', 5000, 25);
    expect(seen(t.received)).toEqual(['ADDED a', 'ADDED b', 'MODIFIED a', 'ADDED z']);
    await w.stop();
  });

  it('restarts a list whose continue token expired, and hands each object over once', async (ctx) => {
    needs(ctx, 'compaction', target);
    const t = await setup();
    const elsewhere = await target.namespace();
    for (const n of ['a', 'b', 'c', 'd', 'e']) await target.create(configMap(t.namespace, n));
    let compacted = false;
    t.setHook(async () => {
      // After the first page was handed over, the snapshot behind the continue token goes away: one more
      // write moves etcd past it, and the history up to that write is compacted.
      if (compacted) return;
      compacted = true;
      await target.create(configMap(elsewhere, 'later'));
      await target.compact();
    });
    const w = t.start(2);
    await waitFor(() => t.received.length >= 5, 'the list', 5000, 25);
    // A marker made now comes after anything the restarted list could still hand over twice.
    await target.create(configMap(t.namespace, 'z'));
    await waitFor(() => seen(t.received).includes('ADDED z'), 'the marker', 5000, 25);
    expect(seen(t.received)).toEqual(['ADDED a', 'ADDED b', 'ADDED c', 'ADDED d', 'ADDED e', 'ADDED z']);
    expect(logLines.some((l) => l.includes('list continue token expired') && l.includes(t.namespace))).toBe(true);
    await w.stop();
  });

  it('delivers again what the sink failed to store; the checkpoint waits for it', async () => {
    const t = await setup();
    const w = t.start();
    await waitFor(() => t.state.checkpoint(), 'the first checkpoint', 5000, 25);
    let failures = 0;
    t.setHook((changes) => {
      if (changes.some((c) => c.type === 'ADDED') && failures++ === 0) throw new Error('Valkey said no');
    });
    const before = await t.state.checkpoint();
    const a = await target.create(configMap(t.namespace, 'a'));
    await waitFor(() => t.received.length >= 1, 'a, after a retry', 5000, 25);
    expect(failures).toBe(2);
    expect(seen(t.received)).toEqual(['ADDED a']);
    expect(BigInt((await t.state.checkpoint())!)).toBeGreaterThanOrEqual(BigInt(a.metadata!.resourceVersion!));
    expect(BigInt(before!)).toBeLessThan(BigInt(a.metadata!.resourceVersion!));
    await w.stop();
  });
});
