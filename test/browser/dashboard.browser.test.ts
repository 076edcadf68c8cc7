// Bull Board and the overview page in a real browser (headless Chromium), against the real service with a
// real Valkey and a bare Git remote. A run leaves one dead letter (the remote's hook refuses one file); a
// viewer sees it in Bull Board without any way to retry it, and the API refuses the viewer's retry with
// 403; an operator, once the remote accepts the file again, retries it with Bull Board's button and it
// lands in Git. The overview page shows that run's numbers before and after. Logged out, both pages are
// refused. Each step leaves a screenshot in test-results/screenshots/.
import type { Queue } from 'bullmq';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WriteJob } from '../../core/contracts.js';
import { auditEvent, type ObjectSpec } from '../support/audit-events.js';
import { launchChromium, pageErrors, saveScreenshot, serviceContext } from '../support/browser.js';
import { commitLog, createBareRemote, git, treeFiles, waitFor } from '../support/git-repos.js';
import { postToC1, singleClusterConfig, startTestService, type TestService } from '../support/test-service.js';
import { startTestValkey, type TestValkey } from '../support/valkey-server.js';

const VIEWER = { username: 'viewer', password: 'viewer-pw' };
const OPERATOR = { username: 'operator', password: 'operator-pw' };
const REPLICA = 'replica-browser';
const TARGET = 'gitops-reverser/c1';
const POISON_FILE = 'clusters/c1/shop/configmaps/locked.yaml';
const REFUSAL = 'policy: locked objects are frozen';
/** The remote's pre-receive hook: refuses any push that touches a `locked` object (as in dead-letter-replay). */
const HOOK = `#!/bin/sh\nwhile read old new ref; do\n  range="$new"; [ "$old" != 0000000000000000000000000000000000000000 ] && range="$old..$new"\n  git log --format= --name-only $range | grep -q '/locked' && { echo "${REFUSAL}" >&2; exit 1; }\ndone\nexit 0\n`;

