// Crash safety, process level: a child `src/main.ts serve` takes a stream of
// concurrent PUTs of random sizes and bodies and is SIGKILLed in the middle
// of it; restarted on the same data dir, it must show
//   - every acknowledged object, byte-identical (SHA-256),
//   - no torn or unknown object: every listed object's body is one that was
//     written for that key (and not one superseded by a later acked write),
//   - nothing left in the data dir's tmp area, and no orphan blob files.
// Two kill/restart rounds on the same dir, with overwrites of a hot key set.

import { describe, it, expect, afterAll } from 'vitest';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Http } from '../../bench/s3http.ts';
import { inlineBodyBytesMax } from '../../src/core/limits.ts';
import { startLookahead, testAccessKey, testSecretKey, type ChildServer } from '../../bench/servers.ts';

const bucket = 'crash';
const writers = 12;
const hotKeys = 10;
/** Each round writes until this many acks and this long, then kills. */
const acksBeforeKill = 150;
const msBeforeKill = 1_000;
/** Hard bounds on a round, whatever happens. */
const roundMsMax = 30_000;
const roundWritesMax = 5_000;

interface Write {
  key: string;
  sha: string;
  size: number;
  start: number;
  /** performance.now() of the ack; undefined if never acknowledged. */
  ackedAt?: number;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function randomSize(): number {
  const r = Math.random();
  if (r < 0.05) return 0;
  if (r < 0.7) return randomInt(1, 64 * 1024);
  if (r < 0.95) return randomInt(64 * 1024, 1024 * 1024);
  return randomInt(1024 * 1024, 4 * 1024 * 1024);
}

function clientFor(server: ChildServer): S3Http {
  return new S3Http({ url: server.url, accessKey: testAccessKey, secretKey: testSecretKey, region: 'us-east-1' }, writers * 2);
}

/** Every key in the bucket (ListObjectsV2, paged, bounded). */
async function listAll(client: S3Http): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const query: Record<string, string> = { 'list-type': '2', 'max-keys': '1000' };
    if (token) query['continuation-token'] = token;
    const res = await client.ok('GET', `/${bucket}`, { query, keepBody: true });
    const xml = res.body!.toString('utf8');
    for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
      const key = /<Key>([^<]*)<\/Key>/.exec(m[1]!)![1]!;
      const size = Number(/<Size>(\d+)<\/Size>/.exec(m[1]!)![1]);
      out.set(key, size);
    }
    const next = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml);
    if (!/<IsTruncated>true<\/IsTruncated>/.test(xml) || !next) return out;
    token = next[1]!.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"');
  }
  throw new Error('listing did not end within 1000 pages');
}

/** Writes until the round's thresholds, then SIGKILLs the server mid-stream. */
async function writeThenKill(server: ChildServer, round: number, log: Write[]): Promise<void> {
  const client = clientFor(server);
  let acks = 0;
  let issued = 0;
  let killed = false;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (!killed && issued < roundWritesMax && performance.now() - t0 < roundMsMax) {
      const n = issued++;
      const key = Math.random() < 0.3 ? `hot/k-${randomInt(hotKeys)}` : `r${round}/u-${String(n).padStart(5, '0')}`;
      const body = randomBytes(randomSize());
      const w: Write = { key, sha: sha256(body), size: body.length, start: performance.now() };
      log.push(w);
      try {
        const res = await client.request('PUT', `/${bucket}/${key}`, { body, timeoutMs: 20_000 });
        if (res.status === 200) {
          w.ackedAt = performance.now();
          acks++;
        }
      } catch {
        // Connection reset by the kill: not acknowledged.
      }
    }
  };
  const killer = (async () => {
    while (performance.now() - t0 < roundMsMax && (acks < acksBeforeKill || performance.now() - t0 < msBeforeKill)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, randomInt(0, 200)));
    killed = true;
    await server.kill();
  })();
  await Promise.all([killer, ...Array.from({ length: writers }, worker)]);
  client.close();
  expect(acks).toBeGreaterThanOrEqual(acksBeforeKill);
}

