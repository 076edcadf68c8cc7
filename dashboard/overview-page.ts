// GET /admin/overview (a server-rendered page that refreshes itself) and GET /admin/api/overview (the same
// numbers as JSON). Both sit under /admin, behind the dashboard's authentication. Every value shown comes
// from the clusters or Git (names, paths, error messages), so every value is escaped.
import express, { type Router } from 'express';
import { BULL_BOARD_PATH } from './bull-board.js';
import type { ClusterOverview, Overview, TargetOverview } from './overview.js';

export const OVERVIEW_PATH = '/admin/overview';
export const OVERVIEW_API_PATH = '/admin/api/overview';
const REFRESH_SECONDS = 10;

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A link to the queue in Bull Board (optionally to one of its job states). */
const queueLink = (queue: string, text: string, status?: 'failed') =>
  `<a href="${escapeHtml(`${BULL_BOARD_PATH}/queue/${encodeURIComponent(queue)}${status ? `?status=${status}` : ''}`)}">${escapeHtml(text)}</a>`;
const count = (n: number | null) => (n === null ? '<span class="muted">unknown here</span>' : escapeHtml(n));
const reasons = (r: Record<string, number>) =>
  Object.keys(r).length === 0
    ? '0'
    : Object.entries(r)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([reason, n]) => `${escapeHtml(reason)}: ${escapeHtml(n)}`)
        .join('<br>');

function lag(seconds: number | null): string {
  if (seconds === null) return '<span class="muted">no recent write</span>';
  return seconds < 120 ? `${escapeHtml(seconds)} s` : `${escapeHtml(Math.round(seconds / 60))} min`;
}

function targetRow(t: TargetOverview): string {
  const commit = t.lastCommit
    ? `<code>${escapeHtml(t.lastCommit.sha.slice(0, 12))}</code><br><span class="muted">${escapeHtml(t.lastCommit.time)}</span>`
    : '<span class="muted">none yet</span>';
  const error = t.lastError ? `${escapeHtml(t.lastError.message)}<br><span class="muted">${escapeHtml(t.lastError.time)}</span>` : '';
  return `<tr class="${escapeHtml(t.health.replace(/ /g, '-'))}">
<td>${escapeHtml(t.target)}</td><td>${escapeHtml(t.health)}</td>
<td>${escapeHtml(t.repository)}<br><span class="muted">branch</span> ${escapeHtml(t.branch)} <span class="muted">path</span> ${escapeHtml(t.path || '/')}</td>
<td>${escapeHtml(t.cluster)}</td><td title="${escapeHtml(t.lastCommit?.sha ?? '')}">${commit}</td>
<td>${t.backlog === null ? count(null) : queueLink(t.queue, String(t.backlog))}</td>
<td>${t.deadLetters === null ? count(null) : queueLink(t.queue, String(t.deadLetters), 'failed')}</td>
<td>${t.writer === null ? '<span class="muted">nobody</span>' : escapeHtml(t.writer)}</td><td>${lag(t.lagSeconds)}</td><td>${escapeHtml(t.outOfOrder)}</td><td>${error}</td></tr>`;
}

function clusterRow(c: ClusterOverview): string {
  return `<tr><td>${escapeHtml(c.cluster)}</td><td>${escapeHtml(c.accepted)}</td><td>${reasons(c.skipped)}</td><td>${reasons(c.refused)}</td><td>${reasons(c.rejectedRequests)}</td><td>${escapeHtml(c.rateLimited)}</td><td>${reasons(c.filesDeleted)}</td></tr>`;
}

export function renderOverview(o: Overview): string {
  const unknown = Object.keys(o.rejectedUnknownCluster).length
    ? `<p>Requests refused for an unknown cluster name: ${reasons(o.rejectedUnknownCluster)}</p>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<title>GitOps Reverser overview</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}table{border-collapse:collapse;margin-bottom:1.5rem}
th,td{border:1px solid #ccc;padding:.35rem .6rem;text-align:left;vertical-align:top}th{background:#f3f3f3}
.muted{color:#777;font-size:.9em}tr.failing td,tr.needs-attention td{background:#fde8e8}tr.catching-up td{background:#fff6dd}
</style></head><body>
<h1>GitOps Reverser</h1>
<p class="muted">Generated ${escapeHtml(o.generatedAt)}; refreshes every ${REFRESH_SECONDS} s. Queues in detail: <a href="${escapeHtml(BULL_BOARD_PATH)}">Bull Board</a>. JSON: <a href="${escapeHtml(OVERVIEW_API_PATH)}">${escapeHtml(OVERVIEW_API_PATH)}</a>.</p>
<h2>Git targets</h2>
<p class="muted">Waiting: changes not yet pushed. Failed: changes that failed every attempt and wait for an operator to replay them. Writer: the replica pushing to this repository and branch now. Lag: from the newest written change in the cluster to its push. Out of order: changes that arrived after a newer version of their object was pushed (versions missing from the history, kept as failed jobs).</p>
<table><thead><tr><th>GitTarget</th><th>Status</th><th>Repository</th><th>Cluster</th><th>Last commit</th><th>Waiting</th><th>Failed</th><th>Writer</th><th>Lag</th><th>Out of order</th><th>Last error</th></tr></thead>
<tbody>${o.targets.map(targetRow).join('\n') || '<tr><td colspan="11">No GitTarget configured.</td></tr>'}</tbody></table>
<h2>Incoming events</h2>
<p class="muted">Counted by this replica since it started; each replica counts the requests it received, and the files its writers removed. Files deleted: files one event removed together, a deletecollection's or a deleted namespace's.</p>
<table><thead><tr><th>Cluster</th><th>Accepted</th><th>Skipped (by reason)</th><th>Events refused (by reason)</th><th>Requests refused (by reason)</th><th>Rate limited</th><th>Files deleted (by reason)</th></tr></thead>
<tbody>${o.clusters.map(clusterRow).join('\n') || '<tr><td colspan="7">No cluster configured.</td></tr>'}</tbody></table>
${unknown}
<h2>Events received, not yet routed</h2>
<table><thead><tr><th>Queue</th><th>Waiting</th><th>Failed</th></tr></thead>
<tbody><tr><td>${queueLink(o.ingest.queue, o.ingest.queue)}</td><td>${o.ingest.backlog === null ? count(null) : queueLink(o.ingest.queue, String(o.ingest.backlog))}</td><td>${o.ingest.deadLetters === null ? count(null) : queueLink(o.ingest.queue, String(o.ingest.deadLetters), 'failed')}</td></tr></tbody></table>
</body></html>
`;
}

export function overviewRouter(opts: { overview: () => Promise<Overview> }): Router {
  const router = express.Router();
  router.get(OVERVIEW_API_PATH, async (_req, res) => {
    try {
      res.set('Cache-Control', 'no-store').json(await opts.overview());
    } catch (err) {
      res.status(503).json({ error: `the overview could not be read: ${(err as Error).message}`, reason: 'overview-unavailable' });
    }
  });
  router.get(OVERVIEW_PATH, async (_req, res) => {
    try {
      const html = renderOverview(await opts.overview());
      res.set({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" }).send(html);
    } catch (err) {
      res
        .status(503)
        .set({ 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'" })
        .send(`<!doctype html><meta http-equiv="refresh" content="${REFRESH_SECONDS}"><title>GitOps Reverser overview</title><p>The overview could not be read: ${escapeHtml((err as Error).message)}</p>`);
    }
  });
  return router;
}