const cm = (name: string, v: string): ObjectSpec => ({ apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', name, body: { data: { v } } });
// Three ordinary changes and, among them, one the remote refuses.
const EVENTS = [
  auditEvent('create', cm('a', '1'), { user: 'alice' }),
  auditEvent('create', cm('locked', '1'), { user: 'mallory' }),
  auditEvent('create', cm('b', '1'), { user: 'bob' }),
  auditEvent('create', cm('c', '1'), { user: 'carol' }),
];
const ORDINARY = EVENTS.length - 1;

/** Polls a condition on the rendered page (reloading it) until it holds: server-rendered numbers change only on reload. */
const POLL = { timeout: 20_000, interval: 250 };

interface BoardQueue {
  name: string;
  readOnlyMode: boolean;
  jobs: { id: string }[];
}

describe('Bull Board and the overview in a browser', () => {
  let valkey: TestValkey;
  let service: TestService;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  let remote = '';
  let hook = '';
  let queue: Queue<WriteJob>;
  let deadId = '';

  beforeAll(async () => {
    // First: without Chromium there is nothing to test, and the error says how to install it.
    browser = await launchChromium();
    valkey = await startTestValkey();
    service = await startTestService(valkey.url, async (dir) => singleClusterConfig((remote = await createBareRemote(dir))), {
      dashboardCredentials: VIEWER,
      dashboardOperatorCredentials: OPERATOR,
      replicaId: REPLICA,
      writeAttempts: 3,
      writeBackoffMs: 100,
    });
    hook = join(remote, 'hooks', 'pre-receive');
    await writeFile(hook, HOOK);
    await chmod(hook, 0o755);
  });
  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await service?.close();
    await valkey?.stop();
  });

  const newContext = async (credentials?: { username: string; password: string }) => {
    const context = await serviceContext(browser, service.url, credentials);
    contexts.push(context);
    return context;
  };

  const remoteHead = async () => (await git(remote, 'rev-parse', 'main')).trim();

  /** What the overview must show after the run: the target's row at `head`, and the cluster's counts. */
  const expectedOverview = (head: string, target: { status: string; failed: string; lastError: unknown }) => ({
    target: {
      status: target.status,
      lastCommit: head.slice(0, 12),
      lastCommitTitle: head,
      waiting: '0',
      failed: target.failed,
      failedLink: `/admin/queues/queue/${queue.name}?status=failed`,
      writer: REPLICA,
      lastError: target.lastError,
    },
    cluster: { accepted: String(EVENTS.length), skipped: '0', refused: '0' },
  });

  /** A cell of a table's row by its column's header (the overview's tables). */
  const cellOf = async (table: Locator, row: Locator, header: string): Promise<Locator> => {
    const headers = (await table.locator('thead th').allInnerTexts()).map((h) => h.trim());
    expect(headers).toContain(header);
    return row.locator('td').nth(headers.indexOf(header));
  };

  /** Loads the overview and reads, as rendered, the target's row and the cluster's row. */
  const readOverview = async (page: Page) => {
    const response = await page.goto('/admin/overview');
    expect(response?.status()).toBe(200);
    const targets = page.locator('table').filter({ has: page.locator('th', { hasText: 'GitTarget' }) });
    const clusters = page.locator('table').filter({ has: page.locator('th', { hasText: 'Accepted' }) });
    const targetRow = targets.locator('tbody tr').filter({ has: page.getByRole('cell', { name: TARGET, exact: true }) });
    const clusterRow = clusters.locator('tbody tr').filter({ has: page.getByRole('cell', { name: 'c1', exact: true }) });
    const target = (header: string) => cellOf(targets, targetRow, header);
    const text = async (cell: Promise<Locator>) => (await (await cell).innerText()).trim();
    const lastCommit = await target('Last commit');
    const failed = await target('Failed');
    return {
      target: {
        status: await text(target('Status')),
        // The short SHA shown, the full one in the cell's title.
        lastCommit: await lastCommit.locator('code').textContent(),
        lastCommitTitle: await lastCommit.getAttribute('title'),
        waiting: await text(target('Waiting')),
        failed: await failed.innerText(),
        failedLink: await failed.getByRole('link').getAttribute('href'),
        writer: await text(target('Writer')),
        lastError: await text(target('Last error')),
      },
      cluster: {
        accepted: await text(cellOf(clusters, clusterRow, 'Accepted')),
        skipped: await text(cellOf(clusters, clusterRow, 'Skipped (by reason)')),
        refused: await text(cellOf(clusters, clusterRow, 'Requests refused (by reason)')),
      },
    };
  };

  /** Opens Bull Board and goes, by clicking, to the write queue's Failed tab; returns the board's answer for that tab. */
  const openFailedTab = async (page: Page): Promise<BoardQueue> => {
    const home = await page.goto('/admin/queues');
    expect(home?.status()).toBe(200);
    // The board's own request for the tab: what it renders the jobs and the read-only mode from.
    const listed = page.waitForResponse((r) => r.url().includes('/admin/queues/api/queues?') && r.url().includes('status=failed') && r.url().includes(`activeQueue=${queue.name}`));
    await page.getByRole('link', { name: queue.name, exact: true }).first().click();
    await page.waitForURL(new RegExp(`/admin/queues/queue/${queue.name}`));
    await page.getByRole('link', { name: /^failed/i }).click();
    await page.waitForURL(/status=failed/);
    const body = (await (await listed).json()) as { queues: BoardQueue[] };
    return body.queues.find((q) => q.name === queue.name)!;
  };

  /** The dead letter's card in Bull Board's job list. */
  const deadLetterCard = (page: Page) => page.locator('div[class*="card-"]').filter({ has: page.getByText(deadId, { exact: true }) });
  /** Bull Board's Retry buttons (icon buttons: the refresh icon, with a "Retry" tooltip). */
  const retryButtons = (scope: Page | Locator) => scope.locator('button:has(svg.lucide-refresh-cw)');

  it('refuses both pages when logged out', async () => {
    const context = await newContext();
    for (const path of ['/admin/queues', '/admin/overview']) {
      // No credentials at all: the 401's Basic challenge has no answer; headless Chromium ends the navigation.
      const page = await context.newPage();
      const challenged = page.waitForEvent('response', (r) => new URL(r.url()).pathname === path);
      const navigation = await page.goto(path).then(
        () => 'loaded',
        (err: Error) => err.message,
      );
      const response = await challenged;
      expect(response.status()).toBe(401);
      expect(response.headers()['www-authenticate']).toMatch(/^Basic realm=/);
      expect(navigation).toContain('net::ERR_INVALID_AUTH_CREDENTIALS');
      await page.close();
    }
    // Wrong credentials: the browser tries them, is refused again and shows the 401 answer.
    const wrong = await newContext({ username: OPERATOR.username, password: 'wrong-pw' });
    const page = await wrong.newPage();
    for (const path of ['/admin/overview', '/admin/queues']) {
      const response = await page.goto(path);
      expect(response?.status()).toBe(401);
      await expect.poll(() => page.locator('body').innerText()).toContain('authentication required for the dashboard');
    }
    expect((await saveScreenshot(page, 'logged-out')).bytes).toBeGreaterThan(0);
  });

  it('takes a run with one dead letter, and the overview shows its numbers', async () => {
    expect((await postToC1(service.url, EVENTS)).status).toBe(200);
    queue = [...service.writeQueues.values()][0]!;
    await waitFor(async () => (await queue.getFailedCount()) === 1 && (await commitLog(remote)).length === ORDINARY, 'the ordinary events committed, the refused one dead-lettered');
    const [dead] = await queue.getFailed();
    deadId = dead!.id!;
    expect(dead!.data.filePath).toBe(POISON_FILE);
    expect(dead!.attemptsMade).toBe(3);
    expect(dead!.failedReason).toContain(REFUSAL);
    const head = await remoteHead();

    const page = await (await newContext(VIEWER)).newPage();
    const errors = pageErrors(page);
    await expect
      .poll(() => readOverview(page), POLL)
      .toEqual(expectedOverview(head, { status: 'failing', failed: '1', lastError: expect.stringContaining(REFUSAL) }));
    expect(errors).toEqual([]);
    expect((await saveScreenshot(page, 'overview-dead-letter')).bytes).toBeGreaterThan(0);

    // Its Failed count links to the dead letter in Bull Board.
    const targets = page.locator('table').filter({ has: page.locator('th', { hasText: 'GitTarget' }) });
    await (await cellOf(targets, targets.locator('tbody tr').first(), 'Failed')).getByRole('link', { name: '1', exact: true }).click();
    await page.waitForURL(`**/admin/queues/queue/${queue.name}?status=failed`);
    await deadLetterCard(page).getByText(REFUSAL).first().waitFor();
    expect(errors).toEqual([]);
  });

  it('shows the viewer the dead letter without a way to retry it, and refuses the retry with 403', async () => {
    const page = await (await newContext(VIEWER)).newPage();
    const errors = pageErrors(page);
    const shown = await openFailedTab(page);
    expect(shown.readOnlyMode).toBe(true);
    expect(shown.jobs.map((j) => j.id)).toEqual([deadId]);

    const card = deadLetterCard(page);
    await card.getByText(REFUSAL).first().waitFor();
    await expect.poll(() => card.innerText()).toContain(`the remote refused the commit of CREATE ${POISON_FILE}`);
    // Read-only mode: no Retry (nor Clean, Duplicate, Edit) on the job, no "Retry all" on the queue.
    expect(await retryButtons(page).count()).toBe(0);
    expect(await card.locator('ul[class*="jobActions"]').count()).toBe(0);
    expect(await page.getByRole('button', { name: /retry all|clean all/i }).count()).toBe(0);
    expect((await saveScreenshot(page, 'bull-board-viewer')).bytes).toBeGreaterThan(0);

    // What the button would send, from the page (with the viewer's login): refused, for one job and for all.
    const put = (path: string) =>
      page.evaluate(async (url) => {
        const res = await fetch(url, { method: 'PUT' });
        return { status: res.status, body: await res.text() };
      }, path);
    for (const path of [`/admin/queues/api/queues/${queue.name}/${deadId}/retry`, `/admin/queues/api/queues/${queue.name}/retry/failed`]) {
      const res = await put(path);
      expect(res.status).toBe(403);
      expect(res.body).toContain('operator credentials are needed');
    }
    expect(await (await queue.getJob(deadId))!.getState()).toBe('failed');
    expect(await queue.getFailedCount()).toBe(1);
    expect(errors).toEqual([]);
  });

  it('lets the operator retry the dead letter with its button once the remote accepts it', async () => {
    await rm(hook); // the cause fixed: the remote takes the file now
    const page = await (await newContext(OPERATOR)).newPage();
    const errors = pageErrors(page);
    const shown = await openFailedTab(page);
    expect(shown.readOnlyMode).toBe(false);
    expect(shown.jobs.map((j) => j.id)).toEqual([deadId]);
    await expect.poll(() => page.getByRole('button', { name: /retry all/i }).count()).toBe(1);

    const card = deadLetterCard(page);
    await card.getByText(REFUSAL).first().waitFor();
    const retry = retryButtons(card);
    expect(await retry.count()).toBe(1);
    await retry.hover();
    await page.getByText('Retry', { exact: true }).waitFor(); // its tooltip: this is the Retry button
    await retry.click();
    const confirm = page.getByRole('alertdialog');
    await confirm.getByText('Are you sure that you want to retry this job?').waitFor();
    expect((await saveScreenshot(page, 'bull-board-operator-confirm')).bytes).toBeGreaterThan(0);
    const retried = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith(`/admin/queues/api/queues/${queue.name}/${deadId}/retry`));
    await confirm.getByRole('button', { name: 'Confirm', exact: true }).click();
    expect((await retried).status()).toBe(204);

    await waitFor(async () => (await queue.getJobState(deadId)) === 'completed', 'the retried write completed');
    const log = await commitLog(remote);
    expect(log).toHaveLength(ORDINARY + 1);
    expect(log.at(-1)!.subject).toBe('CREATE v1 configmaps shop/locked');
    expect((await treeFiles(remote)).get(POISON_FILE)).toContain('v: "1"');
    const head = await remoteHead();
    expect((await queue.getJob(deadId))!.returnvalue).toMatchObject({ outcome: 'committed', commit: head });
    expect(await queue.getFailedCount()).toBe(0);

    // The board: nothing failed any more; the job is among the completed ones, with its commit.
    await page.reload();
    await page.getByRole('link', { name: /^failed/i }).waitFor();
    await expect.poll(() => page.getByRole('link', { name: /^failed/i }).innerText(), POLL).toMatch(/^failed$/i);
    await page.getByRole('link', { name: /^completed/i }).click();
    const completed = deadLetterCard(page);
    await completed.getByText(head).first().waitFor();
    expect(errors).toEqual([]);
    expect((await saveScreenshot(page, 'bull-board-operator-retried')).bytes).toBeGreaterThan(0);
  });

  it('shows the retried run on the overview: no dead letter, the new head', async () => {
    const head = await remoteHead();
    const page = await (await newContext(VIEWER)).newPage();
    const errors = pageErrors(page);
    await expect
      .poll(() => readOverview(page), POLL)
      .toEqual(expectedOverview(head, { status: 'ok', failed: '0', lastError: '' }));
    expect(errors).toEqual([]);
    expect((await saveScreenshot(page, 'overview')).bytes).toBeGreaterThan(0);
  });
});
