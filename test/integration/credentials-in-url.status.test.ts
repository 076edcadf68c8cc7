// Security item 9 in a cluster: a GitProvider whose spec.url carries credentials gets Ready=False with
// reason CredentialsInURL and a message that says to use spec.secretRef, never repeating them; its
// targets wait for it; taking them out of the URL makes it Ready without a restart. On the API-server
// real API server (the run's control plane, or a cluster of your own with KUBECONFIG), with the running
// service reporting status.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterServiceKit, type Condition } from '../support/cluster-service-kit.js';
import { clusterProviderObject, gitProviderObject, gitTargetObject, secretObject, type Obj } from '../support/config-objects.js';
import { kubeSkipReason } from '../support/kube-target.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

const SECRET = 's3cr3t-PASS';

type WithStatus = Obj & { status?: { conditions?: Condition[] } };

describe.skipIf(skip !== undefined)('a GitProvider with credentials in its URL', () => {
  const kit = new ClusterServiceKit();
  const { create } = kit;
  const waitForReady = (obj: Obj, status: string) => kit.waitForCondition(obj, 'Ready', status);
  let ns: string;
  let cluster: string;

  beforeAll(async () => {
    await kit.open();
    ns = await kit.kube.namespace();
    cluster = `cu-${randomBytes(3).toString('hex')}`;
    await create(secretObject(ns, 'audit-token', { token: 'tok' }));
    await create(secretObject(ns, 'git-creds', { username: 'bot', password: SECRET }));
    await create(clusterProviderObject(cluster, { audit: { tokenSecretRef: { name: 'audit-token', namespace: ns, key: 'token' } } }));
    await kit.startService({ reportStatus: { intervalMs: 300, minIntervalMs: 100 } });
  }, 60_000);
  afterAll(() => kit.close());

  it('is Ready=False, CredentialsInURL, saying to use spec.secretRef; its target waits; without them it is Ready', async () => {
    const provider = gitProviderObject(ns, 'fleet', `https://bot:${SECRET}@git.example.com/org/fleet.git`, ['main'], 'git-creds');
    const target = gitTargetObject(ns, 'fleet', { provider: 'fleet', path: 'clusters/x', cluster });
    await create(provider);
    await create(target);
    const ready = await waitForReady(provider, 'False');
    expect(ready).toMatchObject({
      reason: 'CredentialsInURL',
      message:
        'spec.url: https://git.example.com/org/fleet.git carries credentials in the URL: move them to the Secret named by spec.secretRef (username and password, or bearerToken) and take them out of the URL',
    });
    expect(await waitForReady(target, 'False')).toMatchObject({ reason: 'GitProviderNotReady' });
    expect(JSON.stringify((await kit.kube.read(provider)) as WithStatus).split(SECRET)).toHaveLength(2); // only in spec.url, as written
    expect(JSON.stringify(((await kit.kube.read(provider)) as WithStatus).status)).not.toContain(SECRET);
    expect(kit.service.currentConfig().providers.has(`${ns}/fleet`)).toBe(false);

    // The fix the message asks for: the URL without them (the Secret already holds them).
    await kit.kube.patch(gitProviderObject(ns, 'fleet', kit.remote, ['main'], 'git-creds'));
    await waitForReady(provider, 'True');
    await waitForReady(target, 'True');
    expect(kit.service.currentConfig().targets.has(`${ns}/fleet`)).toBe(true);
  });
});
