// A kubeconfig from a Secret is untrusted input: whoever may write a ClusterProvider and a Secret supplies
// it, and the service would use it inside its own pod. client-node's loader honours everything a
// kubeconfig can say, and some of that acts on the pod rather than on the remote cluster: `exec` and
// `auth-provider` run commands and plugins, `token-file` is read while loading (the service's own
// service-account token, sent to a `server` of the author's choosing), and the certificate and key paths
// read local files. So such a text never reaches client-node's loader: it is parsed here, checked against
// what is allowed (a server and inline credentials only), and handed over as the options of
// KubeConfig.loadFromOptions, built from the allowed fields alone. A kubeconfig naming anything else is
// refused with a reason naming the field, never a value.
import type { Cluster, Context, User } from '@kubernetes/client-node';
import { parse, YAMLError } from 'yaml';
import { isRecord } from '../core/json.js';

export interface KubeConfigOptions {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext: string;
}

export type SecretKubeConfig = { ok: true; options: KubeConfigOptions } | { ok: false; problem: string };

const INLINE_ONLY =
  'a kubeconfig from a Secret may hold only a server and inline data: token, client-certificate-data, client-key-data, username/password, certificate-authority-data, insecure-skip-tls-verify, tls-server-name, proxy-url';

/** Fields refused for what they would do in the service's pod. */
const REFUSED: ReadonlyMap<string, string> = new Map(Object.entries({
  exec: "runs a command in the service's pod",
  'auth-provider': "runs an auth-provider plugin in the service's pod",
  tokenFile: "reads a token from a file of the service's pod (such as its own service-account token)",
  'token-file': "reads a token from a file of the service's pod (such as its own service-account token)",
  'client-certificate': "reads a file of the service's pod (use client-certificate-data)",
  'client-key': "reads a file of the service's pod (use client-key-data)",
  'certificate-authority': "reads a file of the service's pod (use certificate-authority-data)",
}));

/** Any other field that names a file or a path (kubectl spells them both ways). */
const PATH_FIELD = /(file|path)$/i;

/** Fields that say nothing about how to connect or whom to authenticate as: left out, not refused. */
const IGNORED: Record<'cluster' | 'user', ReadonlySet<string>> = {
  cluster: new Set(['extensions', 'disable-compression']),
  user: new Set(['extensions']),
};

class Refused extends Error {}


/**
 * A field name fit to repeat in a reason. A name is input too: a broken document can turn a token into a
 * key, so only what looks like a kubeconfig field name is repeated.
 */
function fieldName(key: string): string {
  return /^[A-Za-z][A-Za-z-]{0,31}$/.test(key) ? key : 'a field';
}

function refuseField(where: string, key: string): never {
  const field = `${where}.${fieldName(key)}`;
  const what = REFUSED.get(key) ?? (PATH_FIELD.test(key) ? "reads a file of the service's pod" : 'is not supported');
  throw new Refused(`${field} ${what}; ${INLINE_ONLY}`);
}

