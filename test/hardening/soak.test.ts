// Soak: mixed S3 operations at concurrency 64 against a replicating primary
// whose link to the secondary runs through a chaos proxy (delays, resets,
// stalls, partitions). Checked: no acknowledged write is lost (every key
// reads back its latest acknowledged state from the primary), RSS grows less
// than a stated bound, and once the chaos stops and the primary's copy queue
// drains, both sites list the same keys with the same ETags.
//
// SOAK_SECONDS (default 20) sets the length; SOAK_SEED replays a run.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPredictorConfig, startSite, type RunningSite } from '../../src/cli/site.ts';
import { signer, type Target } from '../helpers/http.ts';
import { ChaosProxy, calm, prng, type ChaosSettings } from './chaos-proxy.ts';
import { sleep } from './harness.ts';
import { pairReplication, siteBase } from '../helpers/sites.ts';

const soakSeconds = Number(process.env.SOAK_SECONDS ?? 20);
const seed = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000);
const concurrency = 64;
const keysPerWorker = 8;
const buckets = ['soak-a', 'soak-b'];
/** RSS may grow at most this much over the warmed-up baseline (both sites
 * and the test's own buffers live in this process). */
const rssGrowthBytesMax = 256 * 1024 * 1024;
const convergeMsMax = 120_000;

const keys = { accessKeyId: 'SOAKACCESSKEY0000001', secretAccessKey: 'soak-secret-0123456789abcdefghijklmnopqr' };
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency * 2 });

let dir: string;
let primary: RunningSite;
let secondary: RunningSite;
let proxy: ChaosProxy;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lookahead-soak-'));
  const common = siteBase(keys);
  const replication = pairReplication('soak-replication-secret-0123456789');
  secondary = await startSite({ ...common, role: 'secondary', dataDir: join(dir, 'secondary'), replication });
  proxy = new ChaosProxy(secondary.port, prng(seed));
  await proxy.listen();
  primary = await startSite({
    ...common,
    role: 'primary',
    dataDir: join(dir, 'primary'),
    replication: { ...replication, secondaryUrl: `http://127.0.0.1:${proxy.port}` },
  });
}, 60_000);

