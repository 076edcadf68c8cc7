// An HTTP proxy in front of the API-server stand-in that records every request (method and path), so a
// test can count what a client really sent over the wire: the PATCHes of a status writer, for instance.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
}

export interface CountingProxy {
  url: string;
  requests: SeenRequest[];
  stop(): Promise<void>;
}

/**
 * Forwards every request to `target` (an http:// URL) unchanged, streaming both ways; `refuse` may answer a
 * request itself with an HTTP error (and a Status body, as the API server does) instead.
 */
export async function startCountingProxy(target: string, refuse?: (req: SeenRequest) => number | undefined): Promise<CountingProxy> {
  const upstream = new URL(target);
  const requests: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const seen = { method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0]! };
    requests.push(seen);
    const code = refuse?.(seen);
    if (code !== undefined) {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `refused by the test proxy (${code})`, reason: code === 403 ? 'Forbidden' : 'InternalError', code }));
      req.resume();
      return;
    }
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        // A watch answers its headers long before its first event: pass them on at once, as the server does.
        res.flushHeaders();
        answer.pipe(res);
      },
    );
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A kubeconfig that reaches the API server through `proxyUrl` with a bearer token (built with the given KubeConfig class). */
export function kubeConfigVia<K extends { loadFromOptions(o: unknown): void }>(KubeConfigClass: new () => K, proxyUrl: string, token: string): K {
  const kc = new KubeConfigClass();
  kc.loadFromOptions({
    clusters: [{ name: 'proxy', server: proxyUrl, skipTLSVerify: true }],
    users: [{ name: 'proxy', token }],
    contexts: [{ name: 'proxy', cluster: 'proxy', user: 'proxy' }],
    currentContext: 'proxy',
  });
  return kc;
}
