// One child of a reconcile flow: lists one resource type in one namespace of the source cluster (pages of
// 500 with continue tokens) and records, per object, exactly what the live path would write for it: the
// file path, the sanitized canonical YAML (Secrets redacted first) and the resourceVersion. Each object
// goes through the live path's own functions — watchChangeToJob (as a re-list of watch mode does: apiVersion
// and kind filled in, Secrets redacted, namespaces outside allowedNamespaces dropped), normalizeEvent
// (identity, redaction again, sanitize, canonical YAML) and objectFilePath — so one object maps to one file
// and one content whichever way it arrived.
//
// Findings go to the run's hash in Valkey (field: file path, value: JSON {rv, content}), one pipeline per
// page, with a TTL. A continue token that expired (410: the snapshot was compacted) restarts the list; an
// earlier listing's findings of this pair are taken back first (the per-child `written` set), so an object
// deleted in between is not reported as found.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Valkey } from 'iovalkey';
import { KubeApiError, kubeGetJson, type RequestLimiter } from '../../kube/kube-get-json.js';
import { collectionPath, groupVersionOf } from '../../kube/watch/resumable-watch.js';
import { watchChangeToJob } from '../../kube/watch/watch-change-job.js';
import { normalizeEvent } from '../../workers/route/normalize-event.js';
import { objectFilePath } from '../../core/path-layout.js';
import type { Finding } from './diff.js';
import type { ScopeEntry } from './scope.js';
import { isRecord } from '../../core/json.js';

/** Objects per list page, as the API server's own clients use. */
export const PAGE_SIZE = 500;
/** How long a run's findings stay in Valkey. */
export const FINDINGS_TTL_SECONDS = 24 * 3600;
/** Lists restarted after an expired continue token before one list without a limit (answered in one go). */
const MAX_EXPIRED_CONTINUES = 3;
/** Fields per HDEL when an earlier listing's findings are taken back. */
const DELETE_CHUNK = 1000;

export interface ListChildInput {
  kubeConfig: KubeConfig;
  /** The cluster's request limiter (kube/cluster-clients.ts); every page waits on it. */
  limiter?: RequestLimiter;
  cluster: string;
  spec: ScopeEntry;
  /** The target's base folder. */
  basePath: string;
  allowedNamespaces?: readonly string[];
  connection: Valkey;
  /** The run's findings hash (queues/names.ts reconcileKeys). */
  findingsKey: string;
  /** This child's set of the paths it wrote into the findings. */
  writtenKey: string;
  /** @defaultValue 500 */
  pageSize?: number;
  /** @defaultValue one day */
  ttlSeconds?: number;
  signal?: AbortSignal;
}

export interface ListChildResult {
  /** Objects recorded (the final listing). */
  count: number;
  /** Pages read, restarted listings included. */
  pages: number;
  /** The resourceVersion of the final listing's snapshot ('' when the server sent none). */
  listRv: string;
  /** What was listed: the parent prunes only where a complete listing looked. */
  listed?: { group: string; resource: string; namespace: string; namespaced: boolean };
}

