import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checksumBase64, compositeChecksum } from '../../src/core/checksum.ts';
import { S3Error } from '../../src/core/errors.ts';
import { partSizeBytesMin } from '../../src/core/limits.ts';
import type { ChecksumAlgorithm } from '../../src/objects/types.ts';
import { makeFixture, noAttrs, putInput, readAll, type Fixture } from './helpers.ts';

let fx: Fixture;
beforeEach(async () => {
  fx = await makeFixture();
  await fx.store.createBucket('mp', 'us-east-1');
});
afterEach(async () => fx.cleanup());

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    throw err;
  }
  return 'ok';
}

function part(uploadId: string, partNumber: number, data: Buffer, algorithms: ChecksumAlgorithm[] = []) {
  return fx.store.uploadPart({
    bucket: 'mp', key: 'big', uploadId, partNumber, body: Readable.from([data]), algorithms, sha256: false, verify: () => {},
  });
}

async function blobCount(): Promise<number> {
  let n = 0;
  const root = join(fx.dataDir, 'blobs');
  for (const shard of await readdir(root)) n += (await readdir(join(root, shard))).length;
  return n;
}

describe('multipart', () => {
  it('completes out-of-order parts starting at 2, with the S3 ETag, no data copied', async () => {
    const s = fx.store;
    const up = await s.createMultipartUpload('mp', 'big', { headers: { contentType: 'a/b' }, userMeta: { m: '1' }, tags: {} });
    const p2 = randomBytes(partSizeBytesMin);
    const p3 = randomBytes(partSizeBytesMin + 17);
    const p4 = randomBytes(1000);
    // Upload in the wrong order, concurrently.
    const [i4, i2, i3] = await Promise.all([part(up.uploadId, 4, p4), part(up.uploadId, 2, p2), part(up.uploadId, 3, p3)]);
    const listed = await s.listParts('mp', 'big', up.uploadId, { maxParts: 1000 });
    expect(listed.parts.map((p) => p.partNumber)).toEqual([2, 3, 4]);
    const blobsBefore = await blobCount();
    const meta = await s.completeMultipartUpload('mp', 'big', up.uploadId, [
      { partNumber: 2, etag: `"${i2.etag}"` },
      { partNumber: 3, etag: i3.etag },
      { partNumber: 4, etag: `&quot;${i4.etag}&quot;` },
    ]);
    const expectedEtag = createHash('md5').update(Buffer.concat([p2, p3, p4].map((p) => Buffer.from(md5(p), 'hex')))).digest('hex');
    expect(meta.etag).toBe(`${expectedEtag}-3`);
    expect(meta.size).toBe(p2.length + p3.length + p4.length);
    expect(meta.partSizes).toEqual([p2.length, p3.length, p4.length]);
    expect(meta.headers.contentType).toBe('a/b');
    expect(await blobCount()).toBe(blobsBefore); // parts became the object's blobs
    const r = await s.openObject('mp', 'big');
    expect((await readAll(r.stream())).equals(Buffer.concat([p2, p3, p4]))).toBe(true);
    // A range spanning the part boundary.
    const r2 = await s.openObject('mp', 'big');
    const start = p2.length - 5;
    expect((await readAll(r2.stream({ start, end: start + 9 }))).equals(Buffer.concat([p2, p3]).subarray(start, start + 10))).toBe(true);
    expect(await code(s.listParts('mp', 'big', up.uploadId, { maxParts: 10 }))).toBe('NoSuchUpload');
  });

  it('validates the part list', async () => {
    const s = fx.store;
    const up = await s.createMultipartUpload('mp', 'big', noAttrs);
    const small = await part(up.uploadId, 1, Buffer.from('tiny'));
    const last = await part(up.uploadId, 2, Buffer.from('end'));
    const done = (parts: { partNumber: number; etag: string }[]) => code(s.completeMultipartUpload('mp', 'big', up.uploadId, parts));
    expect(await done([{ partNumber: 2, etag: last.etag }, { partNumber: 1, etag: small.etag }])).toBe('InvalidPartOrder');
    expect(await done([{ partNumber: 1, etag: small.etag }, { partNumber: 1, etag: small.etag }])).toBe('InvalidPartOrder');
    expect(await done([{ partNumber: 1, etag: 'deadbeef' }])).toBe('InvalidPart');
    expect(await done([{ partNumber: 7, etag: small.etag }])).toBe('InvalidPart');
    expect(await done([{ partNumber: 1, etag: small.etag }, { partNumber: 2, etag: last.etag }])).toBe('EntityTooSmall');
    expect(await done([])).toBe('MalformedXML');
    expect(await code(s.completeMultipartUpload('mp', 'big', 'nope', [{ partNumber: 1, etag: small.etag }]))).toBe('NoSuchUpload');
    expect(await code(part(up.uploadId, 0, Buffer.from('x')))).toBe('InvalidArgument');
    expect(await code(part(up.uploadId, 10001, Buffer.from('x')))).toBe('InvalidArgument');
    expect(await code(part('nope', 1, Buffer.from('x')))).toBe('NoSuchUpload');
    // Bad input changed nothing: the upload is still complete-able with a valid list.
    const m = await s.completeMultipartUpload('mp', 'big', up.uploadId, [{ partNumber: 2, etag: last.etag }]);
    expect(m.size).toBe(3);
  });

  it('replaces a re-uploaded part and deletes parts left out of the Complete', async () => {
    const s = fx.store;
    const up = await s.createMultipartUpload('mp', 'big', noAttrs);
    await part(up.uploadId, 1, Buffer.from('first version'));
    const second = await part(up.uploadId, 1, Buffer.from('second'));
    await part(up.uploadId, 2, Buffer.from('left out'));
    expect((await s.listParts('mp', 'big', up.uploadId, { maxParts: 10 })).parts.map((p) => p.size)).toEqual([6, 8]);
    await s.settled(); // replaced blob unlink runs after the commit
    expect(await blobCount()).toBe(2);
    await s.completeMultipartUpload('mp', 'big', up.uploadId, [{ partNumber: 1, etag: second.etag }]);
    await s.settled();
    expect(await blobCount()).toBe(1);
    const r = await s.openObject('mp', 'big');
    expect((await readAll(r.stream())).toString()).toBe('second');
  });

  it('aborts an upload and removes its part blobs', async () => {
    const s = fx.store;
    const up = await s.createMultipartUpload('mp', 'big', noAttrs);
    await part(up.uploadId, 1, Buffer.from('x'));
    await s.abortMultipartUpload('mp', 'big', up.uploadId);
    await s.settled();
    expect(await blobCount()).toBe(0);
    expect(await code(s.abortMultipartUpload('mp', 'big', up.uploadId))).toBe('NoSuchUpload');
  });

  it('uploads a part by copying a range of an object', async () => {
    const s = fx.store;
    const src = randomBytes(partSizeBytesMin + 100);
    await s.putObject(putInput('mp', 'src', src));
    const up = await s.createMultipartUpload('mp', 'big', noAttrs);
    const c1 = await s.uploadPartCopy({ bucket: 'mp', key: 'big', uploadId: up.uploadId, partNumber: 1, source: { bucket: 'mp', key: 'src' } });
    const c2 = await s.uploadPartCopy({
      bucket: 'mp', key: 'big', uploadId: up.uploadId, partNumber: 2, source: { bucket: 'mp', key: 'src', range: { start: 10, end: 29 } },
    });
    expect(c2.size).toBe(20);
    await s.completeMultipartUpload('mp', 'big', up.uploadId, [{ partNumber: 1, etag: c1.etag }, { partNumber: 2, etag: c2.etag }]);
    const r = await s.openObject('mp', 'big');
    expect((await readAll(r.stream())).equals(Buffer.concat([src, src.subarray(10, 30)]))).toBe(true);
  });

  it('computes COMPOSITE and FULL_OBJECT checksums', async () => {
    const s = fx.store;
    const a = randomBytes(partSizeBytesMin);
    const b = randomBytes(333);
    const composite = await s.createMultipartUpload('mp', 'big', noAttrs, { algorithm: 'SHA256', type: 'COMPOSITE' });
    const pa = await part(composite.uploadId, 1, a);
    const pb = await part(composite.uploadId, 2, b);
    expect(pa.checksum).toBe(checksumBase64('SHA256', a));
    const m1 = await s.completeMultipartUpload('mp', 'big', composite.uploadId, [
      { partNumber: 1, etag: pa.etag, checksum: pa.checksum! }, { partNumber: 2, etag: pb.etag },
    ]);
    expect(m1.checksum).toEqual({ algorithm: 'SHA256', type: 'COMPOSITE', value: compositeChecksum('SHA256', [pa.checksum!, pb.checksum!]) });
    expect(m1.checksum!.value.endsWith('-2')).toBe(true);

    const full = await s.createMultipartUpload('mp', 'big', noAttrs, { algorithm: 'CRC64NVME', type: 'FULL_OBJECT' });
    const fa = await part(full.uploadId, 1, a);
    const fb = await part(full.uploadId, 2, b);
    expect(await code(s.completeMultipartUpload('mp', 'big', full.uploadId, [
      { partNumber: 1, etag: fa.etag, checksum: 'AAAAAAAAAAA=' }, { partNumber: 2, etag: fb.etag },
    ]))).toBe('InvalidPart');
    const m2 = await s.completeMultipartUpload('mp', 'big', full.uploadId, [{ partNumber: 1, etag: fa.etag }, { partNumber: 2, etag: fb.etag }]);
    expect(m2.checksum).toEqual({ algorithm: 'CRC64NVME', type: 'FULL_OBJECT', value: checksumBase64('CRC64NVME', Buffer.concat([a, b])) });
  });

  it('lists uploads with prefix, delimiter and markers', async () => {
    const s = fx.store;
    const ids: Record<string, string> = {};
    for (const k of ['a/1', 'a/2', 'b', 'c/x/y']) ids[k] = (await s.createMultipartUpload('mp', k, noAttrs)).uploadId;
    const second = await s.createMultipartUpload('mp', 'b', noAttrs);
    const all = await s.listMultipartUploads({ bucket: 'mp', maxUploads: 100 });
    expect(all.uploads.map((u) => u.key)).toEqual(['a/1', 'a/2', 'b', 'b', 'c/x/y']);
    expect(all.uploads[2]!.uploadId).toBe(ids.b); // oldest first within a key
    const rolled = await s.listMultipartUploads({ bucket: 'mp', delimiter: '/', maxUploads: 100 });
    expect(rolled.commonPrefixes).toEqual(['a/', 'c/']);
    expect(rolled.uploads.map((u) => u.key)).toEqual(['b', 'b']);
    const afterKey = await s.listMultipartUploads({ bucket: 'mp', keyMarker: 'a/2', maxUploads: 100 });
    expect(afterKey.uploads.map((u) => u.key)).toEqual(['b', 'b', 'c/x/y']);
    const afterId = await s.listMultipartUploads({ bucket: 'mp', keyMarker: 'b', uploadIdMarker: ids.b!, maxUploads: 100 });
    expect(afterId.uploads.map((u) => u.uploadId)).toEqual([second.uploadId, ids['c/x/y']]);
    const page = await s.listMultipartUploads({ bucket: 'mp', prefix: 'a/', maxUploads: 1 });
    expect(page.uploads.map((u) => u.key)).toEqual(['a/1']);
    expect(page.isTruncated).toBe(true);
  });

  it('paginates parts with a marker', async () => {
    const s = fx.store;
    const up = await s.createMultipartUpload('mp', 'big', noAttrs);
    for (const n of [1, 2, 3, 5]) await part(up.uploadId, n, Buffer.from(`p${n}`));
    const p1 = await s.listParts('mp', 'big', up.uploadId, { maxParts: 2 });
    expect(p1.parts.map((p) => p.partNumber)).toEqual([1, 2]);
    expect(p1.isTruncated).toBe(true);
    const p2 = await s.listParts('mp', 'big', up.uploadId, { maxParts: 2, partNumberMarker: 2 });
    expect(p2.parts.map((p) => p.partNumber)).toEqual([3, 5]);
    expect(p2.isTruncated).toBe(false);
  });
});
