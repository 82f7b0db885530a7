import { describe, expect, it } from 'vitest';
import { S3Error } from '../../../src/core/errors.ts';
import { canonicalQuery, canonicalRequest, canonicalUri, parseQuery } from '../../../src/gateway/auth/canonical.ts';
import { deriveSigningKey, hmacHex, SigningKeyCache, stringToSign } from '../../../src/gateway/auth/signing.ts';
import { verifyRequest, type SignedRequest } from '../../../src/gateway/auth/sigv4.ts';
import {
  chunkedExample,
  s3AmzDate,
  s3Credentials,
  s3HeaderCases,
  s3Now,
  s3PresignedQuery,
  suiteAmzDate,
  suiteCases,
  suiteCredentials,
  suiteScope,
} from './fixtures.ts';

const creds = { secretFor: (id: string) => (id === s3Credentials.accessKeyId ? s3Credentials.secret : undefined) };

function authorization(signedHeaders: string, signature: string, scope = '20130524/us-east-1/s3/aws4_request'): string {
  return `AWS4-HMAC-SHA256 Credential=${s3Credentials.accessKeyId}/${scope},SignedHeaders=${signedHeaders},Signature=${signature}`;
}

function expectS3Error(fn: () => unknown, code: string, message?: RegExp): S3Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(S3Error);
    expect((err as S3Error).code).toBe(code);
    if (message) expect((err as S3Error).message).toMatch(message);
    return err as S3Error;
  }
  throw new Error(`expected S3Error ${code}, nothing was thrown`);
}

describe('SigV4 test suite (canonicalisation and signing primitives)', () => {
  for (const c of suiteCases) {
    it(c.name, () => {
      const headers: Record<string, string> = { host: 'example.amazonaws.com', 'x-amz-date': suiteAmzDate };
      for (const [name, value] of Object.entries(c.headers)) headers[name.toLowerCase()] = value;
      const signedHeaders = Object.keys(headers).sort();
      const canonical = canonicalRequest({
        method: c.method,
        canonicalUri: canonicalUri(c.rawPath),
        canonicalQuery: canonicalQuery(parseQuery(c.rawQuery)),
        signedHeaders,
        headers,
        payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      });
      const key = deriveSigningKey(suiteCredentials.secret, '20150830', 'us-east-1', 'service');
      expect(hmacHex(key, stringToSign(suiteAmzDate, suiteScope, canonical))).toBe(c.signature);
    });
  }

  it('keeps the header-trim canonical form of the suite', () => {
    const text = canonicalRequest({
      method: 'GET',
      canonicalUri: '/',
      canonicalQuery: '',
      signedHeaders: ['my-header1', 'my-header2'],
      headers: { 'my-header1': ' value1', 'my-header2': ' "a   b   c"' },
      payloadHash: 'x',
    });
    expect(text).toBe('GET\n/\n\nmy-header1:value1\nmy-header2:"a b c"\n\nmy-header1;my-header2\nx');
  });

  it('joins multi-valued headers with a comma', () => {
    const text = canonicalRequest({
      method: 'GET',
      canonicalUri: '/',
      canonicalQuery: '',
      signedHeaders: ['x-multi'],
      headers: { 'x-multi': [' a ', 'b  c'] },
      payloadHash: 'x',
    });
    expect(text).toContain('x-multi:a,b c\n');
  });
});

