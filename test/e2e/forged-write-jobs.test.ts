// The attack of security item 5 against the running service: write jobs added straight into a partition
// queue (as Bull Board's `add` did for a dashboard operator) that would commit a GitHub workflow, a file in
// another cluster's folder and a git hook, under a forged author. Each becomes a dead letter, visible in
// Bull Board with its error; the audit events sent around them are committed; the remote holds only those.
import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WriteJob } from '../../core/contracts.js';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, treeFiles, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';
import { routedWrite } from '../support/write-jobs.js';

const TARGET = 'gitops-reverser/c1';
const cm = (name: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v: '1' } } });

/** What an attacker adds: a write the router could have made for the target, then changed. */
function forged(eventKey: string, change: Partial<WriteJob>): WriteJob {
  // The service's one target (singleClusterConfig): cluster c1, folder clusters/c1.
  const write = routedWrite(
    { key: TARGET, path: 'clusters/c1', clusterProvider: 'c1' },
    { group: '', version: 'v1', resource: 'configmaps', namespace: 'shop', name: 'web' },
    { eventKey, auditID: eventKey, operation: 'CREATE', content: 'apiVersion: v1\nkind: ConfigMap\n', resourceVersion: '1', user: 'alice', stageTimestamp: new Date().toISOString() },
  );
  return { ...write, ...change };
}

describe('forged write jobs against the running service', () => {
  let valkey: TestValkey;
  let service: TestService;
  let remote = '';

  beforeAll(async () => {
    valkey = await startTestValkey();
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))));
  });
  afterAll(async () => {
    await service?.close();
    await valkey?.stop();
  });

  it('refuses each forged job as a dead letter with its error and commits the audit events around them', async () => {
    expect((await postToC1(service.url, [auditEvent('create', cm('before'), { user: 'alice' })])).status).toBe(200);
    await waitFor(async () => (await commitLog(remote)).length === 1, 'the first event committed');

    const queue = [...service.writeQueues.values()][0] as Queue<WriteJob>;
    const attacks = {
      workflow: forged('workflow', { filePath: '.github/workflows/pwn.yml', content: 'on: push\n' }),
      otherFolder: forged('other-folder', { filePath: 'clusters/c2/shop/configmaps/web.yaml' }),
      hook: forged('hook', { filePath: '.git/hooks/post-update', content: '#!/bin/sh\nexit 1\n' }),
      otherCluster: forged('other-cluster', { clusterId: 'c2', identity: { ...forged('x', {}).identity, cluster: 'c2' } }),
      notHere: forged('not-here', { target: 'gitops-reverser/elsewhere' }),
      author: forged('author', { author: { name: 'Linus Torvalds', email: 'torvalds@kernel.org' } }),
    };
    // Each added as Bull Board's `add` does: one job, with whatever options the operator chose.
    for (const [name, data] of Object.entries(attacks)) await queue.add(name, data, { attempts: 5, jobId: data.eventKey });
    expect((await postToC1(service.url, [auditEvent('create', cm('after'), { user: 'bob' })])).status).toBe(200);

    await waitFor(async () => (await queue.getFailedCount()) === 6 && (await commitLog(remote)).length === 2, 'six dead letters, two commits');
    const failed = Object.fromEntries((await queue.getFailed()).map((j) => [j.id, j]));
    const expectations: Record<string, string> = {
      workflow: 'write refused: filePath ".github/workflows/pwn.yml" is not the path of identity',
      'other-folder': 'write refused: filePath "clusters/c2/shop/configmaps/web.yaml" is not the path of identity',
      hook: 'write refused: filePath ".git/hooks/post-update" is not the path of identity',
      'other-cluster': `write refused: clusterId "c2" is not the cluster of target "${TARGET}" ("c1"); identity.cluster "c2" is not the cluster of target "${TARGET}" ("c1")`,
      'not-here': 'write refused: target "gitops-reverser/elsewhere" is not configured',
      author: `write refused: author email "torvalds@kernel.org" is not of cluster "c1" of target "${TARGET}"`,
    };
    for (const [id, message] of Object.entries(expectations)) {
      expect(failed[id]?.failedReason, id).toContain(message);
      // No retries: a refused write never becomes valid by waiting. Except a target not configured here,
      // which may be one this replica does not know yet: it goes through the attempts it was added with.
      expect(failed[id]?.attemptsMade, id).toBe(id === 'not-here' ? 5 : 1);
    }
    // Bull Board shows them, with the error.
    const board = (await (await fetch(`${service.url}/admin/queues/api/queues?activeQueue=${queue.name}&status=failed`)).json()) as {
      queues: { name: string; jobs: { id: string; failedReason: string }[] }[];
    };
    const shown = board.queues.find((q) => q.name === queue.name)!.jobs;
    expect(shown.find((j) => j.id === 'hook')?.failedReason).toContain('write refused: filePath ".git/hooks/post-update"');

    expect((await commitLog(remote)).map((c) => c.author)).toEqual(['alice', 'bob']);
    expect([...(await treeFiles(remote)).keys()].sort()).toEqual(['clusters/c1/shop/configmaps/after.yaml', 'clusters/c1/shop/configmaps/before.yaml']);
  });
});
