// End to end through HTTP: two clusters' API servers send a few hundred audit events over a few dozen
// objects in three namespaces; afterwards the remote holds exactly the final sanitized state of every
// selected object, with one commit per effective change in the original order and the right authors,
// and no Secret value anywhere in its history.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../config/load-config.js';
import { startService, type RunningService } from '../../service.js';
import { REDACTED_VALUE } from '../../core/redact-secret.js';
import { auditEvent, eventList, type ObjectSpec, type Verb } from '../support/audit-events.js';
import { commitLog, createBareRemote, git, treeFiles, waitFor } from '../support/git-repos.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';

const TOKENS = { 'prod-eu': 'eu-token-3f9a', 'prod-us': 'us-token-77c1' } as const;
type Cluster = keyof typeof TOKENS;

function configYaml(remote: string): string {
  return `
apiVersion: v1
kind: Secret
metadata: { name: audit-tokens, namespace: gitops-reverser }
stringData: { eu: ${TOKENS['prod-eu']}, us: ${TOKENS['prod-us']} }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: prod-eu }
spec: { audit: { tokenSecretRef: { name: audit-tokens, namespace: gitops-reverser, key: eu } } }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: prod-us }
spec: { audit: { tokenSecretRef: { name: audit-tokens, namespace: gitops-reverser, key: us } } }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitProvider
metadata: { name: repo, namespace: shop }
spec: { url: ${JSON.stringify(remote)}, allowedBranches: ["main"] }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitTarget
metadata: { name: eu-shop, namespace: shop }
spec: { providerRef: { name: repo }, branch: main, path: clusters/prod-eu, clusterProviderRef: { name: prod-eu } }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: WatchRule
metadata: { name: shop-config, namespace: shop }
spec:
  targetRef: { name: eu-shop }
  rules:
    - { operations: ["*"], apiGroups: [""], resources: [configmaps, secrets] }
    - { operations: ["*"], apiGroups: [apps], apiVersions: [v1], resources: [deployments] }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitProvider
metadata: { name: repo, namespace: platform }
spec: { url: ${JSON.stringify(remote)}, allowedBranches: ["main", "release/*"] }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitTarget
metadata: { name: us-all, namespace: platform }
spec: { providerRef: { name: repo }, branch: main, path: clusters/prod-us, clusterProviderRef: { name: prod-us } }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterWatchRule
metadata: { name: us-everything }
spec:
  targetRef: { name: us-all, namespace: platform }
  rules:
    - { operations: [CREATE, UPDATE, DELETE], apiGroups: ["", apps], resources: [configmaps, deployments, secrets, namespaces] }
`;
}

const NAMESPACES = ['shop', 'payments', 'platform'];
const SECRET_VALUES = ['hunter2-eu-db-password', 'sk_live_51Hx9us', 'rotated-value-9911'];

/** What the test expects the repository to hold, computed from the events it sends. */
function selected(cluster: Cluster, spec: ObjectSpec): string | undefined {
  const groupPath = spec.apiVersion.includes('/') ? `${spec.apiVersion.split('/')[0]}/` : '';
  const file = `${spec.namespace ?? '_cluster'}/${groupPath}${spec.resource}/${spec.name}.yaml`;
  if (cluster === 'prod-eu') {
    const ok = spec.namespace === 'shop' && ['configmaps', 'secrets', 'deployments'].includes(spec.resource);
    return ok ? `clusters/prod-eu/${file}` : undefined;
  }
  return ['configmaps', 'deployments', 'secrets', 'namespaces'].includes(spec.resource) ? `clusters/prod-us/${file}` : undefined;
}

function expectedContent(spec: ObjectSpec): Record<string, unknown> {
  const body =
    spec.kind === 'Secret'
      ? { ...spec.body, data: Object.fromEntries(Object.keys(spec.body.data as object).map((k) => [k, REDACTED_VALUE])) }
      : spec.body;
  const metadata: Record<string, unknown> = { name: spec.name };
  if (spec.namespace) metadata.namespace = spec.namespace;
  if (spec.labels) metadata.labels = spec.labels;
  const content: Record<string, unknown> = { apiVersion: spec.apiVersion, kind: spec.kind, metadata, ...body };
  // What the API server fills in on its own is left out of files (core/server-defaults.ts).
  if (spec.kind === 'Secret' && content.type === 'Opaque') delete content.type;
  if (spec.kind === 'Namespace' && JSON.stringify(content.spec) === '{}') delete content.spec;
  return content;
}

