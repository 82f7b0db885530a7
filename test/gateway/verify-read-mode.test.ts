// serve --verify-reads: 'full' (default) checks a whole read against the
// ETag's MD5; 'size' only counts bytes. Both refuse a body of the wrong length.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { inlineBodyBytesMax } from '../../src/core/limits.ts';
import { verifiedBody, type ReadVerification } from '../../src/gateway/verify-read.ts';
import { objectMetaVersion, type ObjectMeta } from '../../src/objects/types.ts';

const size = inlineBodyBytesMax * 3 + 17;

function body(seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

function metaFor(stored: Buffer): ObjectMeta {
  return {
    v: objectMetaVersion,
    bucket: 'b',
    key: 'k',
    size,
    etag: createHash('md5').update(stored).digest('hex'),
    lastModified: 0,
    seq: 1,
    headers: {},
    userMeta: {},
    tags: {},
    blobs: [{ id: 'blob-1', size }],
  };
}

/** Streams `bytes` in 64 KiB chunks through the check; resolves with what came out or the error. */
async function read(meta: ObjectMeta, bytes: Buffer, mode?: ReadVerification): Promise<{ out: Buffer; err?: Error }> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 65536) chunks.push(bytes.subarray(i, i + 65536));
  const out: Buffer[] = [];
  try {
    for await (const c of verifiedBody(meta, undefined, Readable.from(chunks), mode)) out.push(c as Buffer);
    return { out: Buffer.concat(out) };
  } catch (err) {
    return { out: Buffer.concat(out), err: err as Error };
  }
}

describe('read verification modes', () => {
  const good = body(1);
  const flipped = Buffer.from(good);
  flipped[size - 100] ^= 0x40;

  it('full (the default) catches a flipped byte and never passes the last chunk', async () => {
    for (const mode of [undefined, 'full'] as const) {
      const r = await read(metaFor(good), flipped, mode);
      expect(r.err?.name).toBe('StoredDataCorrupt');
      expect(r.out.length).toBeLessThan(size);
    }
  });

  it('size passes same-length bytes unhashed but still refuses a wrong length', async () => {
    const same = await read(metaFor(good), flipped, 'size');
    expect(same.err).toBeUndefined();
    expect(same.out.equals(flipped)).toBe(true);
    const short = await read(metaFor(good), good.subarray(0, size - 1), 'size');
    expect(short.err?.name).toBe('StoredDataCorrupt');
    expect(short.out.length).toBeLessThan(size - 1);
  });

  it('both modes pass intact bytes whole', async () => {
    for (const mode of ['full', 'size'] as const) {
      const r = await read(metaFor(good), good, mode);
      expect(r.err).toBeUndefined();
      expect(r.out.equals(good)).toBe(true);
    }
  });
});
