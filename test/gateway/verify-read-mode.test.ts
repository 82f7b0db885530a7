// serve --verify-reads: 'full' (default) checks every blob a read covers
// whole against its recorded CRC32 (a record without CRC32s: a whole read
// against the ETag's MD5); 'size' only counts bytes. Both refuse a body of
// the wrong length.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { inlineBodyBytesMax } from '../../src/core/limits.ts';
import { verifiedBody, type ReadVerification } from '../../src/objects/verify-read.ts';
import { objectMetaVersion, type ObjectMeta, type ReadRange } from '../../src/objects/types.ts';

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

/** Streams `bytes` in `chunkBytes` chunks through the check; resolves with what came out or the error. */
async function read(
  meta: ObjectMeta,
  bytes: Buffer,
  mode?: ReadVerification,
  range?: ReadRange,
  chunkBytes = 65536,
): Promise<{ out: Buffer; err?: Error }> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkBytes) chunks.push(bytes.subarray(i, i + chunkBytes));
  const out: Buffer[] = [];
  try {
    for await (const c of verifiedBody(meta, range, Readable.from(chunks), mode)) out.push(c as Buffer);
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

/** A three-blob object (multipart-like) whose blobs record their CRC32s. */
function crcMeta(stored: Buffer, cuts: number[]): ObjectMeta {
  const edges = [0, ...cuts, stored.length];
  const blobs = edges.slice(1).map((end, i) => {
    const part = stored.subarray(edges[i]!, end);
    return { id: `blob-${i}`, size: part.length, crc32: zlib.crc32(part) };
  });
  return { ...metaFor(stored), etag: 'not-an-md5-shape', blobs };
}

describe('blob CRC32 checks', () => {
  const good = body(2);
  const cuts = [inlineBodyBytesMax + 5, 2 * inlineBodyBytesMax + 11];
  const meta = crcMeta(good, cuts);
  const flippedIn = (at: number) => {
    const b = Buffer.from(good);
    b[at] ^= 0x01;
    return b;
  };

  it('pass intact bytes, whatever the chunking (blob ends fall inside chunks)', async () => {
    for (const chunkBytes of [1000, 65536, 7777, size]) {
      const r = await read(meta, good, 'full', undefined, chunkBytes);
      expect(r.err, `chunks of ${chunkBytes}`).toBeUndefined();
      expect(r.out.equals(good)).toBe(true);
    }
  });

  it('catch a flipped byte in any blob (the ETag is not used), naming its bytes', async () => {
    for (const [i, at] of [10, cuts[0]! + 1, size - 1].entries()) {
      const r = await read(meta, flippedIn(at), 'full', undefined, 7777);
      expect(r.err?.name, `blob ${i}`).toBe('StoredDataCorrupt');
      expect(r.out.length).toBeLessThan(size);
      const first = [0, ...cuts][i]!;
      const last = [...cuts, size][i]! - 1;
      expect(r.err?.message).toContain(`of bytes ${first}-${last} does not match the stored CRC32`);
    }
  });

  it('check a blob a range covers whole, not one it covers in part', async () => {
    const range = { start: cuts[0]! - 3, end: cuts[1]! + 3 }; // all of blob 1
    const slice = (b: Buffer) => b.subarray(range.start, range.end + 1);
    const ok = await read(meta, slice(good), 'full', range, 1000);
    expect(ok.err).toBeUndefined();
    const inMiddle = await read(meta, slice(flippedIn(cuts[0]! + 100)), 'full', range, 1000);
    expect(inMiddle.err?.name).toBe('StoredDataCorrupt');
    const inEdge = await read(meta, slice(flippedIn(cuts[0]! - 1)), 'full', range, 1000);
    expect(inEdge.err, 'blob 0 is read only in part: length only').toBeUndefined();
  });

  it('size mode skips them', async () => {
    const r = await read(meta, flippedIn(10), 'size');
    expect(r.err).toBeUndefined();
  });
});
