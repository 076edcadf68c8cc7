// One cluster cannot fill Valkey for all: its events in flight (stored, not yet in Git) count against its
// own storage budget, so past it that cluster gets 429 while another cluster's batches are still stored;
// once its writes are in Git the budget is free again. Large objects leave completed jobs (a completed job
// keeps only its size), and dead letters are capped in number.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoConfigYaml } from '../../config/demo-config.js';
import { eventJobId, writeJobId } from '../../queues/names.js';
import { auditEvent, eventList, type ObjectSpec } from '../support/audit-events.js';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createBareRemote, treeFiles, waitFor } from '../support/git-repos.js';
import { startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const LIMIT = 100 * 1024;

/**
 * A bare remote whose pre-receive hook refuses every push while `<remote>/refuse-all` exists, and every
 * push whose new commits touch the path written in `<remote>/refuse-path`.
 */
async function gatedRemote(dir: string) {
  const gitDir = await createBareRemote(dir);
  const all = join(gitDir, 'refuse-all');
  const path = join(gitDir, 'refuse-path');
  await writeFile(
    join(gitDir, 'hooks', 'pre-receive'),
    `#!/usr/bin/env bash
[ -e '${all}' ] && { echo 'refusing every push' >&2; exit 1; }
[ -e '${path}' ] || exit 0
poison=$(cat '${path}')
while read -r old new ref; do
  range=$new; [ "$old" = 0000000000000000000000000000000000000000 ] || range="$old..$new"
  if git log --format= --name-only "$range" | grep -qxF "$poison"; then echo "refusing $poison" >&2; exit 1; fi
done
exit 0
`,
  );
  await chmod(join(gitDir, 'hooks', 'pre-receive'), 0o755);
  return {
    gitDir,
    refuseAll: () => writeFile(all, ''),
    refusePath: (p: string) => writeFile(path, p),
    accept: () => Promise.all([rm(all, { force: true }), rm(path, { force: true })]).then(() => undefined),
  };
}

/** A ConfigMap of about 40 KB as the API server returns it, without a last-applied copy. */
function bigEvent(name: string, cluster = 'c1'): Record<string, unknown> & { auditID: string } {
  const spec: ObjectSpec = { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { blob: name.repeat(1).padEnd(40_000, 'x') } } };
  const event = auditEvent('create', spec, { user: `user-of-${cluster}` });
  delete event.requestObject;
  delete (event.responseObject as { metadata: { annotations?: unknown } }).metadata.annotations;
  return event;
}

