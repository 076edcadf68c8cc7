// Deletes that name no object, through a real API server: a `deletecollection` (what client-go's
// DeleteCollection sends) removes exactly the files of the objects it deleted, in one commit by its user, with
// and without a label selector, whether the audit level recorded its answer (RequestResponse: the list of
// the deleted objects) or not (Metadata: the service lists what is left); and a namespace deleted by a user
// takes its folder with it in one commit by that user, before the namespace controller's deletecollections
// (played here: no controller-manager runs) find anything left to remove. The same API server is also
// watched (cluster provider w1, ConfigMaps only): watch mode ends with the same files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoConfigYaml } from '../../config/demo-config.js';
import { startAuditedCluster, type AuditedCluster } from '../support/audited-cluster.js';
import { commitLog, git, treeFiles, waitFor } from '../support/git-repos.js';
import { createTestNamespaces } from '../support/kube-control-plane.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

/** c1 sends audit events (everything, clusters/c1); w1, the same API server, is watched (clusters/w1): ConfigMaps only. */
function auditAndWatch(remote: string): string {
  return `${demoConfigYaml(remote, { cluster: 'c1', token: 't0ken-c1', path: 'clusters/c1' })}---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: w1 }
spec:
  # No audit events come as w1: nothing to wait for before a watch event is written.
  watch: { enabled: true, auditJoinGraceSeconds: 0 }
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

/** ConfigMaps at level Metadata (no request or response body: creates are read back, deletecollections listed). */
const METADATA_CONFIGMAPS = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    verbs: [get, list, watch]
  - level: Metadata
    resources: [{ group: "", resources: [configmaps] }]
    verbs: [create, update, patch, delete, deletecollection]
  - level: RequestResponse
    verbs: [create, update, patch, delete, deletecollection]
`;

const CONTROLLER = 'system:serviceaccount:kube-system:namespace-controller';

type User = AuditedCluster['users'][number];

function scenario(level: 'RequestResponse' | 'Metadata') {
  describe(`deletecollection and deleted namespaces at audit level ${level} (ConfigMaps), through a real API server`, () => {
    let valkey: TestValkey;
    let cluster: AuditedCluster;
    let namespaces: string[];
    let alice: User;
    let bob: User;
    let controller: User;

    beforeAll(async () => {
      valkey = await startTestValkey();
      cluster = await startAuditedCluster(valkey.url, {
        userNames: ['alice', 'bob', CONTROLLER],
        config: auditAndWatch,
        ...(level === 'Metadata' ? { audit: { policy: METADATA_CONFIGMAPS } } : {}),
        service: { leaseTtlMs: 1000 },
      });
      [alice, bob, controller] = cluster.users as [User, User, User];
      namespaces = (await createTestNamespaces(cluster.cp.kubeConfig, `dc-${level === 'Metadata' ? 'md' : 'rr'}`, 3)).names;
    }, 120_000);
    afterAll(async () => {
      await cluster?.stop();
      await valkey?.stop();
    });

    const call = async (user: User, method: string, url: string, body?: unknown) => {
      const res = await cluster.api(user, method, url, body);
      expect(res.status, `${method} ${url}: ${JSON.stringify(res.body).slice(0, 300)}`).toBeLessThan(300);
      return res.body;
    };
    const configMap = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data: { v: name } });
    /** Every file of one commit of the branch (the branch moves while the writers push: read one commit whole). */
    const snapshot = async (): Promise<Map<string, string>> => {
      const head = (await git(cluster.remote, 'rev-parse', '--verify', '--quiet', 'main').catch(() => '')).trim();
      return head ? treeFiles(cluster.remote, head) : new Map();
    };
    /** The files below `clusters/<cluster>/<ns>/` (relative to it), with their content. */
    const filesOf = async (clusterName: 'c1' | 'w1', ns: string): Promise<Map<string, string>> => {
      const prefix = `clusters/${clusterName}/${ns}/`;
      return new Map([...(await snapshot())].filter(([path]) => path.startsWith(prefix)).map(([path, content]) => [path.slice(prefix.length), content]));
    };
    const names = async (clusterName: 'c1' | 'w1', ns: string) => [...(await filesOf(clusterName, ns)).keys()].sort();
    /** Commits of cluster c1 whose subject names namespace `ns` (but the admin's, who created it), as `author: subject`. */
    const commitsOf = async (ns: string) =>
      (await commitLog(cluster.remote)).filter((c) => c.body.includes('Cluster: c1') && c.subject.includes(ns) && c.author !== 'admin').map((c) => `${c.author}: ${c.subject}`);
    /** The one commit with this subject: its author, trailers and the files it changed. */
    const commitNamed = async (subject: string) => {
      const found = (await commitLog(cluster.remote)).filter((c) => c.subject === subject);
      expect(found, subject).toHaveLength(1);
      const files = (await git(cluster.remote, 'show', '--name-status', '--format=', found[0]!.sha)).trim().split('\n').sort();
      return { ...found[0]!, files };
    };
    /** Waits until every event of `user` on `ns` was routed and every write was made. */
    const settled = async (user: User, ns: string, events: number) =>
      waitFor(
        async () => {
          const jobs = await cluster.service.ingestQueue.getCompleted(0, -1);
          const mine = jobs.filter((j) => j.data.clusterId === 'c1' && j.data.user.username === user.name && (j.data.objectRef.namespace === ns || j.data.objectRef.name === ns));
          const counts = await Promise.all([...cluster.service.writeQueues.values()].map((q) => q.getJobCounts('waiting', 'active', 'delayed')));
          return mine.length >= events && counts.every((c) => Object.values(c).every((n) => n === 0));
        },
        `the ${events} event(s) of ${user.name} on ${ns} handled`,
        90_000,
      );
    /** Watch mode ends with the same ConfigMap files as the audit path. */
    const sameInWatchMode = async (ns: string) => {
      const audited = async () => new Map([...(await filesOf('c1', ns))].filter(([path]) => path.startsWith('configmaps/')));
      await waitFor(async () => JSON.stringify([...(await audited())].sort()) === JSON.stringify([...(await filesOf('w1', ns))].sort()), `watch mode holds the same ConfigMaps of ${ns} as the audit path`, 60_000);
    };
    const deleted = async (reason: string) => (await cluster.service.metrics.filesDeleted.get()).values.filter((v) => v.labels.cluster === 'c1' && v.labels.reason === reason).reduce((n, v) => n + v.value, 0);

    it('a deletecollection without a selector removes every file of the type there, in one commit by its user', async () => {
      const ns = namespaces[0]!;
      for (const name of ['a', 'b', 'c']) await call(bob, 'POST', `/api/v1/namespaces/${ns}/configmaps`, configMap(name));
      await waitFor(async () => (await names('c1', ns)).length === 3 && (await names('w1', ns)).length === 3, 'three files, by audit and by watch', 90_000);
      const before = await deleted('deletecollection');

      await call(alice, 'DELETE', `/api/v1/namespaces/${ns}/configmaps`);
      await waitFor(async () => (await names('c1', ns)).length === 0, 'the three files gone', 90_000);

      expect(await commitsOf(ns)).toEqual([
        `bob: CREATE v1 configmaps ${ns}/a`,
        `bob: CREATE v1 configmaps ${ns}/b`,
        `bob: CREATE v1 configmaps ${ns}/c`,
        `alice: DELETECOLLECTION v1 configmaps ${ns}: 3 deleted`,
      ]);
      const commit = await commitNamed(`DELETECOLLECTION v1 configmaps ${ns}: 3 deleted`);
      expect(commit.files).toEqual(['a', 'b', 'c'].map((n) => `D\tclusters/c1/${ns}/configmaps/${n}.yaml`));
      expect(commit.email).toBe('alice@c1.cluster.local');
      expect(commit.body).toMatch(/^Audit-ID: [0-9a-f-]+$/m);
      expect(commit.body).toContain('Target: gitops-reverser/c1');
      expect(await deleted('deletecollection')).toBe(before + 3);
      await sameInWatchMode(ns);
    }, 240_000);

    it('a deletecollection with a label selector removes only the selected files; the others stay', async () => {
      const ns = namespaces[1]!;
      await call(bob, 'POST', `/api/v1/namespaces/${ns}/configmaps`, configMap('web-1', { app: 'web', tier: 'front' }));
      await call(bob, 'POST', `/api/v1/namespaces/${ns}/configmaps`, configMap('web-2', { app: 'web' }));
      await call(bob, 'POST', `/api/v1/namespaces/${ns}/configmaps`, configMap('db', { app: 'db' }));
      await call(bob, 'POST', `/api/v1/namespaces/${ns}/configmaps`, configMap('plain'));
      await waitFor(async () => (await names('c1', ns)).length === 4 && (await names('w1', ns)).length === 4, 'four files, by audit and by watch', 90_000);

      // app in (web), and not the one without the label: set-based and equality-based at once.
      await call(alice, 'DELETE', `/api/v1/namespaces/${ns}/configmaps?labelSelector=${encodeURIComponent('app in (web,cache),app!=db')}`);
      await waitFor(async () => (await names('c1', ns)).length === 2, 'the two selected files gone', 90_000);

      expect(await names('c1', ns)).toEqual(['configmaps/db.yaml', 'configmaps/plain.yaml']);
      // The answer named what went (RequestResponse), or the service listed what is left (Metadata).
      const writes = (await Promise.all([...cluster.service.writeQueues.values()].map((q) => q.getCompleted(0, -1)))).flat();
      const collections = writes.filter((j) => j.data.collection && j.data.identity.namespace === ns && j.data.clusterId === 'c1').map((j) => j.data.collection);
      expect(collections).toEqual([
        level === 'Metadata' ? { keep: ['db', 'plain'], labelSelector: 'app in (web,cache),app!=db' } : { names: ['web-1', 'web-2'] },
      ]);
      expect((await commitsOf(ns)).at(-1)).toBe(`alice: DELETECOLLECTION v1 configmaps ${ns}: 2 deleted`);
      await sameInWatchMode(ns);
    }, 240_000);

    it("a namespace deleted by alice: its files go in one commit by her; the namespace controller's deletecollections commit nothing", async () => {
      const ns = namespaces[2]!;
      await call(bob, 'POST', `/api/v1/namespaces/${ns}/configmaps`, configMap('settings'));
      await call(bob, 'POST', `/api/v1/namespaces/${ns}/configmaps`, configMap('flags'));
      await call(bob, 'POST', `/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'token' }, stringData: { token: 'hunter2' } });
      const namespaceFile = `clusters/c1/_cluster/namespaces/${ns}.yaml`;
      await waitFor(
        async () => (await names('c1', ns)).length === 3 && (await names('w1', ns)).length === 2 && (await snapshot()).has(namespaceFile),
        'two ConfigMaps, a Secret and the Namespace in Git',
        90_000,
      );
      const before = await deleted('namespace');

      // Terminating: a controller-manager's namespace controller would now delete every type's objects.
      const answer = await call(alice, 'DELETE', `/api/v1/namespaces/${ns}`);
      expect((answer.metadata as { deletionTimestamp?: string }).deletionTimestamp).toBeDefined();
      await waitFor(async () => (await names('c1', ns)).length === 0 && !(await snapshot()).has(namespaceFile), 'the namespace folder and file gone', 90_000);

      // What the namespace controller does next, as its service account: a deletecollection per type.
      await call(controller, 'DELETE', `/api/v1/namespaces/${ns}/configmaps`);
      await call(controller, 'DELETE', `/api/v1/namespaces/${ns}/secrets`);
      await settled(controller, ns, 2);

      const mine = await commitsOf(ns);
      expect(mine.filter((c) => !c.startsWith('bob: '))).toEqual([`alice: DELETE namespace ${ns}: 4 files`]);
      expect(mine.some((c) => c.startsWith(`${CONTROLLER}: `))).toBe(false);
      const commit = await commitNamed(`DELETE namespace ${ns}: 4 files`);
      expect(commit.email).toBe('alice@c1.cluster.local');
      expect(commit.files).toEqual(
        [`D\tclusters/c1/${ns}/configmaps/flags.yaml`, `D\tclusters/c1/${ns}/configmaps/settings.yaml`, `D\tclusters/c1/${ns}/secrets/token.yaml`, `D\t${namespaceFile}`].sort(),
      );
      expect(await deleted('namespace')).toBe(before + 4);
      // Watch mode: the ConfigMaps vanished as DELETED events (one commit each), to the same end.
      await sameInWatchMode(ns);
      expect(await names('w1', ns)).toEqual([]);
    }, 240_000);
  });
}

scenario('RequestResponse');
scenario('Metadata');
