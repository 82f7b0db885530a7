// Bad client input: each case gets its S3 error and leaves nothing on disk
// (no object, no blob, no temp file).

import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import zlib from 'node:zlib';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, send, signedChunkedPut, signer, xmlText, type RawResponse } from '../helpers/http.ts';
import { startTestGateway, type TestGateway } from '../helpers/server.ts';

let gw: TestGateway;
let s3: S3Client;
const bucket = 'bad-input';

beforeAll(async () => {
  gw = await startTestGateway();
  s3 = gw.client();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
});
afterAll(async () => {
  await gw?.close();
});

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

async function dataFiles(): Promise<string[]> {
  return [...(await filesUnder(join(gw.dataDir, 'tmp'))), ...(await filesUnder(join(gw.dataDir, 'blobs')))].sort();
}

async function keysInBucket(): Promise<string[]> {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (r.Contents ?? []).map((c) => c.Key!);
}

/** Runs `act`, then checks no object and no file appeared (cleanup may lag a little). */
async function leavesNothing(act: () => Promise<void>): Promise<void> {
  const filesBefore = await dataFiles();
  const keysBefore = await keysInBucket();
  await act();
  let filesAfter = await dataFiles();
  for (let i = 0; i < 50 && filesAfter.join() !== filesBefore.join(); i++) {
    await new Promise((r) => setTimeout(r, 20));
    filesAfter = await dataFiles();
  }
  expect(filesAfter).toEqual(filesBefore);
  expect(await keysInBucket()).toEqual(keysBefore);
}

function expectError(r: RawResponse, status: number, code: string): void {
  expect({ status: r.status, code: xmlText(r.text, 'Code') }, r.text).toEqual({ status, code });
  expect(xmlText(r.text, 'RequestId')).toBe(r.headers['x-amz-request-id']);
}

async function sdkError(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return err;
    throw err;
  }
  throw new Error('expected an S3 error');
}

describe('authentication', () => {
  it('a wrong secret is SignatureDoesNotMatch', async () => {
    await leavesNothing(async () => {
      const wrong = gw.client({ credentials: { accessKeyId: gw.accessKeyId, secretAccessKey: 'not-the-secret' } });
      const err = await sdkError(wrong.send(new PutObjectCommand({ Bucket: bucket, Key: 'wrong-secret', Body: 'x' })));
      expect(err.name).toBe('SignatureDoesNotMatch');
      expect(err.$metadata.httpStatusCode).toBe(403);
    });
  });

  it('an unknown access key is InvalidAccessKeyId', async () => {
    const other = gw.client({ credentials: { accessKeyId: 'AKIAUNKNOWN', secretAccessKey: gw.secretAccessKey } });
    const err = await sdkError(other.send(new PutObjectCommand({ Bucket: bucket, Key: 'unknown-key', Body: 'x' })));
    expect(err.name).toBe('InvalidAccessKeyId');
  });

  it('signed chunked upload: valid chunk signatures store, a tampered chunk is refused', async () => {
    const payload = Buffer.alloc(200_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const good = await signedChunkedPut(gw, `/${bucket}/chunked-good`, payload, 65_536);
    const ok = await send(gw.port, 'PUT', `/${bucket}/chunked-good`, good.headers, good.body);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.headers.etag).toBe(`"${createHash('md5').update(payload).digest('hex')}"`);

    await leavesNothing(async () => {
      const bad = await signedChunkedPut(gw, `/${bucket}/chunked-bad`, payload, 65_536, (i, data) => {
        if (i !== 1) return data;
        const copy = Buffer.from(data);
        copy[10] = copy[10]! ^ 0xff;
        return copy;
      });
      const r = await send(gw.port, 'PUT', `/${bucket}/chunked-bad`, bad.headers, bad.body);
      expectError(r, 403, 'SignatureDoesNotMatch');
    });
  });
});

