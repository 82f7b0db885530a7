// The operator console in a real browser (Debian's chromium, playwright-core):
// writes go through a real gateway with the SDK and the page, polling with
// HTTP Basic credentials, must show the numbers those writes changed.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.ts';
import { adminCall } from '../../src/cli/admin-client.ts';
import { startSite, type RunningSite } from '../../src/cli/site.ts';
import { createAdminRouter } from '../../src/gateway/admin.ts';
import { StaticCredentials } from '../../src/gateway/credentials.ts';
import { buildRecordView } from '../../src/gateway/ui/record-view.ts';
import type { ConsoleStatus } from '../../src/gateway/ui/status-shape.ts';
import { WriteStats } from '../../src/gateway/ui/write-stats.ts';
import { startTestGateway, testAccessKeyId, testSecretAccessKey, type TestGateway } from '../helpers/server.ts';
import { siteBase } from '../helpers/sites.ts';
import { chromiumMissingReason, openBrowser, pollsOf, screenshot, textOf, waitForPolls, type Browser } from './browser.ts';
import { FakeRecord } from './fake-replication.ts';

const skipReason = chromiumMissingReason();
if (skipReason) console.warn(`console browser tests skipped: ${skipReason}`);

/** A key that is markup: the page must show it as text, never parse it. */
const hostileKey = 'x/<img src=x onerror="window.__xss=1">"\'&.txt';

