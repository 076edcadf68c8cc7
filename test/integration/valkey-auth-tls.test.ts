// The Valkey connection contract the chart relies on, for an external and the bundled Valkey alike:
// rediss:// VALKEY_URL + VALKEY_USERNAME/VALKEY_PASSWORD (an ACL user, the default user switched off) +
// VALKEY_TLS_CA_FILE. A real server with TLS and ACLs; events sent through the webhook become commits.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnv } from '../../config/env.js';
import { openConnection } from '../../queues/connection.js';
import { findServerBinary, freePort } from '../../queues/embedded-valkey.js';
import { valkeyClientOptions, valkeyClientOptionsFromEnv, ValkeyTlsCaError } from '../../queues/valkey-client-options.js';
import { auditEvent } from '../support/audit-events.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { createTestPki, type TestPki } from '../support/test-pki.js';
import { postToC1, singleClusterConfig, startTestService } from '../support/test-service.js';

const USER = 'gitops-reverser';
const PASSWORD = 'p@ss:w/rd#with%chars';

describe('Valkey over TLS with an ACL user', () => {
  let dir = '';
  let pki: TestPki;
  let server: ChildProcess;
  let url = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gr-valkey-tls-'));
    pki = await createTestPki(dir);
    const port = await freePort();
    // The password as an ACL rule: '>' + password; the default user cannot do anything.
    const acl = join(dir, 'users.acl');
    await writeFile(acl, `user default off\nuser ${USER} on >${PASSWORD} ~* &* +@all\n`);
    const binary = findServerBinary();
    if (!binary) throw new Error('neither valkey-server nor redis-server is on PATH');
    server = spawn(binary, [
      '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
      '--tls-cert-file', pki.server.cert, '--tls-key-file', pki.server.key, '--tls-ca-cert-file', pki.ca.cert,
      '--tls-auth-clients', 'no', '--aclfile', acl, '--save', '', '--appendonly', 'no', '--dir', dir,
      '--maxmemory-policy', 'noeviction',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let serverErrors = '';
    server.stderr?.on('data', (b: Buffer) => (serverErrors += b.toString()));
    url = `rediss://127.0.0.1:${port}`;
    const client = openConnection(url, { ...(await valkeyClientOptions({ username: USER, password: PASSWORD, tlsCaFile: pki.ca.cert })), maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    try {
      await waitFor(async () => {
        if (server.exitCode !== null) throw new Error(`the TLS Valkey exited with ${server.exitCode}: ${serverErrors}`);
        return (await client.ping().catch(() => '')) === 'PONG';
      }, 'the TLS Valkey answers PING', 10_000);
    } finally {
      client.disconnect();
    }
  });
  afterAll(async () => {
    server?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('carries events to commits with the credentials and CA from the environment', async () => {
    const env = readEnv({ VALKEY_URL: url, VALKEY_USERNAME: USER, VALKEY_PASSWORD: PASSWORD, VALKEY_TLS_CA_FILE: pki.ca.cert });
    const valkeyOptions = await valkeyClientOptionsFromEnv(env);
    let remote = '';
    const service = await startTestService(url, async (d) => singleClusterConfig((remote = await createBareRemote(d))), { valkeyOptions });
    try {
      const cm = (name: string) => ({ apiVersion: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespace: 'app', name, body: { data: { k: name } } });
      const events = Array.from({ length: 5 }, (_, i) => auditEvent('create', cm(`cm-${i}`), { user: 'alice' }));
      expect((await postToC1(service.url, events)).status).toBe(200);
      await waitFor(async () => (await commitLog(remote)).length === 5, 'five commits');
      expect((await commitLog(remote)).map((c) => c.author)).toEqual(Array(5).fill('alice'));
    } finally {
      await service.close();
    }
  });

  it('is refused without the CA, and with a wrong password, naming why', async () => {
    const noCa = openConnection(url, { username: USER, password: PASSWORD, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    // iovalkey rejects connect() with "Connection is closed"; the TLS failure itself is the 'error' event.
    const tlsError = new Promise<Error>((resolve) => noCa.once('error', resolve));
    await expect(noCa.connect()).rejects.toThrow();
    expect((await tlsError).message).toMatch(/self[- ]signed|unable to (verify|get local issuer)|certificate/i);
    noCa.disconnect();

    const wrong = openConnection(url, { ...(await valkeyClientOptions({ username: USER, password: 'not-it', tlsCaFile: pki.ca.cert })), maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    const authError = new Promise<Error>((resolve) => wrong.once('error', resolve));
    await expect(wrong.connect()).rejects.toThrow();
    expect((await authError).message).toMatch(/WRONGPASS|invalid username-password/i);
    wrong.disconnect();
  });

  it('names the variable when the CA file is missing or not PEM', async () => {
    await expect(valkeyClientOptions({ tlsCaFile: join(dir, 'missing.crt') })).rejects.toThrow(ValkeyTlsCaError);
    await expect(valkeyClientOptions({ tlsCaFile: join(dir, 'missing.crt') })).rejects.toThrow(/^VALKEY_TLS_CA_FILE .*missing\.crt cannot be read/);
    await expect(valkeyClientOptions({ tlsCaFile: join(dir, 'users.acl') })).rejects.toThrow(/VALKEY_TLS_CA_FILE .*users\.acl holds no PEM certificate/);
  });
});
