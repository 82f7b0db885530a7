import { describe, expect, it } from 'vitest';
import {
  bucketNameProblem,
  parseCopySource,
  parseRequest,
  percentDecode,
  type Operation,
} from '../../src/gateway/endpoint.ts';
import { S3Error } from '../../src/core/errors.ts';

function op(method: string, url: string, headers: Record<string, string> = {}, baseDomain?: string): Operation {
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  return parseRequest({ method, rawPath, rawQuery, headers }, baseDomain ? { baseDomain } : {}).operation;
}

function errorCode(o: Operation): string | undefined {
  return o.kind === 'Invalid' ? o.error.code : undefined;
}

describe('path-style addressing', () => {
  it('service and bucket level', () => {
    expect(op('GET', '/')).toEqual({ kind: 'ListBuckets' });
    expect(op('PUT', '/my-bucket')).toEqual({ kind: 'CreateBucket', bucket: 'my-bucket' });
    expect(op('PUT', '/my-bucket/')).toEqual({ kind: 'CreateBucket', bucket: 'my-bucket' });
    expect(op('HEAD', '/my-bucket')).toEqual({ kind: 'HeadBucket', bucket: 'my-bucket' });
    expect(op('DELETE', '/my-bucket')).toEqual({ kind: 'DeleteBucket', bucket: 'my-bucket' });
    expect(op('GET', '/my-bucket?location')).toEqual({ kind: 'GetBucketLocation', bucket: 'my-bucket' });
    expect(op('GET', '/my-bucket')).toEqual({ kind: 'ListObjects', bucket: 'my-bucket' });
    expect(op('GET', '/my-bucket?list-type=2&prefix=a%2Fb&delimiter=%2F')).toEqual({
      kind: 'ListObjectsV2',
      bucket: 'my-bucket',
    });
    expect(op('GET', '/my-bucket?uploads')).toEqual({ kind: 'ListMultipartUploads', bucket: 'my-bucket' });
    expect(op('GET', '/my-bucket?uploads=')).toEqual({ kind: 'ListMultipartUploads', bucket: 'my-bucket' });
    expect(op('POST', '/my-bucket?delete')).toEqual({ kind: 'DeleteObjects', bucket: 'my-bucket' });
    expect(op('POST', '/my-bucket?delete=&x-id=DeleteObjects')).toEqual({ kind: 'DeleteObjects', bucket: 'my-bucket' });
  });

  it('object level', () => {
    const ref = { bucket: 'b-1', key: 'photos/2006/February/sample.jpg' };
    expect(op('PUT', '/b-1/photos/2006/February/sample.jpg?x-id=PutObject')).toEqual({ kind: 'PutObject', ...ref });
    expect(op('GET', '/b-1/photos/2006/February/sample.jpg')).toEqual({ kind: 'GetObject', ...ref });
    expect(op('HEAD', '/b-1/photos/2006/February/sample.jpg')).toEqual({ kind: 'HeadObject', ...ref });
    expect(op('DELETE', '/b-1/photos/2006/February/sample.jpg')).toEqual({ kind: 'DeleteObject', ...ref });
    expect(op('GET', '/b-1/photos/2006/February/sample.jpg?tagging')).toEqual({ kind: 'GetObjectTagging', ...ref });
    expect(op('PUT', '/b-1/photos/2006/February/sample.jpg?tagging')).toEqual({ kind: 'PutObjectTagging', ...ref });
    expect(op('DELETE', '/b-1/photos/2006/February/sample.jpg?tagging')).toEqual({ kind: 'DeleteObjectTagging', ...ref });
    expect(op('POST', '/b-1/photos/2006/February/sample.jpg?uploads')).toEqual({ kind: 'CreateMultipartUpload', ...ref });
    expect(op('PUT', '/b-1/photos/2006/February/sample.jpg?partNumber=3&uploadId=VXBsb2FkIElE')).toEqual({
      kind: 'UploadPart',
      ...ref,
      uploadId: 'VXBsb2FkIElE',
      partNumber: 3,
    });
    expect(op('POST', '/b-1/photos/2006/February/sample.jpg?uploadId=abc')).toEqual({
      kind: 'CompleteMultipartUpload',
      ...ref,
      uploadId: 'abc',
    });
    expect(op('DELETE', '/b-1/photos/2006/February/sample.jpg?uploadId=abc')).toEqual({
      kind: 'AbortMultipartUpload',
      ...ref,
      uploadId: 'abc',
    });
    expect(op('GET', '/b-1/photos/2006/February/sample.jpg?uploadId=abc&max-parts=2')).toEqual({
      kind: 'ListParts',
      ...ref,
      uploadId: 'abc',
    });
    expect(op('GET', '/b-1/k?partNumber=2')).toEqual({ kind: 'GetObject', bucket: 'b-1', key: 'k' });
  });

  it('copy and part copy from x-amz-copy-source', () => {
    expect(op('PUT', '/dst/k2', { 'x-amz-copy-source': '/src/k1' })).toEqual({
      kind: 'CopyObject',
      bucket: 'dst',
      key: 'k2',
      source: { bucket: 'src', key: 'k1' },
    });
    expect(op('PUT', '/dst/k2?partNumber=1&uploadId=u', { 'x-amz-copy-source': 'src/a%20b' })).toEqual({
      kind: 'UploadPartCopy',
      bucket: 'dst',
      key: 'k2',
      uploadId: 'u',
      partNumber: 1,
      source: { bucket: 'src', key: 'a b' },
    });
  });

  it('keys keep //, %, spaces, + and unicode exactly', () => {
    expect(op('GET', '/bkt//a//b/')).toMatchObject({ kind: 'GetObject', key: '/a//b/' });
    expect(op('GET', '/bkt/100%25%20done')).toMatchObject({ key: '100% done' });
    expect(op('GET', '/bkt/a+b')).toMatchObject({ key: 'a+b' });
    expect(op('GET', '/bkt/%C3%A9t%C3%A9/%F0%9F%98%80')).toMatchObject({ key: 'été/😀' });
    expect(op('GET', '/bkt/%26%2B-%C3%A9%22')).toMatchObject({ key: '&+-é"' });
    expect(op('GET', '/bkt/a%3Fb%23c')).toMatchObject({ key: 'a?b#c' });
  });

  it('query values: + is a space, percent-escapes decode', () => {
    const parsed = parseRequest({ method: 'GET', rawPath: '/bkt', rawQuery: 'list-type=2&prefix=a+b%2Bc&start-after=%C3%A9', headers: {} });
    expect(parsed.query.get('prefix')).toBe('a b+c');
    expect(parsed.query.get('start-after')).toBe('é');
  });
});

