// The real control plane the tests run on (test/support/kube-control-plane.ts): the run's shared one
// accepts the chart's CRDs and serves each of our kinds, and one started with an audit webhook delivers a
// kubectl change, made as an impersonated user, to an HTTPS receiver with its bearer token.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clusterProviderObject,
  clusterWatchRuleObject,
  gitProviderObject,
  gitTargetObject,
  watchRuleObject,
  type Obj,
} from '../support/config-objects.js';
import { applyChartCrds, createTestNamespaces, startControlPlane, type ControlPlane, type TestNamespaces } from '../support/kube-control-plane.js';
import { sharedControlPlane, type SharedControlPlane } from '../support/shared-control-plane.js';
import { createTestPki } from '../support/test-pki.js';

const run = promisify(execFile);

const kubectl = async (kubeconfig: string, args: string[]): Promise<string> => (await run('kubectl', ['--kubeconfig', kubeconfig, ...args])).stdout;

describe('the shared control plane', () => {
  let cp: SharedControlPlane;
  let ns: TestNamespaces;
  const clusterScoped: Obj[] = [];

  beforeAll(async () => {
    cp = await sharedControlPlane();
    ns = await createTestNamespaces(cp.kubeConfig, 'kcp');
  });
  afterAll(async () => {
    const { KubernetesObjectApi } = await import('@kubernetes/client-node');
    if (cp) await Promise.all(clusterScoped.map((o) => KubernetesObjectApi.makeApiClient(cp.kubeConfig).delete(o).catch(() => undefined)));
    await ns?.remove();
  });

  it('accepts the chart CRDs and stores a custom resource of each kind', async () => {
    await applyChartCrds(cp.kubeconfigPath);

    const { KubernetesObjectApi } = await import('@kubernetes/client-node');
    const api = KubernetesObjectApi.makeApiClient(cp.kubeConfig);
    const [namespace] = ns.names as [string];
    const id = randomBytes(3).toString('hex');
    const target = { provider: 'repo', path: 'apps', cluster: `prod-${id}` };
    const objects: Obj[] = [
      gitProviderObject(namespace, 'repo', 'https://git.example.com/org/repo.git'),
      gitTargetObject(namespace, 'apps', target),
      // apiGroups [""]: the empty string a Go 1.19 build refuses as "null" without the recipe's vendor fix.
      watchRuleObject(namespace, 'configmaps', 'apps', ['configmaps']),
      clusterProviderObject(`prod-${id}`, { audit: { tokenSecretRef: { name: 'audit-token', namespace, key: 'token' } } }),
      clusterWatchRuleObject(`all-${id}`, { namespace, name: 'apps' }, ['configmaps']),
    ];
    for (const obj of objects) {
      if (!obj.metadata?.namespace) clusterScoped.push(obj);
      await api.create(obj);
    }
    const stored = await Promise.all(objects.map((o) => api.read(o as Obj & { metadata: { name: string } })));
    expect(stored.map((o) => [o.kind, o.metadata?.namespace ?? '', o.metadata?.name])).toEqual(
      objects.map((o) => [o.kind, o.metadata?.namespace ?? '', o.metadata?.name]),
    );
    expect((stored[2] as Obj & { spec: { rules: { apiGroups: string[] }[] } }).spec.rules[0]?.apiGroups).toEqual(['']);
  });
});

interface Delivery {
  authorization?: string;
  events: AuditEvent[];
}
interface AuditEvent {
  verb: string;
  stage: string;
  user?: { username?: string; groups?: string[] };
  impersonatedUser?: { username?: string };
  objectRef?: { resource?: string; namespace?: string; name?: string; apiVersion?: string };
}

