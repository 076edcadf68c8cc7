// An in-process stand-in for the Kubernetes API server, spoken to over real HTTP by the real
// @kubernetes/client-node. It exists so that Kubernetes-facing code (informers, status patches, discovery,
// re-list after 410 Gone) is tested against wire behaviour that matches the API server, not against a
// mocked client: a global etcd-like resourceVersion counter, per-object history so that paginated lists
// are served from a consistent snapshot, compaction that makes old resourceVersions and continue tokens
// "too old", watch streams with bookmarks, status subresources, and errors as real `Status` objects.
// Resource types are registry-driven: adding a type is one line in DEFAULT_TYPES; at run time, addType()
// or creating a CustomResourceDefinition registers one (served in discovery at once), deleting it removes it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';

// ---------------------------------------------------------------------------------------------------
// Types and registry
// ---------------------------------------------------------------------------------------------------

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
    generation?: number;
    creationTimestamp?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
};

export interface ResourceType {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  /** Has a `/status` subresource (spec changes bump metadata.generation, status only via /status). */
  status: boolean;
  shortNames?: string[];
}

const CRD_GROUP = 'gitopsreverser.io';

export const DEFAULT_TYPES: ResourceType[] = [
  { group: '', version: 'v1', plural: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, status: true, shortNames: ['ns'] },
  { group: '', version: 'v1', plural: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true, status: false, shortNames: ['cm'] },
  { group: '', version: 'v1', plural: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true, status: false },
  { group: 'apps', version: 'v1', plural: 'deployments', singular: 'deployment', kind: 'Deployment', namespaced: true, status: true, shortNames: ['deploy'] },
  { group: CRD_GROUP, version: 'v1alpha1', plural: 'gitproviders', singular: 'gitprovider', kind: 'GitProvider', namespaced: true, status: true },
  { group: CRD_GROUP, version: 'v1alpha1', plural: 'gittargets', singular: 'gittarget', kind: 'GitTarget', namespaced: true, status: true },
  { group: CRD_GROUP, version: 'v1alpha1', plural: 'watchrules', singular: 'watchrule', kind: 'WatchRule', namespaced: true, status: true },
  { group: CRD_GROUP, version: 'v1alpha1', plural: 'clusterproviders', singular: 'clusterprovider', kind: 'ClusterProvider', namespaced: false, status: true },
  { group: CRD_GROUP, version: 'v1alpha1', plural: 'clusterwatchrules', singular: 'clusterwatchrule', kind: 'ClusterWatchRule', namespaced: false, status: true },
  { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', singular: 'customresourcedefinition', kind: 'CustomResourceDefinition', namespaced: false, status: true, shortNames: ['crd', 'crds'] },
];

/** The type a CustomResourceDefinition object defines (its storage version, else its first served one). */
export function typeOfCrd(crd: KubeObject): ResourceType | undefined {
  const spec = isPlainObject(crd.spec) ? crd.spec : {};
  const names = isPlainObject(spec.names) ? spec.names : {};
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isPlainObject) : [];
  const version = versions.find((v) => v.storage === true) ?? versions.find((v) => v.served !== false);
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  if (!version || !str(spec.group) || !str(names.plural) || !str(names.kind) || !str(version.name)) return undefined;
  const subresources = isPlainObject(version.subresources) ? version.subresources : {};
  return {
    group: str(spec.group),
    version: str(version.name),
    plural: str(names.plural),
    singular: str(names.singular) || str(names.kind).toLowerCase(),
    kind: str(names.kind),
    namespaced: spec.scope !== 'Cluster',
    status: subresources.status !== undefined,
    ...(Array.isArray(names.shortNames) ? { shortNames: names.shortNames.filter((n): n is string => typeof n === 'string') } : {}),
  };
}

const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

function groupVersion(t: Pick<ResourceType, 'group' | 'version'>): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

export interface StandInOptions {
  /** Bearer token the client must present (default 'stand-in-token'). */
  token?: string;
  /** How often a watch with allowWatchBookmarks=true gets a BOOKMARK (default 60 s, like the server's ~1 min). */
  bookmarkIntervalMs?: number;
  /** Extra resource types on top of DEFAULT_TYPES. */
  types?: ResourceType[];
}

