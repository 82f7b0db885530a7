// Objects through the real @aws-sdk/client-s3 with its default checksum
// settings (CRC32, in aws-chunked trailers for streams).

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectTaggingCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/server.ts';

let gw: TestGateway;
let s3: S3Client;
const bucket = 'objects';

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

async function getText(key: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...extra }));
  return r.Body!.transformToString();
}

function md5(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

describe('put, get, head', () => {
  it('stores content headers and metadata and returns them; ETag is the MD5', async () => {
    const body = 'hello, lookahead';
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'doc.txt',
        Body: body,
        ContentType: 'text/plain; charset=utf-8',
        ContentDisposition: 'attachment; filename="doc.txt"',
        ContentEncoding: 'identity',
        CacheControl: 'max-age=60',
        ContentLanguage: 'en',
        Expires: new Date('2030-01-01T00:00:00Z'),
        Metadata: { owner: 'alice', 'multi-word': 'a b c' },
      }),
    );
    expect(put.ETag).toBe(`"${md5(body)}"`);
    expect(put.ChecksumCRC32).toBeDefined();
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'doc.txt' }));
    expect(await got.Body!.transformToString()).toBe(body);
    expect(got.ContentType).toBe('text/plain; charset=utf-8');
    expect(got.ContentDisposition).toBe('attachment; filename="doc.txt"');
    expect(got.ContentEncoding).toBe('identity');
    expect(got.CacheControl).toBe('max-age=60');
    expect(got.ContentLanguage).toBe('en');
    expect(got.ExpiresString ?? got.Expires?.toUTCString()).toContain('2030');
    expect(got.Metadata).toEqual({ owner: 'alice', 'multi-word': 'a b c' });
    expect(got.ETag).toBe(`"${md5(body)}"`);
    expect(got.ContentLength).toBe(body.length);
  });

  it('streams a body in aws-chunked framing with a CRC32 trailer and strips aws-chunked', async () => {
    const payload = Buffer.alloc(300_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'streamed.bin',
        Body: Readable.from([payload.subarray(0, 70_000), payload.subarray(70_000)]),
        ContentLength: payload.length,
      }),
    );
    expect(put.ETag).toBe(`"${md5(payload)}"`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'streamed.bin', ChecksumMode: 'ENABLED' }));
    expect(head.ContentEncoding).toBeUndefined();
    expect(head.ChecksumCRC32).toBe(put.ChecksumCRC32);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'streamed.bin' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(payload)).toBe(true);
  });

  it('returns the stored checksum only when x-amz-checksum-mode is ENABLED', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'sum', Body: 'abc', ChecksumAlgorithm: 'SHA256' }));
    const plain = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'sum' }));
    expect(plain.ChecksumSHA256).toBeUndefined();
    const withSum = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'sum', ChecksumMode: 'ENABLED' }));
    expect(withSum.ChecksumSHA256).toBe(createHash('sha256').update('abc').digest('base64'));
  });

  it('missing keys and buckets', async () => {
    expect((await errorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'nope' })))).name).toBe('NoSuchKey');
    expect((await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nope' })))).$metadata.httpStatusCode).toBe(404);
    expect((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'k' })))).name).toBe('NoSuchBucket');
  });

  it('DeleteObject answers 204 for a missing key and removes an existing one', async () => {
    const r = await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'never-existed' }));
    expect(r.$metadata.httpStatusCode).toBe(204);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'to-delete', Body: 'x' }));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'to-delete' }));
    expect((await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'to-delete' })))).$metadata.httpStatusCode).toBe(404);
  });
});

