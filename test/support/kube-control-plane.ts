// A real Kubernetes control plane for tests: Debian's etcd + kube-apiserver 1.20.2 (see
// /work/shared/KUBE-APISERVER.md; tools/kube-control-plane/obtain.sh finds or makes the binaries) on free
// loopback ports, in a temp dir of its own. Static token auth (an admin in system:masters plus the
// caller's users), RBAC on, and optionally an audit webhook to the caller's HTTPS receiver.
//
// No controller-manager and no kubelet run: Pods never start, no ServiceAccount tokens or
// kube-root-ca.crt appear (hence the ServiceAccount admission plugin is off), and a deleted namespace
// stays Terminating for good. Tests therefore use fresh, uniquely named namespaces.
//
// Both processes run in process groups of their own (detached) and are killed as groups by stop(), on a
// failed start, and when this process exits: a test run never leaves an API server behind.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { freePort } from '../../queues/embedded-valkey.js';

const OBTAIN = fileURLToPath(new URL('../../tools/kube-control-plane/obtain.sh', import.meta.url));
const CHART_CRDS = fileURLToPath(new URL('../../charts/gitops-reverser/crds/', import.meta.url));

export interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
}

/** A user of the static token file: `Authorization: Bearer <token>` authenticates as `name`. */
export interface ControlPlaneUser {
  name: string;
  token: string;
  groups?: string[];
}

export interface AuditWebhookOptions {
  /** The receiver's URL. Must be https: the API server sends the bearer token over TLS only. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token: string;
  /** PEM file of the CA that signed the receiver's certificate. */
  caFile: string;
  /** An audit policy (YAML text). @defaultValue RequestResponse for mutating verbs, nothing for reads */
  policy?: string;
  /** @defaultValue '1s' (the API server's own default is 30s: far too slow for a test) */
  batchMaxWait?: string;
  /** @defaultValue the API server's (400) */
  batchMaxSize?: number;
  /** @defaultValue false: a test's burst must not be slowed down */
  throttleEnable?: boolean;
  throttleQps?: number;
  throttleBurst?: number;
}

export interface ControlPlaneOptions {
  /** @defaultValue what tools/kube-control-plane/obtain.sh prints */
  binaries?: ControlPlaneBinaries;
  users?: ControlPlaneUser[];
  auditWebhook?: AuditWebhookOptions;
  /** More kube-apiserver flags, appended last (so they win). */
  extraApiserverArgs?: string[];
  /** @defaultValue 60_000 */
  readyTimeoutMs?: number;
}