function optionalString(section: Record<string, unknown>, key: string, where: string): string | undefined {
  const value = section[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new Refused(`${where}.${key} is not a string`);
  return value;
}

function requiredString(section: Record<string, unknown>, key: string, where: string): string {
  const value = optionalString(section, key, where);
  if (!value) throw new Refused(`${where}.${key} is missing`);
  return value;
}

function list(doc: Record<string, unknown>, key: string): Record<string, unknown>[] {
  const value = doc[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Refused(`${key} is not a list`);
  return value.map((entry, i) => {
    if (!isRecord(entry)) throw new Refused(`${key}[${i}] is not a mapping`);
    return entry;
  });
}

/** The entry's section (`cluster`, `user`, `context`); none is an empty one. */
function section(entry: Record<string, unknown>, key: 'cluster' | 'user' | 'context', where: string): Record<string, unknown> {
  const value = entry[key];
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new Refused(`${where}.${key} is not a mapping`);
  return value;
}

/** Refuses every field of a cluster or user section that is neither allowed nor ignored. */
function onlyAllowed(fields: Record<string, unknown>, kind: 'cluster' | 'user', allowed: ReadonlySet<string>, where: string): void {
  for (const field of Object.keys(fields)) {
    if (!allowed.has(field) && !IGNORED[kind].has(field)) refuseField(where, field);
  }
}

const CLUSTER_FIELDS = new Set(['server', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'proxy-url']);
const USER_FIELDS = new Set(['token', 'client-certificate-data', 'client-key-data', 'username', 'password']);

function cluster(entry: Record<string, unknown>, i: number): Cluster {
  const where = `clusters[${i}]`;
  const name = requiredString(entry, 'name', where);
  const c = section(entry, 'cluster', where);
  onlyAllowed(c, 'cluster', CLUSTER_FIELDS, `${where}.cluster`);
  const server = requiredString(c, 'server', `${where}.cluster`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Refused(`${where}.cluster.server is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Refused(`${where}.cluster.server is not an http(s) URL`);
  if (url.username || url.password) throw new Refused(`${where}.cluster.server carries credentials in its URL; use the user's token or username/password`);
  // A query or fragment would swallow the path of every request made to this server.
  if (url.search || url.hash || /[?#]/.test(server)) throw new Refused(`${where}.cluster.server has a query or fragment; give the server's base URL only`);
  const skip = c['insecure-skip-tls-verify'];
  if (skip !== undefined && skip !== null && typeof skip !== 'boolean') throw new Refused(`${where}.cluster.insecure-skip-tls-verify is not true or false`);
  const skipTLSVerify = skip === true;
  if (url.protocol === 'http:' && !skipTLSVerify) throw new Refused(`${where}.cluster.server is an http: URL, which needs insecure-skip-tls-verify: true`);
  const caData = optionalString(c, 'certificate-authority-data', `${where}.cluster`);
  const tlsServerName = optionalString(c, 'tls-server-name', `${where}.cluster`);
  const proxyUrl = optionalString(c, 'proxy-url', `${where}.cluster`);
  if (proxyUrl !== undefined && !/^(https?|socks[45]?h?):\/\//.test(proxyUrl)) throw new Refused(`${where}.cluster.proxy-url is not an http(s) or socks URL`);
  return {
    name,
    // As client-node's loader does: the request path is appended to it.
    server: server.replace(/\/$/, ''),
    skipTLSVerify,
    ...(caData !== undefined ? { caData } : {}),
    ...(tlsServerName !== undefined ? { tlsServerName } : {}),
    ...(proxyUrl !== undefined ? { proxyUrl } : {}),
  };
}

function user(entry: Record<string, unknown>, i: number): User {
  const where = `users[${i}]`;
  const name = requiredString(entry, 'name', where);
  const u = section(entry, 'user', where);
  const at = `${where}.user`;
  onlyAllowed(u, 'user', USER_FIELDS, at);
  const token = optionalString(u, 'token', at);
  const certData = optionalString(u, 'client-certificate-data', at);
  const keyData = optionalString(u, 'client-key-data', at);
  const username = optionalString(u, 'username', at);
  const password = optionalString(u, 'password', at);
  if ((certData === undefined) !== (keyData === undefined)) throw new Refused(`${at} has only one of client-certificate-data and client-key-data`);
  return {
    name,
    ...(token ? { token } : {}),
    ...(certData !== undefined ? { certData } : {}),
    ...(keyData !== undefined ? { keyData } : {}),
    ...(username ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

function context(entry: Record<string, unknown>, i: number): Context {
  const where = `contexts[${i}]`;
  const name = requiredString(entry, 'name', where);
  const c = section(entry, 'context', where);
  const namespace = optionalString(c, 'namespace', `${where}.context`);
  return {
    name,
    cluster: requiredString(c, 'cluster', `${where}.context`),
    // client-node's own types say `user: string`; a context without a user sends no credentials.
    user: optionalString(c, 'user', `${where}.context`) ?? '',
    ...(namespace ? { namespace } : {}),
  };
}

/** Why the text is not YAML, without quoting it: a YAML error's message repeats the line, which may hold a token. */
function yamlProblem(err: YAMLError): string {
  const line = err.linePos?.[0]?.line;
  return `is not valid YAML${line !== undefined ? ` at line ${line}` : ''} (${err.code})`;
}

/**
 * Parses and checks a kubeconfig from a Secret. The problem, when there is one, completes a sentence
 * starting with the kubeconfig's name ("the kubeconfig of spec.kubeConfigSecretRef …").
 */
export function parseSecretKubeConfig(text: string): SecretKubeConfig {
  let doc: unknown;
  try {
    // Merge keys stay off (`<<` is then an unknown field and refused); aliases are bounded; warnings are
    // not logged (their message would quote the text).
    doc = parse(text, { uniqueKeys: true, merge: false, maxAliasCount: 100, logLevel: 'error' });
  } catch (err) {
    if (err instanceof YAMLError) return { ok: false, problem: yamlProblem(err) };
    return { ok: false, problem: 'could not be parsed' };
  }
  if (!isRecord(doc)) return { ok: false, problem: 'is not a kubeconfig (not a YAML mapping)' };
  try {
    const currentContext = doc['current-context'];
    if (currentContext !== undefined && currentContext !== null && typeof currentContext !== 'string') throw new Refused('current-context is not a string');
    return {
      ok: true,
      options: {
        clusters: list(doc, 'clusters').map(cluster),
        users: list(doc, 'users').map(user),
        contexts: list(doc, 'contexts').map(context),
        currentContext: currentContext ?? '',
      },
    };
  } catch (err) {
    if (err instanceof Refused) return { ok: false, problem: `is refused: ${err.message}` };
    throw err;
  }
}
