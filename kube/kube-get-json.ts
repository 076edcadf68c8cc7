// A GET that answers JSON or throws the API server's refusal as a typed error: discovery and the
// paginated lists of watch mode need the Status `code` (410 Expired restarts a list) and a message that
// names what was asked. The request itself is kube-get.ts (every kind of kubeconfig credentials).
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeGet } from './kube-get.js';
import { MAX_MESSAGE, parseJson } from '../core/json-body.js';
import { isRecord } from '../core/json.js';

/** What the client-side limit of a cluster offers (kube/token-bucket.ts TokenBucket). */
export interface RequestLimiter {
  take(): Promise<void>;
}

export interface KubeGetJsonOptions {
  /** Every request waits on it first. */
  limiter?: RequestLimiter;
  /** @defaultValue 30000 */
  timeoutMs?: number;
}

/** The API server answered, but not with 200. `code` is the HTTP status, `reason` the Status reason. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly path: string,
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(`GET ${path}: ${code}${reason ? ` ${reason}` : ''}${message ? `: ${message}` : ''}`);
  }
}


export async function kubeGetJson(kc: KubeConfig, path: string, opts: KubeGetJsonOptions = {}): Promise<unknown> {
  await opts.limiter?.take();
  const res = await kubeGet(kc, path, { timeoutMs: opts.timeoutMs ?? 30_000 });
  const body = parseJson(res.body);
  if (res.status !== 200) {
    const status = isRecord(body) ? body : {};
    const message = typeof status.message === 'string' ? status.message.slice(0, MAX_MESSAGE) : '';
    throw new KubeApiError(path, res.status, typeof status.reason === 'string' ? status.reason : '', message);
  }
  if (body === undefined) throw new KubeApiError(path, res.status, '', 'the answer is not JSON');
  return body;
}