export interface ControlPlane {
  /** A kubeconfig file (admin token, insecure-skip-tls-verify) for kubectl and client-node. */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** etcd's client URL, http://127.0.0.1:<port>: its v3 HTTP gateway compacts history on demand (compactEtcd). */
  etcdUrl: string;
  adminToken: string;
  kubeConfig: KubeConfig;
  /** The last output of each process, for failure messages. */
  logs(): { etcd: string; apiserver: string };
  /** Kills both process groups and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Runs obtain.sh (cached after the first call on a machine: a sha256 check, well under a second). */
export function obtainControlPlaneBinaries(): ControlPlaneBinaries {
  const res = spawnSync('bash', [OBTAIN], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (res.status !== 0) throw new Error(`${OBTAIN} failed (exit ${res.status}):\n${(res.stderr ?? '').trim()}`);
  const found = Object.fromEntries(
    res.stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  if (!found.KUBE_APISERVER || !found.ETCD) throw new Error(`${OBTAIN} printed no KUBE_APISERVER/ETCD lines:\n${res.stdout}${res.stderr}`);
  return { kubeApiserver: found.KUBE_APISERVER, etcd: found.ETCD };
}

const DEFAULT_AUDIT_POLICY = stringify({
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    { level: 'None', verbs: ['get', 'list', 'watch'] },
    { level: 'RequestResponse', verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'] },
  ],
});

/** A process in its own group, with the tail of its output kept. */
interface GroupProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<void>;
  kill(): void;
}

const OUTPUT_TAIL = 32_000;

function spawnGroup(binary: string, args: string[]): GroupProcess {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const keep = (b: Buffer): void => {
    output = (output + b.toString()).slice(-OUTPUT_TAIL);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // A missing binary surfaces as 'error' (no 'exit'); both end the process for our purposes.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      keep(Buffer.from(`spawn ${binary}: ${err.message}\n`));
      resolve();
    });
  });
  return {
    child,
    output: () => output,
    exited,
    kill() {
      if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

/** GET over HTTP(S) with an optional bearer token; resolves with the status (0 when unreachable). */
function probe(url: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { rejectUnauthorized: false, timeout: 2000, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        let body = '';
        res.on('data', (b: Buffer) => (body += b.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

async function waitUntil(what: string, deadline: number, procs: GroupProcess[], check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    const dead = procs.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (dead) throw new Error(`${dead.child.spawnfile} exited (${dead.child.exitCode ?? dead.child.signalCode}) while waiting for ${what}`);
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

// freePort() closes its probe at once, so two calls may name the same port.
async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

// A token goes into a CSV line: no separators, no quotes, no line breaks.
function csvSafe(field: string, what: string): string {
  if (!field || /[",\r\n]/.test(field)) throw new Error(`${what} ${JSON.stringify(field)} cannot go into the token file`);
  return field;
}

function tokenFile(adminToken: string, users: ControlPlaneUser[]): string {
  const line = (token: string, name: string, uid: string, groups: string[]): string =>
    `${csvSafe(token, 'token')},${csvSafe(name, 'user name')},${uid},"${groups.map((g) => csvSafe(g, 'group')).join(',')}"`;
  return [line(adminToken, 'admin', 'admin', ['system:masters']), ...users.map((u) => line(u.token, u.name, u.name, u.groups ?? []))].join('\n') + '\n';
}

const CHART_WEBHOOK_KUBECONFIG = fileURLToPath(new URL('../../charts/gitops-reverser/files/audit-webhook-kubeconfig.yaml', import.meta.url));

interface WebhookKubeconfig {
  'current-context'?: string;
  contexts?: { name?: string; context?: { cluster?: string; user?: string } }[];
  clusters?: { name?: string; cluster?: Record<string, unknown> }[];
  users?: { name?: string; user?: Record<string, unknown> }[];
}

/**
 * The chart's files/audit-webhook-kubeconfig.yaml with its placeholders filled in, as its README tells
 * operators to (server URL, certificate-authority, token of what its current-context selects): every test
 * with an audit webhook proves that file works, and fails here, naming it, should its shape change.
 */
async function webhookKubeconfig(w: AuditWebhookOptions): Promise<string> {
  const doc = parse(await readFile(CHART_WEBHOOK_KUBECONFIG, 'utf8')) as WebhookKubeconfig;
  const context = doc.contexts?.find((c) => c.name === doc['current-context'])?.context;
  const cluster = doc.clusters?.find((c) => c.name === context?.cluster)?.cluster;
  const user = doc.users?.find((u) => u.name === context?.user)?.user;
  const placeholders = cluster && user && [cluster.server, cluster['certificate-authority'], user.token].every((v) => typeof v === 'string');
  if (!cluster || !user || !placeholders || !/^https:\/\/.+\/audit-webhook\/[^/]+$/.test(String(cluster.server))) {
    throw new Error(`${CHART_WEBHOOK_KUBECONFIG}: its current-context must select a cluster with an https server …/audit-webhook/<name> and a certificate-authority, and a user with a token`);
  }
  cluster.server = w.url;
  cluster['certificate-authority'] = w.caFile;
  user.token = w.token;
  return stringify(doc);
}

function clientKubeconfig(server: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'admin', user: { token } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin' } }],
    'current-context': 'test',
  });
}

// Every group still running when this process exits, e.g. a test worker that ends without its afterAll.
const running = new Set<GroupProcess>();
// etcd data dirs in memory (/dev/shm) of control planes not stopped: they would hold memory until a reboot.
const inMemory = new Set<string>();
process.once('exit', () => {
  for (const p of running) p.kill();
  for (const d of inMemory) rmSync(d, { recursive: true, force: true });
});

/** Starts etcd + kube-apiserver; resolves once /readyz answers ok. Retries once on a port taken meanwhile. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      // freePort() only finds a port that was free a moment ago; another test may have taken it since.
      if (attempt < 3 && /address already in use/i.test(String(err))) continue;
      throw err;
    }
  }
}

async function startOnce(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const binaries = opts.binaries ?? obtainControlPlaneBinaries();
  const dir = await mkdtemp(join(tmpdir(), 'gr-kcp-'));
  // etcd syncs every write to disk; in memory (a tmpfs) that costs nothing, and the tests' writes are about
  // three times faster. Its data is a test's, gone with it.
  const etcdDir = existsSync('/dev/shm') ? await mkdtemp(join('/dev/shm', 'gr-kcp-etcd-')) : join(dir, 'etcd');
  inMemory.add(etcdDir);
  const procs: GroupProcess[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const p of procs) p.kill();
      await Promise.all(procs.map((p) => p.exited));
      for (const p of procs) running.delete(p);
      await rm(dir, { recursive: true, force: true });
      await rm(etcdDir, { recursive: true, force: true });
      inMemory.delete(etcdDir);
    })());
  const logs = (): { etcd: string; apiserver: string } => ({ etcd: procs[0]?.output() ?? '', apiserver: procs[1]?.output() ?? '' });

  try {
    const [etcdPort, peerPort, apiPort] = await distinctFreePorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);

    const etcd = spawnGroup(binaries.etcd, [
      '--data-dir', etcdDir,
      '--listen-client-urls', etcdUrl,
      '--advertise-client-urls', etcdUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `default=${peerUrl}`,
    ]);
    procs.push(etcd);
    running.add(etcd);

    // Written while etcd starts.
    const adminToken = randomBytes(16).toString('hex');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await mkdir(join(dir, 'certs'));
    const files = {
      saKey: join(dir, 'sa.key'),
      saPub: join(dir, 'sa.pub'),
      tokens: join(dir, 'tokens.csv'),
      policy: join(dir, 'audit-policy.yaml'),
      webhook: join(dir, 'audit-webhook.kubeconfig'),
      kubeconfig: join(dir, 'kubeconfig'),
    };
    await writeFile(files.saKey, privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
    await writeFile(files.saPub, publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(files.tokens, tokenFile(adminToken, opts.users ?? []), { mode: 0o600 });

    const args = [
      '--etcd-servers', etcdUrl,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      '--secure-port', String(apiPort),
      // A self-signed serving certificate is made here; clients skip verification.
      '--cert-dir', join(dir, 'certs'),
      '--service-cluster-ip-range=10.96.0.0/16',
      '--service-account-issuer=https://kubernetes.default.svc',
      '--service-account-key-file', files.saPub,
      '--service-account-signing-key-file', files.saKey,
      '--api-audiences=https://kubernetes.default.svc',
      '--token-auth-file', files.tokens,
      '--authorization-mode=RBAC',
      // No controller-manager mints ServiceAccount tokens; with this plugin on, Pods could not be created.
      '--disable-admission-plugins=ServiceAccount',
    ];
    const w = opts.auditWebhook;
    if (w) {
      if (!w.url.startsWith('https://')) throw new Error(`audit webhook URL ${w.url}: the API server sends the bearer token over https only`);
      await writeFile(files.policy, w.policy ?? DEFAULT_AUDIT_POLICY);
      await writeFile(files.webhook, await webhookKubeconfig(w), { mode: 0o600 });
      args.push(
        '--audit-policy-file', files.policy,
        '--audit-webhook-config-file', files.webhook,
        '--audit-webhook-mode=batch',
        `--audit-webhook-batch-max-wait=${w.batchMaxWait ?? '1s'}`,
        `--audit-webhook-batch-throttle-enable=${w.throttleEnable ?? false}`,
      );
      if (w.batchMaxSize !== undefined) args.push(`--audit-webhook-batch-max-size=${w.batchMaxSize}`);
      if (w.throttleQps !== undefined) args.push(`--audit-webhook-batch-throttle-qps=${w.throttleQps}`);
      if (w.throttleBurst !== undefined) args.push(`--audit-webhook-batch-throttle-burst=${w.throttleBurst}`);
    }
    args.push(...(opts.extraApiserverArgs ?? []));

    // The API server gives up on an etcd that does not answer, so it starts once etcd is healthy.
    await waitUntil(`etcd at ${etcdUrl}`, deadline, procs, async () => (await probe(`${etcdUrl}/health`)).body.includes('"health":"true"'));
    const apiserver = spawnGroup(binaries.kubeApiserver, args);
    procs.push(apiserver);
    running.add(apiserver);
    const server = `https://127.0.0.1:${apiPort}`;
    await waitUntil(`kube-apiserver at ${server}/readyz`, deadline, procs, async () => (await probe(`${server}/readyz`, adminToken)).status === 200);

    await writeFile(files.kubeconfig, clientKubeconfig(server, adminToken), { mode: 0o600 });
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(files.kubeconfig);
    return { kubeconfigPath: files.kubeconfig, server, etcdUrl, adminToken, kubeConfig, logs, stop };
  } catch (err) {
    const { etcd, apiserver } = logs();
    await stop();
    const tail = (s: string): string => s.trim().split('\n').slice(-15).join('\n');
    throw new Error(`the control plane did not start: ${err instanceof Error ? err.message : String(err)}\n--- etcd:\n${tail(etcd)}\n--- kube-apiserver:\n${tail(apiserver)}`);
  }
}

export interface TestNamespaces {
  names: string[];
  /** Deletes them (they stay Terminating on a control plane without controllers; their names are unique). */
  remove(): Promise<void>;
}

/** `n` fresh namespaces named `<prefix>-<random>-<i>`, for one test file. */
export async function createTestNamespaces(kc: KubeConfig, prefix: string, n = 1): Promise<TestNamespaces> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const id = randomBytes(3).toString('hex');
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${id}-${i}`);
  for (const name of names) await core.createNamespace({ body: { metadata: { name } } });
  return {
    names,
    async remove() {
      await Promise.all(
        names.map((name) =>
          core.deleteNamespace({ name }).catch((err: { code?: number }) => {
            if (err.code !== 404) throw err;
          }),
        ),
      );
    },
  };
}

/**
 * Applies charts/gitops-reverser/crds with kubectl and waits until they are Established.
 *
 * Client-side apply, with --validate=false: 1.20 knows no CEL, so kubectl's validation refuses
 * `x-kubernetes-validations` and server-side apply fails on it ("field not declared in schema"), while a
 * plain create or update stores the CRD without it. Test files applying at the same moment may race on
 * the create (AlreadyExists) or an update (a conflict): applying again settles it.
 */
export async function applyChartCrds(kubeconfigPath: string): Promise<void> {
  const kubectl = (args: string[]) => promisify(execFile)('kubectl', ['--kubeconfig', kubeconfigPath, ...args]);
  for (let attempt = 1; ; attempt++) {
    try {
      await kubectl(['apply', '--validate=false', '-f', CHART_CRDS]);
      break;
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? err);
      if (attempt < 5 && /AlreadyExists|already exists|the object has been modified|Conflict/i.test(stderr)) continue;
      throw new Error(`kubectl apply -f ${CHART_CRDS} failed: ${stderr}`);
    }
  }
  await kubectl(['wait', '--for=condition=Established', '--timeout=30s', '-f', CHART_CRDS]);
}

/**
 * Compacts etcd's history up to its current revision (physically), through etcd v3's HTTP gateway on its
 * client URL: every resourceVersion older than that revision is then "too old" — a paginated list's
 * continue token made before (410 Expired), and a watch from before on a resource the API server serves
 * without a watch cache. The kube-apiserver does the same on its own every 5 minutes. Resolves with the
 * revision compacted at; make a write first when a snapshot taken at the current revision must expire too.
 */
export async function compactEtcd(etcdUrl: string): Promise<number> {
  const call = async (path: string, body: unknown): Promise<{ header?: { revision?: string } }> => {
    const res = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`etcd ${path} answered ${res.status}: ${text}`);
    return JSON.parse(text) as { header?: { revision?: string } };
  };
  // Any read answers with the store's current revision in its header.
  const revision = (await call('/v3/kv/range', { key: Buffer.from('/').toString('base64') })).header?.revision;
  if (!revision) throw new Error(`etcd at ${etcdUrl} named no current revision`);
  try {
    await call('/v3/kv/compaction', { revision, physical: true });
  } catch (err) {
    // Compacted up to there already (by the API server, or another test file at the same moment): done.
    if (!/has been compacted/.test(String(err))) throw err;
  }
  return Number(revision);
}
