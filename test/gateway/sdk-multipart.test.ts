// Multipart uploads through @aws-sdk/client-s3 and @aws-sdk/lib-storage.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/server.ts';

let gw: TestGateway;
let s3: S3Client;
const bucket = 'multipart';
const MiB = 1024 * 1024;

beforeAll(async () => {
  gw = await startTestGateway();
  s3 = gw.client();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
});
afterAll(async () => {
  await gw?.close();
});

async function errorOf(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return err;
    throw err;
  }
  throw new Error('expected an S3 error');
}

/** Deterministic pseudo-random bytes, generated chunk by chunk (never whole). */
function* patternChunks(total: number, chunk: number, seed: number): Generator<Buffer> {
  let state = seed >>> 0;
  for (let off = 0; off < total; off += chunk) {
    const n = Math.min(chunk, total - off);
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      b.writeUInt32LE(state, i < n - 3 ? i : n - 4 < 0 ? 0 : n - 4);
    }
    yield b;
  }
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

function partEtag(parts: Buffer[]): string {
  const h = createHash('md5');
  for (const p of parts) h.update(createHash('md5').update(p).digest());
  return `"${h.digest('hex')}-${parts.length}"`;
}

describe('lib-storage Upload', () => {
  it('uploads a 100 MiB stream in parts and reads it back byte-identical', { timeout: 240_000 }, async () => {
    const total = 100 * MiB;
    const expected = createHash('sha256');
    const source = Readable.from(
      (function* () {
        for (const c of patternChunks(total, MiB, 7)) {
          expected.update(c);
          yield c;
        }
      })(),
    );
    const upload = new Upload({ client: s3, params: { Bucket: bucket, Key: 'big/100mib.bin', Body: source }, partSize: 8 * MiB, queueSize: 4 });
    const result = await upload.done();
    expect(result.ETag).toMatch(/^"[0-9a-f]{32}-13"$/);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/100mib.bin' }));
    expect(head.ContentLength).toBe(total);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/100mib.bin' }));
    const actual = createHash('sha256');
    let size = 0;
    for await (const chunk of got.Body as Readable) {
      actual.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    expect(size).toBe(total);
    expect(actual.digest('hex')).toBe(expected.digest('hex'));
    // partNumber GET returns exactly one part.
    const part2 = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/100mib.bin', PartNumber: 2 }));
    expect(part2.$metadata.httpStatusCode).toBe(206);
    expect(part2.ContentLength).toBe(8 * MiB);
    expect(part2.ContentRange).toBe(`bytes ${8 * MiB}-${16 * MiB - 1}/${total}`);
    expect(part2.PartsCount).toBe(13);
    await part2.Body!.transformToByteArray();
  });
});

describe('low-level multipart', () => {
  const p1 = Buffer.alloc(5 * MiB, 1);
  const p2 = Buffer.alloc(5 * MiB, 2);
  const p3 = Buffer.from('tail');

  it('create with a checksum algorithm, upload out of order, list parts, complete with CRC32s', async () => {
    const key = 'mpu/ordered';
    const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'CRC32', ContentType: 'application/x-mpu', Metadata: { m: '1' }, Tagging: 'mp=yes' }));
    const uploadId = created.UploadId!;
    expect(created.ChecksumAlgorithm).toBe('CRC32');
    const r3 = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 3, Body: p3, ChecksumAlgorithm: 'CRC32' }));
    const r1 = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 1, Body: p1, ChecksumAlgorithm: 'CRC32' }));
    const r2 = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 2, Body: p2, ChecksumAlgorithm: 'CRC32' }));
    expect(r1.ETag).toBe(`"${md5(p1)}"`);
    expect(r1.ChecksumCRC32).toBeTruthy();

    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'mpu/' }));
    expect(uploads.Uploads?.map((u) => u.UploadId)).toContain(uploadId);
    const parts = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MaxParts: 2 }));
    expect(parts.Parts?.map((p) => p.PartNumber)).toEqual([1, 2]);
    expect(parts.IsTruncated).toBe(true);
    const rest = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: parts.NextPartNumberMarker }));
    expect(rest.Parts?.map((p) => [p.PartNumber, p.Size])).toEqual([[3, 4]]);

    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: r1.ETag, ChecksumCRC32: r1.ChecksumCRC32 },
            { PartNumber: 2, ETag: r2.ETag, ChecksumCRC32: r2.ChecksumCRC32 },
            { PartNumber: 3, ETag: r3.ETag, ChecksumCRC32: r3.ChecksumCRC32 },
          ],
        },
      }),
    );
    expect(done.ETag).toBe(partEtag([p1, p2, p3]));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(p1.length + p2.length + p3.length);
    expect(head.ContentType).toBe('application/x-mpu');
    expect(head.Metadata).toEqual({ m: '1' });
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
    expect(tags.TagSet).toEqual([{ Key: 'mp', Value: 'yes' }]);
    const tail = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=-4` }));
    expect(await tail.Body!.transformToString()).toBe('tail');
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'mpu/ordered' }));
    expect(after.Uploads ?? []).toEqual([]);
  });

  async function startWith(key: string, bodies: Buffer[]): Promise<{ uploadId: string; etags: string[] }> {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const etags: string[] = [];
    for (const [i, Body] of bodies.entries()) {
      const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body }));
      etags.push(r.ETag!);
    }
    return { uploadId: UploadId!, etags };
  }

  it('Complete errors: InvalidPartOrder, InvalidPart, EntityTooSmall, NoSuchUpload; nothing becomes visible', async () => {
    const key = 'mpu/errors';
    const small = Buffer.from('small part');
    const { uploadId, etags } = await startWith(key, [small, p3]);
    const complete = (Parts: { PartNumber: number; ETag: string }[]) =>
      errorOf(s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts } })));
    expect((await complete([{ PartNumber: 2, ETag: etags[1]! }, { PartNumber: 1, ETag: etags[0]! }])).name).toBe('InvalidPartOrder');
    expect((await complete([{ PartNumber: 1, ETag: '"00000000000000000000000000000000"' }])).name).toBe('InvalidPart');
    expect((await complete([{ PartNumber: 1, ETag: etags[0]! }, { PartNumber: 2, ETag: etags[1]! }])).name).toBe('EntityTooSmall');
    expect((await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))).$metadata.httpStatusCode).toBe(404);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    const gone = await errorOf(s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId })));
    expect(gone.name).toBe('NoSuchUpload');
  });

  it('ListMultipartUploads pages with key/upload-id markers and groups by delimiter', async () => {
    const keys = ['list/a', 'list/b', 'list/b', 'list/sub/c', 'list/sub/d'];
    const ids: string[] = [];
    for (const Key of keys) ids.push((await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }))).UploadId!);
    const seen: string[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = await s3.send(
        new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'list/', MaxUploads: 2, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      expect(r.Uploads?.length ?? 0).toBeLessThanOrEqual(2);
      seen.push(...(r.Uploads ?? []).map((u) => u.UploadId!));
      if (!r.IsTruncated) break;
      keyMarker = r.NextKeyMarker;
      uploadIdMarker = r.NextUploadIdMarker;
    }
    expect(seen.sort()).toEqual([...ids].sort());
    const grouped = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'list/', Delimiter: '/' }));
    expect(grouped.Uploads?.map((u) => u.Key)).toEqual(['list/a', 'list/b', 'list/b']);
    expect(grouped.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['list/sub/']);
    for (const [i, Key] of keys.entries()) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId: ids[i] }));
  });

  it('UploadPartCopy with a range', async () => {
    const source = Buffer.alloc(6 * MiB);
    for (let i = 0; i < source.length; i++) source[i] = i % 251;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'copy-src', Body: source }));
    const key = 'mpu/copied';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const c1 = await s3.send(
      new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, CopySource: `${bucket}/copy-src`, CopySourceRange: `bytes=0-${5 * MiB - 1}` }),
    );
    const c2 = await s3.send(
      new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 2, CopySource: `/${bucket}/copy-src`, CopySourceRange: `bytes=${5 * MiB}-${6 * MiB - 1}` }),
    );
    expect(c1.CopyPartResult?.ETag).toBe(`"${md5(source.subarray(0, 5 * MiB))}"`);
    const badRange = await errorOf(
      s3.send(new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 3, CopySource: `${bucket}/copy-src`, CopySourceRange: `bytes=0-${7 * MiB}` })),
    );
    expect(badRange.name).toBe('InvalidRange');
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: c1.CopyPartResult!.ETag }, { PartNumber: 2, ETag: c2.CopyPartResult!.ETag }] },
      }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(source)).toBe(true);
  });
});
