// Cross-checks against the real signers: requests built and signed by
// @aws-sdk/client-s3 (captured before they reach the network) and URLs
// presigned by @smithy/signature-v4 must verify; any change to a signed
// byte must not.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { buildQueryString, extendedEncodeURIComponent, HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../../src/core/errors.ts';
import { AwsChunkedDecoder } from '../../../src/gateway/auth/chunked.ts';
import { verifyRequest, type SignedRequest } from '../../../src/gateway/auth/sigv4.ts';

const accessKeyId = 'AKIALOOKAHEADTEST';
const secretAccessKey = 'lookahead/test+secret/key0123456789abcdef';
const creds = { secretFor: (id: string) => (id === accessKeyId ? secretAccessKey : undefined) };
const host = '127.0.0.1:9000';

class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): string | Buffer {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

class Captured extends Error {
  constructor(readonly request: HttpRequest) {
    super('captured');
  }
}

/** An S3Client whose HTTP layer records the signed request instead of sending it. */
function capturingClient(region = 'us-east-1'): S3Client {
  return new S3Client({
    region,
    endpoint: `http://${host}`,
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId, secretAccessKey },
    requestHandler: {
      handle: async (request: HttpRequest) => {
        throw new Captured(request);
      },
      updateHttpClientConfig: () => {},
      httpHandlerConfigs: () => ({}),
    } as never,
  });
}

async function capture(client: S3Client, command: object): Promise<HttpRequest> {
  const err = await client.send(command as never).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof Captured) return err.request;
  throw err;
}

/** What node's http server would hand the gateway for this request. */
function onTheWire(request: HttpRequest): SignedRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  return { method: request.method, rawPath: request.path, rawQuery: buildQueryString(request.query ?? {}), headers };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    throw err;
  }
}

function signedHeaderNames(req: SignedRequest): string[] {
  const auth = req.headers.authorization as string;
  return /SignedHeaders=([^,]+)/.exec(auth)![1]!.split(';');
}

const awkwardKeys = [
  'plain.txt',
  'key with spaces',
  '&+-é"',
  'ünïcødé/日本語/🎉 emoji',
  '100% sure',
  '%2F already encoded',
  'a//b///c',
  '/leading',
  'trailing/',
  "!'()*",
  '~tilde_under-dash.dot',
  'a?b=c#d',
  'semi;colon,comma:colon@at$dollar',
  'tab\there',
  '[brackets]{braces}<angle>|pipe^caret`back',
];