/** A child that could not list its pair; the message names cluster, type, namespace and cause. */
export class ReconcileListError extends Error {
  override readonly name = 'ReconcileListError';
  constructor(
    readonly cluster: string,
    readonly spec: ScopeEntry,
    override readonly cause: unknown,
  ) {
    super(`reconcile list of ${typeName(spec)} in ${spec.namespaced ? (spec.namespace ? `namespace ${spec.namespace}` : 'all namespaces') : 'the cluster scope'} of cluster ${cluster} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }

  /** A refusal that a retry will not change (403, 404, 401, 400, 422); network errors and 429/5xx may pass. */
  get permanent(): boolean {
    const c = this.cause;
    return c instanceof KubeApiError && c.code >= 400 && c.code < 500 && c.code !== 408 && c.code !== 410 && c.code !== 429;
  }
}

const typeName = (spec: ScopeEntry): string => (spec.group ? `${spec.resource}.${spec.group}/${spec.version}` : `${spec.resource}/${spec.version}`);


/**
 * What the live path writes for one listed object (an item of a list, apiVersion and kind filled in):
 * its file path and finding; undefined for an object the live path would not write (no name, namespace
 * outside allowedNamespaces).
 */
export function findingOf(
  cluster: string,
  spec: ScopeEntry,
  object: Record<string, unknown>,
  basePath: string,
  allowedNamespaces?: readonly string[],
): { path: string; finding: Finding } | undefined {
  const made = watchChangeToJob({
    clusterId: cluster,
    spec,
    change: { type: 'ADDED', object, origin: 'relist', receivedAt: Date.now() },
    ...(allowedNamespaces ? { allowedNamespaces } : {}),
  });
  if (!made.keep) return undefined;
  const normalized = normalizeEvent(made.job);
  if (normalized.kind !== 'change' || normalized.event.content === null) return undefined;
  const { identity, content, resourceVersion } = normalized.event;
  return { path: objectFilePath(basePath, identity), finding: { rv: resourceVersion, content } };
}

/** Takes back what an earlier listing of this pair recorded. */
async function forgetEarlierListing(input: ListChildInput): Promise<void> {
  const { connection, findingsKey, writtenKey } = input;
  let cursor = '0';
  do {
    const [next, paths] = await connection.sscan(writtenKey, cursor, 'COUNT', DELETE_CHUNK);
    cursor = next;
    if (paths.length > 0) await connection.hdel(findingsKey, ...paths);
  } while (cursor !== '0');
  await connection.del(writtenKey);
}

async function listOnce(input: ListChildInput, limit: number | undefined, counters: ListChildResult): Promise<void> {
  const { spec, connection, findingsKey, writtenKey } = input;
  const ttl = input.ttlSeconds ?? FINDINGS_TTL_SECONDS;
  const path = collectionPath(spec);
  const apiVersion = groupVersionOf(spec);
  await forgetEarlierListing(input);
  counters.count = 0;
  counters.listRv = '';
  let cont: string | undefined;
  do {
    if (input.signal?.aborted) throw new Error('stopped');
    const query = new URLSearchParams();
    if (limit) query.set('limit', String(limit));
    if (cont) query.set('continue', cont);
    const q = query.toString();
    const body = await kubeGetJson(input.kubeConfig, q ? `${path}?${q}` : path, input.limiter ? { limiter: input.limiter } : {});
    if (!isRecord(body) || !Array.isArray(body.items) || !isRecord(body.metadata)) throw new Error(`GET ${path}: the answer is not a list`);
    counters.pages++;
    // Every page of one list is served from the first page's snapshot and repeats its resourceVersion.
    if (counters.listRv === '' && typeof body.metadata.resourceVersion === 'string') counters.listRv = body.metadata.resourceVersion;
    cont = typeof body.metadata.continue === 'string' && body.metadata.continue !== '' ? body.metadata.continue : undefined;

    const fields: string[] = [];
    const paths: string[] = [];
    for (const item of body.items as unknown[]) {
      if (!isRecord(item)) continue;
      // Items of a list come without apiVersion and kind (the list carries them); the file needs them.
      const found = findingOf(input.cluster, spec, { apiVersion, kind: spec.kind, ...item }, input.basePath, input.allowedNamespaces);
      if (!found) continue;
      fields.push(found.path, JSON.stringify(found.finding));
      paths.push(found.path);
    }
    if (paths.length > 0) {
      // One round trip per page: the findings, the paths written, and both TTLs.
      const results = await connection
        .multi()
        .hset(findingsKey, ...fields)
        .expire(findingsKey, ttl)
        .sadd(writtenKey, ...paths)
        .expire(writtenKey, ttl)
        .exec();
      const failed = results?.find(([err]) => err);
      if (!results || failed) throw new Error(`storing the findings in Valkey failed: ${failed?.[0]?.message ?? 'transaction aborted'}`);
      counters.count += paths.length;
    }
  } while (cont);
}

/**
 * Lists the pair and records its findings; returns {count, pages}. Throws ReconcileListError (naming the
 * cluster, type, namespace and cause) when the list cannot be read.
 */
export async function listChild(input: ListChildInput): Promise<ListChildResult> {
  const { group, resource, namespace, namespaced } = input.spec;
  const counters: ListChildResult = { count: 0, pages: 0, listRv: '', listed: { group, resource, namespace, namespaced } };
  const pageSize = input.pageSize ?? PAGE_SIZE;
  for (let expired = 0; ; expired++) {
    try {
      await listOnce(input, expired < MAX_EXPIRED_CONTINUES ? pageSize : undefined, counters);
      return counters;
    } catch (err) {
      // The snapshot behind the continue token was compacted: list again from the start.
      if (err instanceof KubeApiError && err.code === 410 && !input.signal?.aborted) continue;
      throw new ReconcileListError(input.cluster, input.spec, err);
    }
  }
}
