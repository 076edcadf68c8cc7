// Starts the service's listener: plain HTTP, or HTTPS when a certificate is given, optionally asking
// clients for a certificate signed by a client CA (API servers authenticating their audit webhook by
// client certificate). With an admin port (ADMIN_PORT), a second listener on the same address with the
// same TLS serves /admin (listenService). The TLS layer asks but never insists (`rejectUnauthorized: false`): token clients
// without a certificate, Prometheus and probes still connect, and the webhook decides per cluster
// (webhook-auth.ts) from `socket.authorized` and the certificate's CN.
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';

/** The address listened on when none is given (LISTEN_ADDRESS): every interface. */
export const DEFAULT_HOST = '0.0.0.0';

export interface TlsFiles {
  /** PEM certificate (chain) the service presents. */
  certFile: string;
  /** PEM private key of that certificate. */
  keyFile: string;
  /** PEM CA bundle that client certificates are verified against; undefined: no client certificates. */
  clientCaFile?: string;
}

export interface ListenOptions {
  /** 0 picks a free port. */
  port: number;
  /** @defaultValue 0.0.0.0 */
  host?: string;
  /** undefined: plain HTTP. */
  tls?: TlsFiles;
  /**
   * How often the TLS files are read again; changed files replace the server's certificate, key and client
   * CA for new connections (cert-manager renews a mounted Secret in place). @defaultValue 30000
   */
  tlsReloadMs?: number;
  /** Called after each reload attempt that found changed files: no error = the new files are served. */
  onTlsReload?: (err?: Error) => void;
}

/** https.Server is an http.Server too (same request API, close*Connections, address). */
export type ServiceServer = Server;

async function readPem(what: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new Error(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

async function readTls(tls: TlsFiles): Promise<TlsMaterial> {
  const [cert, key, ca] = await Promise.all([
    readPem('TLS_CERT_FILE', tls.certFile),
    readPem('TLS_KEY_FILE', tls.keyFile),
    tls.clientCaFile ? readPem('TLS_CLIENT_CA_FILE', tls.clientCaFile) : undefined,
  ]);
  return { cert, key, ca };
}

function sameTls(a: TlsMaterial, b: TlsMaterial): boolean {
  const sameCa = a.ca && b.ca ? a.ca.equals(b.ca) : a.ca === b.ca;
  return sameCa && a.cert.equals(b.cert) && a.key.equals(b.key);
}

/**
 * Reads the files again every `ms` and swaps the secure context when they changed. Polling, not fs.watch:
 * a mounted Secret changes by an atomic symlink swap that watchers on the files themselves miss. A cert
 * and key that do not match yet (half-way through a rotation) are refused by setSecureContext and retried.
 * One read at a time (the next is scheduled when one ends), so a slow read never brings back older files.
 */
function reloadTlsEvery(server: HttpsServer, files: TlsFiles, current: TlsMaterial, ms: number, onReload: (err?: Error) => void): void {
  let served = current;
  let failed: TlsMaterial | undefined;
  let lastReadError: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const attempt = async () => {
    let next: TlsMaterial;
    try {
      next = await readTls(files);
      lastReadError = undefined;
    } catch (err) {
      // A file missing for a while is reported once, not every few seconds.
      const error = err instanceof Error ? err : new Error(String(err));
      if (error.message !== lastReadError) onReload(error);
      lastReadError = error.message;
      return;
    }
    if (sameTls(next, served) || (failed && sameTls(next, failed))) return;
    try {
      server.setSecureContext({ cert: next.cert, key: next.key, ...(next.ca ? { ca: next.ca } : {}) });
      served = next;
      failed = undefined;
      onReload();
    } catch (err) {
      failed = next;
      onReload(new Error(`the changed TLS files were not loaded (the previous certificate is still served): ${err instanceof Error ? err.message : String(err)}`));
    }
  };
  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => void attempt().finally(schedule), ms);
    timer.unref();
  };
  server.once('close', () => {
    closed = true;
    clearTimeout(timer);
  });
  schedule();
}

export async function listen(app: RequestListener, opts: ListenOptions): Promise<ServiceServer> {
  let server: Server;
  if (opts.tls) {
    const material = await readTls(opts.tls);
    const { cert, key, ca } = material;
    const https = createHttpsServer({ cert, key, ...(ca ? { ca, requestCert: true, rejectUnauthorized: false } : {}) }, app);
    // Started once listening, so a port already taken leaves no timer behind.
    const tls = opts.tls;
    https.once('listening', () => reloadTlsEvery(https, tls, material, opts.tlsReloadMs ?? 30_000, opts.onTlsReload ?? (() => undefined)));
    server = https;
  } else {
    server = createHttpServer(app);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? DEFAULT_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export interface ServiceListeners {
  /** Base URL and port of the main listener (webhook, metrics, health; /admin without an admin port). */
  url: string;
  port: number;
  /** Where /admin is served: the admin listener's, or the main one's. */
  adminUrl: string;
  adminPort: number;
  /**
   * Stops taking connections; idle ones close at once, requests in flight get `graceMs` to finish before
   * their connections are closed (a keep-alive client must not hold the shutdown).
   */
  close(graceMs: number): Promise<void>;
}

/** The base URL of a listener on `host`, as this host reaches it: loopback for "every interface", IPv6 in brackets. */
export function listenerUrl(scheme: string, host: string, port: number): string {
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `${scheme}://${local.includes(':') ? `[${local}]` : local}:${port}`;
}

function portOf(server: Server, fallback: number): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : fallback;
}

function closeServer(server: Server, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const drain = setTimeout(() => server.closeAllConnections(), graceMs);
  return closed.finally(() => clearTimeout(drain));
}

/**
 * The main listener and, with `adminPort`, the admin one: same address, same TLS files (each reloads
 * them). An admin port that cannot be had closes the main listener again.
 */
export async function listenService(apps: { main: RequestListener; admin?: RequestListener }, opts: ListenOptions & { adminPort?: number }): Promise<ServiceListeners> {
  const host = opts.host ?? DEFAULT_HOST;
  const scheme = opts.tls ? 'https' : 'http';
  const main = await listen(apps.main, { ...opts, host });
  let admin: Server | undefined;
  if (apps.admin) {
    try {
      admin = await listen(apps.admin, { ...opts, host, port: opts.adminPort ?? 0 });
    } catch (err) {
      await closeServer(main, 0);
      throw err;
    }
  }
  const port = portOf(main, opts.port);
  const adminPort = admin ? portOf(admin, opts.adminPort ?? 0) : port;
  return {
    url: listenerUrl(scheme, host, port),
    port,
    adminUrl: listenerUrl(scheme, host, adminPort),
    adminPort,
    close: async (graceMs) => {
      await Promise.all([closeServer(main, graceMs), ...(admin ? [closeServer(admin, graceMs)] : [])]);
    },
  };
}
