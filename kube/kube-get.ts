// One GET to a cluster's API server with the credentials of its kubeconfig. client-node's
// applyToHTTPSOptions fills in what the kubeconfig says (CA, client certificate, bearer token from a
// token, token file, exec plugin or OIDC, basic auth, proxy agent), so every kind of kubeconfig works (a
// kubeconfig from a Secret is restricted to inline credentials before it gets here: secret-kubeconfig.ts);
// node:http(s) sends it, because the typed clients cannot read a resource known only by its plural name.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface KubeResponse {
  status: number;
  body: string;
}

/** The request never got an HTTP answer: no connection, reset, timeout. Worth retrying. */
export class KubeNetworkError extends Error {
  override readonly name = 'KubeNetworkError';
}

/**
 * The credentials could not be prepared for the request (an exec plugin or auth-provider failed, a token,
 * certificate or key file could not be read), so nothing was sent. Often passing (a plugin's own backend
 * away, a projected token being rotated): worth retrying. Its message never repeats what a plugin wrote
 * to stderr or answered, which may hold credentials.
 */
export class KubeCredentialsError extends Error {
  override readonly name = 'KubeCredentialsError';
}

/** What went wrong preparing the credentials, without a plugin's words. */
function credentialsProblem(kc: KubeConfig, err: unknown): string {
  const user = kc.getCurrentUser();
  const code = (err as { code?: unknown } | null)?.code;
  const errno = typeof code === 'string' && /^E[A-Z]+$/.test(code) ? ` (${code})` : '';
  if (user?.exec) return `the exec plugin of the kubeconfig failed${errno}`;
  if (user?.authProvider) {
    const name = (user.authProvider as { name?: unknown }).name;
    return `the auth-provider${typeof name === 'string' && /^[A-Za-z][\w-]{0,31}$/.test(name) ? ` ${name}` : ''} of the kubeconfig failed${errno}`;
  }
  // No plugin: what failed is reading a file the kubeconfig names, or building the connection from it.
  // Those messages name paths and fields, never a credential.
  return `the credentials of the kubeconfig could not be prepared: ${err instanceof Error ? err.message : String(err)}`;
}

/** An object in etcd is at most 1.5 MiB by default; an answer far beyond that is not one object. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface KubeGetOptions {
  /** For the whole exchange: connect, headers and body. */
  timeoutMs: number;
}

export async function kubeGet(kc: KubeConfig, path: string, opts: KubeGetOptions): Promise<KubeResponse> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig names no server for its current context');
  // A server URL may carry a path prefix (a proxy in front of the API server): keep it.
  const url = new URL(server.replace(/\/+$/, '') + path);
  const options: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  try {
    await kc.applyToHTTPSOptions(options);
  } catch (err) {
    throw new KubeCredentialsError(credentialsProblem(kc, err));
  }
  const send = url.protocol === 'http:' ? http.request : https.request;
  const signal = AbortSignal.timeout(opts.timeoutMs);
  return new Promise<KubeResponse>((resolve, reject) => {
    const fail = (err: Error): void => {
      reject(signal.aborted ? new KubeNetworkError(`no answer within ${opts.timeoutMs / 1000} s`) : new KubeNetworkError(err.message));
    };
    const req = send(url, { ...options, signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy();
          reject(new Error(`the answer is larger than ${MAX_BODY_BYTES / 1024 / 1024} MiB`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', fail);
      // A connection cut mid-answer may end the stream without an error event.
      res.on('close', () => {
        if (!res.complete) fail(new Error('the connection closed before the answer was complete'));
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end();
  });
}
