// The status reporter against the real API server (the run's control plane, with a counting proxy between
// the reporter and it; or a cluster of your own with KUBECONFIG) and a real Valkey: conditions from problems land in `/status` (and only there), identical rounds
// write nothing more, a target's progress and its partition's backlog show, a provider is probed.
import { Queue } from 'bullmq';
import type { Valkey } from 'iovalkey';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { emptyConfigObjects, resolveConfig } from '../../config/resolve-config.js';
import { SCHEMA_BY_KIND } from '../../config/resource-schemas.js';
import type { ConfigSnapshot, ObservedObject, StatusKind } from '../../config/sources/config-snapshot.js';
import { PENDING_MESSAGE } from '../../kube/status/conditions.js';
import type { ProbeResult } from '../../kube/status/provider-probe.js';
import type { StatusMetrics } from '../../observability/status-metrics.js';
import { startStatusReporter, type StatusReporter, type StatusReporterOptions } from '../../kube/status/status-reporter.js';
import { openConnection } from '../../queues/connection.js';
import type { WriteJob } from '../../core/contracts.js';
import { recordTargetProgress } from '../../queues/target-progress.js';
import { clusterProviderObject, gitProviderObject, gitTargetObject, watchRuleObject, type Obj } from '../support/config-objects.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeConfigVia, startCountingProxy, type CountingProxy } from '../support/counting-proxy.js';
import { createBareRemote, waitFor } from '../support/git-repos.js';
import { kubeSkipReason, startKubeTarget, type KubeTarget } from '../support/kube-target.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
}
type Live = Obj & { metadata: { generation?: number; name: string; namespace?: string }; spec?: unknown; status?: Record<string, unknown> & { conditions?: Condition[] } };

/** A probe that answers only when the reporter stops: Reachable stays Unknown, and writes stay countable. */
const neverProbe = (_url: string, _c: unknown, o: { signal?: AbortSignal } = {}): Promise<ProbeResult> =>
  new Promise((resolve) => o.signal?.addEventListener('abort', () => resolve({ reachable: false, reason: 'ProbeFailed', message: 'stopped' })));

