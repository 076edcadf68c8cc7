import { describe, expect, it } from 'vitest';
import { commitUrl } from '../../dashboard/commit-url.js';
import { redactJobData, withCommitUrl } from '../../dashboard/bull-board.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('commitUrl', () => {
  it('links GitHub and GitLab commits as /commit/<sha>, Bitbucket as /commits/<sha>', () => {
    expect(commitUrl('https://github.com/acme/fleet.git', SHA)).toBe(`https://github.com/acme/fleet/commit/${SHA}`);
    expect(commitUrl('https://gitlab.com/acme/platform/fleet', SHA)).toBe(`https://gitlab.com/acme/platform/fleet/commit/${SHA}`);
    expect(commitUrl('https://bitbucket.org/acme/fleet.git/', SHA)).toBe(`https://bitbucket.org/acme/fleet/commits/${SHA}`);
  });

  it('understands SSH remotes, scp-like and URL form, and host names in any case', () => {
    expect(commitUrl('git@github.com:acme/fleet.git', SHA)).toBe(`https://github.com/acme/fleet/commit/${SHA}`);
    expect(commitUrl('ssh://git@GitLab.com:22/acme/fleet.git', SHA)).toBe(`https://gitlab.com/acme/fleet/commit/${SHA}`);
  });

  it('never puts credentials, queries or fragments into the link', () => {
    const url = commitUrl('https://x-access-token:ghp_s3cr3t@github.com/acme/fleet.git?ref=1#frag', SHA);
    expect(url).toBe(`https://github.com/acme/fleet/commit/${SHA}`);
    expect(commitUrl('https://oauth2:glpat-s3cr3t@gitlab.com/acme/fleet', SHA)).not.toContain('s3cr3t');
  });

  it('gives no link for unknown hosts, local paths, file URLs and odd input', () => {
    expect(commitUrl('https://git.example.com/acme/fleet.git', SHA)).toBeUndefined();
    expect(commitUrl('https://github.com.evil.example/acme/fleet', SHA)).toBeUndefined();
    expect(commitUrl('/srv/git/fleet.git', SHA)).toBeUndefined();
    expect(commitUrl('file:///srv/git/fleet.git', SHA)).toBeUndefined();
    expect(commitUrl('C:/repos/fleet', SHA)).toBeUndefined();
    expect(commitUrl('https://github.com/fleet', SHA)).toBeUndefined();
    expect(commitUrl('https://github.com/acme/../x', SHA)).toBeUndefined();
    expect(commitUrl('https://github.com/acme/fleet', 'not-a-sha')).toBeUndefined();
  });
});

describe('Bull Board formatters', () => {
  it('adds commitUrl to a committed write result only', () => {
    const committed = { outcome: 'committed', commit: SHA, pushedAs: SHA };
    expect(withCommitUrl(committed, 'https://github.com/acme/fleet')).toEqual({ ...committed, commitUrl: `https://github.com/acme/fleet/commit/${SHA}` });
    expect(withCommitUrl(committed, '/srv/fleet.git')).toEqual(committed);
    expect(withCommitUrl(committed, undefined)).toEqual(committed);
    const unchanged = { outcome: 'unchanged', reason: 'stale', head: SHA };
    expect(withCommitUrl(unchanged, 'https://github.com/acme/fleet')).toEqual(unchanged);
    expect(withCommitUrl(null, 'https://github.com/acme/fleet')).toBeNull();
  });

  it('redacts a Secret in job data, whatever was stored', () => {
    const data = { auditID: 'a', objectRef: { resource: 'secrets', name: 'db' }, object: { metadata: { name: 'db' }, data: { password: 'aHVudGVyMg==' } } };
    const shown = redactJobData(data) as typeof data;
    expect(JSON.stringify(shown)).not.toContain('aHVudGVyMg==');
    expect(shown.object.data.password).toBe('REDACTED');
    const cm = { objectRef: { resource: 'configmaps' }, object: { kind: 'ConfigMap', data: { v: '1' } } };
    expect(redactJobData(cm)).toBe(cm);
    expect(redactJobData('text')).toBe('text');
  });
});
