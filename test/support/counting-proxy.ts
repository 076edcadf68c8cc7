// A proxy in front of an API server (the real control plane over HTTPS, or the stand-in over HTTP) that
// records every request (method and path), so a test can count what a client really sent over the wire —
// the PATCHes of a status writer, for instance — and can do to the traffic what a real server cannot be
// told to do: refuse one request, end every open watch stream (as an API server restart or a load
// balancer's idle timeout does), or rewrite a request's path before it goes on (kube-target.ts scopes the
// configuration kinds of one test file with a label selector that way).
import { Agent as HttpAgent, createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  /** The path without the query. */
  path: string;
  /** The query, with its `?` ('' when none), as the client sent it. */
  query: string;
}

export interface CountingProxy {
  /** http://127.0.0.1:<port>, or https:// when the proxy serves TLS. */
  url: string;
  requests: SeenRequest[];
  /** Watch streams passing through right now. */
  openWatches(): number;
  /** Ends every open watch stream from the server side (the client sees a clean end of the stream). */
  dropWatches(): Promise<void>;
  stop(): Promise<void>;
}

export interface CountingProxyOptions {
  /**
   * May answer a request itself with this HTTP error (and a Status body, as the API server does) instead;
   * a promise holds the request until it settles (a test may write or compact meanwhile).
   */
  refuse?: (req: SeenRequest) => number | undefined | Promise<number | undefined>;
  /** The path and query sent upstream, from the client's (default: unchanged). */
  rewrite?: (pathAndQuery: string, method: string) => string;
  /** Serve TLS with this key and certificate (PEM) instead of plain HTTP. */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

const isWatch = (query: string): boolean => /[?&]watch=(true|1)(&|$)/.test(query);

/** The client's headers for the API server: its host; hop-by-hop headers stay on the client's hop (the proxy keeps its own connections). */
function forwarded(headers: IncomingMessage['headers'], host: string): IncomingMessage['headers'] {
  const out: IncomingMessage['headers'] = { ...headers, host };
  delete out.connection;
  delete out['keep-alive'];
  return out;
}

/**
 * Forwards every request to `target` (http:// or https://; an https target's certificate is not checked:
 * the control plane's is self-signed) with its headers, the bearer token included, streaming both ways.
 */
export async function startCountingProxy(target: string, optsOrRefuse: CountingProxyOptions | CountingProxyOptions['refuse'] = {}): Promise<CountingProxy> {
  const opts: CountingProxyOptions = typeof optsOrRefuse === 'function' ? { refuse: optsOrRefuse } : (optsOrRefuse ?? {});
  const upstream = new URL(target);
  const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest;
  // Connections to the API server are kept: a TLS handshake per request would make every test slow.
  const agent = upstream.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, rejectUnauthorized: false }) : new HttpAgent({ keepAlive: true });
  const requests: SeenRequest[] = [];
  type Watch = { res: ServerResponse; upstream?: IncomingMessage };
  const watches = new Set<Watch>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const at = url.indexOf('?');
    const seen: SeenRequest = { method: req.method ?? 'GET', path: at < 0 ? url : url.slice(0, at), query: at < 0 ? '' : url.slice(at) };
    requests.push(seen);
    const decided = opts.refuse?.(seen);
    if (decided instanceof Promise) {
      decided.then(
        (code) => answer(req, res, url, seen, code),
        () => answer(req, res, url, seen, 500),
      );
    } else answer(req, res, url, seen, decided);
  };
  const answer = (req: IncomingMessage, res: ServerResponse, url: string, seen: SeenRequest, code: number | undefined): void => {
    if (code !== undefined) {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `refused by the test proxy (${code})`, reason: code === 403 ? 'Forbidden' : 'InternalError', code }));
      req.resume();
      return;
    }
    const watch: Watch | undefined = isWatch(seen.query) ? { res } : undefined;
    if (watch) {
      watches.add(watch);
      res.once('close', () => watches.delete(watch));
    }
    const out = send(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: opts.rewrite ? opts.rewrite(url, seen.method) : url,
        headers: forwarded(req.headers, upstream.host),
        agent,
      },
      (reply) => {
        // Ended before the server answered (dropWatches on a watch just opened): nothing more goes to the client.
        if (res.writableEnded) {
          reply.destroy();
          return;
        }
        if (watch) watch.upstream = reply;
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        // A watch answers its headers long before its first event: pass them on at once, as the server does.
        res.flushHeaders();
        reply.pipe(res);
        // The client went away: so does the upstream request (a watch would otherwise stay open upstream).
        res.once('close', () => reply.destroy());
      },
    );
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(out);
  };
  const server: Server = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    openWatches: () => watches.size,
    async dropWatches() {
      const open = [...watches];
      for (const w of open) {
        w.upstream?.unpipe(w.res);
        w.upstream?.destroy();
        w.res.end();
      }
      await Promise.all(open.map((w) => (w.res.writableFinished ? undefined : new Promise((r) => w.res.once('close', r)))));
    },
    async stop() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A kubeconfig that reaches the API server through `proxyUrl` with a bearer token (built with the given KubeConfig class). */
export function kubeConfigVia<K extends { loadFromOptions(o: unknown): void }>(KubeConfigClass: new () => K, proxyUrl: string, token: string, caData?: string): K {
  const kc = new KubeConfigClass();
  kc.loadFromOptions({
    clusters: [{ name: 'proxy', server: proxyUrl, ...(caData ? { caData } : { skipTLSVerify: true }) }],
    users: [{ name: 'proxy', token }],
    contexts: [{ name: 'proxy', cluster: 'proxy', user: 'proxy' }],
    currentContext: 'proxy',
  });
  return kc;
}
