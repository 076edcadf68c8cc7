// Objects with finalizers, through a real API server: a delete answered with the object (it is Terminating,
// its finalizers not yet removed) removes the file at once, as that user's DELETE; an update while it is
// Terminating and the removal of each finalizer (the last one deletes the object) change nothing more.
// The same in watch mode (MODIFIED with deletionTimestamp, then DELETED), with the watch's unknown author.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoConfigYaml } from '../../config/demo-config.js';
import { UNKNOWN_WATCH_AUTHOR_NAME } from '../../workers/route/normalize-event.js';
import { startAuditedCluster, type AuditedCluster } from '../support/audited-cluster.js';
import { commitLog, treeFiles, waitFor } from '../support/git-repos.js';
import { createTestNamespaces } from '../support/kube-control-plane.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

/** c1 sends audit events (clusters/c1); w1, the same API server, is watched (clusters/w1): ConfigMaps only. */
function auditAndWatch(remote: string): string {
  return `${demoConfigYaml(remote, { cluster: 'c1', token: 't0ken-c1', path: 'clusters/c1' })}---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: w1 }
spec:
  watch: { enabled: true }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitProvider
metadata: { name: w1-repo, namespace: gitops-reverser }
spec:
  url: ${JSON.stringify(remote)}
  allowedBranches: ["main"]
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitTarget
metadata: { name: w1, namespace: gitops-reverser }
spec:
  providerRef: { name: w1-repo }
  branch: main
  path: clusters/w1
  clusterProviderRef: { name: w1 }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterWatchRule
metadata: { name: w1-configmaps }
spec:
  targetRef: { name: w1, namespace: gitops-reverser }
  rules:
    - operations: ["*"]
      apiGroups: [""]
      resources: ["configmaps"]
`;
}

describe('objects with finalizers, through a real API server', () => {
  let valkey: TestValkey;
  let cluster: AuditedCluster;
  let ns: string;

  beforeAll(async () => {
    valkey = await startTestValkey();
    cluster = await startAuditedCluster(valkey.url, { users: 3, config: auditAndWatch, service: { leaseTtlMs: 1000 } });
    [ns] = (await createTestNamespaces(cluster.cp.kubeConfig, 'final')).names as [string];
  }, 180_000);
  afterAll(async () => {
    await cluster?.stop();
    await valkey?.stop();
  });

  it('the user who deletes removes the file; nothing after brings it back, in audit and in watch mode', async () => {
    const [dave, erin, controller] = cluster.users as [typeof cluster.users[0], typeof cluster.users[0], typeof cluster.users[0]];
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    const call = async (user: typeof dave, method: string, url: string, body?: unknown, type?: string) => {
      const res = await cluster.api(user, method, url, body, type);
      expect(res.status, `${method} ${url}: ${JSON.stringify(res.body).slice(0, 300)}`).toBeLessThan(300);
      return res.body;
    };
    const files = async () => [...(await treeFiles(cluster.remote).catch(() => new Map<string, string>())).keys()].filter((f) => f.includes(`/${ns}/`)).sort();
    const cm = (name: string, finalizers: string[]) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, finalizers }, data: { v: '1' } });
    const finalizersOf = (finalizers: string[]) => ({ metadata: { finalizers } });
    const merge = 'application/merge-patch+json';

    await call(dave, 'POST', path, cm('held', ['example.com/a', 'example.com/b']));
    await call(dave, 'POST', path, cm('single', ['example.com/hold']));
    await waitFor(async () => (await files()).length === 4, 'both created, by audit and by watch');

    // Deleted: Terminating, answered with the object (deletionTimestamp set, finalizers still there).
    const deleted = await call(erin, 'DELETE', `${path}/held`);
    expect((deleted.metadata as { deletionTimestamp?: string }).deletionTimestamp).toBeDefined();
    await call(erin, 'DELETE', `${path}/single`);
    await waitFor(async () => (await files()).length === 0, 'the files gone after the deletes');

    // A controller updates the Terminating object, then removes the finalizers one by one.
    await call(controller, 'PATCH', `${path}/held`, { data: { v: '2' } }, merge);
    await call(controller, 'PATCH', `${path}/held`, finalizersOf(['example.com/b']), merge);
    await call(controller, 'PATCH', `${path}/held`, finalizersOf([]), merge);
    await call(controller, 'PATCH', `${path}/single`, finalizersOf([]), merge);
    expect((await cluster.api(dave, 'GET', `${path}/held`)).status).toBe(404);
    expect((await cluster.api(dave, 'GET', `${path}/single`)).status).toBe(404);

    // Every event of the controller, and the watch's DELETED events, handled: then nothing may have changed.
    const handled = async () => {
      const jobs = await cluster.service.ingestQueue.getCompleted(0, -1);
      const byController = jobs.filter((j) => j.data.clusterId === 'c1' && j.data.user.username === controller.name && j.data.objectRef.namespace === ns);
      const watchDeletes = jobs.filter((j) => j.data.clusterId === 'w1' && j.data.verb === 'delete' && j.data.objectRef.namespace === ns);
      const writes = Object.values(await [...cluster.service.writeQueues.values()][0]!.getJobCounts('waiting', 'active', 'delayed'));
      return byController.length === 4 && watchDeletes.length === 2 && writes.every((n) => n === 0);
    };
    await waitFor(handled, "the controller's events and the watch's deletes handled", 60_000);

    expect(await files()).toEqual([]);
    const log = (await commitLog(cluster.remote)).filter((c) => c.subject.includes(` ${ns}/`));
    const audit = log.filter((c) => c.body.includes('Cluster: c1')).map((c) => `${c.author}: ${c.subject}`);
    const watched = log.filter((c) => c.body.includes('Cluster: w1')).map((c) => `${c.author}: ${c.subject}`);
    expect(audit.sort()).toEqual(
      [
        `${dave.name}: CREATE v1 configmaps ${ns}/held`,
        `${dave.name}: CREATE v1 configmaps ${ns}/single`,
        `${erin.name}: DELETE v1 configmaps ${ns}/held`,
        `${erin.name}: DELETE v1 configmaps ${ns}/single`,
      ].sort(),
    );
    expect(watched.sort()).toEqual(
      [
        `${UNKNOWN_WATCH_AUTHOR_NAME}: CREATE v1 configmaps ${ns}/held`,
        `${UNKNOWN_WATCH_AUTHOR_NAME}: CREATE v1 configmaps ${ns}/single`,
        `${UNKNOWN_WATCH_AUTHOR_NAME}: DELETE v1 configmaps ${ns}/held`,
        `${UNKNOWN_WATCH_AUTHOR_NAME}: DELETE v1 configmaps ${ns}/single`,
      ].sort(),
    );
  });
});
