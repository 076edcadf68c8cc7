// Who may send audit batches for a cluster: the bearer token of its ClusterProvider, or a client
// certificate with its CN, verified against TLS_CLIENT_CA_FILE. The TLS layer asks for a certificate but
// does not insist on one (token clients connect without), so the verdict is made here, per cluster.
// A cluster with both accepts either: each is a full credential of that cluster's API server, and
// demanding both would break the API servers that can only be given one.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ClusterSource } from '../../config/resolved-config.js';

/** What the connection's client certificate proves. */
export type PeerCertificate =
  | { state: 'none' }
  | { state: 'unverified'; why: string }
  | { state: 'verified'; commonName: string | undefined };

export type AuthFailureReason =
  | 'missing-token'
  | 'wrong-token'
  | 'missing-client-certificate'
  | 'unverified-client-certificate'
  | 'wrong-client-certificate'
  | 'missing-credentials';

export interface AuthFailure {
  reason: AuthFailureReason;
  error: string;
}

export function peerCertificate(socket: Socket): PeerCertificate {
  if (!(socket instanceof TLSSocket)) return { state: 'none' };
  const cert = socket.getPeerCertificate();
  // Node returns an empty object, not null, when the client sent no certificate.
  if (!cert || Object.keys(cert).length === 0) return { state: 'none' };
  if (!socket.authorized) {
    const err: unknown = socket.authorizationError;
    return { state: 'unverified', why: err instanceof Error ? err.message : String(err ?? 'not verified') };
  }
  // A subject with several CNs names no single cluster: treated as no CN.
  const cn = cert.subject?.CN;
  return { state: 'verified', commonName: typeof cn === 'string' ? cn : undefined };
}

/** What the service logs (with the clusters' names) when token clusters meet a plain HTTP listener. */
export const PLAIN_HTTP_TOKEN_WARNING =
  'these clusters authenticate their audit webhook by bearer token, but the service listens on plain HTTP: ' +
  'a kube-apiserver sends no token to an http:// webhook URL, so their audit batches will be refused with 401; ' +
  'serve HTTPS (TLS_CERT_FILE and TLS_KEY_FILE) and give their API servers an https:// URL';

/**
 * The names of the clusters that authenticate by bearer token, when the service listens without TLS (`tls`
 * false): their API servers will send no token (KUBE-APISERVER.md). Sorted; empty with TLS.
 */
export function tokenClustersOverPlainHttp(clusters: Iterable<ClusterSource>, tls: boolean): string[] {
  if (tls) return [];
  return [...clusters]
    .filter((c) => c.token !== undefined)
    .map((c) => c.name)
    .sort();
}

/** Compares digests, so neither the length nor the content of the token leaks through timing. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return expected.length > 0 && timingSafeEqual(a, b);
}

/** null when the request carries a credential of `cluster`; else why not, saying what was expected. */
export function authenticateCluster(cluster: ClusterSource, authorization: string | undefined, peer: PeerCertificate): AuthFailure | null {
  const bearer = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim();
  const cn = cluster.clientCommonName;
  if (cluster.token !== undefined && bearer !== undefined && tokenMatches(bearer, cluster.token)) return null;
  if (cn !== undefined && peer.state === 'verified' && peer.commonName === cn) return null;

  if (cn === undefined) {
    // Token-only clusters keep the messages their operators already know.
    return bearer === undefined
      ? { reason: 'missing-token', error: 'missing bearer token: send "Authorization: Bearer <token>"' }
      : { reason: 'wrong-token', error: `wrong bearer token for cluster provider "${cluster.name}"` };
  }
  const wantCert = `a client certificate with CN "${cn}" issued by the CA of TLS_CLIENT_CA_FILE`;
  const expected = cluster.token !== undefined ? `a bearer token or ${wantCert}` : wantCert;
  const got: string[] = [];
  if (cluster.token !== undefined) got.push(bearer === undefined ? 'no bearer token' : 'a wrong bearer token');
  if (peer.state === 'none') got.push('no client certificate');
  else if (peer.state === 'unverified') got.push(`a client certificate that is not verified (${peer.why})`);
  else got.push(peer.commonName === undefined ? 'a client certificate without a single CN' : `a client certificate with CN "${peer.commonName}"`);
  // The reason names what the client tried, so a dashboard tells a bad token from a bad certificate.
  const reason: AuthFailureReason =
    cluster.token !== undefined && bearer !== undefined
      ? 'wrong-token'
      : peer.state === 'verified'
        ? 'wrong-client-certificate'
        : peer.state === 'unverified'
          ? 'unverified-client-certificate'
          : cluster.token !== undefined
            ? 'missing-credentials'
            : 'missing-client-certificate';
  return { reason, error: `cluster provider "${cluster.name}" expects ${expected}; got ${got.join(' and ')}` };
}
