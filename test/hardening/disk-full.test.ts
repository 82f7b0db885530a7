// A full disk, for real: the data dir lives on a small tmpfs. A PUT that
// runs out of space fails with an S3 error (503 ServiceUnavailable), leaves
// no temp file and no object, earlier objects read back intact, and once
// space is freed writes work again. Needs root (mount); skipped otherwise.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, xmlText, type Target } from '../helpers/http.ts';
import { startHardGateway, type HardGateway } from './harness.ts';

const tmpfsBytes = 12 * 1024 * 1024;

async function tryMount(): Promise<{ dir?: string; reason?: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'lookahead-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${tmpfsBytes},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    return { reason: `cannot mount a tmpfs (${String((err as Error).message).split('\n')[0]}): disk-full test skipped` };
  }
}

const mounted = await tryMount();
if (mounted.reason) console.warn(mounted.reason);

const pair = { accessKeyId: 'DISKFULLKEY000000001', secretAccessKey: 'disk-full-secret-0123456789abcdefghijkl' };
let gw: HardGateway | undefined;
let t: Target;

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

function payload(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

describe.skipIf(mounted.dir === undefined)('disk full during a PUT (tmpfs data dir)', () => {
  const dataDir = join(mounted.dir ?? '/nonexistent', 'data');
  const kept = new Map<string, Buffer>();

  beforeAll(async () => {
    gw = await startHardGateway({ pairs: [pair], dataDir });
    t = gw.as();
    expect((await rawRequest(t, { method: 'PUT', path: '/full' })).status).toBe(200);
  });
  afterAll(async () => {
    await gw?.close();
    if (mounted.dir) {
      execFileSync('umount', [mounted.dir]);
      await rm(mounted.dir, { recursive: true, force: true });
    }
  });

  it('earlier objects are written', async () => {
    for (const [key, size] of [['small', 1000], ['medium', 200 * 1024], ['large', 1024 * 1024]] as const) {
      const body = payload(size, key.length);
      const r = await rawRequest(t, { method: 'PUT', path: `/full/${key}`, body });
      expect(r.status, r.text).toBe(200);
      kept.set(key, body);
    }
  });

  it('filling the disk: the failing PUT is 503 ServiceUnavailable, leaves no temp file and no object', async () => {
    let failed: { status: number; text: string; key: string } | undefined;
    // Bounded: 12 MiB of tmpfs holds at most a handful of 2 MiB bodies.
    for (let i = 0; i < 20 && !failed; i++) {
      const body = payload(2 * 1024 * 1024, i);
      const key = `filler-${i}`;
      const r = await rawRequest(t, { method: 'PUT', path: `/full/${key}`, body });
      if (r.status === 200) kept.set(key, body);
      else failed = { status: r.status, text: r.text, key };
    }
    expect(failed, 'the tmpfs never filled up').toBeDefined();
    expect(failed!.status, failed!.text).toBe(503);
    expect(xmlText(failed!.text, 'Code')).toBe('ServiceUnavailable');
    expect(failed!.text).not.toContain(dataDir);
    expect(await readdir(join(dataDir, 'tmp'))).toEqual([]);
    expect((await rawRequest(t, { method: 'HEAD', path: `/full/${failed!.key}` })).status).toBe(404);
  });

  it('a small (inline) PUT on the full disk fails cleanly or succeeds; it never breaks the store', async () => {
    const r = await rawRequest(t, { method: 'PUT', path: '/full/tiny-when-full', body: 'tiny' });
    expect([200, 503], r.text).toContain(r.status);
    if (r.status === 200) kept.set('tiny-when-full', Buffer.from('tiny'));
  });

  it('every acknowledged object reads back intact', async () => {
    for (const [key, body] of kept) {
      const r = await rawRequest(t, { method: 'GET', path: `/full/${key}` });
      expect(r.status, key).toBe(200);
      expect(md5(r.body), key).toBe(md5(body));
    }
  });

  it('after deleting, writes work again', async () => {
    for (const key of [...kept.keys()].filter((k) => k.startsWith('filler-'))) {
      expect((await rawRequest(t, { method: 'DELETE', path: `/full/${key}` })).status).toBe(204);
      kept.delete(key);
    }
    const body = payload(2 * 1024 * 1024, 99);
    let r = await rawRequest(t, { method: 'PUT', path: '/full/after', body });
    // Replaced blobs are unlinked asynchronously; give it a moment (bounded).
    for (let i = 0; i < 20 && r.status !== 200; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await rawRequest(t, { method: 'PUT', path: '/full/after', body });
    }
    expect(r.status, r.text).toBe(200);
    expect(md5((await rawRequest(t, { method: 'GET', path: '/full/after' })).body)).toBe(md5(body));
    for (const [key, b] of kept) expect(md5((await rawRequest(t, { method: 'GET', path: `/full/${key}` })).body), key).toBe(md5(b));
  });
});

describe('lmdb map full', () => {
  it('a map far too small for the metadata grows instead of failing writes', async () => {
    const { open } = await import('lmdb');
    const mapSize = 128 * 1024;
    const small = await startHardGateway({
      pairs: [pair],
      openDb: (dir) => open({ path: join(dir, 'meta'), maxDbs: 64, overlappingSync: false, mapSize }),
    });
    try {
      const st = small.as();
      expect((await rawRequest(st, { method: 'PUT', path: '/grow' })).status).toBe(200);
      const bodies = new Map<string, Buffer>();
      // 64 x 8 KiB inline bodies: four times the initial map.
      for (let i = 0; i < 64; i++) {
        const body = payload(8 * 1024, i);
        const r = await rawRequest(st, { method: 'PUT', path: `/grow/k${i}`, body });
        expect(r.status, r.text).toBe(200);
        bodies.set(`k${i}`, body);
      }
      for (const [key, body] of bodies) expect(md5((await rawRequest(st, { method: 'GET', path: `/grow/${key}` })).body), key).toBe(md5(body));
    } finally {
      await small.close();
    }
  });
});
