// A throwaway PKI made with the `openssl` CLI for TLS tests: a CA, a server certificate for 127.0.0.1 and
// client certificates by CN, plus a second ("rogue") CA whose certificates the service must not trust.
// EC P-256 keys, valid for a day: fast to make, and nothing outlives the test's temp dir.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TestPki {
  /** The CA that signs the server's and the trusted clients' certificates (TLS_CLIENT_CA_FILE). */
  ca: KeyPair;
  server: KeyPair;
  /** A client certificate with this CN, signed by `ca` (or by a CA the server does not trust). */
  client(commonName: string, opts?: { rogue?: boolean }): Promise<KeyPair>;
}

async function makeCa(dir: string, name: string): Promise<KeyPair> {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await run('openssl', ['req', '-x509', ...KEY, '-keyout', pair.key, '-out', pair.cert, '-days', '1', '-subj', `/CN=${name}`]);
  return pair;
}

async function makeLeaf(dir: string, name: string, ca: KeyPair, commonName: string, extensions: string): Promise<KeyPair> {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, `${extensions}\n`);
  await run('openssl', ['req', '-new', ...KEY, '-keyout', pair.key, '-out', csr, '-subj', `/CN=${commonName}`]);
  const serial = `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`;
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial, '-out', pair.cert, '-days', '1', '-extfile', ext]);
  return pair;
}

export async function createTestPki(dir: string): Promise<TestPki> {
  const [ca, rogue] = await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'rogue-ca')]);
  const server = await makeLeaf(dir, 'server', ca, 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  let n = 0;
  return {
    ca,
    server,
    client: (commonName, opts = {}) => makeLeaf(dir, `client-${++n}`, opts.rogue ? rogue : ca, commonName, 'extendedKeyUsage=clientAuth'),
  };
}