/**
 * Bodies a key may hold after a crash: those of writes not superseded, where
 * W is superseded if some acknowledged write of the same key started after W
 * was acknowledged (so it committed after W, and last commit wins).
 */
export function allowedBodies(writes: Write[]): Set<string> {
  const allowed = new Set<string>();
  for (const w of writes) {
    const superseded = w.ackedAt !== undefined && writes.some((a) => a.ackedAt !== undefined && a.start > w.ackedAt!);
    if (!superseded) allowed.add(w.sha);
  }
  return allowed;
}

function filesUnder(dir: string, depth = 0): string[] {
  if (depth > 16) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...filesUnder(full, depth + 1));
    else out.push(full);
  }
  return out;
}

function dirsNamed(root: string, name: string, depth = 0): string[] {
  if (depth > 4) return [];
  const out: string[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const full = path.join(root, entry.name);
    if (entry.name === name) out.push(full);
    else out.push(...dirsNamed(full, name, depth + 1));
  }
  return out;
}

async function verify(server: ChildServer, dataDir: string, log: Write[]): Promise<void> {
  const client = clientFor(server);
  try {
    const byKey = new Map<string, Write[]>();
    for (const w of log) byKey.set(w.key, [...(byKey.get(w.key) ?? []), w]);
    const listed = await listAll(client);
    // Every acknowledged key is there.
    for (const [key, writes] of byKey) {
      if (writes.some((w) => w.ackedAt !== undefined)) expect(listed.has(key), `acked key ${key} missing`).toBe(true);
    }
    // Every listed object is one we wrote for that key, whole, not superseded.
    for (const [key, size] of listed) {
      const writes = byKey.get(key);
      expect(writes, `unknown key ${key} listed`).toBeDefined();
      const res = await client.ok('GET', `/${bucket}/${key}`, { keepBody: true });
      const sha = sha256(res.body!);
      expect(res.body!.length, `${key}: listed size vs body`).toBe(size);
      expect(allowedBodies(writes!).has(sha), `${key}: body ${sha.slice(0, 12)} (${size} B) is torn, unknown or stale`).toBe(true);
    }
    // The tmp area was swept; no blob file outlives its object.
    const tmpDirs = dirsNamed(dataDir, 'tmp');
    expect(tmpDirs.length, 'no tmp dir found in the data dir').toBeGreaterThan(0);
    for (const d of tmpDirs) expect(readdirSync(d), `leftovers in ${d}`).toEqual([]);
    const blobDirs = dirsNamed(dataDir, 'blobs');
    if (blobDirs.length > 0) {
      const blobFiles = blobDirs.flatMap((d) => filesUnder(d));
      // Single PUTs only: one blob file per object, except bodies small
      // enough to be stored inline in lmdb, which have none.
      const withFile = [...listed.values()].filter((size) => size > inlineBodyBytesMax).length;
      expect(blobFiles.length, 'blob files vs objects stored in files (orphans?)').toBe(withFile);
    }
  } finally {
    client.close();
  }
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'lookahead-crash-'));
let current: ChildServer | undefined;

afterAll(async () => {
  await current?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('crash safety: SIGKILL in the middle of a stream of PUTs', { timeout: 240_000 }, () => {
  it('keeps every acknowledged object, shows no torn one, leaves no temp files', async () => {
    const log: Write[] = [];
    current = await startLookahead({ dataDir });
    const c = clientFor(current);
    await c.ok('PUT', `/${bucket}`);
    c.close();
    for (let round = 1; round <= 2; round++) {
      await writeThenKill(current, round, log);
      // What the kill left behind, before the restart's sweep (diagnostics).
      const leftovers = dirsNamed(dataDir, 'tmp').flatMap((d) => readdirSync(d)).length;
      const acked = log.filter((w) => w.ackedAt !== undefined).length;
      console.log(`round ${round}: ${log.length} PUTs issued, ${acked} acked, ${leftovers} temp files at the kill`);
      current = await startLookahead({ dataDir });
      await verify(current, dataDir, log);
    }
    const acked = log.filter((w) => w.ackedAt !== undefined).length;
    // Some writes must have been cut off, or the kill was not mid-stream.
    expect(log.length - acked).toBeGreaterThan(0);
  });
});
