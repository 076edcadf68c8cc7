// The Helm chart, rendered as `helm template --include-crds` would (helm where installed, else
// tools/helm-render: Go text/template + sprig + helm's functions), for the default values and the value
// sets in charts/gitops-reverser/ci. Every object is validated as an API server with strict field
// validation would admit it (built-in schemas, the CRDs' own schemas), the values against
// values.schema.json, and the properties operators rely on are asserted: restricted pods, PDB, probes,
// least-privilege RBAC, the Valkey settings BullMQ needs, and the env contract of the service.
import { Ajv } from 'ajv';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV_VARIABLES, readEnv } from '../../config/env.js';
import { CHART_DIR, chartEngine, computedValues, renderChart, type RenderedChart, type RenderOptions } from '../support/chart-render.js';
import { builtInSchemaErrors, customResourceErrors, loadCrdValidators, type KubeObject } from '../support/kube-schema.js';

interface ValueSet {
  name: string;
  opts: RenderOptions;
}

const SETS: ValueSet[] = [
  { name: 'default values', opts: {} },
  { name: 'bundled Valkey with auth and TLS', opts: { valueFiles: ['ci/bundled-valkey-auth-tls-values.yaml'] } },
  { name: 'external Valkey', opts: { valueFiles: ['ci/external-valkey-values.yaml'] } },
  { name: 'monitoring and network policy', opts: { valueFiles: ['ci/monitoring-netpol-values.yaml'] } },
  { name: '3 replicas', opts: { valueFiles: ['ci/three-replicas-values.yaml'] } },
];
const NAMESPACE = 'gitops-reverser';

type Obj = Record<string, unknown>;
type Container = { name: string; env?: { name: string; value?: string; valueFrom?: Obj }[]; securityContext?: Obj } & Obj;
type PodSpec = { containers: [Container, ...Container[]]; volumes?: Obj[]; securityContext?: Obj } & Obj;
type Rule = { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] };

const rendered = new Map<string, RenderedChart>();
/** helm validates values.schema.json itself and has no stand-in cluster: those checks are the Go renderer's. */
const withHelm = (await chartEngine()).kind === 'helm';
if (withHelm) console.info('rendering with helm: values are validated by helm itself; the lookup (upgrade) case is skipped');

/** values.schema.json, compiled once. */
let schema: ReturnType<Ajv['compile']> | undefined;
async function valuesSchema(): Promise<ReturnType<Ajv['compile']>> {
  schema ??= new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(await readFile(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Record<string, unknown>);
  return schema;
}

function objectsOf(set: string, kind?: string): KubeObject[] {
  const chart = rendered.get(set);
  if (!chart) throw new Error(`${set} was not rendered`);
  return chart.objects.map((o) => o.object).filter((o) => !kind || o.kind === kind);
}

function one(set: string, kind: string, name?: string): KubeObject & Obj {
  const found = objectsOf(set, kind).filter((o) => !name || o.metadata.name === name);
  expect(found, `${set}: one ${kind}${name ? ` ${name}` : ''}`).toHaveLength(1);
  return found[0] as KubeObject & Obj;
}

function podSpec(workload: Obj): PodSpec {
  return ((workload.spec as Obj).template as Obj).spec as PodSpec;
}

function envOf(container: Container): Map<string, { value?: string; valueFrom?: Obj }> {
  return new Map((container.env ?? []).map((e) => [e.name, e]));
}

/** What the Pod Security Standard "restricted" refuses in a pod spec. */
function restrictedViolations(spec: PodSpec): string[] {
  const out: string[] = [];
  const pod = spec.securityContext ?? {};
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) out.push('host namespaces');
  for (const v of spec.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== 'name') ?? '';
    if (!['configMap', 'emptyDir', 'secret', 'persistentVolumeClaim', 'projected', 'downwardAPI', 'ephemeral', 'csi'].includes(type)) out.push(`volume type ${type}`);
  }
  for (const c of spec.containers) {
    const sc = c.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) out.push(`${c.name}: allowPrivilegeEscalation must be false`);
    if (sc.privileged) out.push(`${c.name}: privileged`);
    if (!(sc.runAsNonRoot ?? pod.runAsNonRoot)) out.push(`${c.name}: runAsNonRoot`);
    if (((sc.runAsUser ?? pod.runAsUser) as number | undefined) === 0) out.push(`${c.name}: runs as root`);
    const drop = ((sc.capabilities as Obj | undefined)?.drop as string[] | undefined) ?? [];
    if (!drop.includes('ALL')) out.push(`${c.name}: capabilities must drop ALL`);
    if ((((sc.capabilities as Obj | undefined)?.add as string[] | undefined) ?? []).some((a) => a !== 'NET_BIND_SERVICE')) out.push(`${c.name}: adds capabilities`);
    const seccomp = ((sc.seccompProfile ?? pod.seccompProfile) as Obj | undefined)?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`${c.name}: seccompProfile must be RuntimeDefault`);
    if (sc.readOnlyRootFilesystem !== true) out.push(`${c.name}: root filesystem must be read-only`);
  }
  return out;
}