interface Sent {
  cluster: Cluster;
  event: Record<string, unknown> & { auditID: string };
}

/** A deterministic scenario: creates, updates, patches, deletes, no-op updates, a Secret, noise. */
function buildScenario(): { sent: Sent[]; expectedCommits: { auditID: string; author: string }[]; expectedTree: Map<string, unknown> } {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const users = ['alice@example.com', 'bob@example.com', 'system:serviceaccount:ci:deployer'];
  const objects: { cluster: Cluster; spec: ObjectSpec }[] = [];
  for (const cluster of ['prod-eu', 'prod-us'] as Cluster[]) {
    for (const ns of NAMESPACES) {
      for (let i = 0; i < 3; i++) {
        objects.push({ cluster, spec: { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: ns, name: `settings-${i}`, body: { data: { level: 'info' } } } });
      }
      objects.push({ cluster, spec: { apiVersion: 'apps/v1', kind: 'Deployment', resource: 'deployments', namespace: ns, name: 'web', labels: { app: 'web' }, body: { spec: { replicas: 1, template: { spec: { containers: [{ name: 'web', image: 'web:1.0.0' }] } } } } } });
      objects.push({ cluster, spec: { apiVersion: 'v1', kind: 'Service', resource: 'services', namespace: ns, name: 'web', body: { spec: { ports: [{ port: 80 }] } } } });
    }
    objects.push({ cluster, spec: { apiVersion: 'v1', kind: 'Namespace', resource: 'namespaces', name: 'payments', labels: { team: 'pay' }, body: { spec: {} } } });
  }
  // The one Secret, in a namespace both targets could see: prod-eu/shop.
  const secret = { cluster: 'prod-eu' as Cluster, spec: { apiVersion: 'v1', kind: 'Secret', resource: 'secrets', namespace: 'shop', name: 'db', body: { type: 'Opaque', data: { password: Buffer.from(SECRET_VALUES[0]!).toString('base64') } } } as ObjectSpec };
  objects.push(secret);

  const live = new Map<string, ObjectSpec | undefined>(); // key → current spec when it exists
  const tree = new Map<string, unknown>();
  const sent: Sent[] = [];
  const expectedCommits: { auditID: string; author: string }[] = [];
  const key = (o: { cluster: Cluster; spec: ObjectSpec }) => `${o.cluster}|${o.spec.namespace}|${o.spec.resource}|${o.spec.name}`;

  const emit = (o: { cluster: Cluster; spec: ObjectSpec }, verb: Verb, next: ObjectSpec, extra: { noise?: 'failed' | 'dry-run' } = {}) => {
    const user = users[rand(users.length)]!;
    const impersonated = rand(5) === 0 ? 'impersonated-admin' : undefined;
    const event = auditEvent(verb, next, { user, impersonatedUser: impersonated, code: extra.noise === 'failed' ? 409 : undefined, dryRun: extra.noise === 'dry-run' });
    sent.push({ cluster: o.cluster, event });
    if (extra.noise) return;
    const path = selected(o.cluster, next);
    const before = path ? JSON.stringify(tree.get(path)) : undefined;
    if (verb === 'delete') live.set(key(o), undefined);
    else live.set(key(o), next);
    if (!path) return;
    if (verb === 'delete') tree.delete(path);
    else tree.set(path, expectedContent(next));
    // A deleted namespace takes its folder with it (every type), in the same commit.
    if (verb === 'delete' && next.kind === 'Namespace') for (const k of [...tree.keys()]) if (k.startsWith(`clusters/${o.cluster}/${next.name}/`)) tree.delete(k);
    if (JSON.stringify(tree.get(path)) !== before) expectedCommits.push({ auditID: event.auditID, author: impersonated ?? user });
  };

  for (const o of objects) emit(o, 'create', o.spec);
  for (let step = 0; step < 300; step++) {
    const o = objects[rand(objects.length)]!;
    const current = live.get(key(o));
    const roll = rand(20);
    if (!current) {
      emit(o, 'create', o.spec);
    } else if (roll === 0) {
      emit(o, 'delete', current);
    } else if (roll === 1) {
      emit(o, 'update', current); // same content, new resourceVersion: no commit
    } else if (roll === 2) {
      emit(o, 'update', { ...current, body: { ...current.body, data: { changed: String(step) } } }, { noise: rand(2) ? 'failed' : 'dry-run' });
    } else if (o.spec.kind === 'Secret') {
      const value = SECRET_VALUES[1 + (step % 2)]!;
      const keys = rand(2) ? { password: value } : { password: value, [`k${step}`]: value };
      emit(o, 'update', { ...current, body: { ...current.body, data: Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) } });
    } else if (o.spec.kind === 'Deployment') {
      emit(o, 'patch', { ...current, body: { spec: { replicas: 1 + rand(5), template: { spec: { containers: [{ name: 'web', image: `web:1.${step}.0` }] } } } } });
    } else {
      emit(o, rand(2) ? 'update' : 'patch', { ...current, labels: { rev: String(step) }, body: { data: { level: ['info', 'debug', 'warn'][rand(3)]!, step: String(step) } } });
    }
  }
  return { sent, expectedCommits, expectedTree: tree };
}