describe('S3 documentation examples through verifyRequest', () => {
  for (const c of s3HeaderCases) {
    it(c.name, () => {
      const req: SignedRequest = {
        method: c.method,
        rawPath: c.rawPath,
        rawQuery: c.rawQuery,
        headers: { ...c.headers, authorization: authorization(c.signedHeaders, c.signature) },
      };
      const ctx = verifyRequest(req, creds, { now: s3Now + 60_000 });
      expect(ctx?.accessKeyId).toBe(s3Credentials.accessKeyId);
      expect(ctx?.presigned).toBe(false);
      expect(ctx?.signature).toBe(c.signature);
      expect(ctx?.scope).toBe('20130524/us-east-1/s3/aws4_request');
    });
  }

  it('reports a signed payload hash for the PUT example', () => {
    const c = s3HeaderCases[1]!;
    const ctx = verifyRequest(
      { method: 'PUT', rawPath: c.rawPath, rawQuery: '', headers: { ...c.headers, authorization: authorization(c.signedHeaders, c.signature) } },
      creds,
      { now: s3Now },
    );
    expect(ctx?.payloadMode).toBe('SIGNED');
    expect(ctx?.payloadSha256Hex).toBe(c.headers['x-amz-content-sha256']);
  });

  it('verifies the presigned GET example within its day and rejects it after', () => {
    const req: SignedRequest = { method: 'GET', rawPath: '/test.txt', rawQuery: s3PresignedQuery, headers: { host: 'examplebucket.s3.amazonaws.com' } };
    const ctx = verifyRequest(req, creds, { now: s3Now + 3600_000 });
    expect(ctx?.presigned).toBe(true);
    expect(ctx?.payloadMode).toBe('UNSIGNED-PAYLOAD');
    expectS3Error(() => verifyRequest(req, creds, { now: s3Now + 86_401_000 }), 'AccessDenied', /Request has expired/);
  });

  it('produces the published seed signature of the chunked upload example', () => {
    const ctx = verifyRequest(
      {
        method: 'PUT',
        rawPath: chunkedExample.rawPath,
        rawQuery: '',
        headers: { ...chunkedExample.headers, authorization: authorization(chunkedExample.signedHeaders, chunkedExample.seedSignature) },
      },
      creds,
      { now: s3Now },
    );
    expect(ctx?.payloadMode).toBe('STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
    expect(ctx?.amzDate).toBe(s3AmzDate);
  });

  it('gives the same answer with a signing-key cache, and bounds the cache', () => {
    const cache = new SigningKeyCache(2);
    const c = s3HeaderCases[0]!;
    const req = { method: c.method, rawPath: c.rawPath, rawQuery: '', headers: { ...c.headers, authorization: authorization(c.signedHeaders, c.signature) } };
    expect(verifyRequest(req, creds, { now: s3Now, keyCache: cache })?.signature).toBe(c.signature);
    expect(verifyRequest(req, creds, { now: s3Now, keyCache: cache })?.signature).toBe(c.signature);
    expect(cache.size).toBe(1);
    cache.get('s1', '20130524', 'r1', 's3');
    cache.get('s2', '20130524', 'r2', 's3');
    expect(cache.size).toBe(2);
    expect(cache.get('s2', '20130524', 'r2', 's3').equals(deriveSigningKey('s2', '20130524', 'r2', 's3'))).toBe(true);
  });
});

describe('rejections', () => {
  const base = s3HeaderCases[0]!;
  const good = (): SignedRequest => ({
    method: base.method,
    rawPath: base.rawPath,
    rawQuery: '',
    headers: { ...base.headers, authorization: authorization(base.signedHeaders, base.signature) },
  });

  it('treats a request without any authentication as anonymous', () => {
    expect(verifyRequest({ method: 'GET', rawPath: '/b/k', rawQuery: 'prefix=a', headers: { host: 'h' } }, creds, { now: s3Now })).toBeUndefined();
  });

  it('refuses SigV2 with a message that asks for SigV4', () => {
    const v2header = { ...good(), headers: { host: 'h', authorization: 'AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=' } };
    expectS3Error(() => verifyRequest(v2header, creds, { now: s3Now }), 'AccessDenied', /Signature Version 4/);
    const v2query = { method: 'GET', rawPath: '/b/k', rawQuery: 'AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1369353600&Signature=abc%3D', headers: { host: 'h' } };
    expectS3Error(() => verifyRequest(v2query, creds, { now: s3Now }), 'AccessDenied', /s3v4/);
  });

  it('fails on a tampered signed header, path or query', () => {
    const tampered = [
      { ...good(), headers: { ...good().headers, range: 'bytes=0-8' } },
      { ...good(), rawPath: '/test.txu' },
      { ...good(), rawQuery: 'x=1' },
      { ...good(), method: 'PUT' },
    ];
    for (const req of tampered) expectS3Error(() => verifyRequest(req, creds, { now: s3Now }), 'SignatureDoesNotMatch');
  });

  it('rejects an unknown access key', () => {
    const req = good();
    req.headers.authorization = (req.headers.authorization as string).replace('AKIAIOSFODNN7EXAMPLE', 'AKIAUNKNOWN');
    expectS3Error(() => verifyRequest(req, creds, { now: s3Now }), 'InvalidAccessKeyId');
  });

  it('enforces the 15 minute clock skew both ways', () => {
    expect(verifyRequest(good(), creds, { now: s3Now + 15 * 60_000 })).toBeDefined();
    expectS3Error(() => verifyRequest(good(), creds, { now: s3Now + 15 * 60_000 + 1 }), 'RequestTimeTooSkewed');
    expectS3Error(() => verifyRequest(good(), creds, { now: s3Now - 15 * 60_000 - 1 }), 'RequestTimeTooSkewed');
  });

  it('rejects malformed Authorization headers and credential scopes', () => {
    const cases: [string, string][] = [
      ['AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host', 'AuthorizationHeaderMalformed'],
      [authorization(base.signedHeaders, base.signature, '20130524/us-east-1/ec2/aws4_request'), 'AuthorizationHeaderMalformed'],
      [authorization(base.signedHeaders, base.signature, '20130525/us-east-1/s3/aws4_request'), 'AuthorizationHeaderMalformed'],
      [authorization(base.signedHeaders, base.signature, '20130524/us-east-1/s3/aws5_request'), 'AuthorizationHeaderMalformed'],
      [authorization('range;x-amz-date', base.signature), 'AuthorizationHeaderMalformed'],
      ['AWS4-ECDSA-P256-SHA256 Credential=x', 'InvalidArgument'],
    ];
    for (const [value, code] of cases) {
      expectS3Error(() => verifyRequest({ ...good(), headers: { ...base.headers, authorization: value } }, creds, { now: s3Now }), code);
    }
  });

  it('accepts any region in the scope (the signature then decides)', () => {
    const req = { ...good(), headers: { ...base.headers, authorization: authorization(base.signedHeaders, base.signature, '20130524/eu-west-1/s3/aws4_request') } };
    expectS3Error(() => verifyRequest(req, creds, { now: s3Now }), 'SignatureDoesNotMatch');
  });

  it('checks x-amz-content-sha256', () => {
    const { 'x-amz-content-sha256': _, ...without } = good().headers;
    expectS3Error(() => verifyRequest({ ...good(), headers: without }, creds, { now: s3Now }), 'InvalidRequest');
    const bad = { ...good(), headers: { ...good().headers, 'x-amz-content-sha256': 'abc' } };
    expectS3Error(() => verifyRequest(bad, creds, { now: s3Now }), 'InvalidArgument');
  });

  it('refuses unsigned x-amz-* headers', () => {
    const req = { ...good(), headers: { ...good().headers, 'x-amz-copy-source': '/other/key' } };
    const err = expectS3Error(() => verifyRequest(req, creds, { now: s3Now }), 'AccessDenied');
    expect(err.extra.HeadersNotSigned).toBe('x-amz-copy-source');
  });

  it('refuses both auth mechanisms at once', () => {
    const req = { ...good(), rawQuery: s3PresignedQuery };
    expectS3Error(() => verifyRequest(req, creds, { now: s3Now }), 'InvalidArgument');
  });

  it('validates presigned query parameters', () => {
    const presigned = (query: string): SignedRequest => ({ method: 'GET', rawPath: '/test.txt', rawQuery: query, headers: { host: 'examplebucket.s3.amazonaws.com' } });
    const cases: [string, string][] = [
      [s3PresignedQuery.replace('X-Amz-Expires=86400', 'X-Amz-Expires=604801'), 'AuthorizationQueryParametersError'],
      [s3PresignedQuery.replace('X-Amz-Expires=86400', 'X-Amz-Expires=0'), 'AuthorizationQueryParametersError'],
      [s3PresignedQuery.replace('X-Amz-Expires=86400', 'X-Amz-Expires=abc'), 'AuthorizationQueryParametersError'],
      [s3PresignedQuery.replace('X-Amz-Expires=86400&', ''), 'AuthorizationQueryParametersError'],
      [s3PresignedQuery.replace('X-Amz-Date=20130524T000000Z', 'X-Amz-Date=2013-05-24'), 'AuthorizationQueryParametersError'],
      [s3PresignedQuery.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA1'), 'AuthorizationQueryParametersError'],
      [s3PresignedQuery.replace('%2Fs3%2F', '%2Fsqs%2F'), 'AuthorizationQueryParametersError'],
      [s3PresignedQuery.replace('X-Amz-Expires=86400', 'X-Amz-Expires=86401'), 'SignatureDoesNotMatch'],
      [s3PresignedQuery + '&extra=1', 'SignatureDoesNotMatch'],
    ];
    for (const [query, code] of cases) expectS3Error(() => verifyRequest(presigned(query), creds, { now: s3Now }), code);
    expectS3Error(() => verifyRequest(presigned(s3PresignedQuery), creds, { now: s3Now - 16 * 60_000 }), 'AccessDenied', /not valid yet/);
  });
});