describe('awkward keys round-trip through put, get, list, copy and delete', () => {
  const keys = [
    'with space.txt',
    '&+-é"',
    'unicode/日本語/😀.txt',
    '100%/percent%25',
    'double//slash//',
    '/leading-slash',
    'question?hash#',
    'tab\tand~tilde',
    'k'.repeat(1024),
    `${'é'.repeat(511)}ab`,
  ];
  for (const [index, key] of keys.entries()) {
    const copyKey = `copies/${index}/${key.slice(0, 100)}`;
    it(JSON.stringify(key.length > 40 ? `${key.slice(0, 20)}... (${Buffer.byteLength(key)} bytes)` : key), async () => {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `body of ${key}` }));
      expect(await getText(key)).toBe(`body of ${key}`);
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key }));
      expect(listed.Contents?.map((c) => c.Key)).toContain(key);
      await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: copyKey, CopySource: `${bucket}/${encodeURIComponent(key)}` }));
      expect(await getText(copyKey)).toBe(`body of ${key}`);
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: copyKey }));
      for (const prefix of [key, copyKey]) {
        const after = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
        expect(after.Contents ?? []).toEqual([]);
      }
    });
  }

  it('encoding-type=url listings decode back to the same keys', async () => {
    const key = 'enc/a b+c&d%e/é';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }));
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'enc/', EncodingType: 'url' }));
    expect(r.EncodingType).toBe('url');
    expect(r.Contents!.map((c) => decodeURIComponent(c.Key!.replace(/\+/g, ' ')))).toEqual([key]);
  });
});

describe('ranges', () => {
  const data = Buffer.from('0123456789abcdefghij');
  beforeAll(async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'range', Body: data }));
  });
  const cases: [string, string, string][] = [
    ['bytes=0-4', '01234', 'bytes 0-4/20'],
    ['bytes=15-', 'fghij', 'bytes 15-19/20'],
    ['bytes=-3', 'hij', 'bytes 17-19/20'],
    ['bytes=18-100', 'ij', 'bytes 18-19/20'],
    ['bytes=-50', data.toString(), 'bytes 0-19/20'],
  ];
  for (const [range, body, contentRange] of cases) {
    it(range, async () => {
      const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'range', Range: range }));
      expect(r.$metadata.httpStatusCode).toBe(206);
      expect(r.ContentRange).toBe(contentRange);
      expect(r.ContentLength).toBe(body.length);
      expect(await r.Body!.transformToString()).toBe(body);
    });
  }
  it('416 InvalidRange past the end', async () => {
    const err = await errorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'range', Range: 'bytes=20-' })));
    expect(err.name).toBe('InvalidRange');
    expect(err.$metadata.httpStatusCode).toBe(416);
    expect(err.$response?.headers['content-range']).toBe('bytes */20');
  });
  it('a multi-range request gets the whole object, like S3', async () => {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'range', Range: 'bytes=0-1,4-5' }));
    expect(r.$metadata.httpStatusCode).toBe(200);
    expect(await r.Body!.transformToString()).toBe(data.toString());
  });
});

