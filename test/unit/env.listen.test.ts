import { describe, expect, it } from 'vitest';
import { ENV_VARIABLES, EnvError, readEnv } from '../../config/env.js';

const envError = (env: NodeJS.ProcessEnv): string => {
  try {
    readEnv(env);
  } catch (err) {
    expect(err).toBeInstanceOf(EnvError);
    return (err as Error).message;
  }
  throw new Error('expected an EnvError, readEnv succeeded');
};

describe('LISTEN_ADDRESS and ADMIN_PORT', () => {
  it('are known variables, unset by default: all interfaces, /admin on PORT', () => {
    expect(ENV_VARIABLES).toEqual(expect.arrayContaining(['LISTEN_ADDRESS', 'ADMIN_PORT']));
    const env = readEnv({});
    expect(env.LISTEN_ADDRESS).toBeUndefined();
    expect(env.ADMIN_PORT).toBeUndefined();
  });

  it('take an IP address and a port of its own', () => {
    expect(readEnv({ LISTEN_ADDRESS: '127.0.0.1', ADMIN_PORT: '9090' })).toMatchObject({ LISTEN_ADDRESS: '127.0.0.1', ADMIN_PORT: 9090, PORT: 8080 });
    expect(readEnv({ LISTEN_ADDRESS: '::' }).LISTEN_ADDRESS).toBe('::');
    expect(readEnv({ LISTEN_ADDRESS: '0.0.0.0' }).LISTEN_ADDRESS).toBe('0.0.0.0');
  });

  it('refuse a name, a bad port, and the admin port on PORT', () => {
    expect(envError({ LISTEN_ADDRESS: 'localhost' })).toContain('LISTEN_ADDRESS: an IP address to listen on');
    expect(envError({ ADMIN_PORT: '70000' })).toContain('ADMIN_PORT');
    expect(envError({ ADMIN_PORT: '0' })).toContain('ADMIN_PORT');
    expect(envError({ PORT: '9090', ADMIN_PORT: '9090' })).toBe(
      'invalid environment:\n  - ADMIN_PORT must differ from PORT (9090): unset it to serve /admin on PORT',
    );
  });
});