describe('requests signed by @aws-sdk/client-s3 verify', () => {
  const client = capturingClient();
  const bucket = 'test-bucket';

  for (const key of awkwardKeys) {
    it(`GET, HEAD and PUT of ${JSON.stringify(key)}`, async () => {
      for (const command of [
        new GetObjectCommand({ Bucket: bucket, Key: key, Range: 'bytes=0-9' }),
        new HeadObjectCommand({ Bucket: bucket, Key: key }),
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'hello world', Metadata: { note: 'a  b' } }),
        new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: `${bucket}/${encodeURIComponent(key)}` }),
      ]) {
        const req = onTheWire(await capture(client, command));
        const ctx = verifyRequest(req, creds, { now: Date.now() });
        expect(ctx?.accessKeyId).toBe(accessKeyId);
      }
    });
  }

  it('list with awkward prefix and delimiter, and DeleteObjects', async () => {
    for (const command of [
      new ListObjectsV2Command({ Bucket: bucket, Prefix: 'a b/&+é%/', Delimiter: '/', StartAfter: 'x=y&z', MaxKeys: 5 }),
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: awkwardKeys.map((Key) => ({ Key })) } }),
    ]) {
      const req = onTheWire(await capture(client, command));
      expect(verifyRequest(req, creds, { now: Date.now() })).toBeDefined();
    }
  });

  it('accepts another region in the scope', async () => {
    const req = onTheWire(await capture(capturingClient('eu-central-1'), new GetObjectCommand({ Bucket: bucket, Key: 'k' })));
    expect(verifyRequest(req, creds, { now: Date.now() })?.scope).toMatch(/\/eu-central-1\/s3\/aws4_request$/);
  });

  it('reports the payload mode of a Buffer PUT as SIGNED with the body digest', async () => {
    const body = Buffer.from('digest me');
    const req = onTheWire(await capture(client, new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: body })));
    const ctx = verifyRequest(req, creds, { now: Date.now() });
    expect(ctx?.payloadMode).toBe('SIGNED');
    expect(ctx?.payloadSha256Hex).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('decodes the aws-chunked body the SDK sends for a streamed PUT', async () => {
    const data = Buffer.alloc(200_000, 7).map((_, i) => i % 251);
    const request = await capture(
      client,
      new PutObjectCommand({ Bucket: bucket, Key: 'streamed', Body: Readable.from([data.subarray(0, 70_000), data.subarray(70_000)]), ContentLength: data.length }),
    );
    const req = onTheWire(request);
    const ctx = verifyRequest(req, creds, { now: Date.now() })!;
    expect(ctx.payloadMode).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    const decoder = new AwsChunkedDecoder({ auth: ctx, decodedLength: Number(req.headers['x-amz-decoded-content-length']) });
    const out: Buffer[] = [];
    await pipeline(request.body as Readable, decoder, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out.push(chunk);
    });
    expect(Buffer.concat(out).equals(data)).toBe(true);
    const trailerName = String(req.headers['x-amz-trailer']);
    expect(decoder.trailers[trailerName]).toMatch(/^[A-Za-z0-9+/=]+$/);
  });

  it('fails when any signed header, the path, the query or the method changes', async () => {
    const original = onTheWire(
      await capture(client, new ListObjectsV2Command({ Bucket: bucket, Prefix: 'p é', MaxKeys: 7 })),
    );
    expect(verifyRequest(original, creds, { now: Date.now() })).toBeDefined();
    for (const name of signedHeaderNames(original)) {
      const changed = { ...original, headers: { ...original.headers, [name]: `${original.headers[name] as string}0` } };
      const code = codeOf(() => verifyRequest(changed, creds, { now: Date.now() }));
      if (name === 'x-amz-date' || name === 'x-amz-content-sha256') expect(code, name).toBeDefined();
      else expect(code, name).toBe('SignatureDoesNotMatch');
    }
    const variants: SignedRequest[] = [
      { ...original, rawPath: original.rawPath + 'x' },
      { ...original, rawPath: original.rawPath.toUpperCase() },
      { ...original, rawQuery: original.rawQuery.replace('max-keys=7', 'max-keys=8') },
      { ...original, rawQuery: original.rawQuery + '&x-id=1' },
      { ...original, method: 'DELETE' },
    ];
    for (const v of variants) expect(codeOf(() => verifyRequest(v, creds, { now: Date.now() }))).toBe('SignatureDoesNotMatch');
  });
});

function smithySigner(region = 'us-east-1'): SignatureV4 {
  // uriEscapePath false: what the S3 client uses (no double encoding).
  return new SignatureV4({ service: 's3', region, sha256: NodeSha256, credentials: { accessKeyId, secretAccessKey }, uriEscapePath: false });
}

function objectPath(bucket: string, key: string): string {
  return `/${bucket}/${key.split('/').map(extendedEncodeURIComponent).join('/')}`;
}

interface PresignOptions {
  now: number;
  expiresIn: number;
  method?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** Keep x-amz-content-sha256 a (signed) header instead of a query parameter. */
  unhoistSha256?: boolean;
}

/**
 * Presigns like @aws-sdk/s3-request-presigner: the payload is declared
 * UNSIGNED-PAYLOAD through x-amz-content-sha256 (raw smithy presign would
 * sign the empty-body hash, which S3 URLs never use).
 */
