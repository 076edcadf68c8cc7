// Git over HTTPS and SSH as users push to real hosts, through the running service: `git http-backend`
// behind TLS asking for basic auth or a bearer token, and Debian's sshd with a deploy key and known_hosts
// (test/support/git-servers.ts). Events posted to the webhook become commits pushed over each transport;
// an unknown or changed host key is refused with an error that says so; wrong credentials show as the
// GitProvider's Reachable=False (AuthenticationFailed) while the writes wait in their queue, and once the
// Secret is fixed every event is pushed, each once.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startKubeConfigSource } from '../../config/sources/kubernetes-source.js';
import { probeRepository } from '../../kube/status/provider-probe.js';
import { openConnection } from '../../queues/connection.js';
import { readTargetProgress } from '../../queues/target-progress.js';
import { auditEvent, eventList } from '../support/audit-events.js';
import type { Condition } from '../support/cluster-service-kit.js';
import {
  clusterProviderObject,
  clusterWatchRuleObject,
  gitProviderObject,
  gitTargetObject,
  secretObject,
  type Obj,
} from '../support/config-objects.js';
import { commitLog, treeFiles, waitFor } from '../support/git-repos.js';
import { pushesTo, sshdMissing, startHttpsGitServer, startSshGitServer, type HttpsGitServer, type SshGitServer } from '../support/git-servers.js';
import { kubeSkipReason, startKubeTarget, type KubeTarget } from '../support/kube-target.js';
import { createTestPki, type TestPki } from '../support/test-pki.js';
import { startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const skip = sshdMissing() ?? (await kubeSkipReason());
if (skip) console.info(`skipped: ${skip}`);

const NS = 'gitops-reverser';
const CLUSTER = 'c1';
const CLUSTER_TOKEN = 't0ken-c1';
const USER = 'bot';
const PASSWORD = 'pa55-w0rd-7c1e';
const TOKEN = 'glpat-3b1f9c0d2e7a4411';

/** The objects of one cluster whose every ConfigMap goes to `url` with the credentials in Secret `git-credentials`. */
function configObjects(url: string, credentials: Record<string, string>, ns = NS, cluster = CLUSTER): Obj[] {
  return [
    secretObject(ns, 'audit-token', { token: CLUSTER_TOKEN }),
    clusterProviderObject(cluster, { audit: { tokenSecretRef: { name: 'audit-token', namespace: ns, key: 'token' } } }),
    secretObject(ns, 'git-credentials', credentials),
    gitProviderObject(ns, 'repo', url, ['main'], 'git-credentials'),
    gitTargetObject(ns, 'fleet', { provider: 'repo', path: `clusters/${cluster}`, cluster }),
    clusterWatchRuleObject(`${cluster}-configmaps`, { namespace: ns, name: 'fleet' }, ['configmaps']),
  ];
}

const configYaml = (objects: Obj[]): string => objects.map((o) => stringify(o)).join('---\n');

function configMapEvents(n: number, namespace = 'team-a'): (Record<string, unknown> & { auditID: string })[] {
  return Array.from({ length: n }, (_, i) =>
    auditEvent('create', { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace, name: `settings-${i}`, body: { data: { n: String(i) } } }, { user: 'alice' }),
  );
}

async function post(serviceUrl: string, events: Record<string, unknown>[], cluster = CLUSTER): Promise<unknown> {
  const res = await fetch(`${serviceUrl}/audit-webhook/${cluster}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CLUSTER_TOKEN}` },
    body: JSON.stringify(eventList(events)),
  });
  return res.json();
}

/** The Audit-ID trailers of the branch's commits, oldest first. */
async function pushedAuditIDs(gitDir: string): Promise<string[]> {
  return (await commitLog(gitDir)).map((c) => /^Audit-ID: (\S+)$/m.exec(c.body)?.[1] ?? `(none in ${c.sha})`);
}

async function waitForCommits(gitDir: string, n: number, what: string): Promise<void> {
  await waitFor(async () => (await commitLog(gitDir)).length >= n, what, 30_000);
}

