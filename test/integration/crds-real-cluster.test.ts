// What only a real API server can show: that it accepts the generated CRDs, and that their schemas and CEL
// rules admit and refuse what the zod schemas do. The stand-in serves our kinds without validating them,
// so these cases run only with KUBECONFIG set (they are skipped, with the reason printed, otherwise):
//
//   KUBECONFIG=~/.kube/config npx vitest run test/integration/crds-real-cluster.test.ts
//
// The same variable runs every other Kubernetes test of the suite against that cluster too.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterProviderObject, gitTargetObject, secretObject, type Obj } from '../support/config-objects.js';
import { kubeSkipReason, startKubeTarget, usesRealCluster, type KubeTarget } from '../support/kube-target.js';

const skip = (await kubeSkipReason()) ?? (usesRealCluster() ? undefined : 'KUBECONFIG is not set: CRD admission and CEL rules need a real API server');
if (skip) console.info(`skipped: ${skip}`);

const rejection = async (p: Promise<unknown>): Promise<{ code?: number; body?: string }> => {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    return { code: e.code, body: typeof e.body === 'string' ? e.body : JSON.stringify(e.body) };
  }
  throw new Error('the API server accepted what it should refuse');
};

describe.skipIf(skip !== undefined)('the generated CRDs on a real API server', () => {
  let kube: KubeTarget;
  let ns: string;
  const created: Obj[] = [];
  beforeAll(async () => {
    kube = await startKubeTarget();
    ns = await kube.namespace();
  }, 120_000);
  afterAll(async () => {
    for (const obj of created.reverse()) await kube?.remove(obj).catch(() => undefined);
    await kube?.stop();
  });

  it('admits a valid GitTarget with its defaults and refuses a change of an immutable field', async () => {
    const target = gitTargetObject(ns, 'apps', { provider: 'repo', path: 'apps', cluster: 'prod' });
    delete (target.spec as { path?: string }).path;
    created.push(target);
    const stored = (await kube.create(target)) as Obj & { spec: { path: string } };
    expect(stored.spec.path).toBe('.');
    const refused = await rejection(kube.patch({ ...target, spec: { branch: 'other' } }));
    expect(refused.code).toBe(422);
    expect(refused.body).toContain('branch is immutable');
  });

  it('refuses a ClusterProvider with neither an audit webhook nor watch mode, naming the rule', async () => {
    const name = `cp-${randomBytes(3).toString('hex')}`;
    const refused = await rejection(kube.create(clusterProviderObject(name, { allowedNamespaces: ['shop'] })));
    expect(refused.code).toBe(422);
    expect(refused.body).toContain('a ClusterProvider needs spec.audit (audit webhook) or spec.watch.enabled: true (watch mode)');
  });

  it('refuses a WatchRule that selects a subresource, and an unknown operation', async () => {
    const bad = (resources: string[], operations: string[]): Obj => ({
      apiVersion: 'gitopsreverser.io/v1alpha1',
      kind: 'WatchRule',
      metadata: { name: `wr-${randomBytes(3).toString('hex')}`, namespace: ns },
      spec: { targetRef: { name: 'apps' }, rules: [{ operations, apiGroups: ['apps'], resources }] },
    });
    expect((await rejection(kube.create(bad(['deployments/scale'], ['CREATE'])))).code).toBe(422);
    expect((await rejection(kube.create(bad(['deployments'], ['PATCH'])))).code).toBe(422);
  });

  it('keeps status out of spec writes: only /status changes it', async () => {
    const secret = secretObject(ns, 'token', { token: 't' });
    created.push(secret);
    await kube.create(secret);
    const name = `cp-${randomBytes(3).toString('hex')}`;
    const cp = clusterProviderObject(name, { audit: { tokenSecretRef: { name: 'token', namespace: ns, key: 'token' } } });
    created.push(cp);
    await kube.create({ ...cp, status: { watchedResources: 7 } });
    const stored = (await kube.read(cp)) as Obj & { status?: unknown };
    expect(stored.status).toBeUndefined();
  });
});
