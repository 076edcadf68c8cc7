// Two clusters, two real API servers (etcd + kube-apiserver 1.20.2 each), one service: each API server's
// audit webhook sends its batches over TLS to the service with its own token, and each ClusterProvider
// reads objects back with the kubeconfig of its own Secret (spec.kubeConfigSecretRef; the service has no
// credentials of its own here, so nothing else could read them).
// - east audits at level Metadata: its events carry no object, and the service reads each one back from
//   east (not from west, where an object of the same name holds other data), committed under the user of
//   the event (a delete needs nothing read back);
// - west audits at level RequestResponse and is watched too: the watch event of each change waits for the
//   audit event of the same uid and resourceVersion and takes its user, and the change makes one commit.
//   Its grace is long (20 s): batches of this API server often come seconds after the change.
// A batch of this API server now and then arrives many seconds late (KUBE-APISERVER.md): every wait is
// generous, and a miss says whether the API server delivered anything meanwhile.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../../queues/embedded-valkey.js';
import { commitLog, createBareRemote, treeFiles, waitFor } from '../support/git-repos.js';
import { obtainControlPlaneBinaries, startControlPlane, type ControlPlane, type ControlPlaneUser } from '../support/kube-control-plane.js';
import { createTestPki } from '../support/test-pki.js';
import { startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const API = 'gitopsreverser.io/v1alpha1';
const JOIN_GRACE_SECONDS = 8;

/** Who did what is all east records: no request or response body. */
const METADATA_POLICY = stringify({
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    { level: 'None', verbs: ['get', 'list', 'watch'] },
    { level: 'Metadata', verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'] },
  ],
});

type Cluster = { name: 'east' | 'west'; cp: ControlPlane; users: ControlPlaneUser[]; token: string };

const user = (name: string): ControlPlaneUser => ({ name, token: randomBytes(16).toString('hex'), groups: ['system:masters'] });

/** The service's configuration: per cluster its audit token, its kubeconfig (Secrets) and its target. */
function configYaml(remote: string, namespace: string, clusters: Cluster[], kubeconfigs: Map<string, string>): string {
  const docs: unknown[] = [{ apiVersion: API, kind: 'GitProvider', metadata: { name: 'fleet', namespace: 'gitops-reverser' }, spec: { url: remote, allowedBranches: ['main'] } }];
  for (const c of clusters) {
    docs.push(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${c.name}-audit`, namespace: 'gitops-reverser' }, stringData: { token: c.token } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${c.name}-kubeconfig`, namespace: 'gitops-reverser' }, stringData: { kubeconfig: kubeconfigs.get(c.name) } },
      {
        apiVersion: API,
        kind: 'ClusterProvider',
        metadata: { name: c.name },
        spec: {
          audit: { tokenSecretRef: { name: `${c.name}-audit`, namespace: 'gitops-reverser', key: 'token' } },
          kubeConfigSecretRef: { name: `${c.name}-kubeconfig`, namespace: 'gitops-reverser', key: 'kubeconfig' },
          allowedNamespaces: [namespace],
          ...(c.name === 'west' ? { watch: { enabled: true, auditJoinGraceSeconds: JOIN_GRACE_SECONDS } } : {}),
        },
      },
      {
        apiVersion: API,
        kind: 'GitTarget',
        metadata: { name: c.name, namespace: 'gitops-reverser' },
        spec: { providerRef: { name: 'fleet' }, branch: 'main', path: `clusters/${c.name}`, clusterProviderRef: { name: c.name } },
      },
      {
        apiVersion: API,
        kind: 'ClusterWatchRule',
        metadata: { name: `${c.name}-configmaps` },
        spec: { targetRef: { name: c.name, namespace: 'gitops-reverser' }, rules: [{ operations: ['*'], apiGroups: [''], resources: ['configmaps'] }] },
      },
    );
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

describe('two clusters, each with its API server, its audit token and its kubeconfig Secret', () => {
  let valkey: TestValkey;
  let dir = '';
  let east: Cluster;
  let west: Cluster;
  let service: TestService;
  let remote = '';
  const ns = `shop-${randomBytes(3).toString('hex')}`;
  const agent = new Agent({ keepAlive: true, rejectUnauthorized: false });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gr-multi-cluster-'));
    valkey = await startTestValkey();
    const pki = await createTestPki(dir);
    // The API servers' webhook configurations name the service's URL before it starts: its port comes first.
    const port = await freePort();
    const binaries = obtainControlPlaneBinaries();
    const webhook = (name: string, token: string, policy?: string) => ({ url: `https://127.0.0.1:${port}/audit-webhook/${name}`, token, caFile: pki.ca.cert, policy });
    const [eastToken, westToken] = [randomBytes(16).toString('hex'), randomBytes(16).toString('hex')];
    const [eastUsers, westUsers] = [[user('alice')], [user('bob'), user('carol')]];
    const [eastCp, westCp] = await Promise.all([
      startControlPlane({ binaries, users: eastUsers, auditWebhook: webhook('east', eastToken, METADATA_POLICY) }),
      startControlPlane({ binaries, users: westUsers, auditWebhook: webhook('west', westToken) }),
    ]);
    east = { name: 'east', cp: eastCp, users: eastUsers, token: eastToken };
    west = { name: 'west', cp: westCp, users: westUsers, token: westToken };
    const kubeconfigs = new Map([
      ['east', await readFile(eastCp.kubeconfigPath, 'utf8')],
      ['west', await readFile(westCp.kubeconfigPath, 'utf8')],
    ]);
    service = await startTestService(
      valkey.url,
      async (serviceDir) => {
        remote = await createBareRemote(serviceDir);
        return configYaml(remote, ns, [east, west], kubeconfigs);
      },
      // No kubeConfig of its own: objects can be read back only with each cluster's Secret.
      { port, tls: { certFile: pki.server.cert, keyFile: pki.server.key }, reconcile: false, leaseTtlMs: 1000 },
    );
    for (const c of [east, west]) await api(c, c.users[0]!, 'POST', '/api/v1/namespaces', { metadata: { name: ns } });
  }, 180_000);
  afterAll(async () => {
    agent.destroy();
    await service?.close();
    await Promise.all([east?.cp.stop(), west?.cp.stop()]);
    await valkey?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** One request to a cluster's API server as `as`: the parsed body; fails on an error status. */
  function api(c: Cluster, as: ControlPlaneUser, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<Record<string, unknown>> {
    const server = new URL(c.cp.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: server.hostname,
          port: server.port,
          method,
          path,
          agent,
          headers: { authorization: `Bearer ${as.token}`, accept: 'application/json', ...(payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}) },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
          res.on('end', () => {
            const parsed = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
            if ((res.statusCode ?? 0) >= 300) reject(new Error(`${c.name}: ${method} ${path} as ${as.name}: ${res.statusCode} ${text.slice(0, 300)}`));
            else resolve(parsed);
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  const configMaps = `/api/v1/namespaces/${ns}/configmaps`;
  const fileOf = async (c: Cluster, name: string): Promise<string | undefined> =>
    (await treeFiles(remote).catch(() => new Map<string, string>())).get(`clusters/${c.name}/${ns}/configmaps/${name}.yaml`);
  const received = async (c: Cluster): Promise<number> => (await service.metrics.eventsReceived.get()).values.find((v) => v.labels.cluster === c.name)?.value ?? 0;

  /** Does `act` on `c`, then waits for `check`; a miss says whether the API server delivered anything meanwhile. */
  async function expectAfter(c: Cluster, what: string, act: () => Promise<unknown>, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
    const before = await received(c);
    await act();
    try {
      await waitFor(check, what, timeoutMs);
    } catch (err) {
      if (!String(err).includes('timed out')) throw err;
      const after = await received(c);
      const jobs = (await service.ingestQueue.getJobs(['completed', 'failed', 'waiting', 'active', 'delayed'], 0, -1))
        .filter((j) => j.data.objectRef.namespace === ns)
        .map((j) => `${j.data.clusterId}/${j.data.source ?? 'audit'}: ${j.data.user.username} ${j.data.verb} ${j.data.objectRef.name}${j.failedReason ? ` (failed: ${j.failedReason})` : ''}`);
      throw new Error(
        `${what}: not within ${timeoutMs / 1000} s. ` +
          (after === before
            ? `${c.name}'s API server delivered no audit event meanwhile (events_received_total stayed ${before}): its batch never arrived (KUBE-APISERVER.md), the service did not mishandle it.`
            : `${c.name}'s API server delivered ${after - before} audit events meanwhile, so the service mishandled them.`) +
          ` Events of the namespace stored: ${JSON.stringify(jobs)}`,
      );
    }
  }

  it("commits each cluster's changes into its own folder; east's bodiless (Metadata) events are read back from east with its Secret's kubeconfig", async () => {
    const [alice] = east.users as [ControlPlaneUser];
    const [bob] = west.users as [ControlPlaneUser];
    const settings = (color: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { color } });
    // The same object in both clusters, with other data: a read from the wrong cluster would show.
    await expectAfter(west, 'west: settings committed', () => api(west, bob, 'POST', configMaps, settings('red')), async () => (await fileOf(west, 'settings'))?.includes('color: red') === true);
    await expectAfter(east, 'east: settings committed', () => api(east, alice, 'POST', configMaps, settings('blue')), async () => (await fileOf(east, 'settings'))?.includes('color: blue') === true);
    await expectAfter(
      east,
      'east: the patch committed',
      () => api(east, alice, 'PATCH', `${configMaps}/settings`, { data: { color: 'green' } }, 'application/merge-patch+json'),
      async () => (await fileOf(east, 'settings'))?.includes('color: green') === true,
    );
    expect(await fileOf(east, 'settings')).toBe(`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: ${ns}\ndata:\n  color: green\n`);
    expect(await fileOf(west, 'settings')).toBe(`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: ${ns}\ndata:\n  color: red\n`);
    // A delete needs no body: nothing to read back, the file goes.
    await expectAfter(east, 'east: the delete committed', () => api(east, alice, 'DELETE', `${configMaps}/settings`), async () => (await fileOf(east, 'settings')) === undefined);
    expect(await fileOf(west, 'settings')).toContain('color: red');

    // East's events really carried no object: the create and the patch were read back, from east.
    const eastJobs = (await service.ingestQueue.getCompleted(0, -1)).filter((j) => j.data.clusterId === 'east' && j.data.objectRef.namespace === ns);
    expect(eastJobs.map((j) => j.data.verb).sort()).toEqual(['create', 'delete', 'patch']);
    expect(eastJobs.every((j) => j.data.object === undefined)).toBe(true);
    const fetched = (await service.metrics.objectsFetched.get()).values.map((v) => [v.labels.cluster, v.labels.outcome, v.value]);
    expect(fetched).toEqual([['east', 'found', 2]]);

    // West's author is the join's to name (the next case): here, which cluster each commit came from.
    const log = (await commitLog(remote)).filter((c) => c.subject.includes(` ${ns}/settings`));
    expect(log.map((c) => [c.subject, c.body.match(/Cluster: (\w+)/)?.[1]])).toEqual([
      [`CREATE v1 configmaps ${ns}/settings`, 'west'],
      [`CREATE v1 configmaps ${ns}/settings`, 'east'],
      [`UPDATE v1 configmaps ${ns}/settings`, 'east'],
      [`DELETE v1 configmaps ${ns}/settings`, 'east'],
    ]);
    expect(log.slice(1).map((c) => c.author)).toEqual(['alice', 'alice', 'alice']);
  });

  it("west, watched as well: each change's watch event takes the user of its audit event (same uid and resourceVersion), one commit per change", async () => {
    const [bob, carol] = west.users as [ControlPlaneUser, ControlPlaneUser];
    const path = `${configMaps}/joined`;
    type Answer = { metadata: { uid: string; resourceVersion: string } };
    let created: Answer | undefined;
    let patched: Answer | undefined;
    await expectAfter(
      west,
      'west: joined created',
      async () => (created = (await api(west, bob, 'POST', configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'joined' }, data: { v: '1' } })) as Answer),
      async () => /v: ['"]1['"]/.test((await fileOf(west, 'joined')) ?? ''),
    );
    await expectAfter(
      west,
      'west: joined patched',
      async () => (patched = (await api(west, carol, 'PATCH', path, { data: { v: '2' } }, 'application/merge-patch+json')) as Answer),
      async () => /v: ['"]2['"]/.test((await fileOf(west, 'joined')) ?? ''),
    );
    await expectAfter(west, 'west: joined deleted', () => api(west, bob, 'DELETE', path), async () => (await fileOf(west, 'joined')) === undefined);

    // The watch events of the create and the update, each after its grace period, joined with the audit
    // events: found under the uid and the resourceVersion of the change, as the API server answered them.
    const jobsOf = async (source: 'audit' | 'watch') =>
      (await service.ingestQueue.getCompleted(0, -1))
        .filter((j) => j.data.clusterId === 'west' && (j.data.source ?? 'audit') === source && j.data.objectRef.name === 'joined' && j.data.objectRef.namespace === ns && j.data.verb !== 'delete')
        .sort((a, b) => a.timestamp - b.timestamp);
    await waitFor(async () => (await jobsOf('watch')).length === 2, 'the watch events of the create and the update routed', (JOIN_GRACE_SECONDS + 30) * 1000);
    const [watched, audited] = [await jobsOf('watch'), await jobsOf('audit')];
    const late = watched
      .map((w, i) => ({ verb: w.data.verb, seconds: ((audited[i]?.timestamp ?? Infinity) - (w.timestamp - JOIN_GRACE_SECONDS * 1000)) / 1000 }))
      .filter((x) => x.seconds > JOIN_GRACE_SECONDS);
    expect(late, `audit events that came later than the grace after their watch events (KUBE-APISERVER.md): ${JSON.stringify(late)}`).toEqual([]);
    expect(watched.map((j) => [j.data.verb, j.data.user.username, j.data.auditID])).toEqual([
      ['create', 'bob', `watch-${created!.metadata.uid}-${created!.metadata.resourceVersion}`],
      ['update', 'carol', `watch-${patched!.metadata.uid}-${patched!.metadata.resourceVersion}`],
    ]);
    expect(audited.map((j) => [j.data.verb, j.data.user.username])).toEqual([
      ['create', 'bob'],
      ['patch', 'carol'],
    ]);
    // The delete, answered with a Status (no object: the uid is in details.uid), is joined through that uid.
    const watchedDelete = async () =>
      (await service.ingestQueue.getCompleted(0, -1)).find(
        (j) => j.data.clusterId === 'west' && j.data.source === 'watch' && j.data.objectRef.name === 'joined' && j.data.objectRef.namespace === ns && j.data.verb === 'delete',
      );
    await waitFor(async () => (await watchedDelete()) !== undefined, 'the watch event of the delete routed', (JOIN_GRACE_SECONDS + 30) * 1000);
    expect((await watchedDelete())?.data.user.username).toBe('bob');

    const log = (await commitLog(remote)).filter((c) => c.subject.includes(` ${ns}/joined`));
    expect(log.map((c) => `${c.author}: ${c.subject}`), log.map((c) => `${c.subject}\n${c.body}`).join('\n---\n')).toEqual([
      `bob: CREATE v1 configmaps ${ns}/joined`,
      `carol: UPDATE v1 configmaps ${ns}/joined`,
      `bob: DELETE v1 configmaps ${ns}/joined`,
    ]);
  });

});
