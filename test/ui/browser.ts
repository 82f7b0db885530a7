// Debian's chromium driven by playwright-core (never a downloaded browser):
// headless, no sandbox (CI runs as root), no background traffic, a fresh
// profile per launch.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const chromiumPath = '/usr/bin/chromium';

/** Why browser tests skip, or undefined when they can run. */
export function chromiumMissingReason(): string | undefined {
  return existsSync(chromiumPath)
    ? undefined
    : `${chromiumPath} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does) to run the console's browser tests`;
}

export const artifactsDir = join(process.cwd(), 'test-artifacts');

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

export async function openBrowser(credentials: { username: string; password: string }): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'lookahead-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    httpCredentials: credentials,
    viewport: { width: 1280, height: 1100 },
    timeout: 30_000,
  });
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(artifactsDir, { recursive: true });
  const path = join(artifactsDir, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** The text of an element by id (what an operator reads). */
export async function textOf(page: Page, id: string): Promise<string> {
  return ((await page.textContent(`#${id}`)) ?? '').trim();
}

/** The little of the DOM these helpers touch (no DOM lib in this project). */
interface PageGlobals {
  document: { body: { dataset: Record<string, string | undefined> } };
}

/** Status polls the page rendered so far. */
export async function pollsOf(page: Page): Promise<number> {
  // Strings run in the page (this project's types have no DOM lib).
  return Number(await page.evaluate('document.body.dataset.polls ?? 0'));
}

/** Waits until the page rendered at least `n` status polls. */
export async function waitForPolls(page: Page, n: number): Promise<void> {
  // A function, not a string: the console's CSP forbids eval in the page.
  await page.waitForFunction((min) => Number((globalThis as unknown as PageGlobals).document.body.dataset.polls ?? 0) >= min, n, {
    timeout: 15_000,
  });
}
