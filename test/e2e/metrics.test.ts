// /metrics after an end-to-end run: the counters say what was sent, kept, skipped by reason and committed,
// and the event-to-push histogram counts every committed event; labels stay bounded (no URL makes one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { commitLog, createBareRemote, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const cm = (name: string, v: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v } } });

/** The value of one series in Prometheus text, 0 when absent. */
function series(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const inBraces = /\{([^}]*)\}/.exec(line)?.[1] ?? '';
    if (want.every((w) => inBraces.split(',').includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('metrics after an end-to-end run', () => {
  let valkey: TestValkey;
  let service: TestService;
  let remote = '';
  beforeAll(async () => {
    valkey = await startTestValkey();
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))));
  });
  afterAll(async () => {
    await service?.close();
    await valkey?.stop();
  });

  it('counts what was sent, kept, skipped and committed', async () => {
    const changes = Array.from({ length: 12 }, (_, i) => auditEvent('create', cm(`cm-${i}`, '1'), { user: 'alice' }));
    const dryRuns = [auditEvent('create', cm('dry', '1'), { user: 'alice', dryRun: true })];
    const failed = [auditEvent('update', cm('cm-0', '2'), { user: 'alice', code: 409 })];
    expect((await postToC1(service.url, [...changes, ...dryRuns, ...failed])).status).toBe(200);
    // A request for a cluster nobody configured: counted without its name as a label.
    expect((await fetch(`${service.url}/audit-webhook/made-up-${Date.now()}`, { method: 'POST' })).status).toBe(404);
    await waitFor(async () => (await commitLog(remote).catch(() => [])).length === 12, 'twelve commits');

    // Metric names carry the key prefix (gitops_reverser by default; each test service has its own).
    const p = service.prefix.replace(/[^a-zA-Z0-9_]/g, '_');
    let text = '';
    await waitFor(async () => {
      text = await (await fetch(`${service.url}/metrics`)).text();
      return series(text, `${p}_event_to_push_seconds_count`) === 12;
    }, 'the push observed in the metrics');
    expect(series(text, `${p}_events_received_total`, { cluster: 'c1' })).toBe(14);
    expect(series(text, `${p}_events_ingested_total`, { cluster: 'c1' })).toBe(12);
    expect(series(text, `${p}_events_skipped_total`, { cluster: 'c1', reason: 'dry-run' })).toBe(1);
    expect(series(text, `${p}_events_skipped_total`, { cluster: 'c1', reason: 'failed' })).toBe(1);
    expect(series(text, `${p}_webhook_requests_rejected_total`, { cluster: '', reason: 'unknown-cluster' })).toBe(1);
    expect(text).not.toContain('made-up-');
    const commits = text
      .split('\n')
      .filter((l) => l.startsWith(`${p}_commits_total{`))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(commits).toBe(12);
    expect(series(text, `${p}_queue_jobs`, { queue: 'ingest', state: 'failed' })).toBe(0);
  });
});
