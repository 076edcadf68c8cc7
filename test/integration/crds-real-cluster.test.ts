// What only a real API server can show: that it accepts the generated CRDs, and that their schemas and CEL
// rules admit and refuse what the zod schemas do. The structural schemas (defaults, enums, patterns, the
// status subresource) are checked on the run's control plane (kube-apiserver 1.20.2). The CEL rules
// (`x-kubernetes-validations`) need Kubernetes 1.25: 1.20 drops them (and the stand-in validates nothing),
// so those cases say so in their names and run only on a cluster of your own (skipped, with the reason
// printed, otherwise):
//
//   KUBECONFIG=~/.kube/config npx vitest run test/integration/crds-real-cluster.test.ts
//
// The same variable runs every other Kubernetes test of the suite against that cluster too.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterProviderObject, gitTargetObject, secretObject, type Obj } from '../support/config-objects.js';
import { kubeSkipReason, kubeTargetKind, startKubeTarget, type KubeTarget } from '../support/kube-target.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);
/** Why the CEL cases cannot run here: the control plane of the tests is 1.20, which drops the rules. */
const noCel =
  kubeTargetKind() === 'control-plane' ? 'CEL rules need Kubernetes 1.25; the test control plane is 1.20, which drops them: set KUBECONFIG to a cluster of 1.25 or later' : undefined;

/** Skips a CEL case where the API server cannot evaluate CEL, printing why. */
const needsCel = (ctx: { skip(note?: string): never }): void => {
  if (!noCel) return;
  console.info(`skipped: ${noCel}`);
  ctx.skip(noCel);
};

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

  it('admits a valid GitTarget with the defaults of its schema', async () => {
    const target = gitTargetObject(ns, 'defaults', { provider: 'repo', path: 'apps', cluster: 'prod' });
    delete (target.spec as { path?: string }).path;
    created.push(target);
    const stored = (await kube.create(target)) as Obj & { spec: { path: string; prune: string; reconcileIntervalSeconds: number } };
    expect(stored.spec).toMatchObject({ path: '.', prune: 'OnEvent', reconcileIntervalSeconds: 3600 });
  });

  it('refuses a change of a GitTarget\'s immutable field (CEL rules: needs Kubernetes 1.25)', async (ctx) => {
    needsCel(ctx);
    const target = gitTargetObject(ns, 'apps', { provider: 'repo', path: 'apps', cluster: 'prod' });
    created.push(target);
    await kube.create(target);
    const refused = await rejection(kube.patch({ ...target, spec: { branch: 'other' } }));
    expect(refused.code).toBe(422);
    expect(refused.body).toContain('branch is immutable');
  });

  it('refuses a ClusterProvider with neither an audit webhook nor watch mode, naming the rule (CEL rules: needs Kubernetes 1.25)', async (ctx) => {
    needsCel(ctx);
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
