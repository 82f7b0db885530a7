// A slow secondary (the link delays every chunk): the primary keeps
// acknowledging writes without waiting for copies, does not buffer the
// backlog in memory (RSS bounded while the copy queue is deep), and drains
// the queue once the link is fast again.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPredictorConfig, startSite, type RunningSite } from '../../src/cli/site.ts';
import { rawRequest, type Target } from '../helpers/http.ts';
import { ChaosProxy, calm, prng } from './chaos-proxy.ts';
import { sleep } from './harness.ts';
import { pairReplication, siteBase } from '../helpers/sites.ts';

const keys = { accessKeyId: 'SLOWSECACCESSKEY0001', secretAccessKey: 'slow-secondary-secret-0123456789abcdefg' };
const objects = 64;
const objectBytes = 1024 * 1024;
/** Growth allowed while 64 MiB of copies are pending: well under the backlog itself. */
const rssGrowthBytesMax = 160 * 1024 * 1024;

let dir: string;
let primary: RunningSite;
let secondary: RunningSite;
let proxy: ChaosProxy;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const target = (s: RunningSite): Target => ({ port: s.port, region: 'us-east-1', ...keys });

async function queueDepth(): Promise<number> {
  const r = await rawRequest(target(primary), { method: 'GET', path: '/_lookahead/status' });
  return (JSON.parse(r.text) as { replication: { queueDepth: number } }).replication.queueDepth;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lookahead-slow-'));
  const common = siteBase(keys);
  const replication = pairReplication('slow-replication-secret-0123456789');
  secondary = await startSite({ ...common, role: 'secondary', dataDir: join(dir, 'secondary'), replication });
  proxy = new ChaosProxy(secondary.port, prng(7));
  await proxy.listen();
  primary = await startSite({ ...common, role: 'primary', dataDir: join(dir, 'primary'), replication: { ...replication, secondaryUrl: `http://127.0.0.1:${proxy.port}` } });
}, 60_000);

afterAll(async () => {
  await primary?.close();
  await proxy?.close();
  await secondary?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a slow secondary', () => {
  it('does not slow acknowledged writes or grow memory with the backlog, and catches up', { timeout: 180_000 }, async () => {
    const p = target(primary);
    expect((await rawRequest(p, { method: 'PUT', path: '/slow' })).status).toBe(200);
    // Warm the first write of the prefix (a miss waits for one record message), then slow the link.
    expect((await rawRequest(p, { method: 'PUT', path: '/slow/warm', body: 'warm' })).status).toBe(200);
    proxy.settings = { delayMsMax: 400, resetChance: 0, stallChance: 0, stallMs: 0 };
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const acked = new Map<string, string>();
    const started = Date.now();
    for (let i = 0; i < objects; i++) {
      const body = randomBytes(objectBytes);
      const r = await rawRequest(p, { method: 'PUT', path: `/slow/o${i}`, body });
      expect(r.status, r.text).toBe(200);
      acked.set(`o${i}`, md5(body));
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const writeSeconds = (Date.now() - started) / 1000;
    const backlog = await queueDepth();
    expect(backlog, 'copies are behind the writes').toBeGreaterThan(objects / 4);
    for (let i = 0; i < 10; i++) {
      await sleep(200);
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    expect(peak - baseline, `RSS ${Math.round(baseline / 2 ** 20)} -> ${Math.round(peak / 2 ** 20)} MiB`).toBeLessThan(rssGrowthBytesMax);

    proxy.settings = calm;
    let depth = backlog;
    const drainStart = Date.now();
    for (let i = 0; i < 600 && depth > 0; i++) {
      await sleep(200);
      depth = await queueDepth();
    }
    expect(depth).toBe(0);
    for (const [key, sum] of acked) {
      const r = await rawRequest(target(secondary), { method: 'GET', path: `/slow/${key}` });
      expect([r.status, md5(r.body)], key).toEqual([200, sum]);
    }
    console.log(JSON.stringify({ objects, writeSeconds, backlog, rssGrowthMiB: Math.round((peak - baseline) / 2 ** 20), drainSeconds: (Date.now() - drainStart) / 1000 }));
  });
});