describe('conditional requests', () => {
  let etag = '';
  let lastModified: Date;
  beforeAll(async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cond', Body: 'conditional' }));
    etag = put.ETag!;
    lastModified = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'cond' }))).LastModified!;
  });
  const before = () => new Date(lastModified.getTime() - 3600_000);
  const after = () => new Date(lastModified.getTime() + 3600_000);

  it('If-Match / If-None-Match', async () => {
    expect(await getText('cond', { IfMatch: etag })).toBe('conditional');
    expect((await errorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfMatch: '"0000"' })))).$metadata.httpStatusCode).toBe(412);
    expect((await errorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfNoneMatch: etag })))).$metadata.httpStatusCode).toBe(304);
    expect((await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'cond', IfNoneMatch: etag })))).$metadata.httpStatusCode).toBe(304);
    expect(await getText('cond', { IfNoneMatch: '"0000"' })).toBe('conditional');
  });

  it('If-Modified-Since / If-Unmodified-Since', async () => {
    expect(await getText('cond', { IfModifiedSince: before() })).toBe('conditional');
    expect((await errorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfModifiedSince: after() })))).$metadata.httpStatusCode).toBe(304);
    expect(await getText('cond', { IfUnmodifiedSince: after() })).toBe('conditional');
    expect((await errorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfUnmodifiedSince: before() })))).$metadata.httpStatusCode).toBe(412);
  });

  it('precedence: If-Match true beats If-Unmodified-Since false; If-None-Match false gives 304', async () => {
    expect(await getText('cond', { IfMatch: etag, IfUnmodifiedSince: before() })).toBe('conditional');
    const err = await errorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', IfNoneMatch: etag, IfModifiedSince: before() })));
    expect(err.$metadata.httpStatusCode).toBe(304);
    expect(await getText('cond', { IfNoneMatch: '"other"', IfModifiedSince: after() })).toBe('conditional');
  });

  it('response-* overrides', async () => {
    const r = await s3.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: 'cond',
        ResponseContentType: 'application/x-test',
        ResponseContentDisposition: 'inline',
        ResponseCacheControl: 'no-cache',
        ResponseContentLanguage: 'fr',
        ResponseContentEncoding: 'gzip-not-really',
      }),
    );
    expect(r.ContentType).toBe('application/x-test');
    expect(r.ContentDisposition).toBe('inline');
    expect(r.CacheControl).toBe('no-cache');
    expect(r.ContentLanguage).toBe('fr');
    expect(r.ContentEncoding).toBe('gzip-not-really');
    await r.Body!.transformToString();
  });
});

describe('copy', () => {
  beforeAll(async () => {
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'src', Body: 'source', ContentType: 'text/x-src', Metadata: { a: '1' }, Tagging: 't=1' }),
    );
  });

  it('COPY directive keeps metadata and tags; REPLACE takes the request', async () => {
    const copied = await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst-copy', CopySource: `/${bucket}/src` }));
    expect(copied.CopyObjectResult?.ETag).toBe(`"${md5('source')}"`);
    const h1 = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'dst-copy' }));
    expect(h1.ContentType).toBe('text/x-src');
    expect(h1.Metadata).toEqual({ a: '1' });
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'dst-copy' }))).TagSet).toEqual([{ Key: 't', Value: '1' }]);

    await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: 'dst-replace',
        CopySource: `${bucket}/src`,
        MetadataDirective: 'REPLACE',
        ContentType: 'text/x-new',
        Metadata: { b: '2' },
        TaggingDirective: 'REPLACE',
        Tagging: 'u=2',
      }),
    );
    const h2 = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'dst-replace' }));
    expect(h2.ContentType).toBe('text/x-new');
    expect(h2.Metadata).toEqual({ b: '2' });
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'dst-replace' }))).TagSet).toEqual([{ Key: 'u', Value: '2' }]);
    expect(await getText('dst-replace')).toBe('source');
  });

  it('copy onto itself needs REPLACE', async () => {
    const err = await errorOf(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'src', CopySource: `${bucket}/src` })));
    expect(err.name).toBe('InvalidRequest');
    await s3.send(
      new CopyObjectCommand({ Bucket: bucket, Key: 'src', CopySource: `${bucket}/src`, MetadataDirective: 'REPLACE', Metadata: { a: 'changed' } }),
    );
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'src' }))).Metadata).toEqual({ a: 'changed' });
    expect(await getText('src')).toBe('source');
  });

  it('copy-source conditionals', async () => {
    const etag = `"${md5('source')}"`;
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'c1', CopySource: `${bucket}/src`, CopySourceIfMatch: etag }));
    const e1 = await errorOf(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'c2', CopySource: `${bucket}/src`, CopySourceIfMatch: '"nope"' })));
    expect(e1.$metadata.httpStatusCode).toBe(412);
    const e2 = await errorOf(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'c2', CopySource: `${bucket}/src`, CopySourceIfNoneMatch: etag })));
    expect(e2.$metadata.httpStatusCode).toBe(412);
    const e3 = await errorOf(
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'c2', CopySource: `${bucket}/src`, CopySourceIfModifiedSince: new Date(Date.now() + 3600_000) })),
    );
    expect(e3.$metadata.httpStatusCode).toBe(412);
    expect((await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'c2' })))).$metadata.httpStatusCode).toBe(404);
  });

  it('a missing source is NoSuchKey', async () => {
    const err = await errorOf(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'x', CopySource: `${bucket}/missing` })));
    expect(err.name).toBe('NoSuchKey');
  });
});

