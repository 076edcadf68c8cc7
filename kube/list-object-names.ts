// Lists the names of one type's objects in one namespace of a source cluster, for a deletecollection whose
// answer the audit level did not record: what is still there stays in Git, the rest of the type's files
// there went. Pages of 500 with continue tokens, as reconcile and watch mode list (kubeGetJson, the
// cluster's limiter); a continue token that expired (410) starts the list again. An object marked for
// deletion (Terminating, waiting for its finalizers) counts as gone, as the rest of the pipeline reads it
// (core/object-state.ts). Whatever fails is said, never guessed: the router fails the event with it.
import type { IngestJob } from '../core/contracts.js';
import type { ClusterClient, ClusterClients } from './cluster-clients.js';
import { isRecord } from '../core/json.js';
import { KubeApiError, kubeGetJson } from './kube-get-json.js';
import { KubeCredentialsError, KubeNetworkError } from './kube-get.js';
import { terminating } from '../core/object-state.js';
import { collectionPath } from './watch/resumable-watch.js';

export type ListNamesOutcome =
  | { kind: 'listed'; names: string[] }
  /** The reason names the cluster, the type, the namespace and, for a refusal, the permission needed. */
  | { kind: 'failed'; reason: string; transient: boolean };

/** Lists what a deletecollection event's (type, namespace) holds now, with the event's cluster's client. */
export type CollectionLister = (job: IngestJob) => Promise<ListNamesOutcome>;

export interface ListObjectNamesOptions {
  /** @defaultValue 500 */
  pageSize?: number;
  /** Per page. @defaultValue 10000 (the router waits on it) */
  timeoutMs?: number;
  /** Retries of a page after a network error, 429 or 5xx. @defaultValue 3 */
  retries?: number;
  /** First retry delay, doubling. @defaultValue 200 */
  backoffMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Expired continue tokens before one list without a limit (the server answers it in one go). */
const MAX_EXPIRED_CONTINUES = 3;

export interface CollectionRef {
  group: string;
  version: string;
  resource: string;
  /** '' for a cluster-scoped type. */
  namespace: string;
}

const describe = (ref: CollectionRef): string =>
  `${ref.group ? `${ref.resource}.${ref.group}` : ref.resource} ${ref.namespace ? `in namespace ${ref.namespace}` : '(cluster-scoped)'}`;

/** The names of the objects of `ref` that exist and are not Terminating. */
export async function listObjectNames(client: ClusterClient, ref: CollectionRef, opts: ListObjectNamesOptions = {}): Promise<ListNamesOutcome> {
  const path = collectionPath({ ...ref, namespaced: ref.namespace !== '' });
  const retries = opts.retries ?? 3;
  const backoffMs = opts.backoffMs ?? 200;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const c = `cluster ${client.cluster}`;

  const page = async (url: string): Promise<Record<string, unknown>> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const body = await kubeGetJson(client.kubeConfig, url, { limiter: client.limiter, timeoutMs: opts.timeoutMs ?? 10_000 });
        if (!isRecord(body) || !Array.isArray(body.items) || !isRecord(body.metadata)) throw new ListFailure(`${c} answered listing ${describe(ref)} with something that is not a list`, false);
        return body;
      } catch (err) {
        if (err instanceof ListFailure || (err instanceof KubeApiError && err.code === 410)) throw err;
        const transient =
          err instanceof KubeNetworkError || err instanceof KubeCredentialsError || (err instanceof KubeApiError && (err.code === 429 || err.code >= 500));
        if (transient && attempt < retries) {
          await sleep(backoffMs * 2 ** attempt);
          continue;
        }
        const message = err instanceof Error ? err.message : String(err);
        const permission = err instanceof KubeApiError && (err.code === 401 || err.code === 403) ? ` (needs the permission to list ${describe(ref)})` : '';
        throw new ListFailure(`${c}, listing ${describe(ref)} with ${client.credentials}: ${message}${permission}`, transient);
      }
    }
  };

  try {
    for (let expired = 0; ; expired++) {
      const limit = expired < MAX_EXPIRED_CONTINUES ? (opts.pageSize ?? 500) : undefined;
      const names: string[] = [];
      let cont: string | undefined;
      try {
        do {
          const query = new URLSearchParams();
          if (limit) query.set('limit', String(limit));
          if (cont) query.set('continue', cont);
          const q = query.toString();
          const body = await page(q ? `${path}?${q}` : path);
          const metadata = body.metadata as Record<string, unknown>;
          cont = typeof metadata.continue === 'string' && metadata.continue !== '' ? metadata.continue : undefined;
          for (const item of body.items as unknown[]) {
            if (!isRecord(item) || !isRecord(item.metadata)) continue;
            const name = item.metadata.name;
            if (typeof name === 'string' && name !== '' && !terminating(item)) names.push(name);
          }
        } while (cont);
        return { kind: 'listed', names };
      } catch (err) {
        // The snapshot behind the continue token was compacted: list again from the start.
        if (err instanceof KubeApiError && err.code === 410) continue;
        throw err;
      }
    }
  } catch (err) {
    if (err instanceof ListFailure) return { kind: 'failed', reason: scrubSecrets(client, err.message), transient: err.transient };
    throw err;
  }
}

class ListFailure extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

/** The text without the client's own inline secrets, should a server have echoed one (reasons are stored). */
function scrubSecrets(client: ClusterClient, text: string): string {
  const user = client.kubeConfig.getCurrentUser();
  const basic = user?.username && user.password ? Buffer.from(`${user.username}:${user.password}`).toString('base64') : undefined;
  let out = text;
  for (const secret of [user?.token, user?.password, basic]) {
    if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out;
}

/** The (type, namespace) a deletecollection event deleted from: its objectRef. */
export function collectionRefOf(job: IngestJob): CollectionRef | undefined {
  const { objectRef } = job;
  if (!objectRef.apiVersion) return undefined;
  return { group: objectRef.apiGroup ?? '', version: objectRef.apiVersion, resource: objectRef.resource, namespace: objectRef.namespace ?? '' };
}

/** The router's lister: each event's cluster's client, looked up per event (a configuration change applies at once). */
export function createCollectionLister(clients: ClusterClients, opts: ListObjectNamesOptions = {}): CollectionLister {
  return async (job) => {
    const ref = collectionRefOf(job);
    if (!ref) return { kind: 'failed', reason: `cannot list the ${job.objectRef.resource} a deletecollection deleted from: the event names no API version`, transient: false };
    const client = clients.get(job.clusterId);
    if (!client) {
      const why = clients.whyNoClient(job.clusterId) ?? `cluster ${job.clusterId} has no API client`;
      return { kind: 'failed', reason: `cannot list ${describe(ref)} to tell what a deletecollection deleted: ${why}`, transient: false };
    }
    return listObjectNames(client, ref, opts);
  };
}
