// The audit webhook as API servers send it: kubectl, as three impersonated users, creates, applies (twice,
// with a change), patches, replaces, scales and deletes a Deployment, a ConfigMap and a Secret through a real
// kube-apiserver 1.20.2 that runs with the chart's files/audit-policy.yaml and files/audit-webhook-kubeconfig.yaml
// (test/support/kube-control-plane.ts fills its placeholders) and sends its batches over TLS to the service.
// Then:
// - each file equals what kubectl sent (the manifests, with the edits) made into a file (sanitizeObject: no
//   status, uid, managedFields, last-applied annotation, and none of the defaults the server filled in);
// - the history is the sequence of changes, each commit by the user who made it, with the file as it was
//   then; an `apply` that changes nothing, a `--dry-run=server` apply and a change of a Secret's value alone
//   make no commit;
// - no Secret value reaches Git, a log line or Valkey (plaintext or base64);
// - the same objects seen by a watch (cluster provider w1, same API server) get the same bytes, and a
//   reconcile of the audited target afterwards changes nothing: one object, one content, whichever path.
// A batch of this API server now and then arrives many seconds late (KUBE-APISERVER.md): every wait is
// generous, and a miss says whether the API server delivered anything meanwhile.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { openConnection } from '../../queues/connection.js';
import { sanitizeObject, toCanonicalYaml } from '../../core/sanitize.js';
import { startAuditedCluster, type AuditedCluster } from '../support/audited-cluster.js';
import { commitLog, git, treeFiles, waitFor, type CommitInfo } from '../support/git-repos.js';
import { createTestNamespaces } from '../support/kube-control-plane.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const run = promisify(execFile);
const CHART_AUDIT_POLICY = new URL('../../charts/gitops-reverser/files/audit-policy.yaml', import.meta.url);
const TYPES = `
    - operations: ["*"]
      apiGroups: ["apps"]
      resources: ["deployments"]
    - operations: ["*"]
      apiGroups: [""]
      resources: ["configmaps", "secrets"]`;

/** c1: the audit webhook (clusters/c1); w1: the same API server, watched (clusters/w1). Deployments, ConfigMaps, Secrets. */
function config(remote: string): string {
  const target = (cluster: string, provider: string) => `---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitProvider
metadata: { name: ${cluster}-repo, namespace: gitops-reverser }
spec:
  url: ${JSON.stringify(remote)}
  allowedBranches: ["main"]
---
apiVersion: gitopsreverser.io/v1alpha1
kind: GitTarget
metadata: { name: ${cluster}, namespace: gitops-reverser }
spec:
  providerRef: { name: ${cluster}-repo }
  branch: main
  path: clusters/${cluster}
  clusterProviderRef: { name: ${provider} }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterWatchRule
metadata: { name: ${cluster}-types }
spec:
  targetRef: { name: ${cluster}, namespace: gitops-reverser }
  rules:${TYPES}
`;
  return `apiVersion: v1
kind: Secret
metadata: { name: c1-audit-token, namespace: gitops-reverser }
stringData: { token: "t0ken-c1" }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: c1 }
spec:
  audit:
    tokenSecretRef: { name: c1-audit-token, namespace: gitops-reverser, key: token }
---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: w1 }
spec:
  watch: { enabled: true }
${target('c1', 'c1')}${target('w1', 'w1')}`;
}

type Obj = Record<string, unknown>;
const USERS = ['alice', 'bob', 'carol'] as const;
type User = (typeof USERS)[number];

/** The Deployment as written: v1, then each edit. */
function deployment(edit: { image?: string; tier?: boolean; env?: boolean; limits?: boolean; port?: number; owner?: boolean; replicas?: number } = {}): Obj {
  const container: Obj = { name: 'web', image: edit.image ?? 'nginx:1.27', ports: [{ containerPort: edit.port ?? 80 }], volumeMounts: [{ name: 'cache', mountPath: '/cache' }] };
  if (edit.env) container.env = [{ name: 'MODE', value: 'prod' }];
  if (edit.limits) container.resources = { limits: { memory: '128Mi' } };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels: { app: 'web', ...(edit.tier ? { tier: 'frontend' } : {}) }, ...(edit.owner ? { annotations: { 'example.com/owner': 'team-a' } } : {}) },
    spec: {
      replicas: edit.replicas ?? 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        // `emptyDir: {}` is what people write, and it stays.
        spec: { containers: [container], volumes: [{ name: 'cache', emptyDir: {} }] },
      },
    },
  };
}

