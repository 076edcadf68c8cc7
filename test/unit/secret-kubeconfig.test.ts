// A kubeconfig from a Secret is untrusted: only a server and inline credentials pass; exec, auth-provider,
// token files and every other file path are refused with a reason naming the field, never a value, and
// before anything of it is acted on.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseSecretKubeConfig } from '../../config/secret-kubeconfig.js';

const SECRET = 's3cr3t-t0ken-value';

/** A kubeconfig with one cluster, user and context; `user`/`cluster` are merged into their sections. */
function kubeconfig(user: Record<string, unknown> = { token: SECRET }, cluster: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'remote', cluster: { server: 'https://remote.example:6443', 'certificate-authority-data': 'Q0E=', ...cluster } }],
    users: [{ name: 'reader', user }],
    contexts: [{ name: 'remote', context: { cluster: 'remote', user: 'reader', namespace: 'shop' } }],
    'current-context': 'remote',
    preferences: {},
  });
}

function problem(text: string): string {
  const parsed = parseSecretKubeConfig(text);
  if (parsed.ok) throw new Error('expected the kubeconfig to be refused');
  expect(parsed.problem).not.toContain(SECRET);
  return parsed.problem;
}

describe('parseSecretKubeConfig', () => {
  it('admits a server with inline credentials, and keeps nothing else', () => {
    const parsed = parseSecretKubeConfig(
      kubeconfig(
        { token: SECRET, 'client-certificate-data': 'Y2VydA==', 'client-key-data': 'a2V5', username: 'u', password: 'p', extensions: [{ name: 'x', extension: { exec: 'ignored' } }] },
        { 'insecure-skip-tls-verify': true, 'tls-server-name': 'api.internal', 'proxy-url': 'http://proxy:3128', extensions: [], 'disable-compression': true },
      ),
    );
    expect(parsed).toEqual({
      ok: true,
      options: {
        clusters: [{ name: 'remote', server: 'https://remote.example:6443', caData: 'Q0E=', skipTLSVerify: true, tlsServerName: 'api.internal', proxyUrl: 'http://proxy:3128' }],
        users: [{ name: 'reader', token: SECRET, certData: 'Y2VydA==', keyData: 'a2V5', username: 'u', password: 'p' }],
        contexts: [{ name: 'remote', cluster: 'remote', user: 'reader', namespace: 'shop' }],
        currentContext: 'remote',
      },
    });
  });

  it('admits the JSON that client-node exports, and a user without credentials', () => {
    const json = JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: 'http://127.0.0.1:8080/', 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'anonymous', name: 'c' } }],
      'current-context': 'c',
    });
    expect(parseSecretKubeConfig(json)).toMatchObject({ ok: true, options: { clusters: [{ server: 'http://127.0.0.1:8080', skipTLSVerify: true }], users: [{ name: 'anonymous' }] } });
  });

  it.each([
    ['exec', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'sh', args: ['-c', `echo ${SECRET}`] } }, "users[0].user.exec runs a command in the service's pod"],
    ['auth-provider', { 'auth-provider': { name: 'oidc', config: { 'id-token': SECRET } } }, "users[0].user.auth-provider runs an auth-provider plugin in the service's pod"],
    ['tokenFile', { tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' }, "users[0].user.tokenFile reads a token from a file of the service's pod"],
    ['token-file', { 'token-file': '/var/run/secrets/kubernetes.io/serviceaccount/token' }, "users[0].user.token-file reads a token from a file of the service's pod"],
    ['client-certificate', { 'client-certificate': '/etc/ssl/private/cert.pem' }, "users[0].user.client-certificate reads a file of the service's pod (use client-certificate-data)"],
    ['client-key', { 'client-key': '/etc/ssl/private/key.pem' }, "users[0].user.client-key reads a file of the service's pod (use client-key-data)"],
    ['any other *File field', { passwordFile: '/etc/shadow' }, "users[0].user.passwordFile reads a file of the service's pod"],
    ['impersonation', { token: SECRET, as: 'system:admin' }, 'users[0].user.as is not supported'],
    ['a merge key (which client-node would apply)', { '<<': { exec: { command: 'sh' } } }, 'users[0].user.a field is not supported'],
  ])('refuses a user with %s, naming the field and not its value', (_what, user, reason) => {
    const text = problem(kubeconfig(user));
    expect(text).toContain(`is refused: ${reason}`);
    expect(text).toContain('may hold only a server and inline data');
    expect(text).not.toMatch(/\/etc|\/var|oidc|system:admin|sh\b/);
  });

  it('refuses file paths in a cluster', () => {
    expect(problem(kubeconfig(undefined, { 'certificate-authority': '/etc/ssl/ca.pem' }))).toContain(
      "is refused: clusters[0].cluster.certificate-authority reads a file of the service's pod (use certificate-authority-data)",
    );
    expect(problem(kubeconfig(undefined, { caPath: '/etc/ssl/ca.pem' }))).toContain("is refused: clusters[0].cluster.caPath reads a file of the service's pod");
  });

  it('refuses an exec hidden behind a YAML merge key, which client-node would apply', () => {
    const text = [
      'base: &base',
      '  exec: {apiVersion: client.authentication.k8s.io/v1, command: sh}',
      'clusters: [{name: c, cluster: {server: "https://c:6443"}}]',
      'users:',
      '- name: u',
      '  user:',
      '    <<: *base',
      'contexts: [{name: c, context: {cluster: c, user: u}}]',
      'current-context: c',
    ].join('\n');
    expect(problem(text)).toMatch(/^is refused: users\[0\]\.user\./);
  });

  it('does not read a token file while refusing it', () => {
    // A FIFO or /dev/zero would hang or exhaust a loader that reads it; a file shows no read happens first.
    const dir = mkdtempSync(join(tmpdir(), 'skc-'));
    const file = join(dir, 'token');
    writeFileSync(file, SECRET);
    expect(problem(kubeconfig({ 'token-file': file }))).toContain('users[0].user.token-file');
    expect(problem(kubeconfig({ 'token-file': '/dev/zero' }))).toContain('users[0].user.token-file');
  });

  it('does not repeat a field name that may be a value', () => {
    expect(problem(kubeconfig({ [SECRET]: 'x' }))).toContain('users[0].user.a field is not supported');
    expect(problem(kubeconfig({ 'eyJhbGciOiJSUzI1NiJ9.payload.sig': 'x' }))).toContain('users[0].user.a field is not supported');
  });

  it('checks types and required fields, without quoting values', () => {
    expect(problem(kubeconfig({ token: 12345 }))).toBe('is refused: users[0].user.token is not a string');
    expect(problem(kubeconfig(undefined, { server: `ftp://${SECRET}@host` }))).toBe('is refused: clusters[0].cluster.server is not an http(s) URL');
    expect(problem(kubeconfig(undefined, { server: `https://user:${SECRET}@host` }))).toMatch(/^is refused: clusters\[0\]\.cluster\.server carries credentials in its URL/);
    expect(problem(kubeconfig(undefined, { server: 'https://remote/evil#' }))).toBe('is refused: clusters[0].cluster.server has a query or fragment; give the server\'s base URL only');
    expect(problem(kubeconfig(undefined, { server: 'https://remote/x?y=' }))).toBe('is refused: clusters[0].cluster.server has a query or fragment; give the server\'s base URL only');
    expect(problem(kubeconfig(undefined, { server: 'http://remote:8080' }))).toBe('is refused: clusters[0].cluster.server is an http: URL, which needs insecure-skip-tls-verify: true');
    expect(problem(kubeconfig(undefined, { 'insecure-skip-tls-verify': 'yes' }))).toBe('is refused: clusters[0].cluster.insecure-skip-tls-verify is not true or false');
    expect(problem(kubeconfig({ 'client-certificate-data': 'Y2VydA==' }))).toBe('is refused: users[0].user has only one of client-certificate-data and client-key-data');
    expect(problem(stringify({ clusters: [{ name: 'c', cluster: {} }] }))).toBe('is refused: clusters[0].cluster.server is missing');
    expect(problem(stringify({ users: { name: 'u' } }))).toBe('is refused: users is not a list');
    expect(problem('- just\n- a list\n')).toBe('is not a kubeconfig (not a YAML mapping)');
  });

  it('says where the YAML is broken without quoting it', () => {
    const broken = `users:\n- name: u\n  user: { token: "${SECRET}\n`;
    expect(problem(broken)).toMatch(/^is not valid YAML at line \d+ \([A-Z_]+\)$/);
    expect(problem(`a: 1\na: "${SECRET}"\n`)).toMatch(/^is not valid YAML at line 2 \(DUPLICATE_KEY\)$/);
  });
});