export interface KubeApiStandIn {
  url: string;
  token: string;
  kubeConfig(): KubeConfig;
  /** Current global resourceVersion (the last one handed out). */
  resourceVersion(): number;
  create(obj: KubeObject): KubeObject;
  /** Replaces the whole object (status included); bumps resourceVersion, emits MODIFIED. */
  update(obj: KubeObject): KubeObject;
  delete(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject;
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Forgets history at and before `rv` (default: now): older resourceVersions become "too old" (410). */
  compact(rv?: number): void;
  /** Serves one more resource type (discovery included), as an installed CRD does. */
  addType(t: ResourceType): void;
  /** Number of watch streams open right now. */
  openWatches(): number;
  /** Ends every open watch stream from the server side (as an API server restart or LB timeout does). */
  dropWatches(): Promise<void>;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------
// Status objects (the error body the real server sends)
// ---------------------------------------------------------------------------------------------------

interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: Record<string, unknown>;
  code: number;
}

function statusBody(code: number, reason: string, message: string, details?: Record<string, unknown>): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

class HttpError extends Error {
  constructor(readonly body: StatusBody) {
    super(body.message);
  }
}

function notFound(t: ResourceType, name: string): HttpError {
  const what = t.group ? `${t.plural}.${t.group}` : t.plural;
  return new HttpError(statusBody(404, 'NotFound', `${what} "${name}" not found`, { name, group: t.group, kind: t.plural }));
}

function tooOld(rv: number, compacted: number): StatusBody {
  return statusBody(410, 'Expired', `too old resource version: ${rv} (${compacted})`);
}

// ---------------------------------------------------------------------------------------------------
// Store: per-object history under a global resourceVersion counter, plus an event log for watches
// ---------------------------------------------------------------------------------------------------

interface Version {
  rv: number;
  obj: KubeObject | null; // null: deleted at rv
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface WatchEvent {
  rv: number;
  type: EventType;
  t: ResourceType;
  namespace: string;
  obj: KubeObject;
}

interface Watcher {
  t: ResourceType;
  namespace: string | undefined;
  selector: LabelSelector;
  res: ServerResponse;
}

const clone = <T>(v: T): T => structuredClone(v);

function objKey(t: ResourceType, ns: string, name: string): string {
  return `${groupVersion(t)}/${t.plural}/${ns}/${name}`;
}

// ---------------------------------------------------------------------------------------------------
// Label selectors (equality: a=b, a==b, a!=b, bare key and !key existence)
// ---------------------------------------------------------------------------------------------------

type LabelSelector = (labels: Record<string, string> | undefined) => boolean;

function parseLabelSelector(raw: string | null): LabelSelector {
  if (!raw) return () => true;
  const tests: LabelSelector[] = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((term): LabelSelector => {
      let m = /^([^!=\s]+)\s*!=\s*(.*)$/.exec(term);
      if (m) {
        const [, k = '', v = ''] = m;
        return (l) => l?.[k] !== v;
      }
      m = /^([^!=\s]+)\s*==?\s*(.*)$/.exec(term);
      if (m) {
        const [, k = '', v = ''] = m;
        return (l) => l?.[k] === v;
      }
      if (term.startsWith('!')) return (l) => l?.[term.slice(1)] === undefined;
      throw new HttpError(statusBody(400, 'BadRequest', `unable to parse requirement: ${term}`));
    });
  return (labels) => tests.every((f) => f(labels));
}

// ---------------------------------------------------------------------------------------------------
// Patches: JSON merge patch (RFC 7386) and JSON patch (RFC 6902)
// ---------------------------------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return clone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

interface JsonPatchOp {
  op: string;
  path: string;
  value?: unknown;
  from?: string;
}

function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new HttpError(statusBody(400, 'BadRequest', 'json patch must be an array'));
  let root = clone(doc);
  const split = (p: string): string[] => p.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const parentOf = (path: string): [Record<string, unknown> | unknown[], string] => {
    const parts = split(path);
    const last = parts.pop();
    if (last === undefined) throw new HttpError(statusBody(422, 'Invalid', `invalid path ${path}`));
    let cur: unknown = root;
    for (const p of parts) {
      cur = Array.isArray(cur) ? cur[Number(p)] : isPlainObject(cur) ? cur[p] : undefined;
      if (cur === undefined) throw new HttpError(statusBody(422, 'Invalid', `doc is missing path: "${path}"`));
    }
    if (!isPlainObject(cur) && !Array.isArray(cur)) throw new HttpError(statusBody(422, 'Invalid', `doc is missing path: "${path}"`));
    return [cur, last];
  };
  const read = (path: string): unknown => {
    if (path === '') return root;
    const [parent, key] = parentOf(path);
    return Array.isArray(parent) ? parent[Number(key)] : parent[key];
  };
  const write = (path: string, value: unknown, insert: boolean): void => {
    if (path === '') {
      root = value;
      return;
    }
    const [parent, key] = parentOf(path);
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : Number(key);
      parent.splice(i, insert ? 0 : 1, value);
    } else parent[key] = value;
  };
  const remove = (path: string): void => {
    const [parent, key] = parentOf(path);
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else {
      if (!(key in parent)) throw new HttpError(statusBody(422, 'Invalid', `unable to remove nonexistent key: ${key}`));
      delete parent[key];
    }
  };
  for (const raw of ops as JsonPatchOp[]) {
    switch (raw.op) {
      case 'add':
        write(raw.path, clone(raw.value), true);
        break;
      case 'replace':
        if (read(raw.path) === undefined) throw new HttpError(statusBody(422, 'Invalid', `doc is missing path: "${raw.path}"`));
        write(raw.path, clone(raw.value), false);
        break;
      case 'remove':
        remove(raw.path);
        break;
      case 'copy':
      case 'move': {
        const v = clone(read(raw.from ?? ''));
        if (raw.op === 'move') remove(raw.from ?? '');
        write(raw.path, v, true);
        break;
      }
      case 'test':
        if (JSON.stringify(read(raw.path)) !== JSON.stringify(raw.value)) {
          throw new HttpError(statusBody(422, 'Invalid', `testing value ${raw.path} failed`));
        }
        break;
      default:
        throw new HttpError(statusBody(400, 'BadRequest', `unknown json patch op ${String(raw.op)}`));
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------------------
// Loading @kubernetes/client-node
// ---------------------------------------------------------------------------------------------------

type ClientNode = typeof import('@kubernetes/client-node');
let clientNodePromise: Promise<ClientNode | Error> | undefined;

/**
 * @kubernetes/client-node 2.x depends on undici 8, which needs Node >= 22.19 (it crashes at import time on
 * Node 20). Loaded lazily so the stand-in itself runs on any Node; resolves to an Error saying why when the
 * client cannot load, so tests can skip with that reason.
 */
export function loadClientNode(): Promise<ClientNode | Error> {
  // client-node 1.x (node-fetch) runs on Node 20; 2.x (undici 8) needs Node >= 22.19 and fails to load
  // below it, which is reported here instead of crashing the test file.
  clientNodePromise ??= import('@kubernetes/client-node').catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  return clientNodePromise;
}

// ---------------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------------

interface ContinueToken {
  rv: number;
  start: string; // key of the last item returned
}

export async function startKubeApiStandIn(opts: StandInOptions = {}): Promise<KubeApiStandIn> {
  const token = opts.token ?? 'stand-in-token';
  const clientNode = await loadClientNode();
  const bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 60_000;
  const types = [...DEFAULT_TYPES, ...(opts.types ?? [])];

  let rvCounter = 1;
  let compactedRv = 0;
  const history = new Map<string, Version[]>();
  let log: WatchEvent[] = [];
  const watchers = new Set<Watcher>();

  const typeFor = (apiVersion: string, kind: string): ResourceType => {
    const t = types.find((x) => groupVersion(x) === apiVersion && x.kind === kind);
    if (!t) throw new Error(`stand-in: no resource type registered for ${apiVersion} ${kind}`);
    return t;
  };

  const current = (key: string): KubeObject | null => history.get(key)?.at(-1)?.obj ?? null;

  const emit = (ev: WatchEvent): void => {
    log.push(ev);
    for (const w of watchers) {
      if (watchMatches(w, ev)) writeEvent(w.res, ev.type, ev.obj);
    }
  };

  const commit = (t: ResourceType, ns: string, name: string, obj: KubeObject | null, type: EventType, deleted?: KubeObject): KubeObject => {
    const rv = ++rvCounter;
    const key = objKey(t, ns, name);
    let out: KubeObject;
    if (obj) {
      out = clone(obj);
      out.apiVersion = groupVersion(t);
      out.kind = t.kind;
      out.metadata = { ...out.metadata, resourceVersion: String(rv) };
    } else {
      out = clone(deleted ?? {});
      out.metadata = { ...out.metadata, resourceVersion: String(rv) };
    }
    const versions = history.get(key) ?? [];
    versions.push({ rv, obj: obj ? out : null });
    history.set(key, versions);
    emit({ rv, type, t, namespace: ns, obj: out });
    return clone(out);
  };

  // --- store operations (shared by the test side and the HTTP verbs) ---

  const doCreate = (t: ResourceType, ns: string, input: KubeObject): KubeObject => {
    const name = input.metadata?.name;
    if (!name) throw new HttpError(statusBody(422, 'Invalid', `${t.kind} is invalid: metadata.name: Required value`));
    if (current(objKey(t, ns, name))) {
      const what = t.group ? `${t.plural}.${t.group}` : t.plural;
      throw new HttpError(statusBody(409, 'AlreadyExists', `${what} "${name}" already exists`, { name, group: t.group, kind: t.plural }));
    }
    const obj = clone(input);
    obj.metadata = {
      ...obj.metadata,
      name,
      ...(t.namespaced ? { namespace: ns } : {}),
      uid: randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      generation: 1,
    };
    if (!t.namespaced) delete obj.metadata.namespace;
    const out = commit(t, ns, name, obj, 'ADDED');
    syncCrd(t, undefined, out);
    return out;
  };

  const doReplace = (t: ResourceType, ns: string, name: string, input: KubeObject, mode: 'all' | 'main' | 'status'): KubeObject => {
    const old = current(objKey(t, ns, name));
    if (!old) throw notFound(t, name);
    const wantRv = input.metadata?.resourceVersion;
    if (wantRv && wantRv !== old.metadata?.resourceVersion) {
      const what = t.group ? `${t.plural}.${t.group}` : t.plural;
      throw new HttpError(
        statusBody(409, 'Conflict', `Operation cannot be fulfilled on ${what} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: t.group, kind: t.plural }),
      );
    }
    let next: KubeObject;
    if (mode === 'status' && t.status) {
      next = clone(old);
      if (input.status === undefined) delete next.status;
      else next.status = clone(input.status);
    } else {
      next = clone(input);
      if (mode === 'main' && t.status) {
        if (old.status === undefined) delete next.status;
        else next.status = clone(old.status);
      }
    }
    // Identity fields are the server's, not the client's.
    next.metadata = {
      ...next.metadata,
      name,
      uid: old.metadata?.uid,
      creationTimestamp: old.metadata?.creationTimestamp,
      generation: old.metadata?.generation ?? 1,
    };
    if (t.namespaced) next.metadata.namespace = ns;
    else delete next.metadata.namespace;
    const specOf = (o: KubeObject): string => JSON.stringify({ ...o, metadata: undefined, status: undefined, apiVersion: undefined, kind: undefined });
    if (t.status && specOf(next) !== specOf(old)) next.metadata.generation = (old.metadata?.generation ?? 1) + 1;
    const out = commit(t, ns, name, next, 'MODIFIED');
    syncCrd(t, old, out);
    return out;
  };

  const doDelete = (t: ResourceType, ns: string, name: string): KubeObject => {
    const old = current(objKey(t, ns, name));
    if (!old) throw notFound(t, name);
    const out = commit(t, ns, name, null, 'DELETED', old);
    syncCrd(t, old, undefined);
    return out;
  };

  const addType = (t: ResourceType): void => {
    const at = types.findIndex((x) => x.group === t.group && x.version === t.version && x.plural === t.plural);
    if (at >= 0) types[at] = t;
    else types.push(t);
  };

  /** A CustomResourceDefinition's type is served while the CRD exists (a real server: once Established). */
  const syncCrd = (t: ResourceType, before: KubeObject | undefined, after: KubeObject | undefined): void => {
    if (t.group !== 'apiextensions.k8s.io' || t.kind !== 'CustomResourceDefinition') return;
    const old = before && typeOfCrd(before);
    if (old) {
      const at = types.findIndex((x) => x.group === old.group && x.version === old.version && x.plural === old.plural);
      if (at >= 0) types.splice(at, 1);
    }
    const now = after && typeOfCrd(after);
    if (now) addType(now);
  };

  /** Objects of a type (in a namespace, or all) as of resourceVersion `at`, sorted by key. */
  const snapshot = (t: ResourceType, ns: string | undefined, at: number): Array<[string, KubeObject]> => {
    const prefix = `${groupVersion(t)}/${t.plural}/${ns === undefined ? '' : `${ns}/`}`;
    const out: Array<[string, KubeObject]> = [];
    for (const [key, versions] of history) {
      if (!key.startsWith(prefix)) continue;
      let found: Version | undefined;
      for (const v of versions) if (v.rv <= at) found = v;
      if (found?.obj) out.push([key, found.obj]);
    }
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  };

  // --- watch helpers ---

  function watchMatches(w: Watcher, ev: WatchEvent): boolean {
    return ev.t === w.t && (w.namespace === undefined || w.namespace === ev.namespace) && w.selector(ev.obj.metadata?.labels);
  }

  function writeEvent(res: ServerResponse, type: string, object: unknown): void {
    if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
  }

  // --- discovery ---

  const groups = (): Array<{ group: string; version: string }> => {
    const seen = new Map<string, { group: string; version: string }>();
    for (const t of types) if (t.group) seen.set(groupVersion(t), { group: t.group, version: t.version });
    return [...seen.values()];
  };

  const resourceList = (group: string, version: string): unknown => {
    const mine = types.filter((t) => t.group === group && t.version === version);
    if (mine.length === 0) return undefined;
    const resources: unknown[] = [];
    for (const t of mine) {
      resources.push({ name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: VERBS, ...(t.shortNames ? { shortNames: t.shortNames } : {}) });
      if (t.status) resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion({ group, version }), resources };
  };

  const apiGroup = (name: string): unknown => {
    const versions = groups()
      .filter((g) => g.group === name)
      .map((g) => ({ groupVersion: `${g.group}/${g.version}`, version: g.version }));
    return versions.length ? { name, versions, preferredVersion: versions[0] } : undefined;
  };

  // --- request handling ---

  const readBody = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (!text) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HttpError(statusBody(400, 'BadRequest', 'the request body is not valid JSON'));
    }
  };

  const sendJson = (res: ServerResponse, code: number, body: unknown): void => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const handleWatch = (req: IncomingMessage, res: ServerResponse, t: ResourceType, ns: string | undefined, q: URLSearchParams): void => {
    const selector = parseLabelSelector(q.get('labelSelector'));
    const rvParam = q.get('resourceVersion');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = { t, namespace: ns, selector, res };
    if (!rvParam || rvParam === '0') {
      // No resourceVersion: synthetic ADDED for the current state, then changes.
      for (const [, obj] of snapshot(t, ns, rvCounter)) if (selector(obj.metadata?.labels)) writeEvent(res, 'ADDED', obj);
    } else {
      const from = Number(rvParam);
      if (!Number.isInteger(from) || from < 0) {
        writeEvent(res, 'ERROR', statusBody(400, 'BadRequest', `invalid resource version: ${rvParam}`));
        res.end();
        return;
      }
      if (from < compactedRv) {
        writeEvent(res, 'ERROR', tooOld(from, compactedRv));
        res.end();
        return;
      }
      for (const ev of log) if (ev.rv > from && watchMatches(w, ev)) writeEvent(res, ev.type, ev.obj);
    }
    watchers.add(w);
    const timers: NodeJS.Timeout[] = [];
    if (q.get('allowWatchBookmarks') === 'true') {
      timers.push(
        setInterval(() => {
          writeEvent(res, 'BOOKMARK', { kind: t.kind, apiVersion: groupVersion(t), metadata: { resourceVersion: String(rvCounter) } });
        }, bookmarkIntervalMs),
      );
    }
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? '');
    // Without timeoutSeconds the real server picks 30-60 min; a test never lasts that long.
    if (timeoutSeconds > 0) timers.push(setTimeout(() => res.end(), timeoutSeconds * 1000));
    const cleanup = (): void => {
      watchers.delete(w);
      for (const tm of timers) clearTimeout(tm);
    };
    res.on('close', cleanup);
    req.on('close', cleanup);
  };

  const handleList = (res: ServerResponse, t: ResourceType, ns: string | undefined, q: URLSearchParams): void => {
    const selector = parseLabelSelector(q.get('labelSelector'));
    const limit = Number(q.get('limit') ?? '0');
    const cont = q.get('continue');
    let at = rvCounter;
    let start = '';
    if (cont) {
      let tok: ContinueToken;
      try {
        tok = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as ContinueToken;
        if (typeof tok.rv !== 'number' || typeof tok.start !== 'string') throw new Error('bad');
      } catch {
        throw new HttpError(statusBody(400, 'BadRequest', 'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)'));
      }
      if (tok.rv < compactedRv) {
        throw new HttpError(
          statusBody(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.'),
        );
      }
      at = tok.rv;
      start = tok.start;
    }
    const all = snapshot(t, ns, at).filter(([key, obj]) => key > start && selector(obj.metadata?.labels));
    const page = limit > 0 ? all.slice(0, limit) : all;
    const rest = all.length - page.length;
    const metadata: Record<string, unknown> = { resourceVersion: String(at) };
    const lastKey = page.at(-1)?.[0];
    if (rest > 0 && lastKey !== undefined) {
      metadata.continue = Buffer.from(JSON.stringify({ rv: at, start: lastKey } satisfies ContinueToken)).toString('base64url');
      metadata.remainingItemCount = rest;
    }
    sendJson(res, 200, { kind: `${t.kind}List`, apiVersion: groupVersion(t), metadata, items: page.map(([, o]) => o) });
  };

  const handlePatch = async (req: IncomingMessage, res: ServerResponse, t: ResourceType, ns: string, name: string, sub: 'status' | undefined): Promise<void> => {
    const old = current(objKey(t, ns, name));
    if (!old) throw notFound(t, name);
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
    const body = await readBody(req);
    let patched: unknown;
    if (type === 'application/merge-patch+json') patched = mergePatch(old, body);
    else if (type === 'application/json-patch+json') patched = jsonPatch(old, body);
    else throw new HttpError(statusBody(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json`));
    if (!isPlainObject(patched)) throw new HttpError(statusBody(422, 'Invalid', 'patch result is not an object'));
    const next = patched as KubeObject;
    // A patch carries the resourceVersion precondition only if the client put it in.
    const wanted = isPlainObject(body) && isPlainObject(body.metadata) ? body.metadata.resourceVersion : undefined;
    next.metadata = { ...next.metadata, resourceVersion: typeof wanted === 'string' ? wanted : undefined };
    sendJson(res, 200, doReplace(t, ns, name, next, sub === 'status' ? 'status' : 'main'));
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.headers.authorization !== `Bearer ${token}`) throw new HttpError(statusBody(401, 'Unauthorized', 'Unauthorized'));
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const segs = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const q = url.searchParams;
    const method = req.method ?? 'GET';

    // Discovery.
    if (method === 'GET') {
      if (url.pathname === '/api') return sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
      if (url.pathname === '/apis') return sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [...new Set(groups().map((g) => g.group))].map(apiGroup) });
      if (segs[0] === 'api' && segs.length === 2) {
        const list = resourceList('', segs[1] ?? '');
        if (list) return sendJson(res, 200, list);
      }
      if (segs[0] === 'apis' && segs.length === 2) {
        const g = apiGroup(segs[1] ?? '');
        if (g) return sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...g });
      }
      if (segs[0] === 'apis' && segs.length === 3) {
        const list = resourceList(segs[1] ?? '', segs[2] ?? '');
        if (list) return sendJson(res, 200, list);
      }
    }

