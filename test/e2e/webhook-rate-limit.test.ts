// Fairness between clusters at the webhook: a noisy cluster sending ten times its limit gets 429s while a
// quiet cluster sending at the same time has every batch accepted, and the limit holds over two replicas
// together (one bucket in Valkey, not one per replica). The limits refill one event per 1000 s, so what
// passes is decided by counts alone, however fast or slow the test runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, eventList, type ObjectSpec } from '../support/audit-events.js';
import { startTestValkey, uniquePrefix, type TestValkey } from '../support/valkey-server.js';
import { clusterSource, startWebhookApp, type WebhookApp } from '../support/webhook-app.js';

const FROZEN = 0.001;
const NOISY_BURST = 20;
const BATCH = 5;
const cm = (name: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v: name } } });

const clusters = [
  clusterSource('noisy', { token: 'noisy-token', rateLimit: { eventsPerSecond: FROZEN, burst: NOISY_BURST } }),
  clusterSource('quiet', { token: 'quiet-token', rateLimit: { eventsPerSecond: FROZEN, burst: 100 } }),
  clusterSource('tiny', { token: 'tiny-token', rateLimit: { eventsPerSecond: FROZEN, burst: 3 } }),
  clusterSource('free', { token: 'free-token' }),
];

describe('per-cluster rate limit at the webhook', () => {
  let valkey: TestValkey;
  let replicas: WebhookApp[] = [];

  beforeAll(async () => {
    valkey = await startTestValkey();
    const prefix = uniquePrefix('rate');
    // Two replicas of the service: same Valkey, same prefix.
    replicas = await Promise.all([0, 1].map(() => startWebhookApp({ valkeyUrl: valkey.url, prefix, clusters })));
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    await valkey?.stop();
  });

  let seq = 0;
  async function send(replica: WebhookApp, cluster: string, events = BATCH) {
    const items = Array.from({ length: events }, () => auditEvent('create', cm(`${cluster}-${++seq}`), { user: 'alice' }));
    const res = await fetch(`${replica.url}/audit-webhook/${cluster}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster}-token` },
      body: JSON.stringify(eventList(items)),
    });
    return { cluster, status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
  }
  const metricsText = async () => (await Promise.all(replicas.map(async (r) => r.metrics.registry.metrics()))).join('\n');
  /** A counter's value summed over both replicas. */
  async function counter(line: string): Promise<number> {
    let sum = 0;
    for (const l of (await metricsText()).split('\n')) if (l.startsWith(`${line} `)) sum += Number(l.slice(line.length + 1));
    return sum;
  }

  it('a noisy cluster at 10x its limit gets 429s; a quiet one sending at the same time is always accepted', async () => {
    // 40 noisy batches (200 events = 10 bursts) and 8 quiet batches (40 events), interleaved, spread
    // over both replicas, in flight together in waves of 8.
    const plan: { cluster: string; replica: WebhookApp }[] = [];
    for (let i = 0; i < 40; i++) {
      plan.push({ cluster: 'noisy', replica: replicas[i % 2]! });
      if (i % 5 === 0) plan.push({ cluster: 'quiet', replica: replicas[(i + 1) % 2]! });
    }
    const results: Awaited<ReturnType<typeof send>>[] = [];
    for (let i = 0; i < plan.length; i += 8) results.push(...(await Promise.all(plan.slice(i, i + 8).map((p) => send(p.replica, p.cluster)))));

    const noisy = results.filter((r) => r.cluster === 'noisy');
    const quiet = results.filter((r) => r.cluster === 'quiet');
    expect(quiet.map((r) => r.status)).toEqual(Array(8).fill(200));
    // Exactly one burst of the noisy cluster passed, over both replicas together.
    expect(noisy.filter((r) => r.status === 200)).toHaveLength(NOISY_BURST / BATCH);
    const refused = noisy.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(40 - NOISY_BURST / BATCH);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(r.body.reason).toBe('rate-limited');
      expect(String(r.body.error)).toMatch(/^cluster provider "noisy" is over its rate limit \(0\.001 events\/s, burst 20\): 5 events can be accepted in /);
    }
    // Nothing of a refused batch was queued.
    const queued = (await replicas[0]!.queued());
    expect(queued).toBe(NOISY_BURST + 8 * BATCH);

    expect(await counter(`${metricName('events_rate_limited_total')}{cluster="noisy"}`)).toBe(refused.length * BATCH);
    expect(await counter(`${metricName('webhook_requests_rejected_total')}{cluster="noisy",reason="rate-limited"}`)).toBe(refused.length);
    expect(await counter(`${metricName('events_ingested_total')}{cluster="quiet"}`)).toBe(8 * BATCH);
    expect(await counter(`${metricName('events_ingested_total')}{cluster="noisy"}`)).toBe(NOISY_BURST);
    expect(await metricsText()).not.toContain('events_rate_limited_total{cluster="quiet"}');
  });

  it('a batch larger than the burst is refused with 429 and a message to raise the burst', async () => {
    const r = await send(replicas[0]!, 'tiny', 5);
    expect(r.status).toBe(429);
    expect(r.body).toEqual({
      reason: 'batch-exceeds-burst',
      error:
        'a batch of 5 events exceeds the burst of cluster provider "tiny" (0.001 events/s, burst 3) and can never be accepted: ' +
        "raise spec.rateLimit.burst of ClusterProvider tiny to at least the API server's --audit-webhook-batch-max-size (default 400)",
    });
    // A batch within the burst still passes: the refusal took nothing.
    expect((await send(replicas[1]!, 'tiny', 3)).status).toBe(200);
  });

  it('a cluster without rateLimit is never limited', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => send(replicas[i % 2]!, 'free', 20)));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
  });

  it('an unknown cluster is counted without its name', async () => {
    const res = await fetch(`${replicas[0]!.url}/audit-webhook/made-up-${seq}`, { method: 'POST', headers: { authorization: 'Bearer x' } });
    expect(res.status).toBe(404);
    expect(await counter(`${metricName('webhook_requests_rejected_total')}{cluster="",reason="unknown-cluster"}`)).toBe(1);
    expect(await metricsText()).not.toContain('made-up');
  });

  /** Metric names carry the test's prefix (gitops_reverser in production). */
  function metricName(name: string): string {
    const line = replicas[0]!.metrics.registry.getMetricsAsArray().find((m) => m.name.endsWith(`_${name}`));
    if (!line) throw new Error(`no metric ${name}`);
    return line.name;
  }
});