describe('digests and checksums', () => {
  const body = Buffer.from('the body the client meant to send');

  it('a wrong x-amz-checksum-crc32 is BadDigest', async () => {
    await leavesNothing(async () => {
      const r = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/bad-crc`, body, headers: { 'x-amz-checksum-crc32': 'AAAAAA==' } });
      expectError(r, 400, 'BadDigest');
    });
  });

  it('a wrong x-amz-checksum-sha256 through the SDK is BadDigest', async () => {
    await leavesNothing(async () => {
      const err = await sdkError(
        s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'bad-sha', Body: body, ChecksumSHA256: createHash('sha256').update('other').digest('base64') })),
      );
      expect(err.name).toBe('BadDigest');
    });
  });

  it('a wrong Content-MD5 is BadDigest; a malformed one InvalidDigest', async () => {
    await leavesNothing(async () => {
      const wrong = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/bad-md5`, body, headers: { 'content-md5': createHash('md5').update('x').digest('base64') } });
      expectError(wrong, 400, 'BadDigest');
      const malformed = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/bad-md5`, body, headers: { 'content-md5': 'not-base64!' } });
      expectError(malformed, 400, 'InvalidDigest');
    });
    const right = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/good-md5`, body, headers: { 'content-md5': createHash('md5').update(body).digest('base64') } });
    expect(right.status).toBe(200);
  });

  it('a body that does not match the signed x-amz-content-sha256 is XAmzContentSHA256Mismatch', async () => {
    await leavesNothing(async () => {
      const r = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/bad-sha256`, body, payloadHash: createHash('sha256').update('other').digest('hex') });
      expectError(r, 400, 'XAmzContentSHA256Mismatch');
    });
  });

  it('an unsigned aws-chunked body with a wrong trailer checksum is BadDigest', async () => {
    const framed = (crc: string) =>
      Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:${crc}\r\n\r\n`)]);
    const headers = (crc: string) => ({
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': String(body.length),
      'x-amz-trailer': 'x-amz-checksum-crc32',
      'content-length': String(framed(crc).length),
    });
    const goodCrc = Buffer.alloc(4);
    goodCrc.writeUInt32BE(zlib.crc32(body));
    await leavesNothing(async () => {
      const r = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/bad-trailer`, body: framed('AAAAAA=='), headers: headers('AAAAAA=='), payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' });
      expectError(r, 400, 'BadDigest');
    });
    const ok = await rawRequest(gw, {
      method: 'PUT',
      path: `/${bucket}/good-trailer`,
      body: framed(goodCrc.toString('base64')),
      headers: headers(goodCrc.toString('base64')),
      payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.headers['x-amz-checksum-crc32']).toBe(goodCrc.toString('base64'));
  });

  it('aws-chunked framing that lies about its length or stops early is refused', async () => {
    const chunkedPut = (key: string, framed: Buffer, decodedLength: number) =>
      rawRequest(gw, {
        method: 'PUT',
        path: `/${bucket}/${key}`,
        body: framed,
        headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(decodedLength), 'content-length': String(framed.length) },
        payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      });
    const data = Buffer.from('thirty bytes of payload data!!');
    const whole = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n0\r\n\r\n')]);
    await leavesNothing(async () => {
      const short = await chunkedPut('lies-short', whole, data.length + 70);
      expect(short.status).toBe(400);
      expect(['IncompleteBody', 'InvalidRequest']).toContain(xmlText(short.text, 'Code'));
      const long = await chunkedPut('lies-long', whole, data.length - 10);
      expect(long.status).toBe(400);
      const truncated = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
      const cut = await chunkedPut('no-final-chunk', truncated, data.length);
      expect(cut.status).toBe(400);
      const garbage = await chunkedPut('garbage', Buffer.from('zz\r\nnot a chunk\r\n'), 9);
      expect(garbage.status).toBe(400);
    });
    const ok = await chunkedPut('framing-ok', whole, data.length);
    expect(ok.status, ok.text).toBe(200);
  });

  it('a bad checksum on UploadPart stores no part', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mpu-bad' }));
    await leavesNothing(async () => {
      const err = await sdkError(
        s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mpu-bad', UploadId, PartNumber: 1, Body: body, ChecksumCRC32: 'AAAAAA==' })),
      );
      expect(err.name).toBe('BadDigest');
    });
  });

  it('a signed body cut short by the client leaves no temp file, and the gateway keeps serving', async () => {
    await leavesNothing(async () => {
      const headers = {
        host: `127.0.0.1:${gw.port}`,
        'content-length': String(1024 * 1024),
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      };
      const signed = await signer(gw).sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port: gw.port, path: `/${bucket}/cut`, query: {}, headers });
      await new Promise<void>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port: gw.port, method: 'PUT', path: `/${bucket}/cut`, headers: signed.headers, agent: false });
        req.on('error', () => resolve());
        req.on('close', () => resolve());
        req.write(Buffer.alloc(200_000, 1), () => setTimeout(() => req.destroy(), 50));
      });
      // Give the server a moment to notice the reset before checking the disk.
      await new Promise((r) => setTimeout(r, 100));
    });
    const after = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/after-cut`, body: 'still serving' });
    expect(after.status).toBe(200);
    await rawRequest(gw, { method: 'DELETE', path: `/${bucket}/after-cut` });
  });
});

