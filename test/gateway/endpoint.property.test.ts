// Property-based tests of the request parser: any key survives S3 URL
// encoding, and no input at all makes the parser throw.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCopySource, parseRequest, type OperationKind } from '../../src/gateway/endpoint.ts';

/** S3/SigV4 path encoding: every byte but unreserved characters and '/'. */
function s3Encode(key: string): string {
  return [...Buffer.from(key, 'utf8')]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9\-._~/]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

const bucketArb = fc
  .stringMatching(/^[a-z0-9][a-z0-9-]{1,20}[a-z0-9]$/)
  .filter((b) => !b.startsWith('xn--') && !b.endsWith('-s3alias'));

/** Keys of 1..1024 UTF-8 bytes without NUL. */
const keyArb = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 200 })
  .filter((k) => !k.includes('\0') && Buffer.byteLength(k, 'utf8') <= 1024);

const allKinds: OperationKind[] = [
  'ListBuckets', 'CreateBucket', 'HeadBucket', 'DeleteBucket', 'GetBucketLocation', 'ListObjects',
  'ListObjectsV2', 'ListMultipartUploads', 'DeleteObjects', 'PutObject', 'CopyObject', 'GetObject',
  'HeadObject', 'DeleteObject', 'GetObjectTagging', 'PutObjectTagging', 'DeleteObjectTagging',
  'CreateMultipartUpload', 'UploadPart', 'UploadPartCopy', 'CompleteMultipartUpload',
  'AbortMultipartUpload', 'ListParts', 'NotImplemented', 'Invalid',
];

describe('parser properties', () => {
  it('path-style: any key comes back exactly', () => {
    fc.assert(
      fc.property(bucketArb, keyArb, (bucket, key) => {
        const { operation } = parseRequest({ method: 'GET', rawPath: `/${bucket}/${s3Encode(key)}`, rawQuery: '', headers: {} });
        expect(operation).toEqual({ kind: 'GetObject', bucket, key });
      }),
      { numRuns: 300 },
    );
  });

  it('virtual-hosted: any key comes back exactly', () => {
    fc.assert(
      fc.property(bucketArb, keyArb, (bucket, key) => {
        const { operation } = parseRequest(
          { method: 'PUT', rawPath: `/${s3Encode(key)}`, rawQuery: '', headers: { host: `${bucket}.s3.example.com` } },
          { baseDomain: 's3.example.com' },
        );
        expect(operation).toEqual({ kind: 'PutObject', bucket, key });
      }),
      { numRuns: 200 },
    );
  });

  it('copy source: any key comes back exactly, with or without a leading slash', () => {
    fc.assert(
      fc.property(bucketArb, keyArb, fc.boolean(), (bucket, key, slash) => {
        expect(parseCopySource(`${slash ? '/' : ''}${bucket}/${encodeURIComponent(key)}`)).toEqual({ bucket, key });
      }),
      { numRuns: 200 },
    );
  });

  it('query values come back exactly', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (value) => {
        const { query } = parseRequest({ method: 'GET', rawPath: '/bkt', rawQuery: `list-type=2&prefix=${encodeURIComponent(value)}`, headers: {} });
        expect(query.get('prefix')).toBe(value);
      }),
      { numRuns: 200 },
    );
  });

  it('never throws, whatever the method, path, query and headers', () => {
    const rawText = fc.string({ unit: 'binary', maxLength: 300 });
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'),
        rawText,
        rawText,
        fc.option(rawText, { nil: undefined }),
        fc.option(rawText, { nil: undefined }),
        (method, path, query, host, copySource) => {
          const headers: Record<string, string> = {};
          if (host !== undefined) headers.host = host;
          if (copySource !== undefined) headers['x-amz-copy-source'] = copySource;
          const { operation } = parseRequest({ method, rawPath: `/${path}`, rawQuery: query, headers }, { baseDomain: 's3.example.com' });
          expect(allKinds).toContain(operation.kind);
          if ('key' in operation && operation.key !== undefined && operation.kind !== 'NotImplemented') {
            expect(Buffer.byteLength(operation.key, 'utf8')).toBeLessThanOrEqual(1024);
            expect(operation.key).not.toContain('\0');
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
