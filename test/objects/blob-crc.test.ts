// Every file blob the store creates records the CRC32 of the bytes it holds
// (BlobRef.crc32), whichever path wrote it: PutObject, CopyObject, UploadPart,
// UploadPartCopy (carried through Complete), a replica apply and a forced
// (resync/failback) apply. Inline bodies record none: they are not checked
// on read. GETs check these values (src/objects/verify-read.ts).

import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checksumBase64, DigestingTransform } from '../../src/core/checksum.ts';
import { inlineBodyBytesMax, partSizeBytesMin } from '../../src/core/limits.ts';
import { buildCompletedMeta } from '../../src/objects/multipart.ts';
import { recordVersion, type PartRecord, type UploadRecord } from '../../src/objects/meta-db.ts';
import { objectMetaVersion, type ObjectMeta } from '../../src/objects/types.ts';
import { makeFixture, noAttrs, putInput, readAll, type Fixture } from './helpers.ts';

let fx: Fixture;
beforeEach(async () => {
  fx = await makeFixture();
  await fx.store.createBucket('c', 'us-east-1');
});
afterEach(async () => fx.cleanup());

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** Several chunks, so the CRC runs across chunk boundaries and the inline head. */
function chunked(b: Buffer, size = 10_000): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) chunks.push(b.subarray(i, i + size));
  return Readable.from(chunks);
}

function replicaMeta(key: string, body: Buffer, seq: number): ObjectMeta {
  return {
    v: objectMetaVersion, bucket: 'c', key, size: body.length, etag: md5(body), lastModified: 1, seq,
    headers: {}, userMeta: {}, tags: {}, blobs: [],
  };
}

describe('blob CRC32 at write time', () => {
  it('PutObject records it for a file body (also read in pieces) and not for an inline one', async () => {
    const big = randomBytes(inlineBodyBytesMax * 2 + 7);
    const m = await fx.store.putObject(putInput('c', 'big', chunked(big)));
    expect(m.blobs).toEqual([{ id: m.blobs[0]!.id, size: big.length, crc32: zlib.crc32(big) }]);
    expect((await fx.store.headObject('c', 'big')).blobs[0]!.crc32).toBe(zlib.crc32(big));
    const small = await fx.store.putObject(putInput('c', 'small', randomBytes(100)));
    expect(small.blobs[0]!.crc32).toBeUndefined();
  });

  it('a client CRC32 checksum and the blob CRC32 agree (one running value serves both)', async () => {
    const body = randomBytes(inlineBodyBytesMax + 12_345);
    const m = await fx.store.putObject(putInput('c', 'crc', chunked(body), { algorithms: ['CRC32'], checksumAlgorithm: 'CRC32' }));
    expect(m.checksum?.value).toBe(checksumBase64('CRC32', body));
    expect(m.blobs[0]!.crc32).toBe(zlib.crc32(body));
  });

  it('CopyObject records the CRC32 of the copied bytes (whole and ranged)', async () => {
    const src = randomBytes(inlineBodyBytesMax * 3);
    await fx.store.putObject(putInput('c', 'src', src));
    const whole = await fx.store.copyObject({ bucket: 'c', key: 'src' }, { bucket: 'c', key: 'whole' }, 'copy');
    expect(whole.blobs[0]!.crc32).toBe(zlib.crc32(src));
    const part = src.subarray(1000, inlineBodyBytesMax * 2);
    const ranged = await fx.store.copyObject(
      { bucket: 'c', key: 'src', range: { start: 1000, end: inlineBodyBytesMax * 2 - 1 } }, { bucket: 'c', key: 'ranged' }, 'copy',
    );
    expect(ranged.blobs[0]!.crc32).toBe(zlib.crc32(part));
  });

  it('UploadPart and UploadPartCopy record it per part, and Complete keeps it per blob', async () => {
    const a = randomBytes(partSizeBytesMin + 3);
    const src = randomBytes(inlineBodyBytesMax * 2);
    await fx.store.putObject(putInput('c', 'src', src));
    const up = await fx.store.createMultipartUpload('c', 'mp', noAttrs);
    const p1 = await fx.store.uploadPart({
      bucket: 'c', key: 'mp', uploadId: up.uploadId, partNumber: 1, body: chunked(a), algorithms: [], sha256: false, verify: () => {},
    });
    const p2 = await fx.store.uploadPartCopy({
      bucket: 'c', key: 'mp', uploadId: up.uploadId, partNumber: 2, source: { bucket: 'c', key: 'src', range: { start: 5, end: 70_004 } },
    });
    const m = await fx.store.completeMultipartUpload('c', 'mp', up.uploadId, [
      { partNumber: 1, etag: p1.etag }, { partNumber: 2, etag: p2.etag },
    ]);
    expect(m.blobs.map((b) => b.crc32)).toEqual([zlib.crc32(a), zlib.crc32(src.subarray(5, 70_005))]);
    expect((await fx.store.headObject('c', 'mp')).blobs.map((b) => b.crc32)).toEqual(m.blobs.map((b) => b.crc32));
  });

  it('replica applies (plain and forced, as resync and failback use) record the CRC32 of the received body', async () => {
    const body = randomBytes(inlineBodyBytesMax + 999);
    expect(await fx.store.applyReplica(replicaMeta('r', body, 10), chunked(body))).toBe(true);
    expect((await fx.store.headObject('c', 'r')).blobs[0]!.crc32).toBe(zlib.crc32(body));
    // The primary's own blob list (with its CRCs) is never taken over.
    const next = randomBytes(inlineBodyBytesMax + 5);
    const foreign = { ...replicaMeta('r', next, 5), blobs: [{ id: 'ff'.repeat(16), size: next.length, crc32: 1 }] };
    expect(await fx.store.applyReplica(foreign, chunked(next), { force: true })).toBe(true);
    const stored = await fx.store.headObject('c', 'r');
    expect(stored.blobs[0]!.crc32).toBe(zlib.crc32(next));
    expect(stored.blobs[0]!.id).not.toBe('ff'.repeat(16));
    expect((await readAll((await fx.store.openObject('c', 'r')).stream())).equals(next)).toBe(true);
  });

  it('survives a reopen (persisted in the record)', async () => {
    const body = randomBytes(inlineBodyBytesMax + 1);
    await fx.store.putObject(putInput('c', 'p', body));
    const s = await fx.reopen();
    expect((await s.headObject('c', 'p')).blobs[0]!.crc32).toBe(zlib.crc32(body));
  });
});