describe('audit webhook → Git, end to end', () => {
  let valkey: TestValkey;
  let service: RunningService;
  let dir: string;
  let remote: string;

  beforeAll(async () => {
    valkey = await startTestValkey();
    dir = await mkdtemp(join(tmpdir(), 'gr-e2e-'));
    remote = await createBareRemote(dir);
    service = await startService({
      config: parseConfig(configYaml(remote)),
      valkeyUrl: valkey.url,
      prefix: uniquePrefix('e2e'),
      dataDir: join(dir, 'data'),
      port: 0,
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      bodyLimitBytes: 10 * 1024 * 1024,
      leaseTtlMs: 3000,
      batchSize: 50,
      committer: { name: 'GitOps Reverser', email: 'gitops-reverser@test' },
      dashboardReadOnly: true,
    });
  });

  afterAll(async () => {
    await service?.stop();
    await valkey?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (cluster: Cluster, items: Record<string, unknown>[]) =>
    fetch(`${service.url}/audit-webhook/${cluster}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS[cluster]}` },
      body: JSON.stringify(eventList(items)),
    });

  it('commits exactly the effective changes, in order, with authors, and no Secret value', async () => {
    const { sent, expectedCommits, expectedTree } = buildScenario();
    expect(sent.length).toBeGreaterThan(300);
    // The scenario is not trivial: many effective changes, many files, and many events that change nothing.
    expect(expectedCommits.length).toBeGreaterThan(120);
    expect(expectedTree.size).toBeGreaterThan(10);
    expect(sent.length - expectedCommits.length).toBeGreaterThan(100);

    // Batches as API servers send them: consecutive events of one cluster, up to 20 at a time.
    const batches: { cluster: Cluster; items: Record<string, unknown>[] }[] = [];
    for (const s of sent) {
      const last = batches[batches.length - 1];
      if (last && last.cluster === s.cluster && last.items.length < 20) last.items.push(s.event);
      else batches.push({ cluster: s.cluster, items: [s.event] });
    }
    for (const [i, b] of batches.entries()) {
      const res = await post(b.cluster, b.items);
      expect(res.status).toBe(200);
      if (i === 3) expect((await post(b.cluster, b.items)).status).toBe(200); // the API server retries a batch
    }
    // A batch retried much later, after newer changes: adds nothing.
    expect((await post(batches[1]!.cluster, batches[1]!.items)).status).toBe(200);

    await waitFor(async () => (await commitLog(remote)).length >= expectedCommits.length, `${expectedCommits.length} commits`, 60_000);
    await waitFor(async () => {
      const counts = await Promise.all([service.ingestQueue, ...service.writeQueues.values()].map((q) => q.getJobCounts('waiting', 'active', 'delayed')));
      return counts.every((c) => (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0);
    }, 'queues drained');

    const log = await commitLog(remote);
    const auditIDs = log.map((c) => /Audit-ID: (\S+)/.exec(c.body)?.[1]);
    expect(auditIDs).toEqual(expectedCommits.map((c) => c.auditID));
    expect(log.map((c) => c.author)).toEqual(expectedCommits.map((c) => c.author));

    const files = await treeFiles(remote);
    expect([...files.keys()].sort()).toEqual([...expectedTree.keys()].sort());
    for (const [path, content] of files) expect(parseYaml(content), path).toEqual(expectedTree.get(path));

    const history = await git(remote, 'log', '-p', '--all');
    for (const value of SECRET_VALUES) {
      expect(history).not.toContain(value);
      expect(history).not.toContain(Buffer.from(value).toString('base64'));
    }
    expect(history).toContain(`password: ${REDACTED_VALUE}`);
    // The failed jobs list stays empty: nothing went to the dead-letter state.
    for (const q of [service.ingestQueue, ...service.writeQueues.values()]) expect(await q.getFailedCount()).toBe(0);
  });
});
