// A real API server whose audit webhook feeds the real service: etcd + kube-apiserver 1.20.2
// (kube-control-plane.ts) sending its audit batches over HTTPS, with the cluster's bearer token, to the
// service (in-process, TLS, configuration `c1` writing everything into one bare repository). What users do
// through the API server (here: HTTP requests as static-token users) becomes commits the test reads back.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, createServer, request, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../queues/embedded-valkey.js';
import type { ServiceOptions } from '../../service.js';
import { createBareRemote } from './git-repos.js';
import { obtainControlPlaneBinaries, startControlPlane, type AuditWebhookOptions, type ControlPlane, type ControlPlaneUser } from './kube-control-plane.js';
import { createTestPki } from './test-pki.js';
import { singleClusterConfig, startTestService, type TestService } from './test-service.js';

export interface AuditedCluster {
  cp: ControlPlane;
  service: TestService;
  /** The bare repository the service writes into. */
  remote: string;
  /** Static-token users, each in system:masters: several clients, each with its own name in the audit log. */
  users: ControlPlaneUser[];
  /** One request to the API server as `user` (a keep-alive connection per user): status and parsed body. */
  api(user: ControlPlaneUser, method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  stop(): Promise<void>;
}

export interface AuditedClusterOptions {
  /** Client users to create. @defaultValue 1 */
  users?: number;
  /** Their names, one per user (then `users` is their count). @defaultValue `user-1`, `user-2`, … */
  userNames?: string[];
  /** The API server's audit webhook batching (and policy). */
  audit?: Omit<AuditWebhookOptions, 'url' | 'token' | 'caFile'>;
  /** Options of the service (TLS and the port are set here). */
  service?: Partial<ServiceOptions>;
  /**
   * The service's configuration for the bare repository `remote`; it must keep cluster provider `c1` with
   * token `t0ken-c1` for the audit webhook. @defaultValue singleClusterConfig(remote)
   */
  config?: (remote: string) => string;
  /**
   * Holds the n-th audit batch (from 0) this long before passing it on to the service: a relay between the
   * API server and the service, so batches the API server sends concurrently overtake each other for sure.
   */
  delayBatch?: (n: number) => number;
}

export async function startAuditedCluster(valkeyUrl: string, opts: AuditedClusterOptions = {}): Promise<AuditedCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'gr-audited-'));
  const stops: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const pki = await createTestPki(dir);
    const names = opts.userNames ?? Array.from({ length: opts.users ?? 1 }, (_, i) => `user-${i + 1}`);
    const users = names.map((name): ControlPlaneUser => ({ name, token: randomBytes(16).toString('hex'), groups: ['system:masters'] }));
    // The API server's webhook configuration names the service's URL before the service starts: a port is
    // chosen first, then the control plane, then the service on that port with the control plane's credentials.
    const port = await freePort();
    let webhookPort = port;
    if (opts.delayBatch) {
      const relay = await startDelayingRelay({ key: await readFile(pki.server.key), cert: await readFile(pki.server.cert), ca: await readFile(pki.ca.cert) }, port, opts.delayBatch);
      stops.push(() => relay.close());
      webhookPort = relay.port;
    }
    const cp = await startControlPlane({
      binaries: obtainControlPlaneBinaries(),
      users,
      auditWebhook: { url: `https://127.0.0.1:${webhookPort}/audit-webhook/c1`, token: 't0ken-c1', caFile: pki.ca.cert, ...opts.audit },
    });
    stops.push(() => cp.stop());
    let remote = '';
    const service = await startTestService(
      valkeyUrl,
      async (serviceDir) => {
        remote = await createBareRemote(serviceDir);
        return (opts.config ?? singleClusterConfig)(remote);
      },
      // No reconcile unless asked for: a test counts the commits its own changes make.
      { port, tls: { certFile: pki.server.cert, keyFile: pki.server.key }, kubeConfig: cp.kubeConfig, reconcile: false, ...opts.service },
    );
    stops.push(() => service.close());
    const agents = new Map<string, Agent>();
    stops.push(async () => agents.forEach((a) => a.destroy()));
    const server = new URL(cp.server);
    const api: AuditedCluster['api'] = (user, method, path, body, contentType = 'application/json') =>
      new Promise((resolve, reject) => {
        const agent = agents.get(user.name) ?? agents.set(user.name, new Agent({ keepAlive: true, rejectUnauthorized: false })).get(user.name)!;
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = request(
          {
            host: server.hostname,
            port: server.port,
            method,
            path,
            agent,
            headers: { authorization: `Bearer ${user.token}`, accept: 'application/json', ...(payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}) },
          },
          (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    return { cp, service, remote, users, api, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** An HTTPS relay to the service on `target` that holds the n-th request `delay(n)` ms before passing it on. */
async function startDelayingRelay(tls: { key: Buffer; cert: Buffer; ca: Buffer }, target: number, delay: (n: number) => number): Promise<{ port: number; close(): Promise<void> }> {
  let n = 0;
  const agent = new Agent({ keepAlive: true, ca: tls.ca });
  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      setTimeout(() => {
        const out = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        out.on('error', () => res.writeHead(502).end());
        out.end(Buffer.concat(chunks));
      }, delay(n++));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      server.closeAllConnections();
      agent.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