describe('records from before blob CRC32s', () => {
  it('a part record without one completes into a blob without one (reads fall back to the ETag MD5)', () => {
    const upload: UploadRecord = { v: recordVersion, bucket: 'c', key: 'k', uploadId: 'u', initiated: 0, attrs: noAttrs };
    const part = (n: number, crc?: number): PartRecord => ({
      v: recordVersion, partNumber: n, etag: md5(Buffer.from([n])), size: 10, lastModified: 0, blobId: `b${n}`,
      ...(crc !== undefined ? { blobCrc32: crc } : {}),
    });
    const meta = buildCompletedMeta(upload, [part(1), part(2, 77)], 1, 0);
    expect(meta.blobs).toEqual([{ id: 'b1', size: 10 }, { id: 'b2', size: 10, crc32: 77 }]);
  });
});

describe('DigestingTransform.trackCrc32', () => {
  it('covers the chunks digested before it was asked for, then the rest', () => {
    const data = randomBytes(50_000);
    const d = new DigestingTransform({ algorithms: [], sha256: false });
    const head = [data.subarray(0, 7000), data.subarray(7000, 20_000)];
    for (const c of head) d.update(c);
    d.trackCrc32(head);
    d.update(data.subarray(20_000));
    expect(d.result().crc32).toBe(zlib.crc32(data));
  });

  it('reuses the CRC32 checksum when the client asked for it, and is absent when never asked for', () => {
    const data = randomBytes(30_000);
    const d = new DigestingTransform({ algorithms: ['CRC32'], sha256: false });
    d.update(data.subarray(0, 100));
    d.trackCrc32([data.subarray(0, 100)]);
    d.update(data.subarray(100));
    const r = d.result();
    expect(r.crc32).toBe(zlib.crc32(data));
    expect(Buffer.from(r.checksums.CRC32!, 'base64').readUInt32BE()).toBe(r.crc32);
    const plain = new DigestingTransform({ algorithms: [], sha256: false });
    plain.update(data);
    expect(plain.result().crc32).toBeUndefined();
  });
});