describe.skipIf(skipReason !== undefined)('operator console (chromium)', () => {
  describe('primary view, record stand-in driven by real writes', () => {
    let gw: TestGateway;
    let browser: Browser;
    let client: S3Client;
    const record = new FakeRecord(50);
    const stats = new WriteStats(systemClock);
    const startedAt = Date.now();

    beforeAll(async () => {
      let endpoint = '';
      const status = (): ConsoleStatus => ({
        role: 'primary',
        site: 'east',
        endpoint,
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        peer: { site: 'west', endpoint: 'http://127.0.0.1:9', role: 'secondary' },
        replication: record.status(),
        ...(record.resync ? { resync: record.resync } : {}),
        writes: stats.snapshot(),
      });
      const admin = createAdminRouter({
        credentials: new StaticCredentials([{ accessKeyId: testAccessKeyId, secretAccessKey: testSecretAccessKey }]),
        adminKeys: new Set([testAccessKeyId]),
        status,
        registry: new Registry(),
        clock: systemClock,
        record: (q) =>
          buildRecordView({
            ids: record.ids(),
            nameOf: (id) => record.name(id),
            generationOf: (id) => record.generationOfId(id),
            entriesMax: record.entriesMax,
            ...q,
          }),
      });
      gw = await startTestGateway({ extraRouters: [admin] });
      endpoint = gw.endpoint;
      gw.store.setChangeHooks(stats.wrap(record));
      client = gw.client();
      browser = await openBrowser({ username: testAccessKeyId, password: testSecretAccessKey });
    });

    afterAll(async () => {
      await browser?.close();
      await gw?.close();
    });

    it('shows the record growing, misses and hits, the at-risk list as text, resync and link state', async () => {
      const { page } = browser;
      const response = await page.goto(`${gw.endpoint}/_lookahead/ui`);
      expect(response?.status()).toBe(200);
      await waitForPolls(page, 1);
      expect(await textOf(page, 'record-size')).toBe('0');
      expect(await textOf(page, 'misses')).toBe('0');
      expect(await textOf(page, 'link-state')).toBe('healthy');
      expect(await textOf(page, 'self-role')).toBe('primary');
      expect(await textOf(page, 'peer-role')).toBe('secondary');
      expect(await textOf(page, 'epoch')).toBe('3');

      // Misses: the bucket and three keys; a hit: one key again.
      await client.send(new CreateBucketCommand({ Bucket: 'console' }));
      for (const key of ['a/1.txt', 'a/2.txt', hostileKey]) {
        await client.send(new PutObjectCommand({ Bucket: 'console', Key: key, Body: `body of ${key}` }));
      }
      await client.send(new PutObjectCommand({ Bucket: 'console', Key: 'a/1.txt', Body: 'again' }));
      const expected = record.status();
      expect(expected.recordSize).toBe(4);
      expect(expected.misses).toBe(4);
      expect(expected.hits).toBe(1);

      // A poll may have caught the last PUT between admission and commit:
      // read what the page shows once two more polls started after it.
      await waitForPolls(page, (await pollsOf(page)) + 2);
      expect(await textOf(page, 'record-size')).toBe('4');
      expect(await textOf(page, 'record-max')).toBe('50');
      expect(await textOf(page, 'misses')).toBe('4');
      expect(await textOf(page, 'hits')).toBe('1');
      expect(await textOf(page, 'writes-total')).toBe('5');
      expect(await textOf(page, 'miss-rate')).toBe('80.0 %');
      expect(await textOf(page, 'puts')).toBe('4');
      expect(await textOf(page, 'bytes-replicated')).toBe('3.00 MiB');
      expect(await textOf(page, 'queue-depth')).toBe('2');
      expect(await textOf(page, 'admissions')).toBe('1');
      expect(await textOf(page, 'pinned-entries')).toBe('2');
      expect(await textOf(page, 'sync-copies')).toBe('on: 5 copied; left to the copier: 1 peer down, 2 failed, 0 overflow');
      // The charts drew the new samples (a line or a dot), not the empty note.
      expect(await page.locator('#chart-miss path, #chart-miss circle').count()).toBeGreaterThan(0);
      expect(await page.locator('#chart-latency path, #chart-latency circle').count()).toBeGreaterThan(0);

      // The at-risk list (polled every 5 s) names the hostile key as text.
      await expect.poll(() => page.locator('#record-list tr').count(), { timeout: 10_000 }).toBe(4);
      expect(await textOf(page, 'kind-key')).toBe('3');
      expect(await textOf(page, 'kind-bucket')).toBe('1');
      expect(await textOf(page, 'generations')).toBe('4');
      const names = await page.locator('#record-list td:first-child').allTextContents();
      expect(names).toContain(`k/console/${hostileKey}`);
      expect(await page.locator('#record-list img').count()).toBe(0);
      expect(await page.evaluate('window.__xss')).toBeUndefined();

      // Search narrows the list on the server.
      await page.fill('#record-search', 'ONERROR');
      await expect.poll(() => page.locator('#record-list tr').count(), { timeout: 10_000 }).toBe(1);
      expect(await page.locator('#record-list td:first-child').allTextContents()).toEqual([`k/console/${hostileKey}`]);
      await page.fill('#record-search', 'a/');
      await expect.poll(() => page.locator('#record-list tr').count(), { timeout: 10_000 }).toBe(2);

      // A resync appears with its progress; the link state follows the peer.
      expect(await page.locator('#resync').isVisible()).toBe(false);
      record.resync = { done: 3, total: 12, phase: 'copying' };
      record.peer = 'degraded';
      await expect.poll(() => textOf(page, 'resync-text'), { timeout: 10_000 }).toBe('3 / 12 (25.0 %)');
      expect(await textOf(page, 'resync-phase')).toBe('copying');
      await expect.poll(() => textOf(page, 'link-state'), { timeout: 10_000 }).toBe('degraded');

      record.fenced = true;
      await expect.poll(() => textOf(page, 'link-state'), { timeout: 10_000 }).toBe('fenced');
      expect(await textOf(page, 'self-role')).toBe('fenced (was primary)');
      record.fenced = false;
      record.peer = 'ok';
      await expect.poll(() => textOf(page, 'link-state'), { timeout: 10_000 }).toBe('healthy');

      await page.fill('#record-search', '');
      await expect.poll(() => page.locator('#record-list tr').count(), { timeout: 10_000 }).toBe(4);
      await screenshot(page, 'console-primary.png');
    });
  });

  describe('the site the CLI starts (startSite)', () => {
    let site: RunningSite;
    let dataDir: string;
    let browser: Browser;

    beforeAll(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'lookahead-console-site-'));
      site = await startSite({
        role: 'single',
        dataDir,
        ...siteBase(), // no keys in the environment: the site generates its pair
      });
      browser = await openBrowser({ username: site.credentials.accessKeyId, password: site.credentials.secretAccessKey });
    });

    afterAll(async () => {
      await browser?.close();
      await site?.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    async function status(): Promise<ConsoleStatus> {
      const res = await adminCall(
        { url: site.endpoint, accessKeyId: site.credentials.accessKeyId, secretAccessKey: site.credentials.secretAccessKey },
        'GET',
        '/_lookahead/status',
      );
      expect(res.status).toBe(200);
      return res.json as ConsoleStatus;
    }

    it('shows what the site reports and follows its writes', async () => {
      const { page } = browser;
      expect((await page.goto(`${site.endpoint}/_lookahead/ui`))?.status()).toBe(200);
      await waitForPolls(page, 1);
      const before = await status();
      expect(await textOf(page, 'self-endpoint')).toBe(site.endpoint);

      const client = new S3Client({
        endpoint: site.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: site.credentials.accessKeyId, secretAccessKey: site.credentials.secretAccessKey },
        maxAttempts: 1,
      });
      try {
        await client.send(new CreateBucketCommand({ Bucket: 'site-console' }));
        await client.send(new PutObjectCommand({ Bucket: 'site-console', Key: 'fresh/key.txt', Body: 'hello' }));
      } finally {
        client.destroy();
      }
      const after = await status();

      if (after.replication) {
        // Replication wired in the composition root: the writes missed the
        // record and grew it; the page must show the new numbers.
        expect(after.replication.misses ?? 0).toBeGreaterThan(before.replication?.misses ?? 0);
        await expect.poll(() => textOf(page, 'misses'), { timeout: 10_000 }).toBe(String(after.replication.misses));
        await expect.poll(() => textOf(page, 'record-size'), { timeout: 10_000 }).toBe(
          (after.replication.recordSize ?? 0).toLocaleString('en-US'),
        );
      } else {
        expect(await textOf(page, 'link-state')).toBe('single site');
        expect(await textOf(page, 'peer-role')).toBe('none');
        expect(await page.locator('#replication-facts').isVisible()).toBe(false);
        if (after.writes) {
          expect(after.writes.totals.writes).toBeGreaterThan(before.writes?.totals.writes ?? 0);
          await expect.poll(() => textOf(page, 'writes-total'), { timeout: 10_000 }).toBe(String(after.writes.totals.writes));
        } else {
          // The status carries nothing the writes change: at least the page
          // must keep polling and show the uptime moving.
          const uptime = await textOf(page, 'self-uptime');
          await expect.poll(() => textOf(page, 'self-uptime'), { timeout: 10_000, interval: 500 }).not.toBe(uptime);
        }
      }
      await screenshot(page, 'console-site.png');
    });
  });
});
