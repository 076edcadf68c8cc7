// Watch mode through the whole service, for clusters that cannot send audit events: the service watches
// what the rules select (the stand-in over HTTP, or a real cluster with KUBECONFIG), existing objects and
// every later create, update and delete become commits; without an audit webhook the author says it is
// unknown, and when the same cluster also sends audit events the commit names the user who made the change,
// once (the audit event and the watch event of one change make one commit).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventJobId } from '../../queues/names.js';
import { auditEvent, eventList } from '../support/audit-events.js';
import { ClusterServiceKit } from '../support/cluster-service-kit.js';
import { clusterProviderObject, gitProviderObject, gitTargetObject, secretObject, watchRuleObject, type Obj } from '../support/config-objects.js';
import { commitLog, treeFiles, waitFor } from '../support/git-repos.js';
import { kubeSkipReason } from '../support/kube-target.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

const configMap = (namespace: string, name: string, data: Record<string, string>): Obj => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });

describe.skipIf(skip !== undefined)('watch mode', () => {
  const kit = new ClusterServiceKit();
  const { create } = kit;
  let watchNs: string;
  let joinNs: string;
  let watchOnly: string;
  let both: string;

  beforeAll(async () => {
    await kit.open();
    [watchNs, joinNs] = [await kit.kube.namespace(), await kit.kube.namespace()];
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
});