describe('virtual-hosted style', () => {
  const base = 's3.example.com';
  it('takes the bucket from the Host header', () => {
    expect(op('GET', '/photos/puppy.jpg', { host: 'my-bucket.s3.example.com' }, base)).toEqual({
      kind: 'GetObject',
      bucket: 'my-bucket',
      key: 'photos/puppy.jpg',
    });
    expect(op('GET', '/?list-type=2', { host: 'my-bucket.s3.example.com:9000' }, base)).toEqual({
      kind: 'ListObjectsV2',
      bucket: 'my-bucket',
    });
    expect(op('PUT', '/', { host: 'dotted.bucket.name.s3.example.com' }, base)).toEqual({
      kind: 'CreateBucket',
      bucket: 'dotted.bucket.name',
    });
  });
  it('falls back to path style on the bare domain or another host', () => {
    expect(op('GET', '/my-bucket/k', { host: 's3.example.com' }, base)).toMatchObject({ bucket: 'my-bucket', key: 'k' });
    expect(op('GET', '/my-bucket/k', { host: '127.0.0.1:9000' }, base)).toMatchObject({ bucket: 'my-bucket', key: 'k' });
    expect(op('GET', '/', { host: 's3.example.com' }, base)).toEqual({ kind: 'ListBuckets' });
  });
});