describe.skipIf(skip !== undefined)('status reporter', () => {
  let kube: KubeTarget;
  let valkey: TestValkey;
  let connection: Valkey;
  /** On the control plane, a proxy that sees the reporter's requests only (not the test's own): they are counted. */
  let proxy: CountingProxy | undefined;
  /** The configuration cluster as the reporter sees it: through that proxy. */
  let reporterKc: KubeConfig;
  let registry: Registry;
  let metrics: StatusMetrics;
  let dir: string | undefined;
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    [kube, valkey] = await Promise.all([startKubeTarget(), startTestValkey()]);
    connection = openConnection(valkey.url);
    const own = kube.kubeConfig();
    if (kube.proxy) {
      proxy = await startCountingProxy(own.getCurrentCluster()!.server);
      reporterKc = kubeConfigVia(own.constructor as new () => KubeConfig, proxy.url, own.getCurrentUser()!.token!);
    } else {
      reporterKc = own;
      // Said once, not passed silently: the counts of status patches need the run's proxy.
      console.info(`skipped in part: the counts of status patches (KUBECONFIG's cluster has no counting proxy: ${kube.kind})`);
    }
  });
  afterAll(async () => {
    await connection?.quit();
    await proxy?.stop();
    await kube?.stop();
    await valkey?.stop();
  });
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const create = async (obj: Obj): Promise<Live> => {
    const created = (await kube.create(obj)) as Live;
    cleanup.push(() => kube.remove(obj));
    return created;
  };
  const read = async (obj: Obj): Promise<Live> => {
    const live = (await kube.read(obj)) as Live | undefined;
    if (!live) throw new Error(`${obj.kind} ${obj.metadata?.name} not found`);
    return live;
  };
  const condition = (live: Live, type: string): Condition | undefined => live.status?.conditions?.find((c) => c.type === type);

  /** What the live configuration source makes of these objects: resolved config, problems, observed statuses. */
  async function snapshotOf(objs: Obj[]): Promise<ConfigSnapshot> {
    const objects = emptyConfigObjects();
    const observed: ObservedObject[] = [];
    for (const obj of objs) {
      const live = await read(obj);
      const kind = live.kind as StatusKind;
      const { name, namespace, generation } = live.metadata;
      observed.push({ kind, key: namespace ? `${namespace}/${name}` : name, name, namespace, generation: generation ?? 0, status: live.status });
      (objects[kind] as unknown[]).push(SCHEMA_BY_KIND[kind].parse(live));
    }
    const { config, problems } = resolveConfig(objects);
    return { config, problems, observed };
  }

  const reporter = (extra: Partial<StatusReporterOptions> = {}): StatusReporter => {
    registry = new Registry();
    metrics = { statusWrites: new Counter({ name: 'status_writes_total', help: 'test', labelNames: ['kind', 'outcome'], registers: [registry] }) };
    const r = startStatusReporter({
      kubeConfig: reporterKc,
      connection,
      prefix: uniquePrefix('status'),
      logger,
      queues: () => undefined,
      intervalMs: 60_000, // rounds only on update(), so each test decides when they run
      writer: { minIntervalMs: 100 },
      probes: { probe: neverProbe },
      metrics,
      ...extra,
    });
    cleanup.push(() => r.stop());
    return r;
  };
  const writes = async (): Promise<number> => (await metrics.statusWrites.get()).values.filter((v) => v.labels.outcome === 'written').reduce((n, v) => n + v.value, 0);
  const patches = () => proxy?.requests.filter((r) => r.method === 'PATCH') ?? [];

  async function baseObjects(extra: { branch?: string } = {}) {
    const ns = await kube.namespace();
    dir = dirname(await createBareRemote());
    const remote = `${dir}/remote.git`;
    const cluster = `c-${randomBytes(3).toString('hex')}`;
    const cp = clusterProviderObject(cluster, { watch: { enabled: true } });
    const provider = gitProviderObject(ns, 'repo', remote, ['main']);
    const good = gitTargetObject(ns, 'good', { provider: 'repo', path: 'a', cluster });
    const bad = gitTargetObject(ns, 'bad', { provider: 'repo', path: 'b', cluster, branch: extra.branch ?? 'feature..x' });
    const rule = watchRuleObject(ns, 'orphan', 'missing', ['configmaps']);
    for (const o of [cp, provider, good, bad, rule]) await create(o);
    return { ns, remote, cluster, cp, provider, good, bad, rule, all: [cp, provider, good, bad, rule] };
  }

  it('writes Ready=False with the problems, at the observed generation, through /status only', async () => {
    const { provider, good, bad, rule, all } = await baseObjects();
    const before = await read(bad);
    const sent = patches().length;
    const r = reporter({ probes: { intervalMs: 60_000 } }); // the real probe, against the local bare repository
    r.update(await snapshotOf(all));
    await r.settled();

    const after = await read(bad);
    expect(condition(after, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidBranch',
      message: 'spec.branch: "feature..x" is not a valid Git branch name',
      observedGeneration: before.metadata.generation,
    });
    expect(after.status?.observedGeneration).toBe(before.metadata.generation);
    expect(condition(after, 'Synced')).toMatchObject({ status: 'Unknown', reason: 'NotReady' });
    // Only the status moved: same spec, same generation.
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.generation).toBe(before.metadata.generation);

    expect(condition(await read(good), 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(condition(await read(rule), 'Ready')).toMatchObject({ status: 'False', reason: 'GitTargetNotFound', message: expect.stringContaining('spec.targetRef.name: GitTarget') });
    if (proxy) {
      const mine = patches().slice(sent);
      // One per object, and the provider's again if the (fast, local) probe answered in the meantime.
      expect(mine.length).toBeGreaterThanOrEqual(all.length);
      expect(mine.length).toBeLessThanOrEqual(all.length + 1);
      expect(mine.every((p) => p.path.endsWith('/status'))).toBe(true);
    }

    // The probe runs in the background; its result is written by the round it triggers.
    await waitFor(async () => condition(await read(provider), 'Reachable')?.status === 'True', 'the provider becomes Reachable', 10_000);
    expect(condition(await read(provider), 'Reachable')).toMatchObject({ reason: 'Reachable', message: expect.stringContaining('git ls-remote') });
  });

  it('writes a status once however many identical updates come, and again only when something changes', async () => {
    const { provider, all } = await baseObjects();
    const r = reporter();
    const sent = patches().length;
    const snapshot = await snapshotOf(all);
    for (let i = 0; i < 100; i++) r.update(snapshot);
    await r.settled();
    expect(await writes()).toBe(all.length);
    // The informers have not shown our writes yet: the same stale snapshot again writes nothing.
    for (let i = 0; i < 100; i++) r.update(snapshot);
    await r.settled();
    // Now they have.
    const caughtUp = await snapshotOf(all);
    for (let i = 0; i < 100; i++) r.update(caughtUp);
    await r.settled();
    expect(await writes()).toBe(all.length);
    if (proxy) expect(patches().length - sent).toBe(all.length);

    // A spec change (generation 2) is a change of status: observedGeneration follows.
    await kube.patch({ ...provider, spec: { allowedBranches: ['main', 'release/*'] } });
    const changed = await snapshotOf(all);
    for (let i = 0; i < 100; i++) r.update(changed);
    await r.settled();
    const live = await read(provider);
    expect(live.metadata.generation).toBe(2);
    expect(live.status?.observedGeneration).toBe(2);
    expect(condition(live, 'Ready')?.observedGeneration).toBe(2);
    expect(await writes()).toBe(all.length + 1);
    if (proxy) expect(patches().length - sent).toBe(all.length + 1);
  });

  it('shows a target\'s last commit, its partition\'s backlog and its last write error', async () => {
    const { good, all } = await baseObjects({ branch: 'main' });
    const prefix = uniquePrefix('status');
    let snapshot = await snapshotOf(all);
    const target = snapshot.config.targets.get(`${good.metadata!.namespace}/good`)!;
    const queue = new Queue(target.partition.queueName, { connection, prefix });
    cleanup.push(() => queue.close());
    await queue.addBulk([{ name: 'w', data: { n: 1 } }, { name: 'w', data: { n: 2 } }]);
    const r = reporter({ prefix, queues: (name) => (name === target.partition.queueName ? queue : undefined) });

    r.update(snapshot);
    await r.settled();
    let live = await read(good);
    expect(live.status?.backlog).toBe(2);
    expect(condition(live, 'Synced')).toMatchObject({ status: 'False', reason: 'Pending', message: PENDING_MESSAGE });

    // More changes wait: the count moves, the condition does not (one field patched, not the condition too).
    const pending = condition(live, 'Synced');
    await queue.add('w', { n: 3 });
    r.update(await snapshotOf(all));
    await r.settled();
    live = await read(good);
    expect(live.status?.backlog).toBe(3);
    expect(condition(live, 'Synced')).toEqual(pending);

    const sha = 'c0ffee'.padEnd(40, '0');
    const job = { target: target.key, clusterId: 'c1', stageTimestamp: new Date().toISOString(), resourceVersion: '1' } as WriteJob;
    await recordTargetProgress(connection, prefix, { jobs: [job], results: [{ outcome: 'committed', commit: sha, pushedAs: sha }] });
    await queue.drain();
    snapshot = await snapshotOf(all);
    r.update(snapshot);
    await r.settled();
    live = await read(good);
    expect(live.status).toMatchObject({ backlog: 0, lastCommit: { sha } });
    expect(live.status?.lastError).toBeUndefined();
    expect(condition(live, 'Synced')).toMatchObject({ status: 'True', reason: 'UpToDate' });

    await recordTargetProgress(connection, prefix, { jobs: [job], error: new Error('git push /srv/repo.git failed (exit 128): Connection refused') });
    r.update(await snapshotOf(all));
    await r.settled();
    live = await read(good);
    expect(live.status?.lastError).toMatchObject({ message: 'git push /srv/repo.git failed (exit 128): Connection refused' });
    expect(live.status?.lastCommit).toMatchObject({ sha });
    expect(condition(live, 'Synced')).toMatchObject({ status: 'False', reason: 'WriteFailed' });
  });

  /** The Valkey connection, counting every command the reporter sends through it. */
  const countingConnection = () => {
    let calls = 0;
    const counted = new Proxy(connection, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    return { counted, calls: () => calls };
  };

  it('reads, probes and writes nothing while another replica leads; becoming the leader runs a round at once', async () => {
    const { provider, good, all } = await baseObjects({ branch: 'main' });
    const prefix = uniquePrefix('status');
    let snapshot = await snapshotOf(all);
    const target = snapshot.config.targets.get(`${good.metadata!.namespace}/good`)!;
    const queue = new Queue(target.partition.queueName, { connection, prefix });
    cleanup.push(() => queue.close());
    await queue.add('w', { n: 1 });
    let leading = false;
    let queueReads = 0;
    const probed: string[] = [];
    const valkeyCalls = countingConnection();
    const r = reporter({
      prefix,
      connection: valkeyCalls.counted,
      leader: () => leading,
      queues: (name) => {
        queueReads++;
        return name === target.partition.queueName ? queue : undefined;
      },
      probes: {
        probe: (url, c, o) => {
          probed.push(url);
          return neverProbe(url, c, o);
        },
      },
    });
    const sent = patches().length;

    for (let i = 0; i < 10; i++) r.update(snapshot);
    r.leadershipChanged(false);
    // Rounds start only from update() and leadershipChanged() here (intervalMs: 60 s), there and then or
    // not at all; settled() waits for a round that started and for its writes.
    await r.settled();
    expect({ writes: await writes(), valkey: valkeyCalls.calls(), queues: queueReads, probes: probed.length }).toEqual({ writes: 0, valkey: 0, queues: 0, probes: 0 });
    if (proxy) expect(patches().length).toBe(sent);
    expect((await read(good)).status).toBeUndefined();

    // This replica takes over: a round at once, with the latest snapshot.
    leading = true;
    r.leadershipChanged(true);
    await r.settled();
    expect(await writes()).toBe(all.length);
    expect(valkeyCalls.calls()).toBeGreaterThan(0);
    expect(queueReads).toBeGreaterThan(0);
    expect(probed).toHaveLength(1);
    expect((await read(good)).status?.backlog).toBe(1);
    expect(condition(await read(provider), 'Reachable')).toMatchObject({ status: 'Unknown', reason: 'NotProbed' });

    // It steps down: the next changes are the new leader's to write, and nothing is read for them here.
    leading = false;
    r.leadershipChanged(false);
    const [calls, reads] = [valkeyCalls.calls(), queueReads];
    await kube.patch({ ...provider, spec: { allowedBranches: ['main', 'release/*'] } });
    await queue.add('w', { n: 2 });
    snapshot = await snapshotOf(all);
    for (let i = 0; i < 10; i++) r.update(snapshot);
    await r.settled();
    expect({ writes: await writes(), valkey: valkeyCalls.calls(), queues: queueReads }).toEqual({ writes: all.length, valkey: calls, queues: reads });
    expect((await read(provider)).status?.observedGeneration).toBe(1);
    expect(probed).toHaveLength(1);
  });

  it('observe() takes the latest snapshot without a round; the next round compares with it', async () => {
    const { provider, all } = await baseObjects();
    const valkeyCalls = countingConnection();
    const r = reporter({ connection: valkeyCalls.counted });
    r.update(await snapshotOf(all));
    await r.settled();
    expect(await writes()).toBe(all.length);

    // The informers show our writes (a status-only change of each object): no round for that.
    const calls = valkeyCalls.calls();
    const sent = patches().length;
    r.observe(await snapshotOf(all));
    await r.settled();
    expect(valkeyCalls.calls()).toBe(calls);
    if (proxy) expect(patches().length).toBe(sent);

    // A snapshot taken by observe() is what the next round works with, whoever asks for the round.
    await kube.patch({ ...provider, spec: { allowedBranches: ['main', 'release/*'] } });
    r.observe(await snapshotOf(all));
    await r.settled();
    expect((await read(provider)).status?.observedGeneration).toBe(1);
    r.leadershipChanged(true);
    await r.settled();
    expect(valkeyCalls.calls()).toBeGreaterThan(calls);
    expect((await read(provider)).status?.observedGeneration).toBe(2);
    expect(await writes()).toBe(all.length + 1);
  });
});
