// A Git remote's URL as text: its kind, and its credentials hidden or dropped, in the URL and in free text
// that quotes it (git's messages, errors). Pure: the configuration checks it, the writer and the probe use it.

export const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** 'http' (http/https), 'ssh' (ssh:// or scp-like user@host:path) or 'local' (file:// or a path). */
export function remoteKind(repoURL: string): 'http' | 'ssh' | 'local' {
  const scheme = SCHEME.exec(repoURL)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') return 'http';
  if (scheme === 'ssh' || scheme === 'git+ssh' || scheme === 'ssh+git') return 'ssh';
  if (scheme !== undefined) return scheme === 'file' ? 'local' : 'http';
  // git's rule: a colon before the first slash makes it scp-like ssh syntax.
  const colon = repoURL.indexOf(':');
  const slash = repoURL.indexOf('/');
  return colon > 0 && (slash === -1 || colon < slash) ? 'ssh' : 'local';
}

/**
 * The userinfo of a URL with a scheme: everything between `scheme://` and the LAST `@` before the path,
 * query or fragment (a password may hold an `@`: no part of it may be left showing).
 */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;

/** `repoURL` with its credentials replaced by `password` ('' drops them; see redactURL for which they are). */
function replaceCredentials(repoURL: string, password: string): string {
  return repoURL.replace(USERINFO, (m, scheme: string, userinfo: string) => {
    if (userinfo === '') return m;
    // http(s): the user name is a credential too (`https://<token>@host/…`).
    if (/^https?:\/\/$/i.test(scheme)) return `${scheme}`;
    const user = userinfo.split(':')[0] ?? '';
    return userinfo.includes(':') && password !== '' ? `${scheme}${user}:${password}@` : `${scheme}${user}@`;
  });
}

/**
 * The URL safe to show: no userinfo for http(s), no password for other schemes (an ssh user such as
 * `git@` is a login name, not a secret; scp-like `git@host:org/repo` has no scheme and no password).
 */
export function redactURL(repoURL: string): string {
  return replaceCredentials(repoURL, '***');
}

/** The URL without what redactURL hides: what a mirror's config may keep (credentials come from a Secret). */
export function stripURLCredentials(repoURL: string): string {
  return replaceCredentials(repoURL, '');
}

/** Whether the URL carries credentials (a GitProvider must name them in spec.secretRef instead). */
export function hasURLCredentials(repoURL: string): boolean {
  return stripURLCredentials(repoURL) !== repoURL;
}

/** `text` with each of `secrets` blanked out, in the order given (longest first), and its URLs redacted (redactURLsIn). */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return redactURLsIn(out);
}

/** Free text (git's words, an error) with the userinfo of every URL in it redacted as redactURL does. */
export function redactURLsIn(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, (m) => redactURL(`${m}x`).slice(0, -1));
}
