import { describe, expect, it } from 'vitest';
import type { ObjectIdentity } from '../../core/contracts.js';
import { encodeSegment, objectFilePath, UnsafePathError, validateBasePath } from '../../core/path-layout.js';

const deploy: ObjectIdentity = { cluster: 'prod-eu', group: 'apps', version: 'v1', resource: 'deployments', namespace: 'shop', name: 'web' };

function assertSafe(path: string): void {
  expect(path.startsWith('/')).toBe(false);
  const segments = path.split('/');
  for (const s of segments) {
    expect(s).not.toBe('');
    expect(s).not.toBe('.');
    expect(s).not.toBe('..');
    expect(s.toLowerCase()).not.toBe('.git');
    expect(Buffer.byteLength(s)).toBeLessThanOrEqual(255);
    expect(s).toMatch(/^[A-Za-z0-9._%~-]+$/);
  }
}

describe('objectFilePath', () => {
  it('lays out namespaced, core and cluster-scoped objects', () => {
    expect(objectFilePath('clusters/prod', deploy)).toBe('clusters/prod/shop/apps/deployments/web.yaml');
    expect(objectFilePath('', { ...deploy, group: '', resource: 'configmaps', name: 'cfg' })).toBe('shop/configmaps/cfg.yaml');
    expect(objectFilePath('.', { ...deploy, group: 'rbac.authorization.k8s.io', resource: 'clusterroles', namespace: '', name: 'system:controller:foo' })).toBe(
      '_cluster/rbac.authorization.k8s.io/clusterroles/system%3Acontroller%3Afoo.yaml',
    );
  });

  it('normalises the base path', () => {
    expect(objectFilePath('/clusters//prod/', deploy)).toBe('clusters/prod/shop/apps/deployments/web.yaml');
    expect(objectFilePath('./clusters/./prod', deploy)).toBe('clusters/prod/shop/apps/deployments/web.yaml');
  });

  it.each([
    ['%2e%2e', '%252e%252e.yaml'],
    ['a/b', 'a%2Fb.yaml'],
    ['a\\b', 'a%5Cb.yaml'],
    ['caf\u00e9', 'caf%C3%A9.yaml'],
    ['\u{1F680}', '%F0%9F%9A%80.yaml'],
    ['nul\u0000x', 'nul%00x.yaml'],
    ['...', '%2E...yaml'],
    ['.git', '%2Egit.yaml'],
    ['a b', 'a%20b.yaml'],
    ['UPPER_lower-1.2', 'UPPER_lower-1.2.yaml'],
  ])('encodes the name %j as %s', (name, file) => {
    const path = objectFilePath('', { ...deploy, name });
    expect(path).toBe(`shop/apps/deployments/${file}`);
    assertSafe(path);
  });

  it.each([
    ['name', '..'],
    ['name', '.'],
    ['name', ''],
    ['namespace', '..'],
    ['namespace', '.'],
    ['group', '..'],
    ['resource', '..'],
    ['resource', ''],
  ] as const)('throws UnsafePathError for %s %j', (field, value) => {
    let caught: unknown;
    try {
      objectFilePath('base', { ...deploy, [field]: value });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UnsafePathError);
    const err = caught as UnsafePathError;
    expect(err.name).toBe('UnsafePathError');
    expect(err.field).toBe(field);
    expect(err.value).toBe(value);
    expect(err.message).toBe(`${field}: ${JSON.stringify(value)} ${value === '' ? 'is empty' : 'would escape the repository path'}`);
  });

  it('keeps hostile namespaces and groups inside their segment', () => {
    const path = objectFilePath('', { ...deploy, namespace: '../../etc', group: '.git', name: 'x' });
    expect(path).toBe('%2E.%2F..%2Fetc/%2Egit/deployments/x.yaml');
    assertSafe(path);
  });

  it('never lets a namespace land in the cluster-scoped directory', () => {
    expect(objectFilePath('', { ...deploy, namespace: '_cluster' })).toBe('%5Fcluster/apps/deployments/web.yaml');
  });

  it('shortens very long segments with a hash, deterministically and without collisions', () => {
    const long = 'a'.repeat(253);
    const longer = 'a'.repeat(252) + 'b';
    const p1 = objectFilePath('', { ...deploy, name: long });
    const p2 = objectFilePath('', { ...deploy, name: longer });
    assertSafe(p1);
    assertSafe(p2);
    expect(p1).not.toBe(p2);
    expect(objectFilePath('', { ...deploy, name: long })).toBe(p1);
    expect(p1).toMatch(/\/a+~[0-9a-f]{16}\.yaml$/);
    const unicode = objectFilePath('', { ...deploy, name: '\u00e9'.repeat(200) });
    assertSafe(unicode);
    expect(unicode).toMatch(/\/(%[0-9A-F]{2})+~[0-9a-f]{16}\.yaml$/);
    expect(objectFilePath('', { ...deploy, name: 'a'.repeat(250) })).toBe(`shop/apps/deployments/${'a'.repeat(250)}.yaml`);
  });
});

describe('encodeSegment', () => {
  it('percent-encodes with uppercase hex and keeps the allowed set', () => {
    expect(encodeSegment('name', 'a:b%c')).toBe('a%3Ab%25c');
    expect(encodeSegment('name', 'abc-DEF_1.2')).toBe('abc-DEF_1.2');
  });
});

describe('validateBasePath', () => {
  it.each([
    ['', ''],
    ['.', ''],
    ['./', ''],
    ['/', ''],
    ['clusters/prod', 'clusters/prod'],
    ['/clusters/prod/', 'clusters/prod'],
    ['clusters//prod', 'clusters/prod'],
    ['.github-not/x', '.github-not/x'],
  ])('%j → %j', (input, expected) => {
    expect(validateBasePath(input)).toBe(expected);
  });

  it.each([
    ['..', 'path: ".." has a ".." segment, which would escape the repository'],
    ['clusters/../..', 'path: "clusters/../.." has a ".." segment, which would escape the repository'],
    ['a\\b', 'path: "a\\\\b" contains a backslash'],
    ['a\u0000b', 'path: "a\\u0000b" contains a control character'],
    ['.git/hooks', 'path: ".git/hooks" points into the .git directory'],
    ['x/.GIT', 'path: "x/.GIT" points into the .git directory'],
  ])('refuses %j', (input, message) => {
    expect(() => validateBasePath(input)).toThrow(UnsafePathError);
    expect(() => validateBasePath(input)).toThrow(message);
  });

  it('refuses a bad base path in objectFilePath too', () => {
    expect(() => objectFilePath('../outside', deploy)).toThrow(UnsafePathError);
  });
});
