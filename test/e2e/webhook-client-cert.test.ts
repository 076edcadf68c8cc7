// Audit webhook authentication by client certificate over the service's own HTTPS listener: the TLS
// layer asks every client for a certificate (verified against TLS_CLIENT_CA_FILE) but lets clients
// without one connect, and the webhook decides per cluster: the CN for a ClusterProvider with
// clientCertificate, the bearer token for one with a token, either for one with both.
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../../dashboard/listen.js';
import { auditEvent, eventList, type ObjectSpec } from '../support/audit-events.js';
import { createTestPki, type KeyPair } from '../support/test-pki.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';
import { clusterSource, startWebhookApp, type WebhookApp } from '../support/webhook-app.js';

const cm: ObjectSpec = { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name: 'app', body: { data: { a: '1' } } };
const CA_TEXT = 'issued by the CA of TLS_CLIENT_CA_FILE';

interface Reply {
  status: number;
  body: { reason?: string; error?: string; accepted?: number };
}

describe('audit webhook over HTTPS with client certificates', () => {
  let dir = '';
  let valkey: TestValkey;
  let app: WebhookApp;
  let ca: Buffer;
  const certs: Record<string, KeyPair> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gr-tls-'));
    const [pki, v] = await Promise.all([createTestPki(dir), startTestValkey()]);
    valkey = v;
    ca = await readFile(pki.ca.cert);
    [certs.a, certs.b, certs.rogueA] = await Promise.all([pki.client('kube-apiserver-a'), pki.client('kube-apiserver-b'), pki.client('kube-apiserver-a', { rogue: true })]);
    app = await startWebhookApp({
      valkeyUrl: valkey.url,
      prefix: uniquePrefix('tls'),
      clusters: [
        clusterSource('cert-only', { clientCommonName: 'kube-apiserver-a' }),
        clusterSource('both', { token: 'both-token', clientCommonName: 'kube-apiserver-b' }),
        clusterSource('token-only', { token: 'token-only-token' }),
      ],
      tls: { certFile: pki.server.cert, keyFile: pki.server.key, clientCaFile: pki.ca.cert },
    });
  });
  afterAll(async () => {
    await app?.close();
    await valkey?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** POSTs one valid audit event as an API server would: its client certificate and/or bearer token. */
  async function post(cluster: string, opts: { cert?: KeyPair; token?: string }): Promise<Reply> {
    const body = JSON.stringify(eventList([auditEvent('create', cm, { user: 'alice' })]));
    const [cert, key] = opts.cert ? await Promise.all([readFile(opts.cert.cert), readFile(opts.cert.key)]) : [undefined, undefined];
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: app.port,
          path: `/audit-webhook/${cluster}`,
          method: 'POST',
          ca,
          cert,
          key,
          // A fresh connection per request: the certificate belongs to the connection, not the request.
          agent: false,
          headers: { 'content-type': 'application/json', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Reply['body'] }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('accepts the client certificate with the CN of the cluster', async () => {
    const before = await app.queued();
    expect(await post('cert-only', { cert: certs.a })).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect(await app.queued()).toBe(before + 1);
  });

  it('401 for a verified certificate with another CN', async () => {
    expect(await post('cert-only', { cert: certs.b })).toEqual({
      status: 401,
      body: {
        reason: 'wrong-client-certificate',
        error: `cluster provider "cert-only" expects a client certificate with CN "kube-apiserver-a" ${CA_TEXT}; got a client certificate with CN "kube-apiserver-b"`,
      },
    });
  });

  it('401 for the right CN from a CA the service does not trust', async () => {
    const r = await post('cert-only', { cert: certs.rogueA });
    expect(r.status).toBe(401);
    expect(r.body.reason).toBe('unverified-client-certificate');
    expect(r.body.error).toMatch(/^cluster provider "cert-only" expects a client certificate with CN "kube-apiserver-a" .*; got a client certificate that is not verified \(.+\)$/);
  });

  it('401 without a certificate, and a bearer token does not stand in for it', async () => {
    const expected = {
      status: 401,
      body: { reason: 'missing-client-certificate', error: `cluster provider "cert-only" expects a client certificate with CN "kube-apiserver-a" ${CA_TEXT}; got no client certificate` },
    };
    expect(await post('cert-only', {})).toEqual(expected);
    expect(await post('cert-only', { token: 'token-only-token' })).toEqual(expected);
  });

  it('a cluster with both accepts either credential', async () => {
    expect((await post('both', { token: 'both-token' })).status).toBe(200);
    expect((await post('both', { cert: certs.b })).status).toBe(200);
    // A right certificate makes up for a wrong token: either is a full credential of that API server.
    expect((await post('both', { cert: certs.b, token: 'nope' })).status).toBe(200);
  });

  it('a cluster with both, given neither, says it expects one of them', async () => {
    expect(await post('both', {})).toEqual({
      status: 401,
      body: { reason: 'missing-credentials', error: `cluster provider "both" expects a bearer token or a client certificate with CN "kube-apiserver-b" ${CA_TEXT}; got no bearer token and no client certificate` },
    });
    expect(await post('both', { token: 'nope', cert: certs.a })).toEqual({
      status: 401,
      body: {
        reason: 'wrong-token',
        error: `cluster provider "both" expects a bearer token or a client certificate with CN "kube-apiserver-b" ${CA_TEXT}; got a wrong bearer token and a client certificate with CN "kube-apiserver-a"`,
      },
    });
  });

  it('token clients connect without a certificate; a certificate does not authenticate a token-only cluster', async () => {
    expect((await post('token-only', { token: 'token-only-token' })).status).toBe(200);
    expect(await post('token-only', { cert: certs.a })).toEqual({
      status: 401,
      body: { reason: 'missing-token', error: 'missing bearer token: send "Authorization: Bearer <token>"' },
    });
  });

  it('metrics count the refusals by cluster', async () => {
    const text = await app.metrics.registry.metrics();
    expect(text).toMatch(/_webhook_requests_rejected_total\{cluster="cert-only",reason="wrong-client-certificate"\} 1$/m);
    expect(text).toMatch(/_webhook_requests_rejected_total\{cluster="cert-only",reason="missing-client-certificate"\} 2$/m);
  });

  it('listen() names the variable of a file it cannot read', async () => {
    const missing = join(dir, 'missing.pem');
    await expect(listen(() => undefined, { port: 0, host: '127.0.0.1', tls: { certFile: missing, keyFile: missing } })).rejects.toThrow(`cannot read TLS_CERT_FILE ${missing}`);
  });
});