/** The partition queue of a service with one partition. */
const writeQueue = (s: TestService) => [...s.writeQueues.values()][0]!;

/** Asserts that `n` writes wait in the partition queue: none written, none a dead letter. */
async function writesWait(s: TestService, n: number): Promise<void> {
  const counts = await writeQueue(s).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
  expect({ completed: counts.completed, failed: counts.failed }).toEqual({ completed: 0, failed: 0 });
  expect(counts.waiting! + counts.prioritized! + counts.active! + counts.delayed!).toBe(n);
}

describe.skipIf(skip !== undefined)('Git over HTTPS and SSH', () => {
  let valkey: TestValkey;
  let dir: string;
  let pki: TestPki;
  let ca: string;
  /** `git http-backend` over TLS asking for basic auth (bot / PASSWORD), one asking for a bearer token (TOKEN), sshd. */
  let basic: HttpsGitServer;
  let bearer: HttpsGitServer;
  let ssh: SshGitServer;
  /** Undone after each test, the newest first: services, config sources, objects, environment. */
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gr-transports-'));
    [valkey, pki] = await Promise.all([startTestValkey(), createTestPki(dir)]);
    ca = await readFile(pki.ca.cert, 'utf8');
    [basic, bearer, ssh] = await Promise.all([
      startHttpsGitServer({ pki, auth: { basic: { username: USER, password: PASSWORD } } }),
      startHttpsGitServer({ pki, auth: { bearerToken: TOKEN } }),
      startSshGitServer(),
    ]);
  });
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await Promise.all([basic?.close(), bearer?.close(), ssh?.close()]);
    await valkey?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('through the running service configured by a file', () => {
    async function service(objects: Obj[]): Promise<TestService> {
      const s = await startTestService(valkey.url, () => configYaml(objects), { reconcile: false });
      cleanup.push(() => s.close());
      return s;
    }

    /** Posts three ConfigMaps and waits for their three commits; checks each was pushed once. */
    async function pushesThree(s: TestService, gitDir: string): Promise<void> {
      const events = configMapEvents(3);
      expect(await post(s.url, events)).toEqual({ received: 3, accepted: 3, skipped: {} });
      await waitForCommits(gitDir, 3, 'three commits on the remote');
      expect((await pushedAuditIDs(gitDir)).sort()).toEqual(events.map((e) => e.auditID).sort());
      const files = await treeFiles(gitDir);
      expect([...files.keys()].sort()).toEqual([0, 1, 2].map((i) => `clusters/${CLUSTER}/team-a/configmaps/settings-${i}.yaml`));
      expect(files.get(`clusters/${CLUSTER}/team-a/configmaps/settings-2.yaml`)).toContain('"n": "2"');
      expect((await pushesTo(gitDir)).length).toBeGreaterThanOrEqual(1);
    }

    /** Sets GIT_SSL_CAINFO in the environment the service's git processes inherit, until the test ends. */
    function inheritCaInfo(file: string): void {
      const previous = process.env.GIT_SSL_CAINFO;
      process.env.GIT_SSL_CAINFO = file;
      cleanup.push(async () => {
        if (previous === undefined) delete process.env.GIT_SSL_CAINFO;
        else process.env.GIT_SSL_CAINFO = previous;
      });
    }

    it('pushes over HTTPS with basic auth, trusting the private CA given as ca.crt in the Secret', async () => {
      const repo = await basic.createRepo('team/basic.git');
      const before = basic.requests.length;
      // The Secret's CA is the one for this server even when the service's environment names another
      // (git lets GIT_SSL_CAINFO override any http.*.sslCAInfo configuration).
      inheritCaInfo(join(dir, 'rogue-ca.crt'));
      const s = await service(configObjects(repo.url, { username: USER, password: PASSWORD, 'ca.crt': ca }));
      await pushesThree(s, repo.gitDir);
      const mine = basic.requests.slice(before);
      // The credentials go with every request (as a header, never in the URL): no 401 round trip, as with GitHub.
      expect(mine.every((r) => r.scheme === 'basic' && r.status === 200)).toBe(true);
      expect(basic.receivePacks()).toBeGreaterThanOrEqual(1);
      // A host that takes basic auth only (GitHub and GitLab, for tokens too) refuses a bearer token.
      expect(await probeRepository(repo.url, { bearerToken: PASSWORD, 'ca.crt': ca })).toMatchObject({ reachable: false, reason: 'AuthenticationFailed' });
    });

    it('pushes over HTTPS with a bearer token, trusting the CA named by GIT_SSL_CAINFO in the service\'s environment', async () => {
      const repo = await bearer.createRepo('team/bearer.git');
      const before = bearer.requests.length;
      inheritCaInfo(pki.ca.cert);
      const s = await service(configObjects(repo.url, { bearerToken: TOKEN }));
      await pushesThree(s, repo.gitDir);
      const mine = bearer.requests.slice(before);
      expect(mine.every((r) => r.scheme === 'bearer' && r.status === 200)).toBe(true);
      expect(mine.some((r) => r.method === 'POST' && r.service === 'git-receive-pack')).toBe(true);
    });

    it('pushes over SSH with a deploy key, checking the host key against known_hosts', async () => {
      const repo = await ssh.createRepo('ssh-fleet.git');
      const sessions = ssh.sessions();
      const s = await service(configObjects(repo.url, { identity: ssh.deployKey.privateKey, known_hosts: ssh.knownHosts }));
      await pushesThree(s, repo.gitDir);
      expect(ssh.log()).toContain(`Accepted publickey for ${ssh.user} from 127.0.0.1`);
      expect(ssh.log()).toContain(ssh.deployKey.fingerprint);
      expect(ssh.sessions()).toBeGreaterThan(sessions);
    });

    /** The writer's last error for the target, once there is one. */
    async function lastWriteError(s: TestService): Promise<string> {
      const connection = openConnection(valkey.url);
      cleanup.push(() => connection.quit());
      let message: string | undefined;
      await waitFor(async () => (message = (await readTargetProgress(connection, s.prefix, [`${NS}/fleet`])).get(`${NS}/fleet`)?.lastError?.message) !== undefined, 'the write error');
      return message!;
    }

    it('refuses an HTTPS server whose certificate the given CA did not sign, saying what to fix, and keeps the writes', async () => {
      const repo = await basic.createRepo('team/untrusted.git');
      const before = basic.requests.length;
      // A CA, but not the one that signed the server's certificate (createTestPki makes it beside the real one).
      const credentials = { username: USER, password: PASSWORD, 'ca.crt': await readFile(join(dir, 'rogue-ca.crt'), 'utf8') };
      const s = await service(configObjects(repo.url, credentials));
      expect(await post(s.url, configMapEvents(2))).toEqual({ received: 2, accepted: 2, skipped: {} });
      expect(await lastWriteError(s)).toMatch(/^git fetch https:\/\/127\.0\.0\.1:\d+\/team\/untrusted\.git failed \(exit 128\): fatal: unable to access '[^']+': server certificate verification failed\./);
      const probe = await probeRepository(repo.url, credentials);
      expect(probe).toMatchObject({ reachable: false, reason: 'Unreachable' });
      expect(probe.message).toMatch(
        new RegExp(
          `^git ls-remote ${repo.url.replace(/[.]/g, '\\.')} failed: the server's TLS certificate is not trusted: ` +
            "give the CA that signed it as ca\\.crt in the Secret of spec\\.secretRef \\(git: unable to access '[^']+': server certificate verification failed\\.",
        ),
      );
      // No request got past the TLS handshake: the credentials never left the service.
      expect(basic.requests.length).toBe(before);
      await writesWait(s, 2);
    });

    const GITHUB_KNOWN_HOSTS = 'github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n';

    it('refuses a server whose host key is not in known_hosts, saying so, and keeps the writes', async () => {
      const repo = await ssh.createRepo('unknown-host.git');
      const sessions = ssh.sessions();
      const credentials = { identity: ssh.deployKey.privateKey, known_hosts: GITHUB_KNOWN_HOSTS };
      const s = await service(configObjects(repo.url, credentials));
      expect(await post(s.url, configMapEvents(2))).toEqual({ received: 2, accepted: 2, skipped: {} });
      const host = `[127.0.0.1]:${ssh.port}`;
      expect(await lastWriteError(s)).toBe(
        `git fetch ${repo.url} failed (exit 128): No ED25519 host key is known for ${host} and you have requested strict checking. Host key verification failed. ` +
          'fatal: Could not read from remote repository. Please make sure you have the correct access rights and the repository exists.',
      );
      // What the GitProvider's Reachable condition says.
      expect(await probeRepository(repo.url, credentials)).toEqual({
        reachable: false,
        reason: 'AuthenticationFailed',
        message:
          `git ls-remote ${repo.url} failed: the ssh host key of ${host} is not in known_hosts of the Secret of spec.secretRef: add it (ssh-keyscan) after checking its fingerprint ` +
          `(git: No ED25519 host key is known for ${host} and you have requested strict checking. / Host key verification failed. / Could not read from remote repository.)`,
      });
      // The connection ended at the key exchange: no key was offered, no session ran, nothing was pushed.
      expect(ssh.sessions()).toBe(sessions);
      expect(await commitLog(repo.gitDir)).toEqual([]);
      await writesWait(s, 2);
    });

    it('refuses a server whose host key differs from known_hosts, naming the key it presented', async () => {
      const repo = await ssh.createRepo('changed-host.git');
      const impostor = await ssh.otherKey();
      const host = `[127.0.0.1]:${ssh.port}`;
      const credentials = { identity: ssh.deployKey.privateKey, known_hosts: `${host} ${impostor.publicKey}\n` };
      expect(await probeRepository(repo.url, credentials)).toEqual({
        reachable: false,
        reason: 'AuthenticationFailed',
        message:
          `git ls-remote ${repo.url} failed: the ssh host key of ${host} (ED25519 ${ssh.hostKey.fingerprint}) is not the one known_hosts of the Secret of spec.secretRef names: ` +
          'someone may be intercepting the connection, or the host key was changed (then replace its line) ' +
          `(git: Host key for ${host} has changed and you have requested strict checking. / Host key verification failed. / Could not read from remote repository.)`,
      });
    });
  });

  describe('wrong credentials, then fixed, through the running service configured by the cluster', () => {
    let kube: KubeTarget;
    const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

    beforeAll(async () => {
      kube = await startKubeTarget();
    });
    afterAll(async () => {
      await kube?.stop();
    });

    type Case = {
      name: string;
      repo: () => Promise<{ gitDir: string; url: string }>;
      wrong: () => Promise<Record<string, string>>;
      right: () => Record<string, string>;
      /** What the GitProvider's Reachable condition says with the wrong credentials. */
      message: (url: string) => string;
      /** Times the server refused them so far. */
      refusals: () => number;
    };
    const cases: Case[] = [
      {
        name: 'HTTPS with a wrong password',
        repo: () => basic.createRepo(`team/wrong-${randomBytes(3).toString('hex')}.git`),
        wrong: async () => ({ username: USER, password: 'not-the-password', 'ca.crt': ca }),
        right: () => ({ username: USER, password: PASSWORD, 'ca.crt': ca }),
        message: (url) =>
          `git ls-remote ${url} failed: the credentials were refused: check the Secret of spec.secretRef (git: could not read Username for '${basic.origin}': terminal prompts disabled)`,
        refusals: () => basic.unauthorized(),
      },
      {
        name: 'HTTPS with a revoked bearer token',
        repo: () => bearer.createRepo(`team/wrong-${randomBytes(3).toString('hex')}.git`),
        wrong: async () => ({ bearerToken: 'glpat-revoked-000000', 'ca.crt': ca }),
        right: () => ({ bearerToken: TOKEN, 'ca.crt': ca }),
        message: (url) =>
          `git ls-remote ${url} failed: the credentials were refused: check the Secret of spec.secretRef (git: could not read Username for '${bearer.origin}': terminal prompts disabled)`,
        refusals: () => bearer.unauthorized(),
      },
      {
        name: 'SSH with a key the server does not accept',
        repo: () => ssh.createRepo(`wrong-${randomBytes(3).toString('hex')}.git`),
        wrong: async () => ({ identity: (await ssh.otherKey()).privateKey, known_hosts: ssh.knownHosts }),
        right: () => ({ identity: ssh.deployKey.privateKey, known_hosts: ssh.knownHosts }),
        message: (url) =>
          `git ls-remote ${url} failed: the credentials were refused: check the Secret of spec.secretRef (git: ${ssh.user}@127.0.0.1: Permission denied (publickey). / Could not read from remote repository.)`,
        refusals: () => ssh.log().split('\n').filter((l) => l.startsWith(`Failed publickey for ${ssh.user}`)).length,
      },
    ];

    for (const c of cases) {
      it(`${c.name}: Reachable=False (AuthenticationFailed), the writes wait, and all are pushed once the Secret is fixed`, async () => {
        const repo = await c.repo();
        const ns = await kube.namespace();
        const cluster = `gt-${randomBytes(3).toString('hex')}`;
        const objects = configObjects(repo.url, await c.wrong(), ns, cluster);
        for (const obj of objects) {
          await kube.create(obj);
          cleanup.push(() => kube.remove(obj));
        }
        const source = await startKubeConfigSource({ kubeConfig: kube.kubeConfig(), logger, allowLocalRepositories: false, debounceMs: 50, secretRefreshMs: 300 });
        cleanup.push(() => source.stop());
        // Two attempts: were a refused push counted against a write, it would be a dead letter within seconds.
        const s = await startTestService(valkey.url, () => '', {
          config: undefined,
          configSource: source,
          kubeConfig: kube.kubeConfig(),
          reportStatus: { intervalMs: 300, minIntervalMs: 100 },
          reconcile: false,
          writeAttempts: 2,
          writeBackoffMs: 200,
        });
        cleanup.push(() => s.close());
        const provider = gitProviderObject(ns, 'repo', repo.url);
        const condition = async (): Promise<Condition | undefined> =>
          ((await kube.read(provider)) as (Obj & { status?: { conditions?: Condition[] } }) | undefined)?.status?.conditions?.find((x) => x.type === 'Reachable');
        let reachable: Condition | undefined;
        await waitFor(async () => (reachable = await condition())?.status === 'False', 'Reachable=False', 20_000);
        expect(reachable).toMatchObject({ reason: 'AuthenticationFailed', message: c.message(repo.url) });

        const events = configMapEvents(3, ns);
        expect(await post(s.url, events, cluster)).toEqual({ received: 3, accepted: 3, skipped: {} });
        const refused = c.refusals();
        // The writer tries again and again (more often than the write's attempts), and blames no write.
        await waitFor(async () => c.refusals() >= refused + 3, 'three refused attempts of the writer', 20_000);
        await writesWait(s, 3);
        expect(await commitLog(repo.gitDir)).toEqual([]);

        // The fix: the right credentials in the same Secret, picked up without a restart.
        await kube.patch(secretObject(ns, 'git-credentials', c.right()));
        await waitForCommits(repo.gitDir, 3, 'the three commits once the credentials are right');
        await waitFor(async () => (reachable = await condition())?.status === 'True', 'Reachable=True', 20_000);
        expect((await pushedAuditIDs(repo.gitDir)).sort()).toEqual(events.map((e) => e.auditID).sort());
        await waitFor(async () => (await writeQueue(s).getJobCounts('completed')).completed === 3, 'the writes completed');
        const counts = await writeQueue(s).getJobCounts('waiting', 'delayed', 'active', 'failed');
        expect(counts).toEqual({ waiting: 0, delayed: 0, active: 0, failed: 0 });
      });
    }
  });
});
