// Bad input the gateway tests do not already cover: oversized XML, bogus
// Complete parts, Content-Length that disagrees with the body (both ways,
// including a smuggled second request), invalid UTF-8 keys on the wire and
// Range values that overflow. Each gets its S3 error and changes nothing
// (listing, uploads, temp and blob files), and the gateway keeps serving.

import { createHash } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, signer, type RawResponse, type Target } from '../helpers/http.ts';
import { errorCode, sleep, snapshot, startHardGateway, type HardGateway } from './harness.ts';

const pair = { accessKeyId: 'BADINPUTKEY000000001', secretAccessKey: 'bad-input-secret-0123456789abcdefghijkl' };
const bucket = 'bad';
let gw: HardGateway;
let t: Target;
let uploadId: string;
let partEtag: string;

beforeAll(async () => {
  gw = await startHardGateway({ pairs: [pair] });
  t = gw.as();
  expect((await rawRequest(t, { method: 'PUT', path: `/${bucket}` })).status).toBe(200);
  expect((await rawRequest(t, { method: 'PUT', path: `/${bucket}/existing`, body: 'existing body' })).status).toBe(200);
  const create = await rawRequest(t, { method: 'POST', path: `/${bucket}/mpu`, query: { uploads: '' } });
  uploadId = /<UploadId>([^<]+)</.exec(create.text)![1]!;
  const part = await rawRequest(t, { method: 'PUT', path: `/${bucket}/mpu`, query: { partNumber: '1', uploadId }, body: 'only part' });
  partEtag = String(part.headers.etag);
});
afterAll(async () => {
  await gw?.close();
});

/** Runs `act`; the state afterwards must equal the state before (cleanup may lag briefly). */
async function changesNothing(act: () => Promise<void>): Promise<void> {
  const before = await snapshot(gw, t);
  await act();
  let after = await snapshot(gw, t);
  for (let i = 0; i < 50 && JSON.stringify(after) !== JSON.stringify(before); i++) {
    await sleep(20);
    after = await snapshot(gw, t);
  }
  expect(after).toEqual(before);
}

function expectError(r: RawResponse, status: number, codes: string[]): void {
  expect({ status: r.status, ok: codes.includes(errorCode(r) ?? '') }, `${r.status} ${r.text}`).toEqual({ status, ok: true });
}

async function stillServes(): Promise<void> {
  expect((await rawRequest(t, { method: 'GET', path: `/${bucket}/existing` })).text).toBe('existing body');
}

describe('XML bodies', () => {
  it('an XML body over the 2 MiB limit is refused without being buffered whole', async () => {
    await changesNothing(async () => {
      const huge = `<Delete>${'<Object><Key>existing</Key></Object>'.repeat(60_000)}</Delete>`;
      expect(huge.length).toBeGreaterThan(2 * 1024 * 1024);
      const r = await rawRequest(t, { method: 'POST', path: `/${bucket}`, query: { delete: '' }, body: huge });
      expectError(r, 400, ['MalformedXML', 'MaxMessageLengthExceeded', 'EntityTooLarge']);
      const c = await rawRequest(t, { method: 'POST', path: `/${bucket}/mpu`, query: { uploadId }, body: `<CompleteMultipartUpload>${' '.repeat(2 * 1024 * 1024 + 1)}</CompleteMultipartUpload>` });
      expectError(c, 400, ['MalformedXML', 'MaxMessageLengthExceeded', 'EntityTooLarge']);
    });
    await stillServes();
  });

  it('DeleteObjects with 1001 keys deletes none of them', async () => {
    await changesNothing(async () => {
      const keys = ['existing', ...Array.from({ length: 1000 }, (_, i) => `k${i}`)];
      const body = `<Delete>${keys.map((k) => `<Object><Key>${k}</Key></Object>`).join('')}</Delete>`;
      expectError(await rawRequest(t, { method: 'POST', path: `/${bucket}`, query: { delete: '' }, body }), 400, ['MalformedXML']);
    });
  });

  it('Complete with bogus parts: numbers out of range, unknown parts, wrong ETags, duplicates', async () => {
    const part = (n: string, etag: string) => `<Part><PartNumber>${n}</PartNumber><ETag>${etag}</ETag></Part>`;
    const cases: [string, string[]][] = [
      [part('0', partEtag), ['InvalidArgument', 'InvalidPart', 'MalformedXML']],
      [part('10001', partEtag), ['InvalidArgument', 'InvalidPart', 'MalformedXML']],
      [part('-1', partEtag), ['InvalidArgument', 'InvalidPart', 'MalformedXML']],
      [part('99999999999999999999', partEtag), ['InvalidArgument', 'InvalidPart', 'MalformedXML']],
      [part('2', partEtag), ['InvalidPart']],
      [part('1', '"00000000000000000000000000000000"'), ['InvalidPart']],
      [part('1', partEtag) + part('1', partEtag), ['InvalidPartOrder', 'InvalidPart']],
      [`<Part><ETag>${partEtag}</ETag></Part>`, ['MalformedXML', 'InvalidPart', 'InvalidArgument']],
    ];
    await changesNothing(async () => {
      for (const [parts, codes] of cases) {
        const r = await rawRequest(t, { method: 'POST', path: `/${bucket}/mpu`, query: { uploadId }, body: `<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>` });
        expectError(r, 400, codes);
      }
    });
    // The upload survived all of it and still completes.
    const ok = await rawRequest(t, { method: 'POST', path: `/${bucket}/mpu`, query: { uploadId }, body: `<CompleteMultipartUpload>${part('1', partEtag)}</CompleteMultipartUpload>` });
    expect(ok.status, ok.text).toBe(200);
    expect((await rawRequest(t, { method: 'GET', path: `/${bucket}/mpu` })).text).toBe('only part');
    expect((await rawRequest(t, { method: 'DELETE', path: `/${bucket}/mpu` })).status).toBe(204);
  });
});