async function presign(key: string, options: PresignOptions): Promise<SignedRequest> {
  const request = new HttpRequest({
    method: options.method ?? 'GET',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 9000,
    path: objectPath('b', key),
    query: options.query ?? {},
    headers: { host, 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD', ...options.headers },
  });
  const signed = await smithySigner().presign(request, {
    signingDate: new Date(options.now),
    expiresIn: options.expiresIn,
    ...(options.unhoistSha256 ? { unhoistableHeaders: new Set(['x-amz-content-sha256']) } : {}),
  });
  return onTheWire(signed as HttpRequest);
}

describe('URLs presigned by @smithy/signature-v4 verify', () => {
  const now = Date.UTC(2026, 0, 2, 3, 4, 5);

  for (const key of awkwardKeys) {
    it(`presigned GET of ${JSON.stringify(key)}`, async () => {
      const req = await presign(key, { now, expiresIn: 900, query: { 'response-content-disposition': 'attachment; filename="é x.txt"' } });
      const ctx = verifyRequest(req, creds, { now: now + 1000 });
      expect(ctx?.presigned).toBe(true);
      expect(ctx?.payloadMode).toBe('UNSIGNED-PAYLOAD');
    });
  }

  it('a presigned PUT with a signed content-type and a hoisted x-amz-meta header', async () => {
    const req = await presign('up load', { now, expiresIn: 3600, method: 'PUT', headers: { 'content-type': 'text/plain', 'x-amz-meta-owner': 'me' } });
    expect(req.rawQuery).toContain('X-Amz-SignedHeaders=content-type%3Bhost');
    expect(verifyRequest(req, creds, { now })).toBeDefined();
    const otherType = { ...req, headers: { ...req.headers, 'content-type': 'image/png' } };
    expect(codeOf(() => verifyRequest(otherType, creds, { now }))).toBe('SignatureDoesNotMatch');
    const otherMeta = { ...req, rawQuery: req.rawQuery.replace('X-Amz-Meta-Owner=me', 'X-Amz-Meta-Owner=you').replace('x-amz-meta-owner=me', 'x-amz-meta-owner=you') };
    expect(otherMeta.rawQuery).not.toBe(req.rawQuery);
    expect(codeOf(() => verifyRequest(otherMeta, creds, { now }))).toBe('SignatureDoesNotMatch');
  });

  it('takes UNSIGNED-PAYLOAD from the query or from a signed header', async () => {
    const hoisted = await presign('k', { now, expiresIn: 60 });
    expect(hoisted.rawQuery).toContain('X-Amz-Content-Sha256=UNSIGNED-PAYLOAD');
    expect(verifyRequest(hoisted, creds, { now })?.payloadMode).toBe('UNSIGNED-PAYLOAD');
    const asHeader = await presign('k', { now, expiresIn: 60, unhoistSha256: true });
    expect(asHeader.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(verifyRequest(asHeader, creds, { now })?.payloadMode).toBe('UNSIGNED-PAYLOAD');
    // The hoisted parameter is part of the signed query: it cannot be dropped.
    const dropped = { ...hoisted, rawQuery: hoisted.rawQuery.replace('X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&', '') };
    expect(dropped.rawQuery).not.toBe(hoisted.rawQuery);
    expect(codeOf(() => verifyRequest(dropped, creds, { now }))).toBe('SignatureDoesNotMatch');
  });

  it('honours expiry exactly and refuses URLs from the future', async () => {
    const req = await presign('k', { now, expiresIn: 60 });
    expect(verifyRequest(req, creds, { now: now + 60_000 })).toBeDefined();
    expect(codeOf(() => verifyRequest(req, creds, { now: now + 60_001 }))).toBe('AccessDenied');
    expect(verifyRequest(req, creds, { now: now - 14 * 60_000 })).toBeDefined();
    expect(codeOf(() => verifyRequest(req, creds, { now: now - 16 * 60_000 }))).toBe('AccessDenied');
  });

  it('a changed byte anywhere in the presigned query fails', async () => {
    const req = await presign('some/key', { now, expiresIn: 600, query: { versionId: 'abc' } });
    expect(verifyRequest(req, creds, { now })).toBeDefined();
    for (let i = 0; i < req.rawQuery.length; i++) {
      const ch = req.rawQuery[i]!;
      if (ch === '&' || ch === '=') continue;
      const replacement = ch === '1' ? '2' : '1';
      const changed = { ...req, rawQuery: req.rawQuery.slice(0, i) + replacement + req.rawQuery.slice(i + 1) };
      expect(codeOf(() => verifyRequest(changed, creds, { now })), `byte ${i} of ${req.rawQuery}`).toBeDefined();
    }
  });
});

describe('property (c): canonical URI round-trips for arbitrary unicode keys', () => {
  const encodable = (s: string) => {
    try {
      encodeURIComponent(s);
      return true;
    } catch {
      return false;
    }
  };

  it('header-signed and presigned requests for any key verify', async () => {
    const now = Date.UTC(2026, 5, 6, 7, 8, 9);
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).filter(encodable), async (key) => {
        const request = new HttpRequest({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 9000, path: objectPath('bkt', key), query: {}, headers: { host } });
        const signed = (await smithySigner().sign(request, { signingDate: new Date(now) })) as HttpRequest;
        expect(verifyRequest(onTheWire(signed), creds, { now })?.accessKeyId).toBe(accessKeyId);
        const url = await presign(key, { now, expiresIn: 60 });
        expect(verifyRequest(url, creds, { now })?.presigned).toBe(true);
        // And a different key (one more character) does not verify with that signature.
        const other = { ...onTheWire(signed), rawPath: objectPath('bkt', key + 'x') };
        expect(codeOf(() => verifyRequest(other, creds, { now }))).toBe('SignatureDoesNotMatch');
      }),
      { numRuns: 200 },
    );
  });
});