describe('unsupported sub-resources are NotImplemented, never silent success', () => {
  const cases: [string, string, string][] = [
    ['GET', '/bkt?acl', 'GetAcl'],
    ['PUT', '/bkt?policy', 'PutBucketPolicy'],
    ['GET', '/bkt?versioning', 'GetBucketVersioning'],
    ['PUT', '/bkt?lifecycle', 'PutBucketLifecycle'],
    ['DELETE', '/bkt?cors', 'DeleteBucketCors'],
    ['PUT', '/bkt?website', 'PutBucketWebsite'],
    ['GET', '/bkt?versions', 'GetListObjectVersions'],
    ['PUT', '/bkt?tagging', 'PutBucketTagging'],
    ['PUT', '/bkt/key?acl', 'PutAcl'],
    ['POST', '/bkt/key?restore', 'PostRestoreObject'],
    ['PUT', '/bkt/key?retention', 'PutObjectRetention'],
  ];
  for (const [method, url, operation] of cases) {
    it(`${method} ${url}`, () => {
      expect(op(method, url)).toMatchObject({ kind: 'NotImplemented', operation });
    });
  }
});

describe('invalid input', () => {
  it('bucket names', () => {
    for (const name of ['ab', 'a'.repeat(64), 'My-Bucket', 'bucket_name', '-bucket', 'bucket-', 'a..b', '192.168.1.1', 'xn--abc', 'abc-s3alias', '_lookahead']) {
      expect(errorCode(op('GET', `/${encodeURIComponent(name)}`))).toBe('InvalidBucketName');
    }
    for (const name of ['abc', 'a'.repeat(63), 'my.bucket-1', '1bucket']) {
      expect(bucketNameProblem(name)).toBeUndefined();
    }
  });
  it('key length counts UTF-8 bytes', () => {
    const k1024 = 'é'.repeat(512);
    expect(op('PUT', `/bkt/${encodeURIComponent(k1024)}`)).toMatchObject({ kind: 'PutObject', key: k1024 });
    expect(errorCode(op('PUT', `/bkt/${encodeURIComponent(k1024)}x`))).toBe('KeyTooLongError');
    expect(errorCode(op('PUT', `/bkt/${'a'.repeat(1025)}`))).toBe('KeyTooLongError');
  });
  it('NUL and invalid UTF-8 or percent-encoding', () => {
    expect(errorCode(op('PUT', '/bkt/a%00b'))).toBe('InvalidArgument');
    expect(errorCode(op('PUT', '/bkt/a%FFb'))).toBe('InvalidArgument');
    expect(errorCode(op('PUT', '/bkt/a%C3'))).toBe('InvalidArgument');
    expect(errorCode(op('PUT', '/bkt/a%zzb'))).toBe('InvalidArgument');
    expect(errorCode(op('GET', '/bkt?prefix=%FF'))).toBe('InvalidArgument');
  });
  it('part numbers and methods', () => {
    expect(errorCode(op('PUT', '/bkt/k?partNumber=0&uploadId=u'))).toBe('InvalidArgument');
    expect(errorCode(op('PUT', '/bkt/k?partNumber=10001&uploadId=u'))).toBe('InvalidArgument');
    expect(errorCode(op('PUT', '/bkt/k?partNumber=x&uploadId=u'))).toBe('InvalidArgument');
    expect(errorCode(op('PUT', '/bkt/k?partNumber=1'))).toBe('InvalidRequest');
    expect(errorCode(op('POST', '/bkt/k'))).toBe('MethodNotAllowed');
    expect(errorCode(op('PUT', '/'))).toBe('MethodNotAllowed');
    expect(errorCode(op('GET', '/bkt/k?versionId=3HL4kqtJlcpXroDTDmJ'))).toBe('InvalidArgument');
    expect(op('GET', '/bkt/k?versionId=null')).toMatchObject({ kind: 'GetObject' });
  });
});