/** Sends raw bytes on one connection; resolves with everything read until close (bounded). */
function rawExchange(bytes: Buffer[], options: { halfClose?: boolean; waitMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(t.port, '127.0.0.1');
    const got: Buffer[] = [];
    const done = () => resolve(Buffer.concat(got).toString('latin1'));
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, options.waitMs ?? 3000);
    socket.on('data', (c: Buffer) => got.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      done();
    });
    socket.on('connect', () => {
      for (const b of bytes) socket.write(b);
      if (options.halfClose) socket.end();
    });
  });
}

async function signedHead(method: string, path: string, headers: Record<string, string>): Promise<string> {
  const signed = await signer(t).sign({ method, protocol: 'http:', hostname: '127.0.0.1', port: t.port, path, query: {}, headers: { host: `127.0.0.1:${t.port}`, ...headers } });
  const lines = Object.entries(signed.headers).map(([k, v]) => `${k}: ${String(v)}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('Content-Length that disagrees with the body', () => {
  it('shorter than a signed body: XAmzContentSHA256Mismatch; a smuggled request in the rest runs unauthenticated', async () => {
    await changesNothing(async () => {
      const body = Buffer.from('0123456789'.repeat(100));
      // What follows the declared length parses as a second request: it has
      // no signature of its own, so it must be refused, not run.
      const smuggled = Buffer.from(`DELETE /${bucket}/existing HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n`);
      const full = Buffer.concat([body, smuggled]);
      const head = await signedHead('PUT', `/${bucket}/short-cl`, { 'content-length': String(body.length), 'x-amz-content-sha256': sha256(full) });
      const out = await rawExchange([Buffer.from(head), full], { waitMs: 1000 });
      expect(out).toMatch(/^HTTP\/1\.1 400/);
      expect(out).toContain('<Code>XAmzContentSHA256Mismatch</Code>');
      expect(out).not.toMatch(/HTTP\/1\.1 2\d\d/);
    });
    await stillServes();
  });

  it('shorter than the body, the rest garbage: refused, nothing stored, no 2xx', async () => {
    await changesNothing(async () => {
      const body = Buffer.from('abcdefghij'.repeat(50));
      const md5 = createHash('md5').update(body).digest('base64');
      // Content-MD5 names the whole body; the declared first 100 bytes do not match it.
      const head = await signedHead('PUT', `/${bucket}/short-md5`, { 'content-length': String(100), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-md5': md5 });
      const out = await rawExchange([Buffer.from(head), body], { waitMs: 1000 });
      // Node's parser may answer the garbage before the PUT's own BadDigest; either way a 400.
      expect(out).toMatch(/^HTTP\/1\.1 400/);
      expect(out).toMatch(/<Code>(BadDigest|BadRequest)<\/Code>/);
      expect(out).not.toMatch(/HTTP\/1\.1 2\d\d/);
    });
    await stillServes();
  });

  it('longer than the body, then the client half-closes: no object, no temp file', async () => {
    await changesNothing(async () => {
      const head = await signedHead('PUT', `/${bucket}/long-cl`, { 'content-length': String(100_000), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' });
      await rawExchange([Buffer.from(head), Buffer.alloc(40_000, 7)], { halfClose: true });
      await sleep(100);
    });
    await stillServes();
  });

  it('longer than the body, and the client goes silent then resets: no object, no temp file', async () => {
    await changesNothing(async () => {
      const head = await signedHead('PUT', `/${bucket}/silent`, { 'content-length': String(100_000), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' });
      await rawExchange([Buffer.from(head), Buffer.alloc(300, 7)], { waitMs: 300 });
      await sleep(100);
    });
    await stillServes();
  });
});

describe('keys on the wire', () => {
  it('invalid UTF-8 (bare continuation, overlong, surrogate, truncated) is InvalidArgument and writes nothing', async () => {
    await changesNothing(async () => {
      for (const bad of ['a%FFb', '%C0%AF', '%ED%A0%80', 'x%E2%82', '%80']) {
        const r = await rawRequest(t, { method: 'PUT', path: `/${bucket}/${bad}`, body: 'x' });
        expectError(r, 400, ['InvalidArgument']);
      }
      // And as a copy source.
      const c = await rawRequest(t, { method: 'PUT', path: `/${bucket}/copy-dst`, headers: { 'x-amz-copy-source': `/${bucket}/a%FFb` } });
      expectError(c, 400, ['InvalidArgument']);
    });
  });
});

describe('Range values that overflow', () => {
  const size = 'existing body'.length;
  it('a start past any size is 416 InvalidRange; an end past it is clamped; a huge suffix is the whole object', async () => {
    const start = await rawRequest(t, { method: 'GET', path: `/${bucket}/existing`, headers: { range: 'bytes=99999999999999999999-' } });
    expectError(start, 416, ['InvalidRange']);
    const end = await rawRequest(t, { method: 'GET', path: `/${bucket}/existing`, headers: { range: 'bytes=0-99999999999999999999' } });
    expect([end.status, end.text]).toEqual([206, 'existing body']);
    expect(end.headers['content-range']).toBe(`bytes 0-${size - 1}/${size}`);
    const suffix = await rawRequest(t, { method: 'GET', path: `/${bucket}/existing`, headers: { range: 'bytes=-99999999999999999999' } });
    expect([suffix.status, suffix.text]).toEqual([206, 'existing body']);
    // Past 2^53 and with exponent syntax: never a 500, never a wrong slice.
    for (const range of ['bytes=9007199254740993-9007199254740999', 'bytes=1e3-', 'bytes=0x1-2', 'bytes=2-1', 'bytes=--1']) {
      const r = await rawRequest(t, { method: 'GET', path: `/${bucket}/existing`, headers: { range } });
      expect([200, 206, 416], `${range}: ${r.status}`).toContain(r.status);
      if (r.status === 200) expect(r.text).toBe('existing body');
      if (r.status === 206) expect('existing body').toContain(r.text);
    }
  });
});

describe('framing the HTTP layer must refuse', () => {
  it('Content-Length together with Transfer-Encoding is refused, nothing stored', async () => {
    await changesNothing(async () => {
      const head = await signedHead('PUT', `/${bucket}/both-lengths`, { 'content-length': '5', 'transfer-encoding': 'chunked', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' });
      const out = await rawExchange([Buffer.from(head), Buffer.from('5\r\nhello\r\n0\r\n\r\n')], { waitMs: 1000 });
      expect(out).toMatch(/^HTTP\/1\.1 4\d\d/);
      expect(out).not.toMatch(/HTTP\/1\.1 2\d\d/);
    });
  });

  it('a PUT without Content-Length (chunked transfer) is MissingContentLength or stored exactly', async () => {
    const head = await signedHead('PUT', `/${bucket}/te-chunked`, { 'transfer-encoding': 'chunked', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' });
    const out = await rawExchange([Buffer.from(head), Buffer.from('5\r\nhello\r\n0\r\n\r\n')], { waitMs: 1000 });
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(out)?.[1]);
    if (status === 200) {
      expect((await rawRequest(t, { method: 'GET', path: `/${bucket}/te-chunked` })).text).toBe('hello');
      await rawRequest(t, { method: 'DELETE', path: `/${bucket}/te-chunked` });
    } else {
      expect(out).toContain('<Code>MissingContentLength</Code>');
      expect((await rawRequest(t, { method: 'HEAD', path: `/${bucket}/te-chunked` })).status).toBe(404);
    }
  });
});