describe('tagging', () => {
  it('x-amz-tagging on PUT, Get/Put/DeleteObjectTagging', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'tagged', Body: 'x', Tagging: 'a=1&b=two%20words&c=' }));
    const t1 = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'tagged' }));
    expect(Object.fromEntries(t1.TagSet!.map((t) => [t.Key, t.Value]))).toEqual({ a: '1', b: 'two words', c: '' });
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'tagged' }))).$metadata.httpStatusCode).toBe(200);

    await s3.send(
      new PutObjectTaggingCommand({ Bucket: bucket, Key: 'tagged', Tagging: { TagSet: [{ Key: 'k & <x>', Value: 'v "quoted"' }] } }),
    );
    const t2 = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'tagged' }));
    expect(t2.TagSet).toEqual([{ Key: 'k & <x>', Value: 'v "quoted"' }]);

    await s3.send(new DeleteObjectTaggingCommand({ Bucket: bucket, Key: 'tagged' }));
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'tagged' }))).TagSet).toEqual([]);
  });

  it('tag limits give InvalidTag and change nothing', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'limits', Body: 'x', Tagging: 'keep=me' }));
    const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
    const bad = [
      eleven,
      [{ Key: 'k'.repeat(129), Value: 'v' }],
      [{ Key: 'k', Value: 'v'.repeat(257) }],
      [{ Key: 'aws:reserved', Value: 'v' }],
      [{ Key: 'dup', Value: '1' }, { Key: 'dup', Value: '2' }],
    ];
    for (const TagSet of bad) {
      const err = await errorOf(s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: 'limits', Tagging: { TagSet } })));
      expect(err.name).toBe('InvalidTag');
    }
    const tooMany = await errorOf(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'limits2', Body: 'x', Tagging: eleven.map((t) => `${t.Key}=v`).join('&') })));
    expect(tooMany.name).toBe('InvalidTag');
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'limits' }))).TagSet).toEqual([{ Key: 'keep', Value: 'me' }]);
    expect((await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'limits2' })))).$metadata.httpStatusCode).toBe(404);
  });
});

describe('DeleteObjects', () => {
  it('deletes, reports per-key errors, quiet mode lists only errors', async () => {
    for (const k of ['d/1', 'd/2', 'd/3']) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }));
    const r = await s3.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: [{ Key: 'd/1' }, { Key: 'd/missing' }, { Key: 'x'.repeat(1025) }] },
      }),
    );
    expect(r.Deleted?.map((d) => d.Key).sort()).toEqual(['d/1', 'd/missing']);
    expect(r.Errors?.map((e) => e.Code)).toEqual(['KeyTooLongError']);
    const quiet = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Quiet: true, Objects: [{ Key: 'd/2' }, { Key: 'd/3' }] } }));
    expect(quiet.Deleted ?? []).toEqual([]);
    expect(quiet.Errors ?? []).toEqual([]);
    const left = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'd/' }));
    expect(left.KeyCount).toBe(0);
  });

  it('keys with XML specials and surrounding spaces are deleted exactly', async () => {
    const keys = ['x/<tag>&amp;"\'', ' x/leading and trailing ', 'x/é 日本'];
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'x/leading and trailing', Body: 'keep' }));
    const r = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    expect(r.Deleted?.map((d) => d.Key).sort()).toEqual([...keys].sort());
    const left = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'x/' }));
    expect(left.Contents?.map((c) => c.Key)).toEqual(['x/leading and trailing']);
    const leftSpace = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: ' x/' }));
    expect(leftSpace.KeyCount).toBe(0);
  });

  it('more than 1000 keys is MalformedXML', async () => {
    const Objects = Array.from({ length: 1001 }, (_, i) => ({ Key: `k${i}` }));
    const err = await errorOf(s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects } })));
    expect(err.name).toBe('MalformedXML');
  });
});

