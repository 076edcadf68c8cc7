// A real browser for tests: the system's headless Chromium (Debian: `apt-get install chromium`), driven by
// playwright-core. Nothing is downloaded: without a Chromium binary the tests that need it fail, naming
// what is missing and how to install it.
import { constants } from 'node:fs';
import { access, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

/** Where screenshots go: test-results/screenshots/ at the repository's root (ignored by Git). */
export const SCREENSHOT_DIR = join(fileURLToPath(new URL('../..', import.meta.url)), 'test-results', 'screenshots');

// The machine may have no network: without these, Chromium's background services (component updates,
// sync, safe browsing lists) stall its start and its first navigations.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The Chromium binary: CHROMIUM_PATH, else /usr/bin/chromium; throws, saying how to get one, when it is not there. */
export async function chromiumPath(): Promise<string> {
  const path = process.env.CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH;
  try {
    await access(path, constants.X_OK);
  } catch {
    throw new Error(
      `the browser tests need Chromium, and there is no executable at ${path}` +
        (process.env.CHROMIUM_PATH ? ' (from CHROMIUM_PATH)' : ' (the default; set CHROMIUM_PATH to use another Chromium or Chrome binary)') +
        '. Install it with `apt-get install -y chromium` (Debian; the binary is /usr/bin/chromium). ' +
        'Browser downloads (`npx playwright install`) are not used.',
    );
  }
  return path;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: await chromiumPath(), headless: true, args: CHROMIUM_ARGS });
}

/**
 * A browser context on the service, logged in with basic-auth credentials when given. Requests that
 * leave the service (Bull Board's web fonts) are aborted: there may be no network, and the pages must
 * not wait for it.
 */
export async function serviceContext(browser: Browser, baseURL: string, credentials?: { username: string; password: string }): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 800 }, ...(credentials ? { httpCredentials: credentials } : {}) });
  const origin = new URL(baseURL).origin;
  await context.route((url) => url.origin !== origin, (route) => route.abort('blockedbyclient'));
  return context;
}

/** Uncaught errors in the page's scripts, collected from now on (a page that threw may show nothing useful). */
export function pageErrors(page: Page): Error[] {
  const errors: Error[] = [];
  page.on('pageerror', (err) => errors.push(err));
  return errors;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Saves a full-page PNG as test-results/screenshots/<name>.png (an older file of that name is removed
 * first, so what is there afterwards is from this run) and returns its path and size.
 */
export async function saveScreenshot(page: Page, name: string): Promise<{ path: string; bytes: number }> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await rm(path, { force: true });
  const png = await page.screenshot({ path, fullPage: true });
  if (!png.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) throw new Error(`the screenshot ${path} is not a PNG`);
  return { path, bytes: (await stat(path)).size };
}
