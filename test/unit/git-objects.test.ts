import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blobSha } from '../../git/git-objects.js';
import { commitMessage, parseTrailers } from '../../workers/write/commit-message.js';
import { quotePath } from '../../git/fast-import-committer.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'git-objects-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function gitHashObject(content: string): string {
  const file = path.join(dir, 'f');
  writeFileSync(file, content, 'utf8');
  return execFileSync('git', ['hash-object', '--no-filters', file], { encoding: 'utf8' }).trim();
}

describe('blobSha', () => {
  it.each([
    ['empty', ''],
    ['yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n'],
    ['unicode', 'naïve: "日本語 ✓ 🚀"\n'],
    ['no trailing newline, CRLF, NUL', 'a\r\nb\0c'],
  ])('equals git hash-object for %s content', (_name, content) => {
    expect(blobSha(content)).toBe(gitHashObject(content));
  });

  it('is the well-known id of the empty blob', () => {
    expect(blobSha('')).toBe('e69de29bb2d1d6434b8b29ae775ad8c2e48c5391');
  });
});

describe('commitMessage', () => {
  const base = {
    operation: 'UPDATE' as const,
    identity: { cluster: 'prod', group: 'apps', version: 'v1', resource: 'deployments', namespace: 'team-a', name: 'web' },
    auditID: '7e0c1a2b-aaaa-bbbb-cccc-000000000001',
    clusterId: 'prod',
    resourceVersion: '12345',
    target: 'team-a/prod-repo',
  };

  it('writes a subject and trailers', () => {
    expect(commitMessage(base)).toBe(
      'UPDATE apps/v1 deployments team-a/web\n\n' +
        'Audit-ID: 7e0c1a2b-aaaa-bbbb-cccc-000000000001\nCluster: prod\nResource-Version: 12345\nTarget: team-a/prod-repo\n',
    );
  });

  it('shows the core group as v1 and cluster-scoped objects by name', () => {
    const msg = commitMessage({ ...base, operation: 'CREATE', identity: { ...base.identity, group: '', resource: 'namespaces', namespace: '', name: 'team-b' } });
    expect(msg.split('\n')[0]).toBe('CREATE v1 namespaces team-b');
  });

  it('round-trips through parseTrailers, agreeing with git interpret-trailers', () => {
    const msg = commitMessage(base);
    expect(parseTrailers(msg)).toEqual({
      'Audit-ID': base.auditID,
      Cluster: 'prod',
      'Resource-Version': '12345',
      Target: 'team-a/prod-repo',
    });
    const parsed = execFileSync('git', ['interpret-trailers', '--parse'], { input: msg, encoding: 'utf8' });
    expect(parsed).toBe(`Audit-ID: ${base.auditID}\nCluster: prod\nResource-Version: 12345\nTarget: team-a/prod-repo\n`);
  });

  it('keeps newlines in values out of the trailer block', () => {
    const msg = commitMessage({ ...base, target: 'evil\n\nInjected: yes' });
    expect(parseTrailers(msg)).toMatchObject({ Target: 'evil Injected: yes' });
    expect(parseTrailers(msg).Injected).toBeUndefined();
  });

  it('finds no trailers in a subject-only message', () => {
    expect(parseTrailers('Key: value\n')).toEqual({});
    expect(parseTrailers('subject\n\nbody text\n')).toEqual({});
  });
});

describe('quotePath', () => {
  it('leaves plain paths (spaces, unicode, %) alone and C-quotes the rest', () => {
    expect(quotePath('a b/ü %2F.yaml')).toBe('a b/ü %2F.yaml');
    expect(quotePath('say "hi"\\\n\t\x01.yaml')).toBe('"say \\"hi\\"\\\\\\n\\t\\001.yaml"');
  });
});