describe('storage budget per cluster', () => {
  let valkey: TestValkey;
  let service: TestService;
  let remote: Awaited<ReturnType<typeof gatedRemote>>;

  beforeAll(async () => {
    valkey = await startTestValkey();
    service = await startTestService(
      valkey.url,
      async (dir) => {
        remote = await gatedRemote(dir);
        return `${demoConfigYaml(remote.gitDir, { cluster: 'c1', token: 't0ken-c1', path: 'clusters/c1' })}---\n${demoConfigYaml(remote.gitDir, { cluster: 'c2', token: 't0ken-c2', path: 'clusters/c2' })}`;
      },
      { clusterInflightLimitBytes: LIMIT, writeAttempts: 1, retention: { failedCount: 3 }, reconcile: false },
    );
  });
  afterAll(async () => {
    await service?.close();
    await valkey?.stop();
  });

  async function post(cluster: string, events: Record<string, unknown>[]) {
    const res = await fetch(`${service.url}/audit-webhook/${cluster}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer t0ken-${cluster}` },
      body: JSON.stringify(eventList(events)),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { reason?: string; error?: string } };
  }
  const routed = async (auditID: string) => (await service.ingestQueue.getJob(eventJobId('c1', auditID)))?.finishedOn !== undefined;
  const inFlight = async (cluster: string) => {
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    const name = `${service.prefix.replace(/[^A-Za-z0-9_]/g, '_')}_cluster_inflight_bytes{cluster="${cluster}"} `;
    const line = metrics.split('\n').find((l) => l.startsWith(name));
    return line ? Number(line.slice(name.length)) : undefined;
  };

  it("refuses a cluster past its budget with 429 while another cluster's batches are stored, and admits it again once its writes are in Git", async () => {
    await remote.refuseAll();
    const a = bigEvent('a');
    const b = bigEvent('b');
    expect((await post('c1', [a])).status).toBe(200);
    expect((await post('c1', [b])).status).toBe(200);
    // Routed: their bytes now held by write jobs that cannot be pushed.
    await waitFor(async () => (await routed(a.auditID)) && (await routed(b.auditID)), 'a and b routed');
    const held = await inFlight('c1');
    expect(held).toBeGreaterThan(80_000);
    expect(held).toBeLessThan(LIMIT);

    const c = bigEvent('c');
    const refused = await post('c1', [c]);
    expect(refused.status).toBe(429);
    expect(refused.retryAfter).toBe('5');
    expect(refused.body.reason).toBe('storage-budget');
    expect(refused.body.error).toMatch(/^cluster provider "c1" has \d+ bytes of events in flight \(stored, not yet in Git\); this batch would pass its storage budget of 102400 bytes \(CLUSTER_INFLIGHT_LIMIT_BYTES\): retry later$/);
    // The other cluster is not held up by c1's budget.
    expect((await post('c2', [bigEvent('from-c2', 'c2')])).status).toBe(200);

    await remote.accept();
    await waitFor(async () => {
      const files = await treeFiles(remote.gitDir);
      return files.has('clusters/c1/shop/configmaps/a.yaml') && files.has('clusters/c1/shop/configmaps/b.yaml') && files.has('clusters/c2/shop/configmaps/from-c2.yaml');
    }, 'a, b and c2 in Git');
    await waitFor(async () => (await inFlight('c1')) === 0, 'the budget of c1 released');
    expect((await post('c1', [c])).status).toBe(200);
    await waitFor(async () => (await treeFiles(remote.gitDir)).has('clusters/c1/shop/configmaps/c.yaml'), 'c in Git');
  });

  it('completed jobs of large objects keep only their size', async () => {
    const a = bigEvent('slim');
    expect((await post('c1', [a])).status).toBe(200);
    await waitFor(async () => (await treeFiles(remote.gitDir)).has('clusters/c1/shop/configmaps/slim.yaml'), 'slim in Git');
    const ingest = await service.ingestQueue.getJob(eventJobId('c1', a.auditID));
    expect(ingest?.data.object).toBeUndefined();
    expect(ingest?.data.objectOmitted).toBeGreaterThan(40_000);
    const queue = [...service.writeQueues.values()][0]!;
    const write = await queue.getJob(writeJobId(eventJobId('c1', a.auditID), 'gitops-reverser/c1'));
    await waitFor(async () => (await queue.getJob(write!.id!))?.data.contentOmitted !== undefined, 'the completed write slimmed');
    const slimmed = await queue.getJob(write!.id!);
    expect(slimmed?.data.content).toBeUndefined();
    expect(slimmed?.data.contentOmitted).toBeGreaterThan(40_000);
  });

  it('keeps at most JOB_RETENTION_FAILED_COUNT dead letters per queue', async () => {
    const path = 'clusters/c1/shop/configmaps/poison.yaml';
    await remote.refusePath(path);
    const poison = (n: number): Record<string, unknown> & { auditID: string } => {
      const spec: ObjectSpec = { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name: 'poison', body: { data: { n: String(n) } } };
      return auditEvent(n === 0 ? 'create' : 'update', spec, { user: 'alice' });
    };
    const queue = [...service.writeQueues.values()][0]!;
    for (let n = 0; n < 5; n++) {
      // A good event beside each poison one: the remote accepts others, so the refused one is blamed alone.
      const good: ObjectSpec = { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name: `good-${n}`, body: { data: { n: String(n) } } };
      const bad = poison(n);
      expect((await post('c1', [auditEvent('create', good, { user: 'alice' }), bad])).status).toBe(200);
      await waitFor(async () => (await treeFiles(remote.gitDir)).has(`clusters/c1/shop/configmaps/good-${n}.yaml`), `good-${n} in Git`);
      // The newest dead letter is always kept: it is there, failed, once its write was blamed.
      const id = writeJobId(eventJobId('c1', bad.auditID), 'gitops-reverser/c1');
      await waitFor(async () => (await (await queue.getJob(id))?.getState()) === 'failed', `poison write ${n} a dead letter`);
    }
    expect((await queue.getJobCounts('failed')).failed).toBe(3);
  });
});
