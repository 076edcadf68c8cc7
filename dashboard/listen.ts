// Starts the service's listener: plain HTTP, or HTTPS when a certificate is given, optionally asking
// clients for a certificate signed by a client CA (API servers authenticating their audit webhook by
// client certificate). The TLS layer asks but never insists (`rejectUnauthorized: false`): token clients
// without a certificate, Prometheus and probes still connect, and the webhook decides per cluster
// (webhook-auth.ts) from `socket.authorized` and the certificate's CN.
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

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

export async function listen(app: RequestListener, opts: ListenOptions): Promise<ServiceServer> {
  let server: Server;
  if (opts.tls) {
    const [cert, key, ca] = await Promise.all([
      readPem('TLS_CERT_FILE', opts.tls.certFile),
      readPem('TLS_KEY_FILE', opts.tls.keyFile),
      opts.tls.clientCaFile ? readPem('TLS_CLIENT_CA_FILE', opts.tls.clientCaFile) : undefined,
    ]);
    server = createHttpsServer({ cert, key, ...(ca ? { ca, requestCert: true, rejectUnauthorized: false } : {}) }, app);
  } else {
    server = createHttpServer(app);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
