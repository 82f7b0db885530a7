// The secondary's disk fills up (its data dir is a small tmpfs): the primary
// keeps acknowledging writes or refuses them cleanly, holds no bodies in
// memory for the stuck copies (RSS bounded), keeps every acknowledged write,
// and once the secondary has room again (tmpfs remounted larger) both sites
// converge. Needs root (mount); skipped otherwise.

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPredictorConfig, startSite, type RunningSite } from '../../src/cli/site.ts';
import { rawRequest, type Target } from '../helpers/http.ts';
import { sleep } from './harness.ts';
import { pairReplication, siteBase } from '../helpers/sites.ts';

const keys = { accessKeyId: 'SECFULLACCESSKEY0001', secretAccessKey: 'secondary-full-secret-0123456789abcdefg' };

async function tryMount(): Promise<{ dir?: string; reason?: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'lookahead-secfull-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    return { reason: `cannot mount a tmpfs (${String((err as Error).message).split('\n')[0]}): secondary-full test skipped` };
  }
}

const mounted = await tryMount();
if (mounted.reason) console.warn(mounted.reason);

let dir: string;
let primary: RunningSite;
let secondary: RunningSite;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const target = (s: RunningSite): Target => ({ port: s.port, region: 'us-east-1', ...keys });

async function status(): Promise<{ queueDepth: number; peer: string }> {
  const r = await rawRequest(target(primary), { method: 'GET', path: '/_lookahead/status' });
  return (JSON.parse(r.text) as { replication: { queueDepth: number; peer: string } }).replication;
}

describe.skipIf(mounted.dir === undefined)('the secondary runs out of disk', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lookahead-secfull-p-'));
    const common = siteBase(keys);
    const replication = pairReplication('secfull-replication-secret-0123456789');
    secondary = await startSite({ ...common, role: 'secondary', dataDir: join(mounted.dir!, 'data'), replication });
    primary = await startSite({ ...common, role: 'primary', dataDir: join(dir, 'primary'), replication: { ...replication, secondaryUrl: secondary.endpoint } });
  }, 60_000);
  afterAll(async () => {
    await primary?.close();
    await secondary?.close();
    if (mounted.dir) {
      execFileSync('umount', [mounted.dir]);
      await rm(mounted.dir, { recursive: true, force: true });
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the primary keeps its acknowledged writes with bounded memory, and both converge once there is room', { timeout: 180_000 }, async () => {
    const p = target(primary);
    expect((await rawRequest(p, { method: 'PUT', path: '/full' })).status).toBe(200);
    const acked = new Map<string, string>();
    const rss: number[] = [process.memoryUsage().rss];
    // 48 MiB of bodies for a 16 MiB secondary.
    for (let i = 0; i < 48; i++) {
      const body = randomBytes(1024 * 1024);
      const r = await rawRequest(p, { method: 'PUT', path: `/full/o${i}`, body });
      expect([200, 503], r.text).toContain(r.status);
      if (r.status === 200) acked.set(`o${i}`, md5(body));
      rss.push(process.memoryUsage().rss);
    }
    expect(acked.size, 'the primary kept accepting writes').toBeGreaterThan(40);
    // The copies cannot all land: the queue holds the rest (names, not bodies).
    await sleep(1000);
    const stuck = await status();
    expect(stuck.queueDepth, JSON.stringify(stuck)).toBeGreaterThan(0);
    for (let i = 0; i < 10; i++) {
      await sleep(200);
      rss.push(process.memoryUsage().rss);
    }
    const growth = Math.max(...rss) - rss[0]!;
    expect(growth, `RSS grew by ${Math.round(growth / 2 ** 20)} MiB`).toBeLessThan(160 * 1024 * 1024);
    for (const [key, sum] of acked) expect(md5((await rawRequest(p, { method: 'GET', path: `/full/${key}` })).body), key).toBe(sum);

    // Room again: the copier's retries get through and the sites converge.
    execFileSync('mount', ['-o', 'remount,size=256m', mounted.dir!]);
    let s = stuck;
    for (let i = 0; i < 600 && s.queueDepth > 0; i++) {
      await sleep(200);
      s = await status();
    }
    expect(s.queueDepth, JSON.stringify(s)).toBe(0);
    const sec = target(secondary);
    for (const [key, sum] of acked) {
      const r = await rawRequest(sec, { method: 'GET', path: `/full/${key}` });
      expect([r.status, md5(r.body)], key).toEqual([200, sum]);
    }
    console.log(JSON.stringify({ acked: acked.size, queueWhileFull: stuck.queueDepth, rssGrowthMiB: Math.round(growth / 2 ** 20) }));
  });
});