interface Step {
  who: User;
  /** The commit subject it makes; undefined: none. */
  subject?: string;
  path: string;
  /** The file after it (null: gone). */
  content: string | null;
}

describe('kubectl through a real API server, its audit webhook and the chart’s files', () => {
  let valkey: TestValkey;
  let cluster: AuditedCluster;
  let ns: string;
  let dir: string;
  const logLines: string[] = [];
  const secrets = { first: `pw-${randomBytes(8).toString('hex')}`, second: `pw-${randomBytes(8).toString('hex')}`, user: `user-${randomBytes(8).toString('hex')}` };

  beforeAll(async () => {
    valkey = await startTestValkey();
    const logs = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString('utf8'));
        done();
      },
    });
    cluster = await startAuditedCluster(valkey.url, {
      config,
      audit: { policy: await readFile(CHART_AUDIT_POLICY, 'utf8') },
      service: { logger: pino({ level: 'debug' }, logs), reconcile: true, dashboardReadOnly: false, leaseTtlMs: 1000 },
    });
    [ns] = (await createTestNamespaces(cluster.cp.kubeConfig, 'kubectl')).names as [string];
    dir = await mkdtemp(join(tmpdir(), 'gr-kubectl-'));
    // The built-in `edit` role has no rules on a control plane without a controller-manager: a role of its own.
    const admin = (...args: string[]) => run('kubectl', ['--kubeconfig', cluster.cp.kubeconfigPath, ...args]);
    await admin('create', 'clusterrole', `${ns}-editor`, '--verb=get,list,watch,create,update,patch,delete', '--resource=deployments.apps,deployments.apps/scale,configmaps,secrets');
    await admin('create', 'rolebinding', 'editors', '-n', ns, `--clusterrole=${ns}-editor`, ...USERS.map((u) => `--user=${u}`));
  }, 180_000);
  afterAll(async () => {
    await cluster?.stop();
    await valkey?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** kubectl as `who` (impersonated by the admin), in the test's namespace. */
  async function kubectl(who: User, ...args: string[]): Promise<string> {
    try {
      return (await run('kubectl', ['--kubeconfig', cluster.cp.kubeconfigPath, '--as', who, '-n', ns, ...args])).stdout;
    } catch (err) {
      throw new Error(`kubectl --as ${who} ${args.join(' ')}: ${String((err as { stderr?: unknown }).stderr ?? err)}`);
    }
  }
  async function manifest(name: string, obj: Obj): Promise<string> {
    const path = join(dir, `${name}.yaml`);
    await writeFile(path, stringify(obj));
    return path;
  }
  /** The file of an object as kubectl sent it: what the service must commit for it. */
  const fileOf = (obj: Obj): string => toCanonicalYaml(sanitizeObject({ ...obj, metadata: { ...(obj.metadata as Obj), namespace: ns } }));

  const received = async (): Promise<number> => (await cluster.service.metrics.eventsReceived.get()).values.find((v) => v.labels.cluster === 'c1')?.value ?? 0;
  const skippedDryRuns = async (): Promise<number> =>
    (await cluster.service.metrics.eventsSkipped.get()).values.find((v) => v.labels.cluster === 'c1' && v.labels.reason === 'dry-run')?.value ?? 0;
  /** The files of the namespace under `prefix`, by path below it. */
  const files = async (prefix: string): Promise<Map<string, string>> => {
    for (;;) {
      // treeFiles lists the branch, then reads each file: a push in between (a file deleted) fails the read.
      const tree = await treeFiles(cluster.remote).catch(() => undefined);
      if (tree) return new Map([...tree.entries()].filter(([path]) => path.startsWith(`${prefix}/${ns}/`)).map(([path, content]) => [path.slice(prefix.length + 1), content]));
    }
  };
  const ingested = async (who: User, verb: string, name: string): Promise<number> =>
    (await cluster.service.ingestQueue.getCompleted(0, -1)).filter((j) => j.data.clusterId === 'c1' && j.data.impersonatedUser?.username === who && j.data.verb === verb && j.data.objectRef.name === name && j.data.objectRef.namespace === ns).length;
  const drained = async (): Promise<boolean> => {
    for (const queue of cluster.service.writeQueues.values()) if (Object.values(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).some((n) => n > 0)) return false;
    return (await cluster.service.ingestQueue.getWaitingCount()) === 0;
  };

  /** Waits for `check` after `act`; a miss says whether the API server delivered anything meanwhile. */
  async function expectAfter(what: string, act: () => Promise<unknown>, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
    const before = await received();
    await act();
    try {
      await waitFor(check, what, timeoutMs);
    } catch (err) {
      if (!String(err).includes('timed out')) throw err;
      const after = await received();
      const jobs = (await cluster.service.ingestQueue.getJobs(['completed', 'failed', 'waiting', 'active', 'delayed'], 0, -1))
        .filter((j) => j.data.objectRef.namespace === ns)
        .map((j) => `${j.data.clusterId}: ${j.data.impersonatedUser?.username ?? j.data.user.username} ${j.data.verb} ${j.data.objectRef.resource}/${j.data.objectRef.name}${j.failedReason ? ` (failed: ${j.failedReason})` : ''}`);
      throw new Error(
        `${what}: not within ${timeoutMs / 1000} s. ` +
          (after === before
            ? `The API server delivered no audit event to c1 meanwhile (events_received_total stayed ${before}): its batch never arrived (KUBE-APISERVER.md), the service did not mishandle it.`
            : `The API server delivered ${after - before} audit events to c1 meanwhile, so the service mishandled them. `) +
          ` Events of the namespace stored: ${JSON.stringify(jobs)}`,
      );
    }
  }

  it('commits what each user did, as the files kubectl sent, and nothing else', async () => {
    const web = `${ns}/apps/deployments/web.yaml`;
    const settings = `${ns}/configmaps/settings.yaml`;
    const creds = `${ns}/secrets/creds.yaml`;
    const steps: Step[] = [];
    const c1Has = (path: string, content: string | null) => async () => ((await files('clusters/c1')).get(path) ?? null) === content;
    /** A step that makes a commit: waits until the file is what it should be. */
    const change = async (who: User, subject: string, path: string, content: string | null, act: () => Promise<unknown>) => {
      steps.push({ who, subject, path, content });
      await expectAfter(`${who}: ${subject}`, act, c1Has(path, content));
    };
    /** A step that must make none: waits until its event was handled (stored, routed, written). */
    const noChange = async (who: User, verb: string, name: string, act: () => Promise<unknown>) => {
      const before = await ingested(who, verb, name);
      await expectAfter(`${who}: ${verb} ${name} (no commit)`, act, async () => (await ingested(who, verb, name)) > before && (await drained()));
    };

    // The Deployment: create, apply unchanged, apply a change, patch, replace, scale.
    const v1 = deployment();
    await change('alice', `CREATE apps/v1 deployments ${ns}/web`, web, fileOf(v1), async () => kubectl('alice', 'create', '-f', await manifest('web-v1', v1)));
    // The first apply only adds kubectl's last-applied annotation, which files leave out.
    await noChange('bob', 'patch', 'web', async () => kubectl('bob', 'apply', '-f', await manifest('web-v1', v1)));
    const v2 = deployment({ image: 'nginx:1.27.1', tier: true, env: true });
    await change('bob', `UPDATE apps/v1 deployments ${ns}/web`, web, fileOf(v2), async () => kubectl('bob', 'apply', '-f', await manifest('web-v2', v2)));
    const patched = deployment({ image: 'nginx:1.27.1', tier: true, env: true, limits: true });
    await change('carol', `UPDATE apps/v1 deployments ${ns}/web`, web, fileOf(patched), () =>
      kubectl('carol', 'patch', 'deployment', 'web', '-p', JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'web', resources: { limits: { memory: '128Mi' } } }] } } } })),
    );
    const v3 = deployment({ image: 'nginx:1.27.1', tier: true, env: true, limits: true, port: 8080, owner: true });
    await change('alice', `UPDATE apps/v1 deployments ${ns}/web`, web, fileOf(v3), async () => kubectl('alice', 'replace', '-f', await manifest('web-v3', v3)));
    const scaled = deployment({ image: 'nginx:1.27.1', tier: true, env: true, limits: true, port: 8080, owner: true, replicas: 4 });
    await change('bob', `UPDATE apps/v1 deployments ${ns}/web`, web, fileOf(scaled), () => kubectl('bob', 'scale', 'deployment', 'web', '--replicas=4'));
    // What the server stored carries its defaults; the file is what people wrote.
    expect((await files('clusters/c1')).get(web)).toBe(
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: web',
        `  namespace: ${ns}`,
        '  labels:',
        '    app: web',
        '    tier: frontend',
        '  annotations:',
        '    example.com/owner: team-a',
        'spec:',
        '  replicas: 4',
        '  selector:',
        '    matchLabels:',
        '      app: web',
        '  template:',
        '    metadata:',
        '      labels:',
        '        app: web',
        '    spec:',
        '      containers:',
        '        - env:',
        '            - name: MODE',
        '              value: prod',
        '          image: nginx:1.27.1',
        '          name: web',
        '          ports:',
        '            - containerPort: 8080',
        '          resources:',
        '            limits:',
        '              memory: 128Mi',
        '          volumeMounts:',
        '            - mountPath: /cache',
        '              name: cache',
        '      volumes:',
        '        - emptyDir: {}',
        '          name: cache',
        '',
      ].join('\n'),
    );
    const stored = JSON.parse(await kubectl('alice', 'get', 'deployment', 'web', '-o', 'json')) as { spec: { template: { metadata: Obj; spec: Obj & { containers: Obj[] } } } };
    expect(stored.spec.template.metadata.creationTimestamp).toBeNull();
    expect(stored.spec.template.spec).toMatchObject({ dnsPolicy: 'ClusterFirst', securityContext: {}, containers: [{ terminationMessagePath: '/dev/termination-log', imagePullPolicy: 'IfNotPresent' }] });

    // A server-side dry run: stored by no one, committed by no one.
    const dryRuns = await skippedDryRuns();
    await expectAfter('carol: apply --dry-run=server (skipped at ingest)', async () => kubectl('carol', 'apply', '--dry-run=server', '-f', await manifest('web-dry', deployment({ image: 'nginx:1.28', replicas: 9 }))), async () => (await skippedDryRuns()) > dryRuns && (await drained()));

    // The ConfigMap: kubectl's generator, then an apply.
    const cm = parse(await kubectl('alice', 'create', 'configmap', 'settings', '--from-literal=color=blue', '--from-literal=size=m', '--dry-run=client', '-o', 'yaml')) as Obj;
    expect(cm.metadata).toMatchObject({ creationTimestamp: null });
    await change('alice', `CREATE v1 configmaps ${ns}/settings`, settings, fileOf(cm), () => kubectl('alice', 'create', 'configmap', 'settings', '--from-literal=color=blue', '--from-literal=size=m'));
    const cm2 = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { color: 'green', size: 'm' } };
    await change('bob', `UPDATE v1 configmaps ${ns}/settings`, settings, fileOf(cm2), async () => kubectl('bob', 'apply', '-f', await manifest('settings', cm2)));

    // The Secret: created by apply (its last-applied annotation holds the plaintext), a key added, a value changed.
    const secretFile = (keys: string[]) =>
      ['apiVersion: v1', 'kind: Secret', 'metadata:', '  name: creds', `  namespace: ${ns}`, 'data:', ...keys.map((k) => `  ${k}: REDACTED`), ''].join('\n');
    await change('alice', `CREATE v1 secrets ${ns}/creds`, creds, secretFile(['password']), async () =>
      kubectl('alice', 'apply', '-f', await manifest('creds', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, stringData: { password: secrets.first } })),
    );
    await change('carol', `UPDATE v1 secrets ${ns}/creds`, creds, secretFile(['password', 'user']), () => kubectl('carol', 'patch', 'secret', 'creds', '-p', JSON.stringify({ stringData: { user: secrets.user } })));
    // Only a value changed: the file (keys, REDACTED) is the same, so no commit.
    await noChange('bob', 'patch', 'creds', () => kubectl('bob', 'patch', 'secret', 'creds', '-p', JSON.stringify({ stringData: { password: secrets.second } })));

    // The watch of the same API server wrote the same bytes for the same objects.
    await waitFor(async () => {
      const [audited, watched] = [await files('clusters/c1'), await files('clusters/w1')];
      return JSON.stringify([...watched]) === JSON.stringify([...audited]);
    }, 'the watched files equal the audited ones', 60_000).catch(async (err: Error) => {
      expect([...(await files('clusters/w1'))], err.message).toEqual([...(await files('clusters/c1'))]);
    });
    // A reconcile of the audited target lists the same objects: nothing to change, no commit.
    const commitsBefore = (await commitLog(cluster.remote)).length;
    await reconcileNow('c1');
    expect((await commitLog(cluster.remote)).length).toBe(commitsBefore);

    // Deletes.
    await change('carol', `DELETE apps/v1 deployments ${ns}/web`, web, null, () => kubectl('carol', 'delete', 'deployment', 'web'));
    await change('bob', `DELETE v1 configmaps ${ns}/settings`, settings, null, () => kubectl('bob', 'delete', 'configmap', 'settings'));
    await change('alice', `DELETE v1 secrets ${ns}/creds`, creds, null, () => kubectl('alice', 'delete', 'secret', 'creds'));
    await waitFor(drained, 'everything written');

    // The history of the audited target is the sequence of changes, by their users, with the files as they were.
    const history = (await commitLog(cluster.remote)).filter((c) => c.body.includes('Cluster: c1') && c.subject.includes(` ${ns}/`));
    expect(history.map((c) => `${c.author} <${c.email}>: ${c.subject}`)).toEqual(steps.map((s) => `${s.who} <${s.who}@c1.cluster.local>: ${s.subject}`));
    for (const [i, step] of steps.entries()) {
      expect(await fileAt(history[i]!, `clusters/c1/${step.path}`), `${step.subject} by ${step.who}`).toBe(step.content);
    }
    // The watch never wrote a content the audit path did not: no object flips between two contents.
    const audited = new Set(steps.map((s) => `${s.path}\n${s.content}`));
    for (const commit of (await commitLog(cluster.remote)).filter((c) => c.body.includes('Cluster: w1') && c.subject.includes(` ${ns}/`))) {
      for (const step of steps) {
        const content = await fileAt(commit, `clusters/w1/${step.path}`);
        if (content !== null) expect(audited.has(`${step.path}\n${content}`), `${commit.subject}: ${content}`).toBe(true);
      }
    }

    // No Secret value anywhere: Git (every object of the repository), the service's log, Valkey.
    const everything = await git(cluster.remote, 'cat-file', '--batch-all-objects', '--batch');
    const logs = logLines.join('');
    const inValkey = await valkeyText();
    for (const value of Object.values(secrets)) {
      for (const form of [value, Buffer.from(value).toString('base64')]) {
        expect(everything.includes(form), `${form} in Git`).toBe(false);
        expect(logs.includes(form), `${form} in a log line`).toBe(false);
        expect(inValkey.includes(form), `${form} in Valkey`).toBe(false);
      }
    }
    // The log is the service's, at debug: it did log the Secret's events.
    expect(logs).toContain('"level":20');
  }, 600_000);

  /** The content of `path` in `commit`; null when absent. */
  async function fileAt(commit: CommitInfo, path: string): Promise<string | null> {
    return git(cluster.remote, 'show', `${commit.sha}:${path}`).catch(() => null);
  }

  /** Asks for a reconcile of target gitops-reverser/<name> and waits until its run finished and its writes were handled. */
  async function reconcileNow(name: string): Promise<void> {
    const connection = openConnection(valkey.url);
    const parents = new Queue('reconcile', { connection, prefix: cluster.service.prefix });
    try {
      const before = (await parents.getJobCounts('completed')).completed ?? 0;
      const url = new URL(`/admin/api/reconcile/gitops-reverser/${name}`, cluster.service.adminUrl);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(url, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json', origin: url.origin } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('{}');
      });
      expect(status).toBe(202);
      await waitFor(async () => ((await parents.getJobCounts('completed')).completed ?? 0) > before, `the reconcile of ${name} finished`, 60_000);
      await waitFor(drained, 'its writes handled');
    } finally {
      await parents.close();
      connection.disconnect();
    }
  }

  /** Every value under the service's prefix in Valkey, as one text. */
  async function valkeyText(): Promise<string> {
    const client = openConnection(valkey.url);
    const out: string[] = [];
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${cluster.service.prefix}*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const type = await client.type(key);
          if (type === 'string') out.push((await client.get(key)) ?? '');
          else if (type === 'hash') out.push(...Object.values(await client.hgetall(key)));
          else if (type === 'list') out.push(...(await client.lrange(key, 0, -1)));
          else if (type === 'set') out.push(...(await client.smembers(key)));
          else if (type === 'zset') out.push(...(await client.zrange(key, 0, -1)));
          else if (type === 'stream') out.push(...(await client.xrange(key, '-', '+')).flatMap(([, fields]) => fields));
        }
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
    return out.join('\n');
  }
});