describe('listing', () => {
  const listBucket = 'listing';
  const keys = [
    'a.txt',
    'dir1/x',
    'dir1/y',
    'dir1/sub/z',
    'dir2/x',
    'dir3/',
    'e.txt',
    'f.txt',
  ];
  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: listBucket }));
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: listBucket, Key, Body: Key }));
  });

  it('v2 with delimiter pages through keys and common prefixes exactly once', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 20; page++) {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: listBucket, Delimiter: '/', MaxKeys: 2, ContinuationToken: token }));
      expect((r.Contents?.length ?? 0) + (r.CommonPrefixes?.length ?? 0)).toBeLessThanOrEqual(2);
      expect(r.KeyCount).toBe((r.Contents?.length ?? 0) + (r.CommonPrefixes?.length ?? 0));
      seen.push(...(r.Contents ?? []).map((c) => c.Key!), ...(r.CommonPrefixes ?? []).map((p) => p.Prefix!));
      if (!r.IsTruncated) break;
      token = r.NextContinuationToken;
      expect(token).toBeTruthy();
    }
    expect(seen.sort()).toEqual(['a.txt', 'dir1/', 'dir2/', 'dir3/', 'e.txt', 'f.txt']);
  });

  it('v2 prefix + delimiter, start-after, fetch-owner', async () => {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: listBucket, Prefix: 'dir1/', Delimiter: '/', FetchOwner: true }));
    expect(r.Contents?.map((c) => c.Key)).toEqual(['dir1/x', 'dir1/y']);
    expect(r.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['dir1/sub/']);
    expect(r.Contents?.[0]?.Owner?.ID).toBeTruthy();
    const noOwner = await s3.send(new ListObjectsV2Command({ Bucket: listBucket, Prefix: 'dir1/' }));
    expect(noOwner.Contents?.[0]?.Owner).toBeUndefined();
    const sa = await s3.send(new ListObjectsV2Command({ Bucket: listBucket, StartAfter: 'dir3/' }));
    expect(sa.Contents?.map((c) => c.Key)).toEqual(['e.txt', 'f.txt']);
    expect(sa.StartAfter).toBe('dir3/');
  });

  it('v1 marker pagination with NextMarker', async () => {
    const seen: string[] = [];
    let marker: string | undefined;
    for (let page = 0; page < 20; page++) {
      const r = await s3.send(new ListObjectsCommand({ Bucket: listBucket, MaxKeys: 3, Marker: marker, Delimiter: '/' }));
      seen.push(...(r.Contents ?? []).map((c) => c.Key!), ...(r.CommonPrefixes ?? []).map((p) => p.Prefix!));
      if (!r.IsTruncated) break;
      marker = r.NextMarker;
      expect(marker).toBeTruthy();
    }
    expect(seen.sort()).toEqual(['a.txt', 'dir1/', 'dir2/', 'dir3/', 'e.txt', 'f.txt']);
  });

  it('max-keys is capped at 1000 and 0 returns an empty page', async () => {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: listBucket, MaxKeys: 5000 }));
    expect(r.MaxKeys).toBe(1000);
    expect(r.KeyCount).toBe(keys.length);
    const zero = await s3.send(new ListObjectsV2Command({ Bucket: listBucket, MaxKeys: 0 }));
    expect(zero.KeyCount).toBe(0);
    expect(zero.IsTruncated).toBe(false);
  });

  it('a bad continuation token is InvalidArgument', async () => {
    const err = await errorOf(s3.send(new ListObjectsV2Command({ Bucket: listBucket, ContinuationToken: 'not-a-token' })));
    expect(err.name).toBe('InvalidArgument');
  });
});
