// A link to a commit on its Git host's web UI, for Bull Board's job view: GitHub and GitLab
// `<repo>/commit/<sha>`, Bitbucket `<repo>/commits/<sha>`. Only hosts whose URL scheme is known get a
// link; other hosts, local paths and file:// remotes get none. Credentials, ports of SSH remotes, query
// strings and fragments never reach the link.

const HOSTS: Record<string, 'commit' | 'commits'> = {
  'github.com': 'commit',
  'gitlab.com': 'commit',
  'bitbucket.org': 'commits',
};

const SHA = /^[0-9a-f]{7,64}$/i;

/** The web URL of commit `sha` in repository `repoURL`; undefined when its host is not known. */
export function commitUrl(repoURL: string, sha: string): string | undefined {
  if (!SHA.test(sha)) return undefined;
  let host: string;
  let path: string;
  const url = /^(?:https?|ssh|git):\/\/(?:[^/@]*@)?([^/:?#]+)(?::\d+)?\/([^?#]*)/i.exec(repoURL);
  const scp = url ? undefined : /^(?:[^/@:]+@)?([^/:]+):(?!\/)([^?#]*)$/.exec(repoURL);
  if (url) [, host, path] = url as unknown as [string, string, string];
  else if (scp) [, host, path] = scp as unknown as [string, string, string];
  else return undefined;
  host = host.toLowerCase();
  const kind = HOSTS[host];
  if (!kind) return undefined;
  const repo = path.replace(/\/+$/, '').replace(/\.git$/, '');
  // owner/name at least (GitLab allows subgroups); nothing that could climb out of the repository.
  const segments = repo.split('/');
  if (segments.length < 2 || segments.some((s) => s === '' || s === '.' || s === '..' || !/^[\w.-]+$/.test(s))) return undefined;
  return `https://${host}/${repo}/${kind}/${sha.toLowerCase()}`;
}
