// End to end over a real socket: @aws-sdk/client-s3 talks to a bare node
// http server on 127.0.0.1 that authenticates with verifyRequest (using the
// raw req.url and req.headersDistinct, as the gateway will) and decodes
// aws-chunked bodies. This checks our assumptions about what node hands us.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Error } from '../../../src/core/errors.ts';
import { AwsChunkedDecoder } from '../../../src/gateway/auth/chunked.ts';
import { SigningKeyCache } from '../../../src/gateway/auth/signing.ts';
import { verifyRequest } from '../../../src/gateway/auth/sigv4.ts';

const accessKeyId = 'AKIAWIRETEST';
const secretAccessKey = 'wire/secret+key';
const creds = { secretFor: (id: string) => (id === accessKeyId ? secretAccessKey : undefined) };

interface Seen {
  key: string;
  mode: string;
  body: Buffer;
  trailers: Record<string, string>;
}

function errorXml(res: ServerResponse, err: S3Error): void {
  res.writeHead(err.status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${err.code}</Code><Message>${err.message.replace(/[<&>]/g, '')}</Message></Error>`);
}

async function readBody(req: IncomingMessage, decoder?: AwsChunkedDecoder): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  };
  if (decoder) await pipeline(req, decoder, sink);
  else await pipeline(req, sink);
  return Buffer.concat(out);
}

describe('client-s3 against a verifying node server', () => {
  let server: Server;
  let client: S3Client;
  const seen: Seen[] = [];
  const cache = new SigningKeyCache();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const signed = { method: req.method ?? 'GET', rawPath: q < 0 ? url : url.slice(0, q), rawQuery: q < 0 ? '' : url.slice(q + 1), headers: req.headersDistinct };
    const ctx = verifyRequest(signed, creds, { now: Date.now(), keyCache: cache });
    if (!ctx) throw new S3Error('AccessDenied', 'anonymous');
    const streaming = ctx.payloadMode.startsWith('STREAMING-');
    const decodedLength = req.headers['x-amz-decoded-content-length'];
    const decoder = streaming ? new AwsChunkedDecoder({ auth: ctx, decodedLength: decodedLength === undefined ? undefined : Number(decodedLength) }) : undefined;
    const body = await readBody(req, decoder);
    if (ctx.payloadMode === 'SIGNED' && createHash('sha256').update(body).digest('hex') !== ctx.payloadSha256Hex) {
      throw new S3Error('XAmzContentSHA256Mismatch', 'digest');
    }
    seen.push({ key: decodeURIComponent(signed.rawPath), mode: ctx.payloadMode, body, trailers: decoder?.trailers ?? {} });
    if (req.method === 'GET' && signed.rawQuery.includes('list-type=2')) {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>');
      return;
    }
    res.writeHead(200, { etag: '"0"', 'content-length': req.method === 'GET' ? '2' : '0' });
    res.end(req.method === 'GET' ? 'ok' : undefined);
  }

  beforeAll(async () => {
    server = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        req.resume();
        errorXml(res, err instanceof S3Error ? err : new S3Error('InternalError', String(err)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = new S3Client({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId, secretAccessKey } });
  });

  afterAll(async () => {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('PutObject with awkward keys, a Buffer body and a streamed aws-chunked body', async () => {
    const keys = ['plain', 'sp ace/ü/日本/🎉', '&+-é"%', 'a//b', "!'()*~"];
    for (const key of keys) {
      await client.send(new PutObjectCommand({ Bucket: 'b', Key: key, Body: Buffer.from(`body of ${key}`) }));
      expect(seen.at(-1)?.body.toString()).toBe(`body of ${key}`);
      expect(seen.at(-1)?.mode).toBe('SIGNED');
    }
    const data = Buffer.alloc(300_000).map((_, i) => (i * 7) % 256);
    await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'streamed', Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), ContentLength: data.length }));
    const last = seen.at(-1)!;
    expect(last.mode).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    expect(last.body.equals(data)).toBe(true);
    expect(Object.keys(last.trailers)[0]).toMatch(/^x-amz-checksum-/);
  });

  it('GetObject and ListObjectsV2 with awkward parameters', async () => {
    const got = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'k é+%', Range: 'bytes=0-1', ResponseContentDisposition: 'attachment; filename="a b.txt"' }));
    expect(await got.Body?.transformToString()).toBe('ok');
    const list = await client.send(new ListObjectsV2Command({ Bucket: 'b', Prefix: 'a b&c=d/é', Delimiter: '/' }));
    expect(list.KeyCount).toBe(0);
  });

  it('a client with the wrong secret gets SignatureDoesNotMatch', async () => {
    const wrong = new S3Client({ region: 'us-east-1', endpoint: client.config.endpoint, forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId, secretAccessKey: 'nope' } });
    const err = await wrong.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' })).then(
      () => undefined,
      (e: unknown) => e as { name: string },
    );
    wrong.destroy();
    expect(err?.name).toBe('SignatureDoesNotMatch');
  });
});
