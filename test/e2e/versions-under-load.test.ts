// Every version under load, through a real API server: several clients patch a few ConfigMaps thousands of
// times as fast as the API server takes it; its audit webhook (batch mode) sends the events in concurrent
// batches, and a relay holds every third batch 600 ms so that batches overtake each other for sure (as a
// busy network or a slow replica makes them do). With the default reorder window, Git holds one commit per
// version, in resourceVersion order per object, each by the user who made it. With the window at 0 the
// overtaken batches cost versions, and each missing one is counted as out of order (a dead letter), none
// skipped silently.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventJobId } from '../../queues/names.js';
import { DEFAULT_REORDER_WINDOW_MS } from '../../workers/route/reorder-window.js';
import { startAuditedCluster, type AuditedCluster } from '../support/audited-cluster.js';
import { git, waitFor } from '../support/git-repos.js';
import { createTestNamespaces } from '../support/kube-control-plane.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const CLIENTS = 6;
const OBJECTS = 3;
const PATCHES = 3000;

interface Version {
  object: string;
  rv: bigint;
  user: string;
}

/** Creates the ConfigMaps, then patches them from CLIENTS clients at once; every version the API server made. */
async function burst(cluster: AuditedCluster, namespace: string): Promise<Version[]> {
  const versions: Version[] = [];
  const [first] = cluster.users;
  for (let k = 0; k < OBJECTS; k++) {
    const created = await cluster.api(first!, 'POST', `/api/v1/namespaces/${namespace}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${k}` }, data: { v: 'created' } });
    expect(created.status).toBe(201);
    versions.push({ object: `cm-${k}`, rv: BigInt((created.body.metadata as { resourceVersion: string }).resourceVersion), user: first!.name });
  }
  await Promise.all(
    cluster.users.map(async (user, c) => {
      for (let i = 0; i < PATCHES / CLIENTS; i++) {
        const object = `cm-${(i + c) % OBJECTS}`;
        const patched = await cluster.api(user, 'PATCH', `/api/v1/namespaces/${namespace}/configmaps/${object}`, { data: { v: `${user.name}-${i}` } }, 'application/merge-patch+json');
        expect(patched.status).toBe(200);
        versions.push({ object, rv: BigInt((patched.body.metadata as { resourceVersion: string }).resourceVersion), user: user.name });
      }
    }),
  );
  return versions;
}

/** Per object, the resourceVersions its commits carry, in commit order, with their authors. */
async function committed(remote: string): Promise<Map<string, { rv: bigint; user: string }[]>> {
  const log = await git(remote, 'log', '--reverse', '--format=%an%x1f%s%x1f%(trailers:key=Resource-Version,valueonly)%x1e', 'main');
  const out = new Map<string, { rv: bigint; user: string }[]>();
  for (const record of log.split('\x1e').map((r) => r.trim()).filter(Boolean)) {
    const [user, subject, rv] = record.split('\x1f');
    const object = /configmaps [^/]+\/(\S+)$/.exec(subject ?? '')?.[1];
    if (!object || !rv) continue;
    const list = out.get(object) ?? out.set(object, []).get(object)!;
    list.push({ rv: BigInt(rv.trim()), user: user! });
  }
  return out;
}

/**
 * How late events arrived: for each version, how long after a newer version of the same object had been
 * stored it was stored (0 when none had). The reorder window must be longer than the largest.
 */
