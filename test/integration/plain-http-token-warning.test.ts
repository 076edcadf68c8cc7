// A kube-apiserver sends its audit webhook's bearer token only over TLS (KUBE-APISERVER.md): to an http://
// URL it sends no Authorization header, and every batch of a token cluster is refused with 401. So the
// running service warns, naming them, when clusters authenticate by token and it listens on plain HTTP: at
// start, and on a configuration change that adds such a cluster (only those); never with TLS, never for a
// watch-mode cluster (no webhook).
import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { demoConfigYaml } from '../../config/demo-config.js';
import { parseConfig } from '../../config/load-config.js';
import type { ResolvedConfig } from '../../config/resolved-config.js';
import { PLAIN_HTTP_TOKEN_WARNING, tokenClustersOverPlainHttp } from '../../workers/ingest/webhook-auth.js';
import type { ConfigSnapshot, ConfigSource } from '../../config/sources/config-snapshot.js';
import { createBareRemote } from '../support/git-repos.js';
import { createTestPki } from '../support/test-pki.js';
import { startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const WATCHED = `---
apiVersion: gitopsreverser.io/v1alpha1
kind: ClusterProvider
metadata: { name: w1 }
spec:
  watch: { enabled: true }
`;

/** Cluster `c1` (token) and `w1` (watch mode), and with `more`, token clusters of those names too. */
function configWith(remote: string, more: string[] = []): ResolvedConfig {
  const extra = more.map((name) => demoConfigYaml(remote, { cluster: name, token: `t0ken-${name}`, path: `clusters/${name}` }));
  return parseConfig([demoConfigYaml(remote, { cluster: 'c1', token: 't0ken-c1' }) + WATCHED, ...extra].join('---\n'));
}

/** A configuration source whose changes the test makes. */
function changingSource(initial: ResolvedConfig): { source: ConfigSource; change(next: ResolvedConfig): void } {
  let snapshot: ConfigSnapshot = { config: initial, problems: [], observed: [] };
  const listeners: ((s: ConfigSnapshot) => void)[] = [];
  return {
    source: {
      current: () => snapshot,
      onChange: (l) => void listeners.push(l),
      onObserved: () => undefined,
      refresh: async () => undefined,
      stop: async () => undefined,
    },
    change(next) {
      snapshot = { config: next, problems: [], observed: [] };
      for (const l of listeners) l(snapshot);
    },
  };
}

describe('the warning for token clusters on a plain HTTP listener', () => {
  let valkey: TestValkey;
  let dir: string;
  let remote: string;
  let service: TestService | undefined;
  const lines: { level: number; msg: string; clusters?: string[] }[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as (typeof lines)[number]);
        done();
      },
    }),
  );
  const warnings = () => lines.filter((l) => l.msg === PLAIN_HTTP_TOKEN_WARNING).map((l) => ({ level: l.level, clusters: l.clusters }));

  beforeAll(async () => {
    valkey = await startTestValkey();
    dir = await mkdtemp(join(tmpdir(), 'gr-http-warning-'));
    remote = await createBareRemote(dir);
  });
  afterEach(async () => {
    await service?.close();
    service = undefined;
    lines.length = 0;
  });
  afterAll(async () => {
    await valkey?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('names the token clusters, never a watch-mode one, and says nothing with TLS', () => {
    const config = configWith('/tmp/r.git', ['c2']);
    expect(tokenClustersOverPlainHttp(config.clusters.values(), false)).toEqual(['c1', 'c2']);
    expect(tokenClustersOverPlainHttp(config.clusters.values(), true)).toEqual([]);
  });

  it('warns at start, and on a change only of the token clusters it adds', async () => {
    const { source, change } = changingSource(configWith(remote));
    service = await startTestService(valkey.url, () => '', { config: undefined, configSource: source, logger, reconcile: false });
    expect(warnings()).toEqual([{ level: 40, clusters: ['c1'] }]);
    expect(PLAIN_HTTP_TOKEN_WARNING).toContain('sends no token to an http:// webhook URL, so their audit batches will be refused with 401');

    change(configWith(remote, ['c2', 'c3']));
    change(configWith(remote, ['c2', 'c3']));
    expect(warnings()).toEqual([
      { level: 40, clusters: ['c1'] },
      { level: 40, clusters: ['c2', 'c3'] },
    ]);
    // Removed and added again: warned again.
    change(configWith(remote));
    change(configWith(remote, ['c3']));
    expect(warnings().at(-1)).toEqual({ level: 40, clusters: ['c3'] });
    expect(warnings()).toHaveLength(3);
  });

  it('does not warn when the service serves HTTPS', async () => {
    const pki = await createTestPki(dir);
    const { source, change } = changingSource(configWith(remote));
    service = await startTestService(valkey.url, () => '', {
      config: undefined,
      configSource: source,
      logger,
      reconcile: false,
      tls: { certFile: pki.server.cert, keyFile: pki.server.key },
    });
    change(configWith(remote, ['c2']));
    expect(warnings()).toEqual([]);
    expect(service.url).toMatch(/^https:/);
  });
});
