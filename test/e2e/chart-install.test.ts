// The chart as installed, without a cluster to run it: its rendered configuration objects are created
// through the Kubernetes API (the run's control plane, or a cluster of your own with KUBECONFIG), and this
// test plays the kubelet for its Deployment: `npm start` with exactly the rendered container's environment
// (Secret and field references resolved from the rendered Secret and a pod name; only the volumes' paths,
// the port and the service account are swapped for local ones), probed on the rendered probe paths. It
// must become ready, commit an audit event, guard the dashboard with the rendered credentials and stop on
// SIGTERM.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../../queues/embedded-valkey.js';
import { auditEvent, eventList } from '../support/audit-events.js';
import { renderChart, type RenderedChart } from '../support/chart-render.js';
import { commitLog, createBareRemote, treeFiles, waitFor } from '../support/git-repos.js';
import type { KubeObject } from '../support/kube-schema.js';
import { kubeSkipReason, startKubeTarget, type KubeTarget } from '../support/kube-target.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

type Obj = Record<string, unknown>;
type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } };
type Probe = { httpGet: { path: string } };
type Container = { env: EnvVar[]; startupProbe: Probe; readinessProbe: Probe; livenessProbe: Probe };

const TOKEN = 'audit-token-from-a-secret-0123456789';
const VIEWER_PASSWORD = 'viewer-password-1';

/** The container's environment as the kubelet would give it, from the rendered objects. */
function resolveEnv(env: EnvVar[], objects: KubeObject[], podName: string): Record<string, string> {
  return Object.fromEntries(
    env.map((e) => {
      if (e.value !== undefined) return [e.name, e.value];
      const ref = e.valueFrom?.secretKeyRef;
      if (ref) {
        const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === ref.name) as (KubeObject & { data?: Record<string, string> }) | undefined;
        const data = secret?.data?.[ref.key];
        if (data === undefined) throw new Error(`${e.name}: Secret ${ref.name} key ${ref.key} is not rendered by the chart`);
        return [e.name, Buffer.from(data, 'base64').toString()];
      }
      if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') return [e.name, podName];
      throw new Error(`${e.name}: a reference this test cannot resolve: ${JSON.stringify(e.valueFrom)}`);
    }),
  );
}