describe('x-amz-copy-source', () => {
  it('with and without a leading slash, url-encoded, versionId=null', () => {
    expect(parseCopySource('/src/k')).toEqual({ bucket: 'src', key: 'k' });
    expect(parseCopySource('src/k')).toEqual({ bucket: 'src', key: 'k' });
    expect(parseCopySource('src/dir%2Fa%20b%3Fc')).toEqual({ bucket: 'src', key: 'dir/a b?c' });
    expect(parseCopySource('src/%C3%A9%2B%25')).toEqual({ bucket: 'src', key: 'é+%' });
    expect(parseCopySource('/src//double')).toEqual({ bucket: 'src', key: '/double' });
    expect(parseCopySource('src/k?versionId=null')).toEqual({ bucket: 'src', key: 'k', versionId: 'null' });
  });
  it('rejects what cannot be a source', () => {
    for (const bad of ['src', 'src/', '/', 'Bad_Bucket/k', 'src/k?versionId=abc', 'src/%FF']) {
      const r = parseCopySource(bad);
      expect(r, bad).toBeInstanceOf(S3Error);
    }
    expect((parseCopySource(`src/${'a'.repeat(1025)}`) as S3Error).code).toBe('KeyTooLongError');
  });
});

describe('percentDecode', () => {
  it('decodes bytes then UTF-8 strictly', () => {
    expect(percentDecode('%E2%82%AC')).toBe('€');
    expect(percentDecode('%e2%82%ac')).toBe('€');
    expect(percentDecode('a+b', true)).toBe('a b');
    expect(percentDecode('a+b')).toBe('a+b');
    expect(percentDecode('%ED%A0%80')).toBeNull(); // a lone surrogate encoded as UTF-8
  });
  it('reads unencoded characters as the raw bytes node passes (latin1)', () => {
    const rawUtf8 = Buffer.from('é/日本', 'utf8').toString('latin1');
    expect(percentDecode(rawUtf8)).toBe('é/日本');
    expect(percentDecode('\u00e9')).toBeNull(); // a lone 0xE9 byte is not UTF-8
  });
});

describe('POST on a bucket', () => {
  it('is DeleteObjects with ?delete, NotImplemented (browser POST upload) otherwise', () => {
    expect(op('POST', '/bkt')).toMatchObject({ kind: 'NotImplemented', operation: 'PostObject' });
  });
});

describe('write headers we cannot honour', () => {
  it('are NotImplemented instead of silently ignored', () => {
    const cases: Record<string, string>[] = [
      { 'x-amz-server-side-encryption': 'AES256' },
      { 'x-amz-server-side-encryption-customer-algorithm': 'AES256' },
      { 'x-amz-object-lock-mode': 'GOVERNANCE' },
      { 'x-amz-grant-read': 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' },
      { 'x-amz-acl': 'public-read' },
      { 'x-amz-storage-class': 'GLACIER' },
    ];
    for (const headers of cases) {
      expect(op('PUT', '/bkt/k', headers), JSON.stringify(headers)).toMatchObject({ kind: 'NotImplemented' });
      expect(op('POST', '/bkt/k?uploads', headers)).toMatchObject({ kind: 'NotImplemented' });
      expect(op('PUT', '/bkt/k', { ...headers, 'x-amz-copy-source': 'src/k' })).toMatchObject({ kind: 'NotImplemented' });
    }
    expect(op('PUT', '/bkt/k', { 'x-amz-acl': 'private', 'x-amz-storage-class': 'STANDARD' })).toMatchObject({ kind: 'PutObject' });
    expect(op('PUT', '/bkt', { 'x-amz-acl': 'public-read' })).toMatchObject({ kind: 'NotImplemented' });
    // Reads are unaffected.
    expect(op('GET', '/bkt/k', { 'x-amz-server-side-encryption': 'AES256' })).toMatchObject({ kind: 'GetObject' });
  });
});