async function lateness(cluster: AuditedCluster, versions: Version[]): Promise<{ inversions: number; maxMs: number; lateBy: number[] }> {
  const jobs = await cluster.service.ingestQueue.getCompleted(0, -1);
  const arrival = new Map(jobs.map((j) => [j.id, j.timestamp]));
  const byObject = new Map<string, { rv: bigint; at: number }[]>();
  for (const job of jobs) {
    const rv = (job.data.object?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
    const name = job.data.objectRef.name;
    if (!rv || !name) continue;
    (byObject.get(name) ?? byObject.set(name, []).get(name)!).push({ rv: BigInt(rv), at: arrival.get(eventJobId(job.data.clusterId, job.data.auditID)) ?? job.timestamp });
  }
  let inversions = 0;
  let maxMs = 0;
  /** Of each version that arrived after a newer one of its object: by how much. */
  const lateBy: number[] = [];
  for (const list of byObject.values()) {
    list.sort((a, b) => (a.rv < b.rv ? -1 : 1));
    // Walking from the newest: the earliest arrival among the newer versions so far.
    let earliestNewer = Infinity;
    for (let i = list.length - 1; i >= 0; i--) {
      const late = list[i]!.at - earliestNewer;
      if (late > 0) {
        inversions++;
        maxMs = Math.max(maxMs, late);
        lateBy.push(late);
      }
      earliestNewer = Math.min(earliestNewer, list[i]!.at);
    }
  }
  expect(versions.length).toBeGreaterThan(0);
  return { inversions, maxMs, lateBy };
}

describe('every version under load, through a real API server', () => {
  let valkey: TestValkey;
  beforeAll(async () => {
    valkey = await startTestValkey();
  });
  afterAll(async () => {
    await valkey?.stop();
  });

  const run = async (reorderWindowMs: number) => {
    const cluster = await startAuditedCluster(valkey.url, {
      users: CLIENTS,
      audit: { batchMaxWait: '1s', batchMaxSize: 50 },
      delayBatch: (n) => (n % 3 === 1 ? 600 : 0),
      service: { reorderWindowMs, batchSize: 500 },
    });
    try {
      const [namespace] = (await createTestNamespaces(cluster.cp.kubeConfig, 'versions')).names as [string];
      const started = Date.now();
      const versions = await burst(cluster, namespace);
      const seconds = (Date.now() - started) / 1000;
      // The service runs in this process: its out-of-order counter, as /metrics shows it.
      const outOfOrder = async () => (await cluster.service.metrics.eventsOutOfOrder.get()).values.reduce((n, v) => n + v.value, 0);
      const received = async () => {
        const ingested = await cluster.service.ingestQueue.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed');
        return Object.values(ingested).reduce((a, b) => a + b, 0);
      };
      // Every version is accounted for: a commit, or an out-of-order dead letter.
      await waitFor(
        async () => [...(await committed(cluster.remote)).values()].reduce((n, l) => n + l.length, 0) + (await outOfOrder()) >= versions.length,
        `${versions.length} versions committed or counted (events stored so far: ${await received()})`,
        180_000,
      );
      const late = await lateness(cluster, versions);
      return { versions, seconds, commits: await committed(cluster.remote), outOfOrder: await outOfOrder(), late };
    } finally {
      await cluster.stop();
    }
  };

  it(`with the default window (${DEFAULT_REORDER_WINDOW_MS} ms): one commit per version, in resourceVersion order, by its author`, async () => {
    const { versions, seconds, commits, outOfOrder, late } = await run(DEFAULT_REORDER_WINDOW_MS);
    // What the window cannot cover: a version that reached the webhook later than the window after a newer
    // one (the API server's audit backend falls that far behind only when starved of CPU).
    const beyond = late.lateBy.filter((ms) => ms > DEFAULT_REORDER_WINDOW_MS).length;
    console.log(
      `versions under load: ${versions.length} versions in ${seconds.toFixed(1)} s; ${late.inversions} arrived after a newer version of their object ` +
        `(latest by ${late.maxMs} ms, ${beyond} by more than the window); out of order: ${outOfOrder}`,
    );
    // Every version late by less than the window is in the history: only those later than it can be missing,
    // and each that is is counted. On a machine that keeps up, that is none.
    expect(outOfOrder).toBeLessThanOrEqual(beyond);
    const committedVersions = [...commits.values()].reduce((n, l) => n + l.length, 0);
    expect(committedVersions + outOfOrder).toBe(versions.length);
    for (let k = 0; k < OBJECTS; k++) {
      const expected = versions.filter((v) => v.object === `cm-${k}`).sort((a, b) => (a.rv < b.rv ? -1 : 1)).map((v) => ({ rv: v.rv, user: v.user }));
      const got = commits.get(`cm-${k}`) ?? [];
      if (outOfOrder === 0) expect(got).toEqual(expected);
      else {
        // In resourceVersion order, each with its author; the missing ones are the counted dead letters.
        const byRv = new Map(expected.map((v) => [v.rv, v.user]));
        for (let i = 0; i < got.length; i++) {
          expect(byRv.get(got[i]!.rv)).toBe(got[i]!.user);
          if (i > 0) expect(got[i]!.rv > got[i - 1]!.rv).toBe(true);
        }
      }
    }
  }, 300_000);

  it('with the window at 0: batches that overtake each other cost versions, each counted as out of order', async () => {
    const { versions, commits, outOfOrder, late } = await run(0);
    const committedVersions = [...commits.values()].reduce((n, l) => n + l.length, 0);
    console.log(`versions under load, window 0: ${versions.length} versions, ${committedVersions} committed, ${outOfOrder} out of order; ${late.inversions} arrived late (by up to ${late.maxMs} ms)`);
    expect(committedVersions + outOfOrder).toBe(versions.length);
    // The overtaken batches did arrive late, and cost versions: all counted.
    expect(late.inversions).toBeGreaterThan(0);
    expect(outOfOrder).toBeGreaterThan(0);
    for (const list of commits.values()) for (let i = 1; i < list.length; i++) expect(list[i]!.rv > list[i - 1]!.rv).toBe(true);
  }, 300_000);
});
