// Who may send audit batches for a cluster, decided from the bearer token and what the TLS layer verified
// of the client certificate (the HTTPS side is in test/e2e/webhook-client-cert.test.ts).
import { describe, expect, it } from 'vitest';
import type { ClusterSource } from '../../config/resolved-config.js';
import { authenticateCluster, tokenMatches, type PeerCertificate } from '../../workers/ingest/webhook-auth.js';

const cluster = (overrides: Partial<ClusterSource>): ClusterSource => ({ name: 'c1', qps: 20, burst: 40, ...overrides });
const NONE: PeerCertificate = { state: 'none' };
const verified = (commonName?: string): PeerCertificate => ({ state: 'verified', commonName });

describe('authenticateCluster', () => {
  it('token clusters: the right bearer token, and nothing else', () => {
    const c = cluster({ token: 's3cret' });
    expect(authenticateCluster(c, 'Bearer s3cret', NONE)).toBeNull();
    expect(authenticateCluster(c, 'bearer   s3cret ', NONE)).toBeNull();
    expect(authenticateCluster(c, 'Bearer nope', verified('c1'))?.reason).toBe('wrong-token');
    expect(authenticateCluster(c, undefined, verified('c1'))?.reason).toBe('missing-token');
    expect(authenticateCluster(c, 'Basic czNjcmV0', NONE)?.reason).toBe('missing-token');
  });

  it('certificate clusters: a verified certificate with exactly the CN', () => {
    const c = cluster({ clientCommonName: 'api-c1' });
    expect(authenticateCluster(c, undefined, verified('api-c1'))).toBeNull();
    expect(authenticateCluster(c, undefined, verified('API-C1'))?.reason).toBe('wrong-client-certificate');
    expect(authenticateCluster(c, undefined, verified(undefined))).toEqual({
      reason: 'wrong-client-certificate',
      error: 'cluster provider "c1" expects a client certificate with CN "api-c1" issued by the CA of TLS_CLIENT_CA_FILE; got a client certificate without a single CN',
    });
    expect(authenticateCluster(c, undefined, { state: 'unverified', why: 'self signed certificate' })?.error).toBe(
      'cluster provider "c1" expects a client certificate with CN "api-c1" issued by the CA of TLS_CLIENT_CA_FILE; got a client certificate that is not verified (self signed certificate)',
    );
    // Over plain HTTP (or HTTPS without a client CA) there is never a certificate.
    expect(authenticateCluster(c, 'Bearer anything', NONE)?.reason).toBe('missing-client-certificate');
  });

  it('clusters with both: either credential', () => {
    const c = cluster({ token: 's3cret', clientCommonName: 'api-c1' });
    expect(authenticateCluster(c, 'Bearer s3cret', NONE)).toBeNull();
    expect(authenticateCluster(c, undefined, verified('api-c1'))).toBeNull();
    expect(authenticateCluster(c, undefined, NONE)?.reason).toBe('missing-credentials');
    expect(authenticateCluster(c, undefined, verified('other'))?.reason).toBe('wrong-client-certificate');
    expect(authenticateCluster(c, 'Bearer nope', { state: 'unverified', why: 'x' })?.reason).toBe('wrong-token');
  });

  it('an empty expected token never matches', () => {
    expect(tokenMatches('', '')).toBe(false);
    expect(tokenMatches('a', 'a')).toBe(true);
  });
});
