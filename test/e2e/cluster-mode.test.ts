// `npm start` configured by the cluster (CONFIG_SOURCE=kubernetes with KUBECONFIG), as it runs in a Pod:
// the gitopsreverser.io objects are read through the API (the run's control plane, or a cluster of your own
// when KUBECONFIG is set for the tests), an audit batch becomes commits, and a GitTarget added while it runs
// is picked up.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../queues/embedded-valkey.js';
import { auditEvent, eventList } from '../support/audit-events.js';
import { clusterProviderObject, gitProviderObject, gitTargetObject, secretObject, watchRuleObject } from '../support/config-objects.js';
import { createBareRemote, commitLog, treeFiles, waitFor } from '../support/git-repos.js';
import { kubeSkipReason, startKubeTarget, type KubeTarget } from '../support/kube-target.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

describe.skipIf(skip !== undefined)('npm start with CONFIG_SOURCE=kubernetes', () => {
  let kube: KubeTarget;
  let valkey: TestValkey;
  const dirs: string[] = [];
  let service: ServiceProcess | undefined;
  beforeAll(async () => {
    [kube, valkey] = await Promise.all([startKubeTarget(), startTestValkey()]);
  });
  afterAll(async () => {
    service?.kill();
    await kube?.stop();
    await valkey?.stop();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('reads its configuration from the cluster, commits audit events, and follows a new GitTarget', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gr-cluster-mode-'));
    dirs.push(dir);
    const remote = await createBareRemote(dir);
    const ns = await kube.namespace();
    const cluster = `prod-${randomBytes(3).toString('hex')}`;
    const created = [
      secretObject(ns, 'audit', { token: 'prod-token' }),
      clusterProviderObject(cluster, { audit: { tokenSecretRef: { name: 'audit', namespace: ns, key: 'token' } } }),
      gitProviderObject(ns, 'repo', remote, ['main', 'audit/*']),
      gitTargetObject(ns, 'apps', { provider: 'repo', path: 'apps', cluster }),
      // A namespaced rule: the run's API server is shared, and a ClusterWatchRule's reconcile would list
      // the Deployments of every other test file.
      watchRuleObject(ns, 'deployments', 'apps', ['deployments'], ['apps']),
    ];
    for (const obj of created) await kube.create(obj);
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kube.kubeConfig().exportConfig());

    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CONFIG_SOURCE: 'kubernetes',
      ALLOW_LOCAL_GIT_REPOSITORIES: 'true',
      KUBECONFIG: kubeconfig,
      VALKEY_URL: valkey.url,
      KEY_PREFIX: uniquePrefix('cm'),
      DATA_DIR: join(dir, 'data'),
      PORT: String(port),
    };
    delete env.CONFIG_FILE;
    const svc = (service = startServiceProcess(env));
    const post = (events: Record<string, unknown>[]) =>
      fetch(`http://127.0.0.1:${port}/audit-webhook/${cluster}`, {
        method: 'POST',
        headers: { authorization: 'Bearer prod-token', 'content-type': 'application/json' },
        body: JSON.stringify(eventList(events)),
      });
    const deployment = (name: string, replicas: number) => ({ apiVersion: 'apps/v1', kind: 'Deployment', resource: 'deployments', namespace: ns, name, body: { spec: { replicas } } });
    try {
      await svc.alive(waitFor(async () => svc.output().includes('"msg":"ready"'), 'the service to be ready', 30_000));
      expect(svc.output()).toContain('configuration loaded from the cluster');

      expect((await post([auditEvent('create', deployment('web', 2), { user: 'alice' })])).status).toBe(200);
      await waitFor(async () => (await commitLog(remote).catch(() => [])).length === 1, 'the first commit');
      expect([...(await treeFiles(remote)).keys()]).toEqual([`apps/${ns}/apps/deployments/web.yaml`]);

      // A Metadata-level audit event carries no object: the service reads it back from the cluster.
      const live = {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'api', namespace: ns, labels: { app: 'api' } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'api' } },
          template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api', image: 'registry.example.com/api:1.2.3' }] } },
        },
      };
      await kube.create(live);
      const metadataOnly = auditEvent('create', { apiVersion: 'apps/v1', kind: 'Deployment', resource: 'deployments', namespace: ns, name: 'api', body: {} }, { user: 'carol' });
      delete metadataOnly.requestObject;
      delete metadataOnly.responseObject;
      metadataOnly.level = 'Metadata';
      expect((await post([metadataOnly])).status).toBe(200);
      await waitFor(async () => (await commitLog(remote)).length === 2, 'the fetched object committed');
      const fetched = (await treeFiles(remote)).get(`apps/${ns}/apps/deployments/api.yaml`);
      expect(fetched).toContain('image: registry.example.com/api:1.2.3');
      expect((await commitLog(remote))[1]?.author).toBe('carol');
      await kube.remove(live);

      const queues = async () =>
        ((await (await fetch(`http://127.0.0.1:${port}/admin/queues/api/queues`)).json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
      expect((await queues()).filter((q) => q.startsWith('write-'))).toHaveLength(1);

      // A second target (another branch: a new partition) and its rule appear while the service runs: no
      // restart, its queue shows in Bull Board, and the next event goes to both targets.
      await kube.create(gitTargetObject(ns, 'audit-copy', { provider: 'repo', branch: 'audit/copy', path: 'copy', cluster }));
      await kube.create(watchRuleObject(ns, 'copy', 'audit-copy', ['deployments'], ['apps']));
      await svc.alive(waitFor(async () => svc.output().includes('configuration changed; routes switched') && svc.output().includes('"targets":2'), 'the new target to be in force'));
      expect((await post([auditEvent('update', deployment('web', 3), { user: 'bob' })])).status).toBe(200);
      await waitFor(async () => (await treeFiles(remote, 'audit/copy').catch(() => new Map())).size === 1, 'the copy target to be written');
      expect((await queues()).filter((q) => q.startsWith('write-'))).toHaveLength(2);
      await waitFor(async () => (await commitLog(remote)).length === 3, 'the update on main');
      expect((await commitLog(remote)).map((c) => c.author)).toEqual(['alice', 'carol', 'bob']);
      expect((await commitLog(remote, 'audit/copy')).map((c) => c.author)).toEqual(['bob']);
      expect([...(await treeFiles(remote, 'audit/copy')).keys()]).toEqual([`copy/${ns}/apps/deployments/web.yaml`]);
    } finally {
      svc.child.kill('SIGTERM');
      await svc.exited;
      for (const obj of created.reverse()) await kube.remove(obj);
    }
    expect(await svc.exited).toBe(0);
  });
});

