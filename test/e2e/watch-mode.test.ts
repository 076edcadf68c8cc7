// Watch mode through the whole service, for clusters that cannot send audit events: the service watches
// what the rules select (on the real API server: the run's control plane, or a cluster of your own with
// KUBECONFIG), existing objects and every later create, update and delete become commits; without an audit
// webhook the author says it is unknown, and when the same cluster also sends audit events the commit names
// the user who made the change, once (the audit event and the watch event of one change make one commit).
// A watch that comes back after etcd compacted its resourceVersion away gets a real 410 Gone and lists
// again: what was deleted meanwhile is deleted in Git.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventJobId } from '../../queues/names.js';
import { auditEvent, eventList } from '../support/audit-events.js';
import { ClusterServiceKit } from '../support/cluster-service-kit.js';
import { clusterProviderObject, gitProviderObject, gitTargetObject, secretObject, watchRuleObject, type Obj } from '../support/config-objects.js';
import { commitLog, treeFiles, waitFor } from '../support/git-repos.js';
import { kubeSkipReason, needs, UNCACHED_RESOURCE } from '../support/kube-target.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

const configMap = (namespace: string, name: string, data: Record<string, string>): Obj => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });

describe.skipIf(skip !== undefined)('watch mode', () => {
  const kit = new ClusterServiceKit();
  const { create } = kit;
  let watchNs: string;
  let joinNs: string;
  let templatesNs: string;
  let watchOnly: string;
  let both: string;

  beforeAll(async () => {
    await kit.open();
    [watchNs, joinNs, templatesNs] = [await kit.kube.namespace(), await kit.kube.namespace(), await kit.kube.namespace()];
    const suffix = randomBytes(3).toString('hex');
    watchOnly = `watched-${suffix}`;
    both = `joined-${suffix}`;
    await create(secretObject(joinNs, 'audit', { token: 'join-token' }));
    await create(clusterProviderObject(watchOnly, { watch: { enabled: true } }));
    await create(clusterProviderObject(both, { audit: { tokenSecretRef: { name: 'audit', namespace: joinNs, key: 'token' } }, watch: { enabled: true, auditJoinGraceSeconds: 2 } }));
    await create(gitProviderObject(watchNs, 'repo', kit.remote));
    await create(gitProviderObject(joinNs, 'repo', kit.remote));
    await create(gitTargetObject(watchNs, 'watched', { provider: 'repo', path: 'watched', cluster: watchOnly }));
    await create(gitTargetObject(joinNs, 'joined', { provider: 'repo', path: 'joined', cluster: both }));
    await create(watchRuleObject(watchNs, 'cms', 'watched', ['configmaps']));
    await create(watchRuleObject(joinNs, 'cms', 'joined', ['configmaps']));
    // PodTemplates: the control plane serves them without a watch cache, so a compacted resourceVersion is 410 Gone.
    await create(gitProviderObject(templatesNs, 'repo', kit.remote));
    await create(gitTargetObject(templatesNs, 'templates', { provider: 'repo', path: 'templates', cluster: watchOnly }));
    await create(watchRuleObject(templatesNs, 'templates', 'templates', [UNCACHED_RESOURCE]));
    // There before the service starts: the first list brings it.
    await create(configMap(watchNs, 'existing', { a: '1' }));

    // Reconcile off: these cases check what the watch alone commits, and with which author.
    await kit.startService({ leaseTtlMs: 1000, reconcile: false });
  }, 60_000);
  afterAll(() => kit.close());

  const files = async (folder: string) => [...(await treeFiles(kit.remote).catch(() => new Map<string, string>())).entries()].filter(([f]) => f.startsWith(`${folder}/`));

  it('commits existing objects and every later change, with an author that says it is unknown', async () => {
    const path = `watched/${watchNs}/configmaps/`;
    await waitFor(async () => (await files('watched')).length === 1, 'the existing ConfigMap committed');
    expect((await files('watched'))[0]?.[0]).toBe(`${path}existing.yaml`);

    await create(configMap(watchNs, 'live', { v: '1' }));
    await waitFor(async () => (await files('watched')).some(([f]) => f === `${path}live.yaml`), 'the created ConfigMap');
    await kit.kube.patch(configMap(watchNs, 'live', { v: '2' }));
    await waitFor(async () => (await files('watched')).some(([f, c]) => f === `${path}live.yaml` && /v: ['"]?2/.test(c)), 'the update');
    await kit.kube.remove(configMap(watchNs, 'live', {}));
    await waitFor(async () => !(await files('watched')).some(([f]) => f === `${path}live.yaml`), 'the delete');

    const log = (await commitLog(kit.remote)).filter((c) => c.subject.includes(`${watchNs}/`));
    expect(log.map((c) => c.subject)).toEqual([
      `CREATE v1 configmaps ${watchNs}/existing`,
      `CREATE v1 configmaps ${watchNs}/live`,
      `UPDATE v1 configmaps ${watchNs}/live`,
      `DELETE v1 configmaps ${watchNs}/live`,
    ]);
    expect(new Set(log.map((c) => c.author))).toEqual(new Set(['unknown (watch event, no audit event joined)']));
    expect(new Set(log.map((c) => c.email))).toEqual(new Set([`unknown@${watchOnly}.cluster.local`]));
  });

  it('names the audit user of a change the cluster also sent as an audit event, in one commit', async () => {
    // The change is made, and its audit event (same uid and resourceVersion) reaches the webhook.
    const live = (await create(configMap(joinNs, 'settings', { mode: 'strict' }))) as Obj & { metadata: { uid: string; resourceVersion: string } };
    const event = auditEvent('create', { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: joinNs, name: 'settings', body: { data: { mode: 'strict' } } }, { user: 'dave' });
    const response = event.responseObject as { metadata: Record<string, unknown> };
    response.metadata.uid = live.metadata.uid;
    response.metadata.resourceVersion = live.metadata.resourceVersion;
    const res = await fetch(`${kit.service.url}/audit-webhook/${both}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer join-token' },
      body: JSON.stringify(eventList([event])),
    });
    expect(res.status).toBe(200);
    await waitFor(async () => (await files('joined')).length === 1, 'the joined change committed');
    // The watch event of the same change, after the join grace, is routed too and writes nothing new.
    const watchJob = eventJobId(both, `watch-${live.metadata.uid}-${live.metadata.resourceVersion}`);
    await waitFor(async () => (await kit.service.ingestQueue.getJobState(watchJob)) === 'completed', 'the watch event of the change routed');
    const writes = ((await kit.service.ingestQueue.getJob(watchJob))?.returnvalue as { writes?: { queue: string }[] } | undefined)?.writes ?? [];
    expect(writes).toHaveLength(1);
    const writeQueue = kit.service.writeQueues.get(writes[0]!.queue)!;
    await waitFor(async () => Object.values(await writeQueue.getJobCounts('waiting', 'active', 'delayed')).every((n) => n === 0), 'its write handled');
    const log = (await commitLog(kit.remote)).filter((c) => c.subject.includes(`${joinNs}/`));
    expect(log.map((c) => `${c.author}: ${c.subject}`)).toEqual([`dave: CREATE v1 configmaps ${joinNs}/settings`]);
  });

  it('lists again after a real 410 Gone (etcd compacted while its watch was away): deletes made meanwhile reach Git', async (ctx) => {
    needs(ctx, 'compaction', kit.kube);
    needs(ctx, 'proxy', kit.kube);
    const template = (name: string, image: string): Obj => ({
      apiVersion: 'v1',
      kind: 'PodTemplate',
      metadata: { name, namespace: templatesNs },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } },
    });
    const path = `templates/${templatesNs}/podtemplates/`;
    const names = async () => (await files('templates')).map(([f]) => f.slice(path.length)).sort();
    for (const name of ['a', 'b', 'c']) await create(template(name, `example.test/${name}:1`));
    await waitFor(async () => (await names()).join() === 'a.yaml,b.yaml,c.yaml', 'the three PodTemplates committed');

    // The watch goes away (its stream ends) and cannot come back: its next request is held at the proxy.
    const watchPath = `/api/v1/namespaces/${templatesNs}/${UNCACHED_RESOURCE}`;
    let release = (): void => undefined;
    const held = new Promise<undefined>((resolve) => (release = () => resolve(undefined)));
    let heldRequests = 0;
    kit.kube.refuse((r) => (r.path === watchPath && r.query.includes('watch=') ? (heldRequests++, held) : undefined));
    try {
      await kit.kube.dropWatches();
      await waitFor(async () => heldRequests > 0, 'the watch to try again');
      // Meanwhile: one deleted, one changed, one created, and etcd's history up to now compacted.
      await kit.kube.remove(template('b', ''));
      await kit.kube.patch({ ...template('c', 'example.test/c:2') });
      await create(template('d', 'example.test/d:1'));
      await kit.kube.compact();
      const seen = kit.kube.proxy!.requests.length;
      release();
      await waitFor(async () => (await names()).join() === 'a.yaml,c.yaml,d.yaml', 'b deleted and d created after the re-list');
      await waitFor(async () => (await files('templates')).some(([f, c]) => f === `${path}c.yaml` && c.includes('example.test/c:2')), 'c changed');
      // The watch came back to a 410 and listed again (a list, not a watch, of the type in that namespace).
      expect(kit.kube.proxy!.requests.slice(seen).some((r) => r.method === 'GET' && r.path === watchPath && !r.query.includes('watch='))).toBe(true);
    } finally {
      release();
      kit.kube.refuse(() => undefined);
    }
    const log = (await commitLog(kit.remote)).filter((c) => c.subject.includes(`${templatesNs}/`)).map((c) => c.subject);
    expect(log.slice(3).sort()).toEqual([
      `CREATE v1 podtemplates ${templatesNs}/d`,
      `DELETE v1 podtemplates ${templatesNs}/b`,
      `UPDATE v1 podtemplates ${templatesNs}/c`,
    ]);
  });
});