function allRules(set: string): { kind: string; namespace?: string; rules: Rule[] }[] {
  return objectsOf(set)
    .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')
    .map((o) => ({ kind: o.kind, namespace: o.metadata.namespace, rules: (o as Obj).rules as Rule[] }));
}

beforeAll(async () => {
  await Promise.all(SETS.map(async (s) => rendered.set(s.name, await renderChart(s.opts))));
}, 180_000);

describe.each(SETS)('chart with $name', ({ name, opts }) => {
  it.skipIf(withHelm)('values pass values.schema.json', async () => {
    const validate = await valuesSchema();
    expect(validate(await computedValues(opts)) ? [] : validate.errors).toEqual([]);
  });

  it('renders objects that pass their Kubernetes schemas, strict fields, and the CRDs’ schemas', async () => {
    const validators = await loadCrdValidators(join(CHART_DIR, 'crds'));
    const problems: string[] = [];
    for (const { source, object } of rendered.get(name)!.objects) {
      expect(object.apiVersion && object.kind && object.metadata?.name, `${source}: apiVersion, kind and metadata.name`).toBeTruthy();
      const errors = object.apiVersion.startsWith('gitopsreverser.io/') ? customResourceErrors(object, validators) : await builtInSchemaErrors(object);
      problems.push(...errors.map((e) => `${source} ${object.kind} ${object.metadata.name}: ${e}`));
    }
    expect(problems).toEqual([]);
  });

  it('names each object once, namespaced objects in the release namespace', () => {
    const objects = objectsOf(name);
    const keys = objects.map((o) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(keys.length).toBe(new Set(keys).size);
    const clusterScoped = new Set(['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'ClusterProvider', 'ClusterWatchRule']);
    for (const o of objects.filter((x) => !clusterScoped.has(x.kind) && x.kind !== 'Role' && x.kind !== 'RoleBinding')) {
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(NAMESPACE);
    }
    expect(objectsOf(name, 'CustomResourceDefinition').map((c) => c.metadata.name).sort()).toEqual([
      'clusterproviders.gitopsreverser.io', 'clusterwatchrules.gitopsreverser.io', 'gitproviders.gitopsreverser.io', 'gittargets.gitopsreverser.io', 'watchrules.gitopsreverser.io',
    ]);
  });

  it('runs restricted pods with probes and writable volumes only where needed', () => {
    const deployment = one(name, 'Deployment');
    const spec = podSpec(deployment);
    expect(restrictedViolations(spec)).toEqual([]);
    const [container] = spec.containers;
    expect((container.readinessProbe as Obj).httpGet).toMatchObject({ path: '/readyz', port: 'http' });
    expect((container.livenessProbe as Obj).httpGet).toMatchObject({ path: '/healthz', port: 'http' });
    expect((container.startupProbe as Obj).httpGet).toMatchObject({ path: '/healthz' });
    expect(container.resources).toMatchObject({ requests: { cpu: expect.any(String), memory: expect.any(String) }, limits: { memory: expect.any(String) } });
    // The read-only root has exactly two writable places: DATA_DIR (Git mirrors) and /tmp.
    const mounts = (container.volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[]).filter((m) => !m.readOnly);
    expect(mounts.map((m) => m.mountPath).sort()).toEqual(['/tmp', '/var/lib/gitops-reverser']);
    expect(envOf(container).get('DATA_DIR')?.value).toBe('/var/lib/gitops-reverser');
    for (const sts of objectsOf(name, 'StatefulSet')) expect(restrictedViolations(podSpec(sts))).toEqual([]);
    const spread = (spec.topologySpreadConstraints as { topologyKey: string }[]).map((t) => t.topologyKey);
    expect(spread).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
  });

  it('keeps replicas through disruptions: PDB over the same pods, no surge below the wanted count', () => {
    const deployment = one(name, 'Deployment');
    const pdb = one(name, 'PodDisruptionBudget');
    const replicas = (deployment.spec as Obj).replicas as number;
    expect(replicas).toBeGreaterThanOrEqual(2);
    expect(((pdb.spec as Obj).selector as Obj).matchLabels).toEqual(((deployment.spec as Obj).selector as Obj).matchLabels);
    expect((pdb.spec as Obj).minAvailable as number).toBeLessThan(replicas);
    expect((((deployment.spec as Obj).strategy as Obj).rollingUpdate as Obj).maxUnavailable).toBe(0);
    expect((pdb.spec as Obj).unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
    // SIGTERM closes the listener: the pod first waits out its removal from the Service's endpoints.
    const [container] = podSpec(deployment).containers;
    expect(((container.lifecycle as Obj).preStop as Obj).exec).toEqual({ command: ['sleep', '5'] });
    expect(podSpec(deployment).terminationGracePeriodSeconds as number).toBeGreaterThanOrEqual(30);
    // Both Valkey sides restart together when its password changes.
    const annotations = (((deployment.spec as Obj).template as Obj).metadata as Obj).annotations as Record<string, string>;
    expect(Object.keys(annotations)).toEqual(expect.arrayContaining(['checksum/dashboard', 'checksum/valkey-secret']));
  });

  it('sets only environment variables the service reads, and the service accepts them', async () => {
    const [container] = podSpec(one(name, 'Deployment')).containers;
    const env = envOf(container);
    // The user's extraEnv (e.g. git's own GIT_SSL_CAINFO) is theirs to choose.
    const extra = (((await computedValues(opts))?.extraEnv ?? []) as { name: string }[]).map((e) => e.name);
    const known = new Set([...ENV_VARIABLES, 'HOME', 'TMPDIR', ...extra]);
    expect([...env.keys()].filter((k) => !known.has(k))).toEqual([]);
    // Secret and field references stand in with plausible values; readEnv applies the service's own checks.
    const values = Object.fromEntries(
      [...env].map(([k, e]) => [k, e.value ?? (k.includes('USERNAME') ? 'a-user' : k.includes('PASSWORD') ? 'a-long-password' : 'pod-0')]),
    );
    const parsed = readEnv({ ...values, KUBERNETES_SERVICE_HOST: '10.0.0.1' });
    expect(parsed.CONFIG_SOURCE).toBe('kubernetes');
  });

  it('grants least privilege: no wildcard, status but not objects of its own kinds, Secrets by get only', () => {
    const rules = allRules(name).flatMap((r) => r.rules);
    expect(rules.filter((r) => [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs].includes('*'))).toEqual([]);
    const writes = rules.filter((r) => r.verbs.some((v) => !['get', 'list', 'watch'].includes(v)));
    expect(writes).toEqual([{ apiGroups: ['gitopsreverser.io'], resources: expect.arrayContaining(['gittargets/status']), verbs: ['patch'] }]);
    expect(writes[0]?.resources?.every((r) => r.endsWith('/status'))).toBe(true);
    const secretRules = rules.filter((r) => r.resources?.includes('secrets'));
    for (const r of secretRules) expect(r.verbs).toEqual(['get']);
    const binding = one(name, 'ClusterRoleBinding');
    expect((binding.subjects as Obj[])[0]).toMatchObject({ kind: 'ServiceAccount', name: one(name, 'ServiceAccount').metadata.name, namespace: NAMESPACE });
  });

  it('serves the webhook, dashboard and metrics on one Service port', () => {
    const service = one(name, 'Service', 'gitops-reverser');
    expect((service.spec as Obj).ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
    expect((service.spec as Obj).selector).toEqual(((one(name, 'Deployment').spec as Obj).selector as Obj).matchLabels);
  });

  it('renders NOTES.txt that says what to do next', () => {
    const notes = rendered.get(name)!.notes;
    expect(notes).toContain('/audit-webhook/<ClusterProvider name>');
    expect(notes).toContain('/admin/overview');
    expect(notes).toContain('rollout status deployment/gitops-reverser');
    expect(notes).not.toContain('<no value>');
  });
});

describe('chart specifics', () => {
  const container = (set: string) => podSpec(one(set, 'Deployment')).containers[0];

  it('defaults: external Valkey at valkey:6379, viewer credentials generated, read-only dashboard, 2 replicas', () => {
    const env = envOf(container('default values'));
    expect(env.get('VALKEY_URL')?.value).toBe('redis://valkey:6379');
    expect(env.has('VALKEY_PASSWORD')).toBe(false);
    expect(objectsOf('default values', 'StatefulSet')).toEqual([]);
    expect(env.get('DASHBOARD_READ_ONLY')?.value).toBe('true');
    expect(env.get('DASHBOARD_PASSWORD')?.valueFrom).toEqual({ secretKeyRef: { name: 'gitops-reverser-dashboard', key: 'password' } });
    const secret = one('default values', 'Secret', 'gitops-reverser-dashboard');
    expect(Buffer.from((secret.data as Record<string, string>).password ?? '', 'base64').toString()).toMatch(/^[A-Za-z0-9]{32}$/);
    expect((one('default values', 'Deployment').spec as Obj).replicas).toBe(2);
    expect(objectsOf('default values', 'NetworkPolicy')).toEqual([]);
    expect(objectsOf('default values', 'ServiceMonitor')).toEqual([]);
  });

  it('bundled Valkey: StatefulSet with a PVC, AOF everysec, noeviction, maxmemory script, valkey-cli probes, TLS and auth', () => {
    const set = 'bundled Valkey with auth and TLS';
    const sts = one(set, 'StatefulSet', 'gitops-reverser-valkey');
    expect((sts.spec as Obj).replicas).toBe(1);
    const [claim] = (sts.spec as Obj).volumeClaimTemplates as [Obj];
    expect(claim.spec).toMatchObject({ accessModes: ['ReadWriteOnce'], storageClassName: 'fast-ssd', resources: { requests: { storage: '20Gi' } } });
    const config = (one(set, 'ConfigMap', 'gitops-reverser-valkey').data as Record<string, string>);
    expect(config['valkey.conf']).toMatch(/^appendonly yes$/m);
    expect(config['valkey.conf']).toMatch(/^appendfsync everysec$/m);
    expect(config['valkey.conf']).toMatch(/^maxmemory-policy noeviction$/m);
    expect(config['valkey.conf']).toMatch(/^tls-port 6379$/m);
    expect(config['valkey.conf']).toMatch(/^port 0$/m);
    expect(config['start.sh']).toContain('memory.max');
    const [valkey, exporter] = podSpec(sts).containers as [Container, Container];
    expect(valkey.command).toEqual(['/bin/sh', '/etc/valkey/start.sh']);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect((valkey[probe] as Obj).exec).toEqual({ command: ['/bin/sh', '/etc/valkey/ping.sh'] });
    expect(config['ping.sh']).toContain('valkey-cli "$@" -h 127.0.0.1 -p 6379 ping');
    expect(config['ping.sh']).toContain('--tls --cacert /etc/valkey-tls/ca.crt');
    expect(exporter.name).toBe('exporter');
    expect(envOf(valkey).get('VALKEY_PASSWORD')?.valueFrom).toEqual({ secretKeyRef: { name: 'valkey-auth', key: 'valkey-password' } });
    // One connection contract: the service reaches the same server with the same Secret and the TLS CA.
    const env = envOf(container(set));
    expect(env.get('VALKEY_URL')?.value).toBe(`rediss://gitops-reverser-valkey.${NAMESPACE}.svc:6379`);
    expect(env.get('VALKEY_PASSWORD')?.valueFrom).toEqual({ secretKeyRef: { name: 'valkey-auth', key: 'valkey-password' } });
    expect(env.get('VALKEY_TLS_CA_FILE')?.value).toBe('/etc/gitops-reverser/valkey-ca/ca.crt');
    const caVolume = podSpec(one(set, 'Deployment')).volumes?.find((v) => v.name === 'valkey-ca');
    expect(caVolume).toEqual({ name: 'valkey-ca', secret: { secretName: 'valkey-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
    expect(env.get('TLS_CERT_FILE')?.value).toBe('/etc/gitops-reverser/tls/tls.crt');
    expect(env.get('TLS_CLIENT_CA_FILE')?.value).toBe('/etc/gitops-reverser/client-ca/ca.crt');
    expect(((container(set).readinessProbe as Obj).httpGet as Obj).scheme).toBe('HTTPS');
    expect(env.get('DASHBOARD_OPERATOR_PASSWORD')?.valueFrom).toEqual({ secretKeyRef: { name: 'gitops-reverser-dashboard', key: 'operator-password' } });
    expect(objectsOf(set, 'Secret').map((s) => s.metadata.name)).toEqual(['gitops-reverser-dashboard']);
  });

  it('external Valkey: rediss:// address, ACL user, password and CA from Secrets; nothing bundled', () => {
    const set = 'external Valkey';
    const env = envOf(container(set));
    expect(env.get('VALKEY_URL')?.value).toBe('rediss://valkey.data.svc.cluster.local:6380');
    expect(env.get('VALKEY_USERNAME')?.value).toBe('gitops-reverser');
    expect(env.get('VALKEY_PASSWORD')?.valueFrom).toEqual({ secretKeyRef: { name: 'valkey-credentials', key: 'password' } });
    expect(env.get('VALKEY_TLS_CA_FILE')?.value).toBe('/etc/gitops-reverser/valkey-ca/ca.crt');
    expect(objectsOf(set).filter((o) => o.metadata.name.includes('valkey'))).toEqual([]);
    // dashboard.auth.existingSecret: the chart makes no Secret of its own and reads the user's.
    expect(objectsOf(set, 'Secret')).toEqual([]);
    expect(env.get('DASHBOARD_USERNAME')?.valueFrom).toEqual({ secretKeyRef: { name: 'dashboard-credentials', key: 'username' } });
  });

  it('monitoring and network policy: ServiceMonitors, policies that admit only what is needed, Roles per namespace', () => {
    const set = 'monitoring and network policy';
    const monitors = objectsOf(set, 'ServiceMonitor');
    expect(monitors.map((m) => m.metadata.name).sort()).toEqual(['gitops-reverser', 'gitops-reverser-valkey']);
    expect(((monitors.find((m) => m.metadata.name === 'gitops-reverser') as Obj).metadata as Obj).labels).toMatchObject({ release: 'kube-prometheus-stack' });
    const policy = one(set, 'NetworkPolicy', 'gitops-reverser');
    const egress = (policy.spec as Obj).egress as { ports: { port: number }[]; to?: Obj[] }[];
    expect(egress.map((e) => e.ports.map((p) => p.port))).toEqual([[53, 53], [6379], [443, 6443], [443, 22]]);
    expect(egress[1]?.to).toEqual([{ podSelector: { matchLabels: expect.objectContaining({ 'app.kubernetes.io/component': 'valkey' }) } }]);
    // The API server and the Git hosts are separate peers: narrowing Git never cuts off the configuration.
    expect(egress[2]?.to).toEqual([{ ipBlock: { cidr: '10.0.0.1/32' } }]);
    expect(egress[3]?.to).toEqual([{ ipBlock: { cidr: '10.0.0.0/8' } }, { ipBlock: { cidr: '140.82.112.0/20' } }]);
    const valkeyPolicy = one(set, 'NetworkPolicy', 'gitops-reverser-valkey');
    expect((valkeyPolicy.spec as Obj).egress).toEqual([]);
    const rules = allRules(set);
    expect(rules.filter((r) => r.kind === 'Role').map((r) => r.namespace)).toEqual(['payments', 'platform', 'shop']);
    const cluster = rules.find((r) => r.kind === 'ClusterRole')!.rules;
    expect(cluster).toContainEqual({ apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: ['get', 'list', 'watch'] });
    const shop = rules.find((r) => r.namespace === 'shop')!.rules;
    expect(shop).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
    ]);
    expect(rules.find((r) => r.namespace === 'platform')!.rules).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: ['git-credentials', 'audit-token'] }]);
    expect(objectsOf(set).filter((o) => o.apiVersion.startsWith('gitopsreverser.io/')).map((o) => o.kind).sort()).toEqual(['ClusterProvider', 'GitProvider', 'GitTarget', 'WatchRule']);
  });

  it('3 replicas: PDB keeps two, hard spread over nodes, image pinned by digest', () => {
    const set = '3 replicas';
    expect((one(set, 'Deployment').spec as Obj).replicas).toBe(3);
    expect((one(set, 'PodDisruptionBudget').spec as Obj).minAvailable).toBe(2);
    const [host] = podSpec(one(set, 'Deployment')).topologySpreadConstraints as [Obj];
    expect(host.whenUnsatisfiable).toBe('DoNotSchedule');
    expect(container(set).image).toBe('ghcr.io/gitops-reverser/gitops-reverser@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
  });
});

describe('chart refusals and the wider RBAC mode', () => {
  const schemaErrors = async (set: Record<string, string>) => {
    const validate = await valuesSchema();
    return validate(await computedValues({ set })) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
  };

  it('rbac.readMode=all grants one read-only wildcard rule and nothing else wider', async () => {
    const chart = await renderChart({ set: { 'rbac.readMode': 'all' } });
    const role = chart.objects.find((o) => o.object.kind === 'ClusterRole')!.object as Obj;
    const wildcards = (role.rules as Rule[]).filter((r) => r.resources?.includes('*'));
    expect(wildcards).toEqual([{ apiGroups: ['*'], resources: ['*'], verbs: ['get', 'list', 'watch'] }]);
  });

  it.skipIf(withHelm)('keeps generated passwords across an upgrade: lookup finds the Secrets the install made, pods do not roll', async () => {
    const set = { 'valkey.enabled': 'true', 'dashboard.auth.operator.enabled': 'true' };
    const install = await renderChart({ set });
    const secretsOf = (chart: RenderedChart) => chart.objects.filter((o) => o.object.kind === 'Secret').map((o) => o.object as KubeObject & { data: Record<string, string> });
    const dir = await mkdtemp(join(tmpdir(), 'gr-chart-upgrade-'));
    try {
      const cluster = join(dir, 'cluster.yaml');
      await writeFile(cluster, secretsOf(install).map((s) => stringify(s)).join('---\n'));
      const upgrade = await renderChart({ set, clusterObjects: cluster });
      expect(secretsOf(upgrade)).toEqual(secretsOf(install));
      expect(secretsOf(install).map((s) => s.metadata.name).sort()).toEqual(['gitops-reverser-dashboard', 'gitops-reverser-valkey']);
      const annotations = (chart: RenderedChart) =>
        chart.objects.filter((o) => o.object.kind === 'Deployment' || o.object.kind === 'StatefulSet').map((o) => (((o.object as Obj).spec as Obj).template as { metadata: Obj }).metadata.annotations);
      expect(annotations(upgrade)).toEqual(annotations(install));
      // One generated password per render: the service and Valkey checksum the same Secret.
      const [service, valkey] = annotations(install) as [Record<string, string>, Record<string, string>];
      expect(service['checksum/valkey-secret']).toBe(valkey['checksum/secret']);
      // A password given in the values still wins over the one in the cluster.
      const given = await renderChart({ set: { ...set, 'valkey.auth.password': 'a-new-valkey-password' }, clusterObjects: cluster });
      const valkeySecret = secretsOf(given).find((s) => s.metadata.name === 'gitops-reverser-valkey');
      expect(Buffer.from(valkeySecret?.data.password ?? '', 'base64').toString()).toBe('a-new-valkey-password');
      // Without a cluster (helm template) each render generates anew: why GitOps installs give the passwords.
      expect(secretsOf(await renderChart({ set }))).not.toEqual(secretsOf(install));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps generated names within Kubernetes limits for long release names', async () => {
    const chart = await renderChart({ releaseName: 'a-very-long-release-name-for-platform-team-x', set: { 'valkey.enabled': 'true' } });
    // DNS labels (63) for what becomes a host or label; RBAC objects take path-segment names (253).
    const rbacKinds = new Set(['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'CustomResourceDefinition']);
    const names = chart.objects.filter((o) => !rbacKinds.has(o.object.kind)).map((o) => o.object.metadata.name);
    expect(names.filter((n) => n.length > 63)).toEqual([]);
    expect(chart.objects.filter((o) => o.object.metadata.name.length > 253)).toEqual([]);
    const sts = chart.objects.find((o) => o.object.kind === 'StatefulSet')!.object;
    // Pods of a StatefulSet carry controller-revision-hash = name + "-" + 10 characters, a label of at most 63.
    expect(sts.metadata.name.length).toBeLessThanOrEqual(52);
  });

  it('names the missing value when a mode needs one', async () => {
    await expect(renderChart({ set: { 'valkey.external.username': 'gr' } })).rejects.toThrow(
      'valkey.external.username needs valkey.external.existingSecret: an ACL user always authenticates with a password',
    );
    await expect(renderChart({ set: { 'valkey.enabled': 'true', 'valkey.auth.mode': 'existingSecret' } })).rejects.toThrow(
      'valkey.auth.existingSecret is required when valkey.auth.mode is existingSecret',
    );
    await expect(renderChart({ set: { 'webhook.tls.enabled': 'true' } })).rejects.toThrow('webhook.tls.secretName is required when webhook.tls.enabled is true');
    await expect(renderChart({ set: { 'valkey.enabled': 'true', 'valkey.tls.enabled': 'true' } })).rejects.toThrow('valkey.tls.secretName is required');
    await expect(renderChart({ set: { 'serviceAccount.create': 'false' } })).rejects.toThrow('serviceAccount.name is required when serviceAccount.create is false');
  });

  it('declares the Kubernetes its CRDs need (CEL rules, on by default from 1.25): 1.24 refused as helm refuses it, 1.25 and vendor builds render', async () => {
    await expect(renderChart({ kubeVersion: '1.24.17' })).rejects.toThrow('chart requires kubeVersion: >=1.25.0-0 which is incompatible with Kubernetes v1.24.17');
    const oldest = await renderChart({ kubeVersion: '1.25.0' });
    const crds = oldest.objects.filter((o) => o.object.kind === 'CustomResourceDefinition');
    expect(crds.filter((o) => JSON.stringify(o.object).includes('"x-kubernetes-validations"')).map((o) => o.object.metadata.name).sort()).toEqual([
      'clusterproviders.gitopsreverser.io',
      'gittargets.gitopsreverser.io',
    ]);
    // The PDB's unhealthyPodEvictionPolicy is on by default from 1.27: 1.26 drops it (feature gate off), 1.25 does not know it.
    const pdbSpec = (chart: RenderedChart) => (chart.objects.find((o) => o.object.kind === 'PodDisruptionBudget')!.object as Obj).spec as Obj;
    expect(pdbSpec(oldest)).not.toHaveProperty('unhealthyPodEvictionPolicy');
    expect(pdbSpec(await renderChart({ kubeVersion: 'v1.26.15-gke.1090000' }))).not.toHaveProperty('unhealthyPodEvictionPolicy');
    expect(pdbSpec(await renderChart({ kubeVersion: 'v1.27.16-eks-2f46c53' })).unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
  });

  it.skipIf(withHelm)('values.schema.json refuses wildcard grants, zero replicas, typos and a bad Valkey address', async () => {
    expect(await schemaErrors({ 'rbac.read[0].apiGroups[0]': '*', 'rbac.read[0].resources[0]': 'pods' })).toEqual(['/rbac/read/0/apiGroups/0 must NOT be valid']);
    expect(await schemaErrors({ replicaCount: '0' })).toEqual(['/replicaCount must be >= 1']);
    expect(await schemaErrors({ replicas: '3' })).toEqual([' must NOT have additional properties']);
    expect(await schemaErrors({ 'valkey.external.address': 'redis://valkey' })).toEqual(['/valkey/external/address must match pattern "^[^:/\\s]+:[0-9]+$"']);
    expect(await schemaErrors({ 'valkey.maxmemoryPercent': '99' })).toEqual(['/valkey/maxmemoryPercent must be <= 95']);
  });
});
