// A renewed certificate is served without a restart (cert-manager rewrites the mounted Secret in place):
// the listener reads its TLS files again, swaps to the new pair, and keeps the old one while the files
// are half-way through a change (new key, old certificate), reporting why.
import { copyFile, mkdtemp, rename, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../../dashboard/listen.js';
import { waitFor } from '../support/git-repos.js';
import { createTestPki, type TestPki } from '../support/test-pki.js';
import { fingerprintOf, servedFingerprint } from '../support/tls.js';

/** Replaces a file at once, as the kubelet swaps a mounted Secret (never a half-written file). */
async function replaceFile(from: string, to: string): Promise<void> {
  await copyFile(from, `${to}.new`);
  await rename(`${to}.new`, to);
}

describe('TLS certificate reload', () => {
  let dir = '';
  let pki: TestPki;
  let server: Server;
  const reloads: (Error | undefined)[] = [];
  const files = () => ({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gr-tls-reload-'));
    pki = await createTestPki(dir);
    await copyFile(pki.server.cert, files().certFile);
    await copyFile(pki.server.key, files().keyFile);
    server = await listen((_req, res) => res.end('ok'), { port: 0, host: '127.0.0.1', tls: files(), tlsReloadMs: 50, onTlsReload: (err) => reloads.push(err) });
  });
  afterAll(async () => {
    if (!server) return;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the renewed pair, keeping the old one while key and certificate do not match', async () => {
    const port = (server.address() as AddressInfo).port;
    expect(await servedFingerprint(port)).toBe(await fingerprintOf(pki.server.cert));
    const renewed = await pki.client('renewed.example');

    await replaceFile(renewed.key, files().keyFile); // the key first: for a moment it does not match the certificate
    await waitFor(async () => reloads.length > 0, 'the mismatched pair is reported', 10_000);
    expect(reloads).toEqual([expect.objectContaining({ message: expect.stringMatching(/^the changed TLS files were not loaded \(the previous certificate is still served\): /) })]);
    expect(await servedFingerprint(port)).toBe(await fingerprintOf(pki.server.cert));

    await replaceFile(renewed.cert, files().certFile);
    await waitFor(async () => reloads.length === 2, 'the renewed pair is loaded', 10_000);
    expect(reloads[1]).toBeUndefined();
    expect(await servedFingerprint(port)).toBe(await fingerprintOf(renewed.cert));
  });
});