describe('malformed requests', () => {
  it('malformed XML bodies are MalformedXML', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'xml' }));
    await leavesNothing(async () => {
      const cases: [string, Record<string, string>, string][] = [
        ['POST', { delete: '' }, '<Delete><Object><Key>a</Key></Object>'],
        ['POST', { delete: '' }, '<Delete></Delete>'],
        ['POST', { delete: '' }, 'not xml at all'],
        ['PUT', { tagging: '' }, '<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>'],
        ['POST', { uploadId: UploadId! }, '<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>'],
        ['POST', { uploadId: UploadId! }, '<CompleteMultipartUpload></CompleteMultipartUpload>'],
        ['POST', { uploadId: UploadId! }, '<!DOCTYPE x [<!ENTITY e "boom">]><CompleteMultipartUpload/>'],
      ];
      for (const [method, query, body] of cases) {
        const path = 'delete' in query ? `/${bucket}` : `/${bucket}/xml`;
        const r = await rawRequest(gw, { method, path, query, body });
        expectError(r, 400, 'MalformedXML');
      }
    });
  });

  it('a malformed CreateBucketConfiguration creates no bucket', async () => {
    const r = await rawRequest(gw, { method: 'PUT', path: '/never-created', body: '<CreateBucketConfiguration><LocationConstraint>' });
    expectError(r, 400, 'MalformedXML');
    const head = await rawRequest(gw, { method: 'HEAD', path: '/never-created' });
    expect(head.status).toBe(404);
  });

  it('user metadata over 2 KB is MetadataTooLarge', async () => {
    await leavesNothing(async () => {
      const err = await sdkError(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'meta', Body: 'x', Metadata: { big: 'v'.repeat(2100) } })));
      expect(err.name).toBe('MetadataTooLarge');
    });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'meta-ok', Body: 'x', Metadata: { big: 'v'.repeat(2000) } }));
  });

  it('a key over 1024 bytes is KeyTooLongError; 1024 is fine', async () => {
    await leavesNothing(async () => {
      const err = await sdkError(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k'.repeat(1025), Body: 'x' })));
      expect(err.name).toBe('KeyTooLongError');
      const r = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/${encodeURIComponent('é'.repeat(513))}`, body: 'x' });
      expectError(r, 400, 'KeyTooLongError');
    });
  });

  it('invalid bucket names are InvalidBucketName and create nothing', async () => {
    for (const name of ['ab', 'Upper-Case', 'under_score', 'a..b', '10.0.0.1', '-dash', 'x'.repeat(64)]) {
      const r = await rawRequest(gw, { method: 'PUT', path: `/${name}` });
      expectError(r, 400, 'InvalidBucketName');
    }
    const buckets = await rawRequest(gw, { method: 'GET', path: '/' });
    expect(buckets.text.match(/<Name>/g)?.length).toBe(1);
  });

  it('NUL in a key is InvalidArgument', async () => {
    await leavesNothing(async () => {
      const r = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/a%00b`, body: 'x' });
      expectError(r, 400, 'InvalidArgument');
    });
  });
});
