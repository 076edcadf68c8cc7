import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnvError, readEnv } from '../../config/env.js';

/** The EnvError readEnv throws for `env`; fails the test when it does not throw one. */
function envError(env: NodeJS.ProcessEnv): EnvError {
  try {
    readEnv(env);
  } catch (err) {
    expect(err).toBeInstanceOf(EnvError);
    return err as EnvError;
  }
  throw new Error('expected an EnvError, readEnv succeeded');
}

describe('readEnv', () => {
  it('applies every default', () => {
    expect(readEnv({})).toEqual({
      DATA_DIR: resolve(process.cwd(), '.data'),
      CONFIG_SOURCE: 'demo',
      ALLOW_LOCAL_GIT_REPOSITORIES: false,
      PORT: 8080,
      KEY_PREFIX: 'gitops-reverser',
      WEBHOOK_BODY_LIMIT_BYTES: 10 * 1024 * 1024,
      EVENT_MAX_OBJECT_BYTES: 3 * 1024 * 1024,
      EVENT_MAX_DEPTH: 100,
      EVENT_MAX_VALUES: 200_000,
      CLUSTER_INFLIGHT_LIMIT_BYTES: 128 * 1024 * 1024,
      LEASE_TTL_MS: 5000,
      REORDER_WINDOW_MS: 2000,
      WRITE_BATCH_SIZE: 500,
      GIT_COMMITTER_NAME: 'GitOps Reverser',
      GIT_COMMITTER_EMAIL: 'gitops-reverser@localhost',
      DASHBOARD_READ_ONLY: true,
      LOG_LEVEL: 'info',
      INGEST_BACKLOG_LIMIT: 200_000,
      VALKEY_MEMORY_HIGH_WATERMARK: 0.9,
      WRITE_ATTEMPTS: 5,
      WRITE_BACKOFF_MS: 2000,
      JOB_RETENTION_COMPLETED_SECONDS: 3600,
      JOB_RETENTION_COMPLETED_COUNT: 20_000,
      JOB_RETENTION_FAILED_SECONDS: 604_800,
      JOB_RETENTION_FAILED_COUNT: 10_000,
      QUEUE_EVENTS_MAX_LEN: 1000,
      DASHBOARD_TRUSTED_HEADERS: false,
      DASHBOARD_USER_HEADER: 'X-Forwarded-User',
      DASHBOARD_GROUPS_HEADER: 'X-Forwarded-Groups',
    });
    const env = readEnv({});
    expect(env.VALKEY_URL).toBeUndefined();
    expect(env.CONFIG_FILE).toBeUndefined();
    expect(env.REPLICA_ID).toBeUndefined();
    expect(env.WEBHOOK_BODY_LIMIT_BYTES).toBe(10_485_760);
  });

  it('takes an operator pair for the dashboard only as a pair', () => {
    expect(readEnv({ DASHBOARD_OPERATOR_USERNAME: 'ops', DASHBOARD_OPERATOR_PASSWORD: 'long enough' })).toMatchObject({ DASHBOARD_OPERATOR_USERNAME: 'ops' });
    expect(() => readEnv({ DASHBOARD_OPERATOR_USERNAME: 'ops' })).toThrow('DASHBOARD_OPERATOR_USERNAME and DASHBOARD_OPERATOR_PASSWORD go together');
    expect(readEnv({ DASHBOARD_TRUSTED_HEADERS: 'true', DASHBOARD_OPERATOR_GROUP: 'platform' })).toMatchObject({ DASHBOARD_TRUSTED_HEADERS: true, DASHBOARD_OPERATOR_GROUP: 'platform' });
  });

  it('chooses the configuration source: a file when given, the cluster inside a Pod, else the demo', () => {
    expect(readEnv({ CONFIG_FILE: '/etc/c.yaml' }).CONFIG_SOURCE).toBe('file');
    expect(readEnv({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }).CONFIG_SOURCE).toBe('kubernetes');
    expect(readEnv({ KUBERNETES_SERVICE_HOST: '10.0.0.1', CONFIG_FILE: '/etc/c.yaml' }).CONFIG_SOURCE).toBe('file');
    expect(readEnv({ CONFIG_SOURCE: 'kubernetes' }).CONFIG_SOURCE).toBe('kubernetes');
    expect(() => readEnv({ CONFIG_SOURCE: 'file' })).toThrow('CONFIG_SOURCE: file needs CONFIG_FILE');
    expect(() => readEnv({ CONFIG_SOURCE: 'etcd' })).toThrow(/CONFIG_SOURCE/);
  });

  it('treats empty values as unset and ignores unrelated variables', () => {
    const env = readEnv({ PORT: '', VALKEY_URL: '', DATA_DIR: '', PATH: '/usr/bin', HOME: '/root' });
    expect(env.PORT).toBe(8080);
    expect(env.VALKEY_URL).toBeUndefined();
    expect(env.DATA_DIR).toBe(resolve('.data'));
    expect(env).not.toHaveProperty('PATH');
  });

  it('resolves DATA_DIR to an absolute path', () => {
    expect(readEnv({ DATA_DIR: 'var/data' }).DATA_DIR).toBe(resolve(process.cwd(), 'var/data'));
    expect(readEnv({ DATA_DIR: '/srv/data/' }).DATA_DIR).toBe('/srv/data');
  });

  it('parses numbers, booleans and strings', () => {
    const env = readEnv({
      VALKEY_URL: 'rediss://user:pw@valkey.example:6380/2',
      CONFIG_FILE: '/etc/reverser/config.yaml',
      PORT: '0',
      KEY_PREFIX: '{gitops-reverser}',
      WEBHOOK_BODY_LIMIT_BYTES: '1024',
      LEASE_TTL_MS: '500',
      WRITE_BATCH_SIZE: '10000',
      DASHBOARD_READ_ONLY: 'false',
      LOG_LEVEL: 'debug',
      REPLICA_ID: 'replica-1',
      JOB_RETENTION_COMPLETED_SECONDS: '60',
      JOB_RETENTION_COMPLETED_COUNT: '100',
      JOB_RETENTION_FAILED_SECONDS: '0',
      QUEUE_EVENTS_MAX_LEN: '50',
    });
    expect(env).toMatchObject({
      VALKEY_URL: 'rediss://user:pw@valkey.example:6380/2',
      CONFIG_FILE: '/etc/reverser/config.yaml',
      PORT: 0,
      KEY_PREFIX: '{gitops-reverser}',
      WEBHOOK_BODY_LIMIT_BYTES: 1024,
      LEASE_TTL_MS: 500,
      WRITE_BATCH_SIZE: 10_000,
      DASHBOARD_READ_ONLY: false,
      LOG_LEVEL: 'debug',
      REPLICA_ID: 'replica-1',
      JOB_RETENTION_COMPLETED_SECONDS: 60,
      JOB_RETENTION_COMPLETED_COUNT: 100,
      JOB_RETENTION_FAILED_SECONDS: 0,
      QUEUE_EVENTS_MAX_LEN: 50,
    });
    expect(readEnv({ VALKEY_URL: 'redis://localhost:6379' }).VALKEY_URL).toBe('redis://localhost:6379');
    expect(readEnv({ DASHBOARD_READ_ONLY: 'true' }).DASHBOARD_READ_ONLY).toBe(true);
  });

  it.each(['http://localhost:6379', 'localhost:6379', 'valkey://localhost', 'REDIS://localhost'])('refuses VALKEY_URL %j', (url) => {
    expect(envError({ VALKEY_URL: url }).message).toBe('invalid environment:\n  - VALKEY_URL: must start with redis:// or rediss://');
  });

  it('PORT=abc fails with an EnvError naming PORT', () => {
    const err = envError({ PORT: 'abc' });
    expect(err.name).toBe('EnvError');
    expect(err.message).toBe('invalid environment:\n  - PORT: Invalid input: expected number, received NaN');
  });

  it.each([
    [{ PORT: '65536' }, 'PORT: Too big: expected number to be <=65535'],
    [{ PORT: '80.5' }, 'PORT: Invalid input: expected int, received number'],
    [{ WEBHOOK_BODY_LIMIT_BYTES: '0' }, 'WEBHOOK_BODY_LIMIT_BYTES: Too small: expected number to be >0'],
    [{ LEASE_TTL_MS: '499' }, 'LEASE_TTL_MS: Too small: expected number to be >=500'],
    [{ WRITE_BATCH_SIZE: '10001' }, 'WRITE_BATCH_SIZE: Too big: expected number to be <=10000'],
    [{ JOB_RETENTION_COMPLETED_COUNT: '-1' }, 'JOB_RETENTION_COMPLETED_COUNT: Too small: expected number to be >=0'],
    [{ JOB_RETENTION_COMPLETED_SECONDS: '1.5' }, 'JOB_RETENTION_COMPLETED_SECONDS: Invalid input: expected int, received number'],
    [{ QUEUE_EVENTS_MAX_LEN: '0' }, 'QUEUE_EVENTS_MAX_LEN: Too small: expected number to be >=1'],
    [{ DASHBOARD_READ_ONLY: 'yes' }, 'DASHBOARD_READ_ONLY: Invalid option: expected one of "true"|"false"'],
    [{ KEY_PREFIX: 'a:b' }, 'KEY_PREFIX: letters, digits, "-", "_" and {hash tag} braces only'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"'],
  ])('refuses %j', (env, line) => {
    expect(envError(env).message).toBe(`invalid environment:\n  - ${line}`);
  });

  it('TLS: certificate and key serve HTTPS; a client CA asks for client certificates', () => {
    const env = readEnv({ TLS_CERT_FILE: '/tls/tls.crt', TLS_KEY_FILE: '/tls/tls.key', TLS_CLIENT_CA_FILE: '/tls/client-ca.crt' });
    expect(env).toMatchObject({ TLS_CERT_FILE: '/tls/tls.crt', TLS_KEY_FILE: '/tls/tls.key', TLS_CLIENT_CA_FILE: '/tls/client-ca.crt' });
    expect(readEnv({ TLS_CERT_FILE: '/tls/tls.crt', TLS_KEY_FILE: '/tls/tls.key' }).TLS_CLIENT_CA_FILE).toBeUndefined();
    expect(readEnv({}).TLS_CERT_FILE).toBeUndefined();
  });

  it.each([
    [{ TLS_CERT_FILE: '/tls/tls.crt' }, 'TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither'],
    [{ TLS_KEY_FILE: '/tls/tls.key' }, 'TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither'],
    [{ TLS_CLIENT_CA_FILE: '/tls/ca.crt' }, 'TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE: client certificates are only asked for over HTTPS'],
  ])('refuses the TLS variables %j', (env, line) => {
    expect(envError(env).message).toBe(`invalid environment:\n  - ${line}`);
  });

  it('lists every bad variable at once', () => {
    expect(envError({ PORT: 'abc', VALKEY_URL: 'http://x', DASHBOARD_READ_ONLY: '1' }).message.split('\n')).toEqual([
      'invalid environment:',
      '  - VALKEY_URL: must start with redis:// or rediss://',
      '  - PORT: Invalid input: expected number, received NaN',
      '  - DASHBOARD_READ_ONLY: Invalid option: expected one of "true"|"false"',
    ]);
  });
  describe('Valkey credentials and TLS', () => {
    it('takes an ACL user, a password and a CA for a rediss:// URL', () => {
      const env = readEnv({ VALKEY_URL: 'rediss://valkey:6379', VALKEY_USERNAME: 'gr', VALKEY_PASSWORD: 'p@ss', VALKEY_TLS_CA_FILE: '/ca/ca.crt' });
      expect([env.VALKEY_USERNAME, env.VALKEY_PASSWORD, env.VALKEY_TLS_CA_FILE]).toEqual(['gr', 'p@ss', '/ca/ca.crt']);
    });
    it.each([
      [{ VALKEY_URL: 'redis://v:6379', VALKEY_USERNAME: 'gr' }, 'VALKEY_USERNAME needs VALKEY_PASSWORD'],
      [{ VALKEY_PASSWORD: 'p' }, 'VALKEY_PASSWORD and VALKEY_TLS_CA_FILE need VALKEY_URL'],
      [{ VALKEY_URL: 'redis://v:6379', VALKEY_TLS_CA_FILE: '/ca.crt' }, 'VALKEY_TLS_CA_FILE needs a rediss:// VALKEY_URL'],
      [{ VALKEY_URL: 'rediss://gr@v:6379', VALKEY_PASSWORD: 'x' }, 'credentials in VALKEY_URL go apart'],
      [{ VALKEY_URL: 'rediss://:pw@v:6379', VALKEY_USERNAME: 'u', VALKEY_PASSWORD: 'x' }, 'credentials in VALKEY_URL go apart'],
    ])('refuses %j', (vars, message) => {
      expect(() => readEnv(vars)).toThrow(message);
    });
  });
});