    // Resources: /api/v1/... or /apis/<g>/<v>/...
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 3) [group, version, rest] = ['', segs[1] ?? '', segs.slice(2)];
    else if (segs[0] === 'apis' && segs.length >= 4) [group, version, rest] = [segs[1] ?? '', segs[2] ?? '', segs.slice(3)];
    else throw new HttpError(statusBody(404, 'NotFound', 'the server could not find the requested resource'));
    let ns: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      ns = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub, ...extra] = rest;
    const t = types.find((x) => x.group === group && x.version === version && x.plural === plural);
    if (!t || extra.length > 0 || (sub !== undefined && !(sub === 'status' && t.status))) {
      throw new HttpError(statusBody(404, 'NotFound', 'the server could not find the requested resource'));
    }
    if (t.namespaced === false && ns !== undefined) throw new HttpError(statusBody(404, 'NotFound', 'the server could not find the requested resource'));
    const objNs = t.namespaced ? (ns ?? '') : '';

    if (name === undefined) {
      if (method === 'GET' && q.get('watch') === 'true') return handleWatch(req, res, t, ns, q);
      if (method === 'GET') return handleList(res, t, ns, q);
      if (method === 'POST') {
        if (t.namespaced && ns === undefined) throw new HttpError(statusBody(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
        const body = (await readBody(req)) as KubeObject;
        return sendJson(res, 201, doCreate(t, objNs, body ?? {}));
      }
    } else {
      if (t.namespaced && ns === undefined) throw new HttpError(statusBody(404, 'NotFound', 'the server could not find the requested resource'));
      if (method === 'GET') {
        const obj = current(objKey(t, objNs, name));
        if (!obj) throw notFound(t, name);
        return sendJson(res, 200, obj);
      }
      if (method === 'PATCH') return handlePatch(req, res, t, objNs, name, sub === 'status' ? 'status' : undefined);
      if (method === 'PUT') {
        const body = (await readBody(req)) as KubeObject;
        return sendJson(res, 200, doReplace(t, objNs, name, body ?? {}, sub === 'status' ? 'status' : 'main'));
      }
      if (method === 'DELETE' && sub === undefined) return sendJson(res, 200, doDelete(t, objNs, name));
    }
    throw new HttpError(statusBody(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
  };

  const server: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const body = err instanceof HttpError ? err.body : statusBody(500, 'InternalError', `stand-in: ${String(err)}`);
      if (!res.headersSent) sendJson(res, body.code, body);
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const nsOf = (t: ResourceType, obj: KubeObject): string => {
    if (!t.namespaced) return '';
    const ns = obj.metadata?.namespace;
    if (!ns) throw new Error(`stand-in: ${t.kind} needs metadata.namespace`);
    return ns;
  };

  return {
    url,
    token,
    kubeConfig() {
      if (clientNode instanceof Error) throw clientNode;
      const kc = new clientNode.KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'stand-in', server: url, skipTLSVerify: true }],
        users: [{ name: 'stand-in', token }],
        contexts: [{ name: 'stand-in', cluster: 'stand-in', user: 'stand-in' }],
        currentContext: 'stand-in',
      });
      return kc;
    },
    resourceVersion: () => rvCounter,
    create(obj) {
      const t = typeFor(obj.apiVersion ?? '', obj.kind ?? '');
      return doCreate(t, nsOf(t, obj), obj);
    },
    update(obj) {
      const t = typeFor(obj.apiVersion ?? '', obj.kind ?? '');
      const input = clone(obj);
      if (input.metadata) delete input.metadata.resourceVersion;
      return doReplace(t, nsOf(t, obj), obj.metadata?.name ?? '', input, 'all');
    },
    delete(apiVersion, kind, namespace, name) {
      const t = typeFor(apiVersion, kind);
      return doDelete(t, t.namespaced ? (namespace ?? '') : '', name);
    },
    get(apiVersion, kind, namespace, name) {
      const t = typeFor(apiVersion, kind);
      const obj = current(objKey(t, t.namespaced ? (namespace ?? '') : '', name));
      return obj ? clone(obj) : undefined;
    },
    compact(rv = rvCounter) {
      compactedRv = Math.max(compactedRv, rv);
      log = log.filter((ev) => ev.rv > compactedRv);
      for (const [key, versions] of history) {
        // Keep the newest version at or before the compaction point, and everything after it.
        let keepFrom = 0;
        versions.forEach((v, i) => {
          if (v.rv <= compactedRv) keepFrom = i;
        });
        const kept = versions.slice(keepFrom);
        if (kept.length === 1 && kept[0]?.obj === null) history.delete(key);
        else history.set(key, kept);
      }
    },
    addType,
    openWatches: () => watchers.size,
    async dropWatches() {
      for (const w of watchers) w.res.end();
      watchers.clear();
      await new Promise((r) => setImmediate(r));
    },
    async stop() {
      for (const w of watchers) w.res.end();
      watchers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