afterAll(async () => {
  await primary?.close();
  await proxy?.close();
  await secondary?.close();
  agent.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

function target(site: RunningSite): Target {
  return { port: site.port, region: 'us-east-1', ...keys };
}

/** One signed request on a keep-alive agent; a network error rejects. */
async function request(site: RunningSite, method: string, path: string, query: Record<string, string> = {}, body?: Buffer, extra: Record<string, string> = {}): Promise<Reply> {
  const headers: Record<string, string> = {
    host: `127.0.0.1:${site.port}`,
    'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    ...(body ? { 'content-length': String(body.length) } : {}),
    ...extra,
  };
  const signed = await signer(target(site)).sign({ method, protocol: 'http:', hostname: '127.0.0.1', port: site.port, path, query, headers });
  const qs = Object.entries(query).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: site.port, method, path: qs ? `${path}?${qs}` : path, headers: signed.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** What the model knows of a key: absent, or the MD5 of its body. A write
 * that got no answer leaves several states possible. */
type KeyState = string | null;

interface Model {
  possible: Map<string, KeyState[]>;
  violations: string[];
  ops: Record<string, number>;
  errors: Record<string, number>;
}

function keyPath(worker: number, j: number): { bucket: string; key: string; path: string } {
  const bucket = buckets[worker % buckets.length]!;
  const key = `w${worker}/k${j}`;
  return { bucket, key, path: `/${bucket}/${key}` };
}

function bodySize(r: number): number {
  if (r < 0.7) return Math.floor(r * 8 * 1024 / 0.7);
  if (r < 0.95) return 8 * 1024 + Math.floor(((r - 0.7) / 0.25) * 192 * 1024);
  return 1024 * 1024;
}

function count(map: Record<string, number>, name: string): void {
  map[name] = (map[name] ?? 0) + 1;
}

async function worker(w: number, deadline: number, model: Model, random: () => number): Promise<void> {
  // Bounded by time and by count.
  for (let n = 0; n < 1_000_000 && Date.now() < deadline; n++) {
    const j = Math.floor(random() * keysPerWorker);
    const { bucket, key, path } = keyPath(w, j);
    const id = `${bucket}/${key}`;
    const states = model.possible.get(id) ?? [null];
    const r = random();
    try {
      if (r < 0.45) {
        const body = randomBytes(bodySize(random()));
        model.possible.set(id, [...states, md5(body)]); // in flight: either may be read
        const res = await request(primary, 'PUT', path, {}, body);
        count(model.ops, 'put');
        if (res.status === 200) model.possible.set(id, [md5(body)]);
        else {
          count(model.errors, `put ${res.status}`);
          model.possible.set(id, states);
        }
      } else if (r < 0.75) {
        const res = await request(primary, 'GET', path);
        count(model.ops, 'get');
        const got = res.status === 200 ? md5(res.body) : res.status === 404 ? null : undefined;
        if (got === undefined) count(model.errors, `get ${res.status}`);
        else if (!states.includes(got)) model.violations.push(`GET ${id}: ${got} not in ${JSON.stringify(states)}`);
      } else if (r < 0.85) {
        model.possible.set(id, [...states, null]);
        const res = await request(primary, 'DELETE', path);
        count(model.ops, 'delete');
        if (res.status === 204) model.possible.set(id, [null]);
        else {
          count(model.errors, `delete ${res.status}`);
          model.possible.set(id, states);
        }
      } else if (r < 0.92) {
        const res = await request(primary, 'GET', `/${bucket}`, { 'list-type': '2', prefix: `w${w}/` });
        count(model.ops, 'list');
        if (res.status !== 200) count(model.errors, `list ${res.status}`);
      } else {
        const src = keyPath(w, (j + 1) % keysPerWorker);
        const srcStates = model.possible.get(`${src.bucket}/${src.key}`) ?? [null];
        const present = srcStates.filter((s): s is string => s !== null);
        model.possible.set(id, [...states, ...present]);
        const res = await request(primary, 'PUT', path, {}, undefined, { 'x-amz-copy-source': `/${src.bucket}/${src.key}` });
        count(model.ops, 'copy');
        if (res.status === 200 && srcStates.length === 1) model.possible.set(id, srcStates);
        else if (res.status !== 200) {
          if (res.status !== 404) count(model.errors, `copy ${res.status}`);
          model.possible.set(id, states);
        }
      }
    } catch (err) {
      // No answer: the write may or may not have happened (states stay widened).
      count(model.errors, `network ${(err as Error).message}`);
    }
  }
}

const chaosModes: [string, ChaosSettings | 'partition'][] = [
  ['calm', calm],
  ['delays', { delayMsMax: 40, resetChance: 0, stallChance: 0, stallMs: 0 }],
  ['resets', { delayMsMax: 5, resetChance: 0.01, stallChance: 0, stallMs: 0 }],
  ['stalls', { delayMsMax: 0, resetChance: 0, stallChance: 0.5, stallMs: 1500 }],
  ['partition', 'partition'],
];

/** Switches chaos modes every 1-3 s until the deadline. */
async function chaos(deadline: number, random: () => number, log: string[]): Promise<void> {
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    const [name, mode] = chaosModes[Math.floor(random() * chaosModes.length)]!;
    log.push(name);
    if (mode === 'partition') proxy.partition();
    else {
      proxy.heal();
      proxy.settings = mode;
    }
    await sleep(Math.min(1000 + random() * 2000, Math.max(0, deadline - Date.now())));
  }
  proxy.heal();
  proxy.settings = calm;
}

async function status(): Promise<{ queueDepth: number; pendingMisses: number; peer: unknown }> {
  const res = await request(primary, 'GET', '/_lookahead/status');
  expect(res.status, res.body.toString()).toBe(200);
  return (JSON.parse(res.body.toString()) as { replication: { queueDepth: number; pendingMisses: number; peer: unknown } }).replication;
}

async function listing(site: RunningSite, bucket: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 100; page++) {
    const res = await request(site, 'GET', `/${bucket}`, { 'list-type': '2', ...(token ? { 'continuation-token': token } : {}) });
    if (res.status === 404) return out;
    expect(res.status, res.body.toString()).toBe(200);
    const text = res.body.toString();
    for (const m of text.matchAll(/<Key>([^<]*)<\/Key>.*?<ETag>([^<]*)<\/ETag>.*?<Size>(\d+)<\/Size>/gs)) out.push(`${m[1]} ${m[2]} ${m[3]}`);
    token = /<NextContinuationToken>([^<]*)</.exec(text)?.[1];
    if (!token) return out;
  }
  throw new Error('listing did not end');
}

async function sitesListings(): Promise<{ primary: string[]; secondary: string[] }> {
  const p: string[] = [];
  const s: string[] = [];
  for (const b of buckets) {
    p.push(...(await listing(primary, b)).map((l) => `${b}/${l}`));
    s.push(...(await listing(secondary, b)).map((l) => `${b}/${l}`));
  }
  return { primary: p, secondary: s };
}

describe(`soak: ${soakSeconds} s, concurrency ${concurrency}, chaos on the inter-site link (seed ${seed})`, () => {
  it('loses no acknowledged write, bounds memory, and converges', { timeout: soakSeconds * 1000 + convergeMsMax + 120_000 }, async () => {
    for (const b of buckets) expect((await request(primary, 'PUT', `/${b}`)).status).toBe(200);
    const model: Model = { possible: new Map(), violations: [], ops: {}, errors: {} };
    const random = prng(seed);
    const rss: number[] = [];
    const sampler = setInterval(() => rss.push(process.memoryUsage().rss), 250);
    const started = Date.now();
    const deadline = started + soakSeconds * 1000;
    const chaosLog: string[] = [];
    try {
      await Promise.all([chaos(deadline, prng(seed + 1), chaosLog), ...Array.from({ length: concurrency }, (_, w) => worker(w, deadline, model, prng(seed * 100 + w)))]);
    } finally {
      clearInterval(sampler);
    }
    const elapsed = (Date.now() - started) / 1000;
    const totalOps = Object.values(model.ops).reduce((a, b) => a + b, 0);
    // Baseline: the first samples after 2 s of warm-up (sockets, caches, JIT).
    const warm = rss.slice(8, 12);
    const baseline = Math.min(...warm);
    const peak = Math.max(...rss);

    // Converge: chaos is off; wait for the copy queue to drain.
    const convergeStart = Date.now();
    let s = await status();
    while ((s.queueDepth > 0 || s.pendingMisses > 0) && Date.now() - convergeStart < convergeMsMax) {
      await sleep(250);
      s = await status();
    }
    let lists = await sitesListings();
    for (let i = 0; i < 40 && lists.primary.join() !== lists.secondary.join(); i++) {
      await sleep(250);
      lists = await sitesListings();
    }
    const convergeMs = Date.now() - convergeStart;

    console.log(
      JSON.stringify({
        seed,
        seconds: Math.round(elapsed),
        ops: totalOps,
        opsPerSecond: Math.round(totalOps / elapsed),
        byOp: model.ops,
        errors: model.errors,
        chaos: { modes: chaosLog.length, ...proxy.counts },
        rssMiB: { baseline: Math.round(baseline / 2 ** 20), peak: Math.round(peak / 2 ** 20), growthBound: rssGrowthBytesMax / 2 ** 20 },
        convergeMs,
        finalStatus: s,
        keys: lists.primary.length,
      }),
    );

    // No acknowledged write lost: every key reads back a state the model allows.
    expect(model.violations).toEqual([]);
    for (const [id, states] of model.possible) {
      const res = await request(primary, 'GET', `/${id}`);
      const got = res.status === 200 ? md5(res.body) : res.status === 404 ? null : `status ${res.status}`;
      expect(states, `${id} on the primary`).toContain(got);
    }
    expect(totalOps).toBeGreaterThan(concurrency * soakSeconds);
    expect(chaosLog.length).toBeGreaterThan(1);
    expect(peak - baseline, `RSS grew from ${baseline} to ${peak}`).toBeLessThan(rssGrowthBytesMax);
    expect(s.queueDepth, JSON.stringify(s)).toBe(0);
    expect(lists.secondary).toEqual(lists.primary);
    expect(lists.primary.length).toBeGreaterThan(0);
    // Same bytes too: the secondary's listing shows the primary's metadata,
    // so a body damaged in transit would only show here.
    const differing: string[] = [];
    for (const line of lists.primary) {
      const id = line.split(' ')[0]!;
      const [p, q] = [await request(primary, 'GET', `/${id}`), await request(secondary, 'GET', `/${id}`)];
      if (p.status !== q.status || md5(p.body) !== md5(q.body)) differing.push(`${id}: ${p.status}/${q.status}`);
    }
    expect(differing, 'bodies that differ between the sites').toEqual([]);
  });
});
