// Free text (git's stderr, an error message) made safe to log or show: the one credential-stripping rule
// for URLs in text, shared by the git writer and the GitProvider probe.
import { describe, expect, it } from 'vitest';
import { redactCredentials } from '../../kube/status/provider-probe.js';
import { redactText, redactURLsIn } from '../../git/git-remote.js';

describe('redactURLsIn', () => {
  it('drops the userinfo of http(s) URLs and the password of others, wherever they stand in the text', () => {
    expect(redactURLsIn("fatal: unable to access 'https://bot:s3cret@git.example.com/r.git/': 403")).toBe("fatal: unable to access 'https://git.example.com/r.git/': 403");
    expect(redactURLsIn('ssh://git:pw@host/r.git and HTTPS://tok@host/x')).toBe('ssh://git:***@host/r.git and HTTPS://host/x');
    expect(redactURLsIn('git@github.com:org/repo.git has no password')).toBe('git@github.com:org/repo.git has no password');
    expect(redactURLsIn('https://git.example.com/org/r@2.git')).toBe('https://git.example.com/org/r@2.git');
  });
});

describe('redactText', () => {
  it('blanks each secret (in the order given) and then the URLs', () => {
    expect(redactText('token abcdefgh at https://u:abcdefgh@h/r', ['abcdefgh'])).toBe('token *** at https://h/r');
    expect(redactText('long-secret-value', ['long-secret-value', 'secret'])).toBe('***');
  });

  it('is what the probe blanks its credentials with: longest first, trimmed too, short values left', () => {
    const credentials = { username: 'bot', password: ' hunter22\n', token: 'hunter22-and-more' };
    expect(redactCredentials('bot said hunter22-and-more and hunter22 at https://bot:x@h/r', credentials)).toBe('bot said *** and *** at https://h/r');
  });
});