describe('an audit webhook of a control plane of its own', () => {
  let dir = '';
  let receiver: Server;
  let cp: ControlPlane | undefined;
  const deliveries: Delivery[] = [];

  /** The batch and event of a configmap's create; KUBE-APISERVER.md: a batch of this build now and then
   * arrives many seconds late, so the wait is generous, and a miss says whether anything came at all. */
  async function delivered(name: string): Promise<{ delivery: Delivery; event: AuditEvent }> {
    const find = (): { delivery: Delivery; event: AuditEvent } | undefined => {
      for (const delivery of deliveries) {
        const event = delivery.events.find((e) => e.verb === 'create' && e.objectRef?.resource === 'configmaps' && e.objectRef.name === name);
        if (event) return { delivery, event };
      }
      return undefined;
    };
    const deadline = Date.now() + 60_000;
    while (!find() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const hit = find();
    if (hit) return hit;
    const events = deliveries.flatMap((d) => d.events);
    throw new Error(
      deliveries.length === 0
        ? `the API server delivered nothing at all within 60 s (its audit webhook never reached the receiver), so not the create of ${name}`
        : `the API server delivered ${deliveries.length} batches (${events.length} events) within 60 s, but not the create of ${name}: ` +
          JSON.stringify(events.map((e) => [e.verb, e.objectRef?.resource, e.objectRef?.name])),
    );
  }
  const token = randomBytes(16).toString('hex');
  const bob = { name: 'bob', token: randomBytes(16).toString('hex'), groups: ['gitops-testers'] };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gr-kcp-audit-'));
    const pki = await createTestPki(dir);
    // A trivial receiver: it records each batch and its Authorization header and answers 200.
    receiver = createServer({ key: await readFile(pki.server.key), cert: await readFile(pki.server.cert) }, (req, res) => {
      let body = '';
      req.on('data', (b: Buffer) => (body += b.toString()));
      req.on('end', () => {
        try {
          deliveries.push({ authorization: req.headers.authorization, events: (JSON.parse(body) as { items?: AuditEvent[] }).items ?? [] });
        } catch {
          deliveries.push({ authorization: req.headers.authorization, events: [] });
        }
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(receiver.address() as AddressInfo).port}/audit-webhook/test`;

    const started = performance.now();
    const shared = await sharedControlPlane().catch(() => undefined);
    cp = await startControlPlane({ binaries: shared?.binaries, users: [bob], auditWebhook: { url, token, caFile: pki.ca.cert } });
    console.info(`kube-control-plane: a control plane with an audit webhook ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }, 90_000);
  afterAll(async () => {
    await cp?.stop();
    receiver?.closeAllConnections();
    if (receiver) await new Promise((r) => receiver.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers kubectl changes made as an impersonated user and as a token user, with the bearer token', async () => {
    if (!cp) throw new Error('no control plane');
    const [namespace] = (await createTestNamespaces(cp.kubeConfig, 'audit')).names as [string];
    // Impersonated users are in system:authenticated. Not the built-in `edit`: it is an aggregated role,
    // and with no controller-manager to aggregate it, it has no rules.
    await kubectl(cp.kubeconfigPath, ['create', 'clusterrole', 'configmap-writer', '--verb=create,get,list', '--resource=configmaps']);
    await kubectl(cp.kubeconfigPath, ['create', 'clusterrolebinding', 'authenticated-configmap-writer', '--clusterrole=configmap-writer', '--group=system:authenticated']);
    const id = randomBytes(3).toString('hex');
    await kubectl(cp.kubeconfigPath, ['--as', 'alice', '-n', namespace, 'create', 'configmap', `alice-${id}`, '--from-literal=color=blue']);
    await kubectl(cp.kubeconfigPath, ['--token', bob.token, '-n', namespace, 'create', 'configmap', `bob-${id}`, '--from-literal=color=red']);

    const alice = await delivered(`alice-${id}`);
    expect(alice.delivery.authorization).toBe(`Bearer ${token}`);
    expect(alice.event).toMatchObject({
      stage: 'ResponseComplete',
      user: { username: 'admin' },
      impersonatedUser: { username: 'alice' },
      objectRef: { resource: 'configmaps', namespace, name: `alice-${id}`, apiVersion: 'v1' },
    });
    const byBob = await delivered(`bob-${id}`);
    expect(byBob.delivery.authorization).toBe(`Bearer ${token}`);
    expect(byBob.event.user).toMatchObject({ username: 'bob', groups: expect.arrayContaining(['gitops-testers', 'system:authenticated']) });
    expect(byBob.event.impersonatedUser).toBeUndefined();
  }, 150_000);
});