describe.skipIf(skip !== undefined)('the chart, installed', () => {
  let kube: KubeTarget;
  let valkey: TestValkey;
  let dir = '';
  let service: ServiceProcess | undefined;
  beforeAll(async () => {
    [kube, valkey] = await Promise.all([startKubeTarget(), startTestValkey()]);
    dir = await mkdtemp(join(tmpdir(), 'gr-chart-install-'));
  });
  afterAll(async () => {
    service?.kill();
    await kube?.stop();
    await valkey?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the rendered Deployment: ready on its probes, commits, guards the dashboard, stops on SIGTERM', async () => {
    const ns = await kube.namespace();
    const remote = await createBareRemote(dir);
    const cluster = `prod-${ns.slice(-6)}`;
    const API = 'gitopsreverser.io/v1alpha1';
    // What a platform team would put in its values: the Valkey address and the configuration objects.
    const values = {
      valkey: { external: { address: new URL(valkey.url).host } },
      config: { allowLocalGitRepositories: true },
      dashboard: { auth: { password: VIEWER_PASSWORD } },
      rbac: { secrets: [{ namespace: ns, names: ['audit'] }] },
      extraObjects: [
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'audit', namespace: ns }, stringData: { token: TOKEN } },
        { apiVersion: API, kind: 'ClusterProvider', metadata: { name: cluster }, spec: { audit: { tokenSecretRef: { name: 'audit', namespace: ns, key: 'token' } } } },
        { apiVersion: API, kind: 'GitProvider', metadata: { name: 'fleet', namespace: ns }, spec: { url: remote, allowedBranches: ['main'] } },
        { apiVersion: API, kind: 'GitTarget', metadata: { name: 'prod', namespace: ns }, spec: { providerRef: { name: 'fleet' }, branch: 'main', path: 'clusters/prod', clusterProviderRef: { name: cluster } } },
        { apiVersion: API, kind: 'WatchRule', metadata: { name: 'config', namespace: ns }, spec: { targetRef: { name: 'prod' }, rules: [{ operations: ['*'], apiGroups: [''], resources: ['configmaps'] }] } },
      ],
    };
    const valuesFile = join(dir, 'values.yaml');
    await writeFile(valuesFile, stringify(values));
    const chart: RenderedChart = await renderChart({ valueFiles: [valuesFile], namespace: ns });
    const objects = chart.objects.map((o) => o.object);

    // "kubectl apply" of what the test needs of them: the configuration objects and their Secret.
    const applied = objects.filter((o) => o.apiVersion === API || (o.kind === 'Secret' && o.metadata.name === 'audit'));
    expect(applied.map((o) => o.kind).sort()).toEqual(['ClusterProvider', 'GitProvider', 'GitTarget', 'Secret', 'WatchRule']);
    for (const o of applied) {
      const { stringData, ...rest } = o as KubeObject & { stringData?: Record<string, string> };
      const data = stringData ? { data: Object.fromEntries(Object.entries(stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) } : {};
      await kube.create({ ...rest, ...data });
    }

    // The kubelet's part: the container's environment and volumes.
    const deployment = objects.find((o) => o.kind === 'Deployment') as KubeObject & Obj;
    const container = (((deployment.spec as Obj).template as Obj).spec as { containers: Container[] }).containers[0]!;
    const env = resolveEnv(container.env, objects, 'gitops-reverser-5d8f7c9b6d-x2k4q');
    const port = await freePort();
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kube.kubeConfig().exportConfig());
    for (const d of ['data', 'tmp']) await mkdir(join(dir, d), { recursive: true });
    expect(env).toMatchObject({ CONFIG_SOURCE: 'kubernetes', DATA_DIR: '/var/lib/gitops-reverser', HOME: '/tmp', TMPDIR: '/tmp', PORT: '8080', VALKEY_URL: valkey.url });
    // The image's command (Dockerfile CMD), with the pod's environment.
    const svc = (service = startServiceProcess({
      PATH: process.env.PATH,
      ...env,
      DATA_DIR: join(dir, 'data'),
      HOME: join(dir, 'tmp'),
      TMPDIR: join(dir, 'tmp'),
      PORT: String(port),
      KUBECONFIG: kubeconfig,
    }));
    const { alive, exited } = svc;
    const url = (path: string) => `http://127.0.0.1:${port}${path}`;
    const status = async (path: string, headers: Record<string, string> = {}) => (await fetch(url(path), { headers }).catch(() => undefined))?.status;
    try {
      await alive(waitFor(async () => (await status(container.startupProbe.httpGet.path)) === 200, 'the startup probe', 30_000));
      expect(await status(container.livenessProbe.httpGet.path)).toBe(200);
      await alive(waitFor(async () => (await status(container.readinessProbe.httpGet.path)) === 200, 'the readiness probe', 30_000));

      const cm = { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: ns, name: 'settings', body: { data: { mode: 'blue' } } };
      const sent = await fetch(url(`/audit-webhook/${cluster}`), {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(eventList([auditEvent('create', cm, { user: 'alice' })])),
      });
      expect(sent.status).toBe(200);
      await alive(waitFor(async () => (await commitLog(remote).catch(() => [])).length === 1, 'the commit', 30_000));
      expect([...(await treeFiles(remote)).keys()]).toEqual([`clusters/prod/${ns}/configmaps/settings.yaml`]);

      const viewer = { authorization: `Basic ${Buffer.from(`viewer:${VIEWER_PASSWORD}`).toString('base64')}` };
      expect(await status('/admin/overview')).toBe(401);
      expect(await status('/admin/queues')).toBe(401);
      const overview = await fetch(url('/admin/overview'), { headers: viewer });
      expect(overview.status).toBe(200);
      expect(await overview.text()).toContain(`${ns}/prod`);
      expect(await (await fetch(url('/metrics'))).text()).toMatch(new RegExp(`gitops_reverser_events_ingested_total\\{cluster="${cluster}"\\} 1`));
    } catch (err) {
      throw new Error(`${(err as Error).message}\nthe service's output:\n${svc.output().slice(-6000)}`);
    } finally {
      svc.child.kill('SIGTERM');
    }
    // The pod's grace period, less the preStop pause, is what the service has to stop.
    const grace = ((((deployment.spec as Obj).template as Obj).spec as { terminationGracePeriodSeconds: number }).terminationGracePeriodSeconds - 5) * 1000;
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), grace))]);
    svc.kill();
    expect(code).toBe(0);
    for (const o of applied.reverse()) await kube.remove(o);
  }, 150_000);
});
