// Reads one object back from its source cluster, for an audit event that carried no body (audit level
// Metadata, or a patch whose response was not recorded). Every request waits on the cluster's limiter.
// The answer says what happened in terms the router records: the object, that it is gone, or why it
// could not be read. A Secret is redacted here, before anyone else holds it.
import { redactSecret } from '../workers/ingest/redact-secret.js';
import type { ClusterClient } from './cluster-clients.js';
import { KubeNetworkError, kubeGet, type KubeResponse } from './kube-get.js';
import { isClusterScoped, objectPath, type ObjectRefLike } from './object-path.js';

export type FetchOutcome =
  | { kind: 'found'; object: Record<string, unknown> }
  /** The object was deleted since the event; a later delete event says so. */
  | { kind: 'gone' }
  /** transient: the cluster could not be reached or was overloaded (after retries), not a lasting refusal. */
  | { kind: 'failed'; reason: string; transient: boolean };

export interface FetchObjectOptions {
  /** Per attempt. @defaultValue 10000 */
  timeoutMs?: number;
  /** Retries after a 429, a 5xx or a network error. @defaultValue 3 */
  retries?: number;
  /** First retry delay, doubling. @defaultValue 200 */
  backoffMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const MAX_MESSAGE = 300;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The message of the API server's Status answer, shortened, or the HTTP status alone. */
function serverMessage(res: KubeResponse): string {
  const body = parseJson(res.body);
  const message = isRecord(body) && typeof body.message === 'string' ? body.message : '';
  const short = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
  return short ? `${res.status}: ${short}` : `${res.status}`;
}

/** The RBAC rule the credentials need, as an operator writes it down. */
export function neededPermission(ref: ObjectRefLike): string {
  const resource = ref.apiGroup ? `${ref.resource}.${ref.apiGroup}` : ref.resource;
  return isClusterScoped(ref) ? `get ${resource} (cluster-scoped)` : `get ${resource} in namespace ${ref.namespace}`;
}

function describe(ref: ObjectRefLike): string {
  const resource = ref.apiGroup ? `${ref.resource}.${ref.apiGroup}` : ref.resource;
  return `${resource} ${isClusterScoped(ref) ? '' : `${ref.namespace}/`}${ref.name ?? ''}`;
}

const isRetryable = (status: number): boolean => status === 429 || status >= 500;

type Attempt = FetchOutcome | { kind: 'retry'; reason: string };

function judge(client: ClusterClient, ref: ObjectRefLike, res: KubeResponse): Attempt {
  const c = `cluster ${client.cluster}`;
  if (res.status === 200) {
    const object = parseJson(res.body);
    if (!isRecord(object) || !isRecord(object.metadata)) {
      return { kind: 'failed', reason: `${c} answered reading ${describe(ref)} with something that is not an object`, transient: false };
    }
    return { kind: 'found', object: redactSecret(object, ref) };
  }
  if (res.status === 404) return { kind: 'gone' };
  if (res.status === 401) {
    return {
      kind: 'failed',
      reason: `${c} does not accept ${client.credentials} (${serverMessage(res)}): reading ${describe(ref)} needs valid credentials with the permission to ${neededPermission(ref)}`,
      transient: false,
    };
  }
  if (res.status === 403) {
    return {
      kind: 'failed',
      reason: `${c}: missing permission to ${neededPermission(ref)} for ${client.credentials} (${serverMessage(res)})`,
      transient: false,
    };
  }
  if (isRetryable(res.status)) return { kind: 'retry', reason: `${c} answered ${serverMessage(res)} reading ${describe(ref)}` };
  return { kind: 'failed', reason: `${c} answered ${serverMessage(res)} reading ${describe(ref)}`, transient: false };
}

async function attempt(client: ClusterClient, ref: ObjectRefLike, path: string, timeoutMs: number): Promise<Attempt> {
  await client.limiter.take();
  let res: KubeResponse;
  try {
    res = await kubeGet(client.kubeConfig, path, { timeoutMs });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof KubeNetworkError) return { kind: 'retry', reason: `cluster ${client.cluster} could not be reached reading ${describe(ref)}: ${message}` };
    // The request was never sent (credentials could not be prepared) or its answer was refused whole:
    // trying again at once would meet the same.
    return { kind: 'failed', reason: `cluster ${client.cluster}, reading ${describe(ref)} with ${client.credentials}: ${message}`, transient: false };
  }
  return judge(client, ref, res);
}

export async function fetchObject(client: ClusterClient, ref: ObjectRefLike, opts: FetchObjectOptions = {}): Promise<FetchOutcome> {
  const target = objectPath(ref);
  if (target.kind === 'unaddressable') return { kind: 'failed', reason: target.reason, transient: false };
  const retries = opts.retries ?? 3;
  const backoffMs = opts.backoffMs ?? 200;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let last = '';
  for (let i = 0; i <= retries; i++) {
    if (i > 0) await sleep(backoffMs * 2 ** (i - 1));
    const outcome = await attempt(client, ref, target.path, opts.timeoutMs ?? 10_000);
    if (outcome.kind !== 'retry') return outcome;
    last = outcome.reason;
  }
  return { kind: 'failed', reason: `${last} (${retries + 1} attempts)`, transient: true };
}
