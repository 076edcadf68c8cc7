// Reads one object back from its source cluster, for an audit event that carried no body (audit level
// Metadata, or a patch whose response was not recorded). Every request waits on the cluster's limiter.
// The answer says what happened in terms the router records: the object, that it is gone, that the
// event names no object that can be read, or why it could not be read. A Secret is redacted here,
// before anyone else holds it.
import { storableObject } from '../core/redact-secret.js';
import type { ClusterClient } from './cluster-clients.js';
import { KubeCredentialsError, KubeNetworkError, kubeGet, type KubeResponse } from './kube-get.js';
import { isClusterScoped, objectPath, type ObjectRefLike } from './object-path.js';
import { MAX_MESSAGE, parseJson } from '../core/json-body.js';
import { isRecord } from '../core/json.js';

/**
 * Only `gone` and `unaddressable` mean there is nothing to read; a `failed` read fails its event, which is
 * retried and at last kept as a dead letter to replay (once RBAC or the credentials are fixed).
 */
export type FetchOutcome =
  | { kind: 'found'; object: Record<string, unknown> }
  /** The object was deleted since the event (404 with a NotFound Status naming it); a later delete event says so. */
  | { kind: 'gone' }
  /** The objectRef addresses no object that can be read (no name, no API version, a subresource): no request is made. */
  | { kind: 'unaddressable'; reason: string }
  /**
   * The reason names the cluster, the object and, for a refusal, the permission needed. transient: the
   * cluster could not be reached, was overloaded or its credentials could not be prepared, through every
   * retry; the rest of a batch does not try that cluster again.
   */
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

/** The object, for messages: `configmaps shop/settings`, `deployments.apps shop/web`, `namespaces shop`. */
export function describeRef(ref: ObjectRefLike): string {
  const resource = ref.apiGroup ? `${ref.resource}.${ref.apiGroup}` : ref.resource;
  return `${resource} ${isClusterScoped(ref) ? '' : `${ref.namespace}/`}${ref.name ?? ''}`;
}

const isRetryable = (status: number): boolean => status === 429 || status >= 500;

/**
 * Whether a 404 says that this object does not exist: a Status with reason NotFound that names it. A 404
 * for a path the server does not serve (an API version or resource it does not know) is either no Status
 * at all ("404 page not found") or a NotFound Status without details: the object may well exist.
 */
function isObjectNotFound(res: KubeResponse, ref: ObjectRefLike): boolean {
  const body = parseJson(res.body);
  if (!isRecord(body) || body.kind !== 'Status' || body.reason !== 'NotFound') return false;
  return isRecord(body.details) && body.details.name === ref.name;
}

type Attempt = FetchOutcome | { kind: 'retry'; reason: string };

function judge(client: ClusterClient, ref: ObjectRefLike, path: string, res: KubeResponse): Attempt {
  const c = `cluster ${client.cluster}`;
  if (res.status === 200) {
    const object = parseJson(res.body);
    if (!isRecord(object) || !isRecord(object.metadata)) {
      return { kind: 'failed', reason: `${c} answered reading ${describeRef(ref)} with something that is not an object`, transient: false };
    }
    return { kind: 'found', object: storableObject(object, ref) };
  }
  if (res.status === 404) {
    if (isObjectNotFound(res, ref)) return { kind: 'gone' };
    return {
      kind: 'failed',
      reason:
        `${c} answered ${serverMessage(res)} reading ${describeRef(ref)} at ${path}: it does not serve that path ` +
        `(is ${ref.apiGroup ? `${ref.apiGroup}/` : ''}${ref.apiVersion ?? ''} served there, with the resource ${ref.resource}?)`,
      transient: false,
    };
  }
  if (res.status === 401) {
    return {
      kind: 'failed',
      reason: `${c} does not accept ${client.credentials} (${serverMessage(res)}): reading ${describeRef(ref)} needs valid credentials with the permission to ${neededPermission(ref)}`,
      transient: false,
    };
  }
  if (res.status === 403) {
    return {
      kind: 'failed',
      reason: `${c}: missing permission to ${neededPermission(ref)} for ${client.credentials}, reading ${describeRef(ref)} (${serverMessage(res)})`,
      transient: false,
    };
  }
  if (isRetryable(res.status)) return { kind: 'retry', reason: `${c} answered ${serverMessage(res)} reading ${describeRef(ref)}` };
  return { kind: 'failed', reason: `${c} answered ${serverMessage(res)} reading ${describeRef(ref)}`, transient: false };
}

async function attempt(client: ClusterClient, ref: ObjectRefLike, path: string, timeoutMs: number): Promise<Attempt> {
  await client.limiter.take();
  let res: KubeResponse;
  try {
    res = await kubeGet(client.kubeConfig, path, { timeoutMs });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof KubeNetworkError) return { kind: 'retry', reason: `cluster ${client.cluster} could not be reached reading ${describeRef(ref)}: ${message}` };
    // Nothing was sent: an exec plugin or a token file may well work a moment later.
    if (err instanceof KubeCredentialsError) return { kind: 'retry', reason: `cluster ${client.cluster}, reading ${describeRef(ref)} with ${client.credentials}: ${message}` };
    // The answer was refused whole (too large), or the kubeconfig names no server: trying again at once
    // would meet the same.
    return { kind: 'failed', reason: `cluster ${client.cluster}, reading ${describeRef(ref)} with ${client.credentials}: ${message}`, transient: false };
  }
  return judge(client, ref, path, res);
}

/**
 * The reason without the client's own inline secrets, should a server (or a proxy) have echoed one back
 * in its message: reasons are stored with the job in Valkey and shown in Bull Board.
 */
function scrub(client: ClusterClient, outcome: FetchOutcome): FetchOutcome {
  if (outcome.kind !== 'failed') return outcome;
  const user = client.kubeConfig.getCurrentUser();
  let reason = outcome.reason;
  const basic = user?.username && user.password ? Buffer.from(`${user.username}:${user.password}`).toString('base64') : undefined;
  for (const secret of [user?.token, user?.password, basic]) {
    if (secret && secret.length >= 4) reason = reason.split(secret).join('[redacted]');
  }
  return { ...outcome, reason };
}

export async function fetchObject(client: ClusterClient, ref: ObjectRefLike, opts: FetchObjectOptions = {}): Promise<FetchOutcome> {
  const target = objectPath(ref);
  if (target.kind === 'unaddressable') return { kind: 'unaddressable', reason: target.reason };
  const retries = opts.retries ?? 3;
  const backoffMs = opts.backoffMs ?? 200;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let last = '';
  for (let i = 0; i <= retries; i++) {
    if (i > 0) await sleep(backoffMs * 2 ** (i - 1));
    const outcome = await attempt(client, ref, target.path, opts.timeoutMs ?? 10_000);
    if (outcome.kind !== 'retry') return scrub(client, outcome);
    last = outcome.reason;
  }
  return scrub(client, { kind: 'failed', reason: `${last} (${retries + 1} attempts)`, transient: true });
}
