// Least privilege, proven on a real API server (kube-apiserver 1.20.2 + etcd, RBAC on): the service runs
// in cluster mode as a ServiceAccount bound to nothing but what `npm run rbac` generates for its
// configuration (and, in a second run, what the Helm chart renders from `npm run rbac -- --helm-values`),
// through a full run — its configuration read by informers, live audit events (a Metadata-level event read
// back, a Secret), a ClusterProvider in watch mode, a reconcile at start, status written to every object —
// and the API server's own audit log of every request that identity made shows not one 403. Then one verb
// is taken away and the failure names the missing permission.
//
// The identity: no controller-manager runs on this control plane, so no ServiceAccount token can be minted.
// The service gets a static token whose user is exactly what a ServiceAccount token authenticates as —
// user `system:serviceaccount:<namespace>:<name>`, groups `system:serviceaccounts`,
// `system:serviceaccounts:<namespace>` and `system:authenticated` — and RBAC binds a `kind: ServiceAccount`
// subject to that user name, exactly as it would for the ServiceAccount's real token.
//
// What the identity did is read from the API server's audit log (a log backend, `--audit-log-path`): the
// audit policy records every request of the service's users at level Metadata with its response code, so
// nothing the service sent, by any client, escapes the count.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Job } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { freePort } from '../../queues/embedded-valkey.js';
import type { IngestJob } from '../../core/contracts.js';
import { startKubeConfigSource } from '../../config/sources/kubernetes-source.js';
import type { ConfigSource } from '../../config/sources/config-snapshot.js';
import { renderChart } from '../support/chart-render.js';
import type { Condition } from '../support/cluster-service-kit.js';
import { kubeConfigVia } from '../support/counting-proxy.js';
import { commitLog, treeFiles, waitFor } from '../support/git-repos.js';
import { startHttpsGitServer, type GitRepo, type HttpsGitServer } from '../support/git-servers.js';
import { applyChartCrds, obtainControlPlaneBinaries, startControlPlane, type ControlPlane, type ControlPlaneUser } from '../support/kube-control-plane.js';
import { kubeSkipReason } from '../support/kube-target.js';
import { createTestPki, type TestPki } from '../support/test-pki.js';
import { startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const skip = await kubeSkipReason();
if (skip) console.info(`skipped: ${skip}`);

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHART_AUDIT_POLICY = fileURLToPath(new URL('../../charts/gitops-reverser/files/audit-policy.yaml', import.meta.url));

/** Where the configuration and the objects its rules select live; where the audit token's Secret lives. */
const TEAM = 'team';
const OPS = 'ops';
/** The ClusterProviders: one sending audit events, one read in watch mode (both: this API server). */
const AUDITED = 'audited';
const WATCHED = 'watched';
const AUDIT_TOKEN = `audit-${randomBytes(8).toString('hex')}`;
const GIT_USER = 'x-access-token';
const GIT_PASSWORD = `git-${randomBytes(8).toString('hex')}`;
/** The ServiceAccount's name; its namespace tells the RBAC of one run from the other's. */
const SA = 'gitops-reverser';
const GENERATED_NS = 'gr-generated';
const CHART_NS = 'gr-chart';
/** Each run's live objects carry its tag. */
type Tag = 'generated' | 'chart' | 'broken';
const readBackName = (tag: Tag) => `read-back-${tag}`;

/** A user the API server authenticates by static token exactly as it would the ServiceAccount's token. */
function serviceAccountUser(namespace: string): ControlPlaneUser {
  return {
    name: `system:serviceaccount:${namespace}:${SA}`,
    token: randomBytes(16).toString('hex'),
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

/**
 * The chart's audit policy with three rules in front: every request of the service's identities at
 * Metadata (the log this test counts; the same events reach the webhook, where the service skips them as
 * reads or as not selected), nothing of the admin's setup, and ConfigMaps and Secrets at Metadata (no
 * body: the service reads the object back with its own credentials). A rule cannot pick objects by name
 * here: a create's request names none.
 */
async function auditPolicy(serviceUsers: string[]): Promise<string> {
  const policy = parse(await readFile(CHART_AUDIT_POLICY, 'utf8')) as { rules: unknown[] };
  policy.rules.unshift(
    { level: 'Metadata', users: serviceUsers },
    { level: 'None', users: ['admin'] },
    { level: 'Metadata', resources: [{ group: '', resources: ['configmaps', 'secrets'] }] },
  );
  return stringify(policy);
}

/** The configuration objects, as a user keeps them in a file: applied with kubectl and given to `npm run rbac`. */
function configYaml(repoUrl: string): string {
  const api = 'gitopsreverser.io/v1alpha1';
  return [
    { apiVersion: api, kind: 'ClusterProvider', metadata: { name: AUDITED }, spec: { audit: { tokenSecretRef: { name: 'audit-token', namespace: OPS, key: 'token' } } } },
    { apiVersion: api, kind: 'ClusterProvider', metadata: { name: WATCHED }, spec: { watch: { enabled: true } } },
    { apiVersion: api, kind: 'GitProvider', metadata: { name: 'fleet', namespace: TEAM }, spec: { url: repoUrl, secretRef: { name: 'git-credentials' }, allowedBranches: ['main'] } },
    {
      apiVersion: api,
      kind: 'GitTarget',
      metadata: { name: AUDITED, namespace: TEAM },
      spec: { providerRef: { name: 'fleet' }, branch: 'main', path: AUDITED, clusterProviderRef: { name: AUDITED } },
    },
    {
      apiVersion: api,
      kind: 'GitTarget',
      metadata: { name: WATCHED, namespace: TEAM },
      spec: { providerRef: { name: 'fleet' }, branch: 'main', path: WATCHED, clusterProviderRef: { name: WATCHED } },
    },
    {
      apiVersion: api,
      kind: 'WatchRule',
      metadata: { name: 'config', namespace: TEAM },
      spec: { targetRef: { name: AUDITED }, rules: [{ operations: ['*'], apiGroups: [''], resources: ['configmaps', 'secrets'] }] },
    },
    // A wildcard: `npm run rbac` must expand it through discovery (--discover) into the types served.
    {
      apiVersion: api,
      kind: 'ClusterWatchRule',
      metadata: { name: 'apps' },
      spec: { targetRef: { name: WATCHED, namespace: TEAM }, rules: [{ operations: ['*'], apiGroups: ['apps'], resources: ['*'] }] },
    },
  ]
    .map((o) => stringify(o))
    .join('---\n');
}

/** The objects of configYaml (the five kinds), for their statuses. */
const CONFIG_OBJECTS: { kind: string; plural: string; name: string; namespace?: string }[] = [
  { kind: 'ClusterProvider', plural: 'clusterproviders', name: AUDITED },
  { kind: 'ClusterProvider', plural: 'clusterproviders', name: WATCHED },
  { kind: 'GitProvider', plural: 'gitproviders', name: 'fleet', namespace: TEAM },
  { kind: 'GitTarget', plural: 'gittargets', name: AUDITED, namespace: TEAM },
  { kind: 'GitTarget', plural: 'gittargets', name: WATCHED, namespace: TEAM },
  { kind: 'WatchRule', plural: 'watchrules', name: 'config', namespace: TEAM },
  { kind: 'ClusterWatchRule', plural: 'clusterwatchrules', name: 'apps' },
];

/** One line of the API server's audit log (JSON), the fields read here. */
interface AuditRecord {
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number; message?: string };
  /** authorization.k8s.io/decision and /reason among them. */
  annotations?: Record<string, string>;
}

/** `verb group/resource[/subresource] [namespace]`, or `verb <non-resource URL>`. */
function requestKey(r: AuditRecord): string {
  const o = r.objectRef;
  if (!o?.resource) return `${r.verb} ${r.requestURI.split('?')[0]}`;
  const resource = `${o.apiGroup ? `${o.apiGroup}/` : ''}${o.resource}${o.subresource ? `/${o.subresource}` : ''}`;
  return `${r.verb} ${resource}${o.namespace ? ` ${o.namespace}` : ''}`;
}

type Api = {
  core: import('@kubernetes/client-node').CoreV1Api;
  apps: import('@kubernetes/client-node').AppsV1Api;
  custom: import('@kubernetes/client-node').CustomObjectsApi;
};

describe.skipIf(skip !== undefined)('least privilege: the service as a ServiceAccount with only the generated RBAC', () => {
  let dir = '';
  let pki: TestPki;
  let cp: ControlPlane;
  let valkey: TestValkey;
  let git: HttpsGitServer;
  let repo: GitRepo;
  let port = 0;
  let auditLogPath = '';
  let configFile = '';
  let k8s: typeof import('@kubernetes/client-node');
  /** alice makes the live changes (system:masters): the audit events the service commits name her. */
  const alice: ControlPlaneUser = { name: 'alice', token: randomBytes(16).toString('hex'), groups: ['system:masters'] };
  const generatedSa = serviceAccountUser(GENERATED_NS);
  const chartSa = serviceAccountUser(CHART_NS);
  let asAlice: Api;
  let asAdmin: Api;
  /** The generated RBAC objects of the first run, which the third run applies with one verb taken away. */
  let generatedRbac: Record<string, unknown>[] = [];
  const running: { service?: TestService; source?: ConfigSource } = {};

  const kubectl = async (...args: string[]): Promise<string> => {
    try {
      return (await run('kubectl', ['--kubeconfig', cp.kubeconfigPath, ...args])).stdout;
    } catch (err) {
      throw new Error(`kubectl ${args.join(' ')} failed: ${String((err as { stderr?: unknown }).stderr ?? err)}`);
    }
  };
  const apiFor = (kc: KubeConfig): Api => ({ core: kc.makeApiClient(k8s.CoreV1Api), apps: kc.makeApiClient(k8s.AppsV1Api), custom: kc.makeApiClient(k8s.CustomObjectsApi) });

  /** `npm run rbac -- …` as a user runs it, KUBECONFIG naming this API server (the admin, for --discover). */
  const npmRbac = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run('npm', ['run', '--silent', 'rbac', '--', '--config', configFile, '--discover', ...args], {
        cwd: ROOT,
        env: { ...process.env, KUBECONFIG: cp.kubeconfigPath },
        maxBuffer: 16 * 1024 * 1024,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  const apply = async (name: string, docs: unknown[]): Promise<void> => {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, docs.map((d) => stringify(d)).join('---\n'));
    await kubectl('apply', '-f', file);
  };

  /** Every record of the audit log (JSON lines), in order. */
  const auditLog = async (): Promise<AuditRecord[]> =>
    (await readFile(auditLogPath, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditRecord);

  /** Removes every status the service wrote, so a run must write each object's status itself. */
  const clearStatuses = async (): Promise<void> => {
    for (const o of CONFIG_OBJECTS) {
      await kubectl('patch', `${o.plural}.gitopsreverser.io`, o.name, ...(o.namespace ? ['-n', o.namespace] : []), '--subresource=status', '--type=merge', '-p', '{"status":null}');
    }
  };

  type Status = { conditions?: Condition[]; lastCommit?: { sha?: string; time?: string }; watchedResources?: number };
  const statusOf = async (o: (typeof CONFIG_OBJECTS)[number]): Promise<Status | undefined> => {
    const group = 'gitopsreverser.io';
    const version = 'v1alpha1';
    const obj = (
      o.namespace
        ? await asAdmin.custom.getNamespacedCustomObject({ group, version, namespace: o.namespace, plural: o.plural, name: o.name })
        : await asAdmin.custom.getClusterCustomObject({ group, version, plural: o.plural, name: o.name })
    ) as { status?: Status };
    return obj.status;
  };
  const condition = (s: Status | undefined, type: string): Condition | undefined => s?.conditions?.find((c) => c.type === type);

  /** Starts the service in cluster mode as `user`: configuration, object reads, watches and status all with its token. */
  const startServiceAs = async (user: ControlPlaneUser, logs: string[]): Promise<TestService> => {
    const kubeConfig = kubeConfigVia(k8s.KubeConfig, cp.server, user.token);
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
    running.source = await startKubeConfigSource({ kubeConfig, logger, debounceMs: 50 });
    running.service = await startTestService(valkey.url, () => '', {
      config: undefined,
      configSource: running.source,
      kubeConfig,
      reportStatus: { intervalMs: 300, minIntervalMs: 100 },
      // The API server's audit webhook names this port, over TLS (it sends its bearer token over https only).
      port,
      tls: { certFile: pki.server.cert, keyFile: pki.server.key },
      logger,
    });
    return running.service;
  };
  const stopService = async (): Promise<void> => {
    await running.service?.close();
    await running.source?.stop();
    running.service = undefined;
    running.source = undefined;
  };

  beforeAll(async () => {
    k8s = await import('@kubernetes/client-node');
    dir = await mkdtemp(join(tmpdir(), 'gr-least-privilege-'));
    pki = await createTestPki(dir);
    port = await freePort();
    auditLogPath = join(dir, 'audit.log');
    [cp, valkey, git] = await Promise.all([
      (async () =>
        startControlPlane({
          binaries: obtainControlPlaneBinaries(),
          users: [alice, generatedSa, chartSa],
          auditWebhook: { url: `https://127.0.0.1:${port}/audit-webhook/${AUDITED}`, token: AUDIT_TOKEN, caFile: pki.ca.cert, policy: await auditPolicy([generatedSa.name, chartSa.name]) },
          extraApiserverArgs: [`--audit-log-path=${auditLogPath}`, '--audit-log-format=json'],
        }))(),
      startTestValkey(),
      startHttpsGitServer({ pki, auth: { basic: { username: GIT_USER, password: GIT_PASSWORD } } }),
    ]);
    repo = await git.createRepo('team/fleet.git');
    asAdmin = apiFor(cp.kubeConfig);
    asAlice = apiFor(kubeConfigVia(k8s.KubeConfig, cp.server, alice.token));

    await applyChartCrds(cp.kubeconfigPath);
    for (const name of [TEAM, OPS, GENERATED_NS, CHART_NS]) await asAdmin.core.createNamespace({ body: { metadata: { name } } });
    // The ServiceAccount objects, as an install has them (no token is minted for them here: see the top).
    for (const namespace of [GENERATED_NS, CHART_NS]) await asAdmin.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: SA } } });
    const secret = (namespace: string, name: string, data: Record<string, string>) =>
      asAdmin.core.createNamespacedSecret({ namespace, body: { metadata: { name, namespace }, stringData: data } });
    await secret(OPS, 'audit-token', { token: AUDIT_TOKEN });
    await secret(TEAM, 'git-credentials', { username: GIT_USER, password: GIT_PASSWORD, 'ca.crt': await readFile(pki.ca.cert, 'utf8') });
    configFile = join(dir, 'gitops-reverser-objects.yaml');
    await writeFile(configFile, configYaml(repo.url));
    await kubectl('apply', '-f', configFile);
    // There before the service starts: the reconcile at start and the watch's first list bring them.
    await asAdmin.core.createNamespacedConfigMap({ namespace: TEAM, body: { metadata: { name: 'existing' }, data: { a: '1' } } });
    await asAdmin.apps.createNamespacedDeployment({ namespace: TEAM, body: deployment('existing') });
  }, 180_000);

  afterAll(async () => {
    await stopService().catch(() => undefined);
    await git?.close();
    await cp?.stop();
    await valkey?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function deployment(name: string): import('@kubernetes/client-node').V1Deployment {
    return {
      metadata: { name, labels: { app: name } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: `registry.example.com/${name}:1.0.0` }] } },
      },
    };
  }

  /**
   * The full run, as `user`: status on every object (Ready; GitTarget Synced and lastCommit; GitProvider
   * Reachable; the watched ClusterProvider's watchedResources), the reconcile at start, a Metadata-level
   * ConfigMap and a Secret read back, a Deployment seen by the watch. Returns what the identity asked of the
   * API server meanwhile, from the audit log.
   */
  async function fullRun(user: ControlPlaneUser, tag: Tag): Promise<AuditRecord[]> {
    const logs: string[] = [];
    const logTail = () => logs.slice(-40).join('');
    const from = (await auditLog()).length;
    await clearStatuses();
    await startServiceAs(user, logs);
    try {
      // The reconcile at start lists what the rules select: the ConfigMap made before the service ran. Its
      // listing is over before alice's changes (else it could find them first, and her events change nothing).
      await waitFor(
        async () => logs.some((l) => l.includes('"msg":"reconcile diff queued for writing"') && l.includes(`"target":"${TEAM}/${AUDITED}"`)),
        'the reconcile at start of the audited target to list and queue its diff',
        60_000,
      );
      await waitFor(async () => (await treeFiles(repo.gitDir)).has(`${AUDITED}/${TEAM}/configmaps/existing.yaml`), 'the reconcile at start to commit existing', 60_000);
      expect((await commitLog(repo.gitDir)).some((c) => c.subject.startsWith(`reconcile ${TEAM}/${AUDITED}: `))).toBe(true);
      await waitFor(async () => (await treeFiles(repo.gitDir)).has(`${WATCHED}/${TEAM}/apps/deployments/existing.yaml`), 'the watch to commit the existing Deployment', 60_000);

      // Live changes through the audit webhook, by alice.
      const readBack = readBackName(tag);
      await asAlice.core.createNamespacedConfigMap({ namespace: TEAM, body: { metadata: { name: readBack }, data: { run: tag } } });
      await asAlice.core.createNamespacedSecret({ namespace: TEAM, body: { metadata: { name: `db-${tag}` }, stringData: { password: `pw-${tag}` } } });
      await asAlice.apps.createNamespacedDeployment({ namespace: TEAM, body: deployment(`web-${tag}`) });
      const files = async () => treeFiles(repo.gitDir);
      await waitFor(async () => (await files()).has(`${AUDITED}/${TEAM}/configmaps/${readBack}.yaml`), 'the Metadata-level ConfigMap read back and committed', 90_000);
      await waitFor(async () => (await files()).has(`${AUDITED}/${TEAM}/secrets/db-${tag}.yaml`), 'the Metadata-level Secret read back and committed', 90_000);
      await waitFor(async () => (await files()).has(`${WATCHED}/${TEAM}/apps/deployments/web-${tag}.yaml`), 'the watched Deployment committed', 60_000);
      const tree = await files();
      expect(tree.get(`${AUDITED}/${TEAM}/configmaps/${readBack}.yaml`)).toContain(`run: ${tag}`);
      expect(tree.get(`${AUDITED}/${TEAM}/secrets/db-${tag}.yaml`)).not.toContain(`pw-${tag}`);
      expect(tree.get(`${AUDITED}/${TEAM}/secrets/db-${tag}.yaml`)).not.toContain(Buffer.from(`pw-${tag}`).toString('base64'));
      const log = await commitLog(repo.gitDir);
      expect(log.find((c) => c.subject.includes(`${TEAM}/${readBack}`))?.author).toBe('alice');
      expect(log.find((c) => c.subject.includes(`${TEAM}/db-${tag}`))?.author).toBe('alice');

      // Status: written by this identity to every object (the statuses were cleared before the run).
      const last = (await commitLog(repo.gitDir)).at(-1)!;
      let statuses: (Status | undefined)[] = [];
      await waitFor(async () => {
        statuses = await Promise.all(CONFIG_OBJECTS.map(statusOf));
        const gitTargets = statuses.filter((_, i) => CONFIG_OBJECTS[i]!.kind === 'GitTarget');
        return (
          statuses.every((s) => condition(s, 'Ready')?.status === 'True') &&
          gitTargets.every((s) => condition(s, 'Synced')?.status === 'True' && s?.lastCommit?.sha !== undefined) &&
          gitTargets.some((s) => s?.lastCommit?.sha === last.sha) &&
          condition(statuses[2], 'Reachable')?.status === 'True' &&
          (statuses[1]?.watchedResources ?? 0) > 0
        );
      }, 'Ready on every object, Synced and lastCommit on the GitTargets, Reachable, watchedResources', 30_000).catch((err: unknown) => {
        throw new Error(`${err instanceof Error ? err.message : String(err)}; the statuses: ${JSON.stringify(statuses)}`);
      });
    } catch (err) {
      // Say what the API server refused: that is what a failed run here is most likely about.
      await stopService();
      const refused = refusals(await requestsOf(user, from));
      throw new Error(`${err instanceof Error ? err.message : String(err)}\nrequests of ${user.name} refused meanwhile:\n${refused.join('\n') || '(none)'}\nthe service's last log lines:\n${logTail()}`);
    } finally {
      await stopService();
    }
    return requestsOf(user, from);
  }

  /** What `user` asked of the API server since audit log record `from`, once the service has stopped. */
  async function requestsOf(user: ControlPlaneUser, from: number): Promise<AuditRecord[]> {
    // A watch is logged when it ends: the service is stopped, so every request it made is there.
    await new Promise((r) => setTimeout(r, 500));
    return (await auditLog()).slice(from).filter((r) => r.user.username === user.name && r.stage === 'ResponseComplete');
  }

  const refusals = (records: AuditRecord[]): string[] =>
    records
      .filter((r) => r.responseStatus?.code === 403 || r.responseStatus?.code === 401)
      .map((r) => `${requestKey(r)}${r.objectRef?.name ? ` ${r.objectRef.name}` : ''}: ${r.responseStatus?.code} ${r.annotations?.['authorization.k8s.io/decision'] ?? ''} ${r.responseStatus?.message ?? ''}`.trim());

  /** No request of the run was refused, and the run used every kind of permission the RBAC grants. */
  function expectNoForbidden(records: AuditRecord[], tag: Tag): void {
    expect(records.length).toBeGreaterThan(0);
    expect(refusals(records), tally(records)).toEqual([]);
    const ok = records.filter((r) => (r.responseStatus?.code ?? 0) < 300);
    // The Metadata-level events' objects, read back by this identity.
    const read = (resource: string, name: string) => ok.some((r) => r.verb === 'get' && r.objectRef?.resource === resource && r.objectRef.name === name);
    expect(read('configmaps', readBackName(tag)) && read('secrets', `db-${tag}`), tally(records)).toBe(true);
    // So "no 403" covers each kind of permission.
    expect([...new Set(ok.map(requestKey))], tally(records)).toEqual(
      expect.arrayContaining([
        ...['clusterproviders', 'gitproviders', 'gittargets', 'watchrules', 'clusterwatchrules'].flatMap((p) => [`list gitopsreverser.io/${p}`, `watch gitopsreverser.io/${p}`]),
        'patch gitopsreverser.io/clusterproviders/status',
        `patch gitopsreverser.io/gitproviders/status ${TEAM}`,
        `patch gitopsreverser.io/gittargets/status ${TEAM}`,
        `patch gitopsreverser.io/watchrules/status ${TEAM}`,
        'patch gitopsreverser.io/clusterwatchrules/status',
        `get secrets ${OPS}`,
        `get secrets ${TEAM}`,
        `get configmaps ${TEAM}`,
        `list configmaps ${TEAM}`,
        `list secrets ${TEAM}`,
        'list apps/deployments',
        'watch apps/deployments',
        'list apiextensions.k8s.io/customresourcedefinitions',
        'watch apiextensions.k8s.io/customresourcedefinitions',
      ]),
    );
  }

  /** `3× get secrets team → 200`, one line per request and answer, for failure messages. */
  function tally(records: AuditRecord[]): string {
    const counts = new Map<string, number>();
    for (const r of records) {
      const key = `${requestKey(r)} → ${r.responseStatus?.code}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([k, n]) => `${n}× ${k}`).sort().join('\n');
  }

  it('with what `npm run rbac --discover` generates, a full run makes no request that is refused', async () => {
    const generated = await npmRbac('--service-account', SA, '--namespace', GENERATED_NS);
    expect(generated.code, generated.stderr).toBe(0);
    generatedRbac = parseAllDocuments(generated.stdout).map((d) => d.toJS() as Record<string, unknown>);
    expect(generatedRbac.map((d) => d.kind)).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Role', 'RoleBinding']);
    expect(generated.stdout).not.toMatch(/- "?\*"?$/m);
    await apply('generated-rbac', generatedRbac);

    expectNoForbidden(await fullRun(generatedSa, 'generated'), 'generated');
  }, 300_000);

  it('with what the chart renders from `npm run rbac --discover --helm-values`, the same run makes no request that is refused', async () => {
    const values = await npmRbac('--helm-values');
    expect(values.code, values.stderr).toBe(0);
    const valuesFile = join(dir, 'rbac-values.yaml');
    await writeFile(valuesFile, values.stdout);
    const chart = await renderChart({ releaseName: SA, namespace: CHART_NS, valueFiles: [valuesFile] });
    const rbac = chart.objects.map((o) => o.object as unknown as Record<string, unknown>).filter((o) => ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(String(o.kind)));
    // The chart's own ServiceAccount is the identity bound.
    const sa = chart.objects.find((o) => o.object.kind === 'ServiceAccount')?.object as unknown as { metadata: { name: string; namespace: string } };
    expect(sa.metadata).toMatchObject({ name: SA, namespace: CHART_NS });
    expect(rbac.map((d) => d.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Role', 'Role', 'RoleBinding', 'RoleBinding']);
    await apply('chart-rbac', rbac);

    expectNoForbidden(await fullRun(chartSa, 'chart'), 'chart');
  }, 300_000);

  it('without `get` on ConfigMaps in the rule\'s namespace, the Metadata-level event fails naming the missing permission', async () => {
    expect(generatedRbac).not.toEqual([]);
    // The generated RBAC, with one verb taken away: get on configmaps in namespace team (list stays).
    const broken = structuredClone(generatedRbac) as { kind: string; metadata: { namespace?: string }; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }[];
    const role = broken.find((d) => d.kind === 'Role' && d.metadata.namespace === TEAM)!;
    const rule = role.rules!.find((r) => r.apiGroups.includes('') && r.resources.includes('configmaps'))!;
    expect(rule.verbs).toContain('get');
    rule.resources = rule.resources.filter((r) => r !== 'configmaps');
    role.rules!.push({ apiGroups: [''], resources: ['configmaps'], verbs: rule.verbs.filter((v) => v !== 'get') });
    await apply('broken-rbac', broken);

    const from = (await auditLog()).length;
    const logs: string[] = [];
    const service = await startServiceAs(generatedSa, logs);
    const name = readBackName('broken');
    let failed: Job<IngestJob> | undefined;
    try {
      await asAlice.core.createNamespacedConfigMap({ namespace: TEAM, body: { metadata: { name }, data: { run: 'broken' } } });
      await waitFor(
        async () => {
          const jobs = (await service.ingestQueue.getJobs(['delayed', 'failed', 'waiting', 'active'])) as Job<IngestJob>[];
          failed = jobs.find((j) => j.data?.objectRef?.name === name && Boolean(j.failedReason));
          return failed !== undefined;
        },
        "the ConfigMap's event to fail",
        90_000,
      );
    } finally {
      await stopService();
    }
    expect(failed!.failedReason).toBe(
      `fetch failed: cluster ${AUDITED}: missing permission to get configmaps in namespace ${TEAM} for the service's own credentials, reading configmaps ${TEAM}/${name} ` +
        `(403: configmaps "${name}" is forbidden: User "${generatedSa.name}" cannot get resource "configmaps" in API group "" in the namespace "${TEAM}")`,
    );
    // alice's event wrote nothing. (The reconcile at start lists ConfigMaps, which stays allowed, and may
    // find the new one: that commit is the reconciler's, never hers.)
    expect((await commitLog(repo.gitDir)).filter((c) => c.subject.includes(`${TEAM}/${name}`) && c.author === 'alice')).toEqual([]);
    // The audit log shows that refusal, and no other.
    const refused = (await requestsOf(generatedSa, from)).filter((r) => r.responseStatus?.code === 403);
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused.map((r) => `${requestKey(r)} ${r.objectRef?.name}`))).toEqual(new Set([`get configmaps ${TEAM} ${name}`]));
  }, 300_000);
});
