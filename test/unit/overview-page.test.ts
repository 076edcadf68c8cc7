// The overview page escapes every value (names, paths, reasons, error messages come from clusters and
// Git), links to Bull Board and refreshes itself; a failed read answers 503, not a stack trace.
import express from 'express';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { overviewRouter, renderOverview } from '../../dashboard/overview-page.js';
import type { Overview } from '../../dashboard/overview.js';

const EVIL = `<script>alert("x")</script>&'`;
const ESCAPED = '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;';

const overview: Overview = {
  generatedAt: '2026-03-01T10:00:00.000Z',
  countsScope: 'this-replica',
  ingest: { queue: 'ingest', backlog: 2, deadLetters: 1 },
  targets: [
    {
      target: `ns/${EVIL}`,
      repository: `https://git.example.com/${EVIL}`,
      branch: EVIL,
      path: EVIL,
      cluster: EVIL,
      partition: 'abc',
      queue: `write-${EVIL}`,
      health: 'failing',
      lastCommit: { sha: 'c0ffee0123456789', time: '2026-03-01T09:59:00Z' },
      lastError: { message: EVIL, time: '2026-03-01T09:59:30Z' },
      backlog: 4,
      deadLetters: 0,
      writer: EVIL,
      lagSeconds: 1.5,
      outOfOrder: 2,
    },
  ],
  clusters: [{ cluster: EVIL, accepted: 9, skipped: { [EVIL]: 1 }, refused: { [EVIL]: 4 }, rejectedRequests: { [EVIL]: 2 }, rateLimited: 3, filesDeleted: { namespace: 4, deletecollection: 7 } }],
  rejectedUnknownCluster: { 'unknown-cluster': 5 },
};

describe('overview page', () => {
  it('escapes every value and links to the queues in Bull Board', () => {
    const html = renderOverview(overview);
    expect(html).not.toContain('<script');
    expect(html.split(ESCAPED).length - 1).toBeGreaterThanOrEqual(9);
    expect(html).toContain(`href="/admin/queues/queue/${encodeURIComponent(`write-${EVIL}`).replace(/'/g, '&#39;')}">4</a>`);
    expect(html).toContain('href="/admin/queues/queue/ingest?status=failed"');
    expect(html).toContain('<meta http-equiv="refresh" content="10">');
    expect(html).toContain('c0ffee012345');
    expect(html).toContain('1.5 s');
    expect(html).toContain('unknown-cluster: 5');
    expect(html).toContain('<th>Files deleted (by reason)</th>');
    expect(html).toContain('<td>deletecollection: 7<br>namespace: 4</td>');
  });

  it('answers 503 when the overview cannot be read', async () => {
    const app = express().use(overviewRouter({ overview: () => Promise.reject(new Error(`Valkey ${EVIL} is down`)) }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const json = await fetch(`${base}/admin/api/overview`);
      expect(json.status).toBe(503);
      expect(await json.json()).toEqual({ error: `the overview could not be read: Valkey ${EVIL} is down`, reason: 'overview-unavailable' });
      const page = await fetch(`${base}/admin/overview`);
      expect(page.status).toBe(503);
      const html = await page.text();
      expect(html).toContain(ESCAPED);
      expect(html).not.toContain('<script');
    } finally {
      server.close();
    }
  });
});
