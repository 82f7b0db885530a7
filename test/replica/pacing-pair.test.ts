// Copy priority on a real pair (startSite, HTTP between the sites): during a
// burst of client writes the primary holds its copies back, and once the
// burst ends the backlog drains and the secondary holds every write.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSite, type RunningSite } from '../../src/cli/site.ts';
import { copyDeferLagMsDefault } from '../../src/core/limits.ts';
import type { PacingStatus } from '../../src/replica/pacing.ts';
import { rawRequest, type Target } from '../helpers/http.ts';
import { pairReplication, siteBase } from '../helpers/sites.ts';

const keys = { accessKeyId: 'PACINGACCESSKEY00001', secretAccessKey: 'pacing-pair-secret-0123456789abcdefghij' };
const writes = 160;
const concurrency = 8;
/** Status samples while the burst runs (one per this many writes). */
const sampleEvery = 20;

let dir: string;
let primary: RunningSite;
let secondary: RunningSite;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const target = (s: RunningSite): Target => ({ port: s.port, region: 'us-east-1', ...keys });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function replication(): Promise<{ queueDepth: number; copyPacing: PacingStatus }> {
  const r = await rawRequest(target(primary), { method: 'GET', path: '/_lookahead/status' });
  return (JSON.parse(r.text) as { replication: { queueDepth: number; copyPacing: PacingStatus } }).replication;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lookahead-pacing-'));
  const common = siteBase(keys);
  const repl = pairReplication('pacing-replication-secret-0123456789');
  secondary = await startSite({ ...common, role: 'secondary', dataDir: join(dir, 'secondary'), replication: repl });
  // The default priority and lag bound (what `serve --role primary` gets).
  primary = await startSite({ ...common, role: 'primary', dataDir: join(dir, 'primary'), replication: { ...repl, secondaryUrl: secondary.endpoint } });
}, 60_000);

afterAll(async () => {
  await primary?.close();
  await secondary?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A gauge's value as the primary's /_lookahead/metrics prints it. */
async function metric(name: string): Promise<string> {
  const r = await rawRequest(target(primary), { method: 'GET', path: '/_lookahead/metrics' });
  const line = r.text.split('\n').find((l) => l.startsWith(`${name} `));
  return line?.slice(name.length + 1).trim() ?? 'absent';
}

describe('copy priority background on a real pair', () => {
  it('holds copies during a burst, then converges once the burst ends', { timeout: 120_000 }, async () => {
    const p = target(primary);
    expect((await rawRequest(p, { method: 'PUT', path: '/burst' })).status).toBe(200);
    const acked = new Map<string, string>();
    const states = new Set<string>();
    const heldGauge = new Set<string>();
    let maxDepth = 0;
    let next = 0;
    const started = Date.now();
    const worker = async (): Promise<void> => {
      while (next < writes) {
        const i = next++;
        const body = randomBytes(4096);
        const r = await rawRequest(p, { method: 'PUT', path: `/burst/o${i}`, body });
        expect(r.status, r.text).toBe(200);
        acked.set(`o${i}`, md5(body));
        if (i % sampleEvery === 0) {
          const s = await replication();
          states.add(s.copyPacing.state);
          maxDepth = Math.max(maxDepth, s.queueDepth);
          heldGauge.add(await metric('lookahead_replica_copies_held'));
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const burstMs = Date.now() - started;
    expect(states.has('deferring'), `states seen: ${[...states].join(', ')}`).toBe(true);
    expect(maxDepth, 'copies were held during the burst').toBeGreaterThan(sampleEvery);
    expect(heldGauge.has('1'), `copies_held gauge values seen: ${[...heldGauge].join(', ')}`).toBe(true);

    // The burst is over: the backlog drains because the clients went quiet,
    // well before the lag bound would have forced it.
    const drainStart = Date.now();
    let s = await replication();
    for (let i = 0; i < 300 && s.queueDepth > 0; i++) {
      await sleep(20);
      s = await replication();
    }
    const drainMs = Date.now() - drainStart;
    expect(s.queueDepth).toBe(0);
    expect(s.copyPacing.state).toBe('caught-up');
    expect(await metric('lookahead_replica_copies_held')).toBe('0');
    expect(await metric('lookahead_replica_copies_held_seconds')).toBe('0');
    if (burstMs < copyDeferLagMsDefault / 2) expect(s.copyPacing.lagBoundReached).toBe(0);
    for (const [key, sum] of acked) {
      const r = await rawRequest(target(secondary), { method: 'GET', path: `/burst/${key}` });
      expect([r.status, md5(r.body)], key).toEqual([200, sum]);
    }
    console.log(JSON.stringify({ writes, burstMs, maxDepth, drainMs, states: [...states] }));
  });
});
