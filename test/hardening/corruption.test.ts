// A blob file damaged on disk (a flipped byte, truncated, extended) is
// detected while it streams: the client never receives a complete body of
// wrong bytes (the connection is cut before the last chunk, or a 500 when
// nothing had left yet), the log names the object and the request id, and
// the gateway keeps serving. Blobs are checked against the CRC32 recorded
// when they were written; records from before that (no CRC32) by the
// ETag's MD5.

import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { appendFile, open, stat, truncate } from 'node:fs/promises';
import http from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inlineBodyBytesMax, largeReadChunkBytes, largeReadFromBytes, readChunkBytes } from '../../src/core/limits.ts';
import { objectKey, openMetaDb, openMetaDbs } from '../../src/objects/meta-db.ts';
import type { ObjectMeta } from '../../src/objects/types.ts';
import { rawRequest, signer, xmlText, type Target } from '../helpers/http.ts';
import { capturingLogger, dataFiles, sleep, startHardGateway, type HardGateway } from './harness.ts';

const pair = { accessKeyId: 'CORRUPTIONKEY0000001', secretAccessKey: 'corruption-secret-0123456789abcdefghijk' };
const bucket = 'damaged';
const logLines: string[] = [];
let gw: HardGateway;
let t: Target;
let root: ReturnType<typeof openMetaDb>;

beforeAll(async () => {
  gw = await startHardGateway({ pairs: [pair], logger: capturingLogger(logLines), openDb: (dir) => (root = openMetaDb(dir)) });
  t = gw.as();
  expect((await rawRequest(t, { method: 'PUT', path: `/${bucket}` })).status).toBe(200);
});
afterAll(async () => {
  await gw?.close();
});

function payload(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

/** PUTs `body` and returns the blob file the write created. */
async function putAndFindBlob(key: string, body: Buffer): Promise<string> {
  const before = new Set(await dataFiles(gw.dataDir));
  const r = await rawRequest(t, { method: 'PUT', path: `/${bucket}/${key}`, body });
  expect(r.status, r.text).toBe(200);
  const added = (await dataFiles(gw.dataDir)).filter((f) => !before.has(f));
  expect(added, 'a body over the inline limit has exactly one blob file').toHaveLength(1);
  return added[0]!;
}

interface Download {
  status: number;
  requestId: string;
  /** The body arrived whole (as many bytes as content-length, cleanly ended). */
  complete: boolean;
  body: Buffer;
}

/** A signed GET that reports a cut connection instead of rejecting. */
async function download(path: string, headers: Record<string, string> = {}, opts: { pauseMs?: number } = {}): Promise<Download> {
  const signed = await signer(t).sign({
    method: 'GET',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: t.port,
    path,
    query: {},
    headers: { host: `127.0.0.1:${t.port}`, 'x-amz-content-sha256': createHash('sha256').update('').digest('hex'), ...headers },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('download hung: a short body must cut the connection')), 10_000);
    const req = http.request({ host: '127.0.0.1', port: t.port, method: 'GET', path, headers: signed.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const finish = (complete: boolean) => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks);
        const length = Number(res.headers['content-length']);
        resolve({ status: res.statusCode ?? 0, requestId: String(res.headers['x-amz-request-id']), complete: complete && body.length === length, body });
      };
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        // A slow reader: the server's socket fills and its writes wait.
        if (opts.pauseMs !== undefined && chunks.length % 16 === 0) {
          res.pause();
          setTimeout(() => res.resume(), opts.pauseMs);
        }
      });
      res.on('end', () => finish(res.complete));
      res.on('error', () => finish(false));
      res.on('aborted', () => finish(false));
    });
    // Cut before the headers left (the whole body was the held-back chunk).
    req.on('error', () => {
      clearTimeout(timer);
      resolve({ status: 0, requestId: '', complete: false, body: Buffer.alloc(0) });
    });
    req.end();
  });
}

async function logMentions(requestId: string, text: string): Promise<boolean> {
  expect(requestId, 'the response headers (and request id) arrived').toMatch(/^[0-9A-F]{16}$/);
  for (let i = 0; i < 50; i++) {
    if (logLines.some((l) => l.includes(requestId) && l.includes(text))) return true;
    await sleep(20);
  }
  return false;
}

async function stillServes(): Promise<void> {
  const r = await rawRequest(t, { method: 'PUT', path: `/${bucket}/canary`, body: 'canary' });
  expect(r.status).toBe(200);
  expect((await rawRequest(t, { method: 'GET', path: `/${bucket}/canary` })).text).toBe('canary');
}

async function flipByte(file: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, offset);
    one[0] = one[0]! ^ 0x5a;
    await fh.write(one, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

describe('a damaged blob is not served as good', () => {
  it('an intact object reads back whole (the check passes good data)', async () => {
    const body = payload(700 * 1024, 1);
    await putAndFindBlob('intact', body);
    const d = await download(`/${bucket}/intact`);
    expect(d.complete).toBe(true);
    expect(d.body.equals(body)).toBe(true);
  });

  it('a flipped byte: the body is cut short, the log names the object and request id', async () => {
    const body = payload(600 * 1024, 2);
    const file = await putAndFindBlob('flipped', body);
    await flipByte(file, 300 * 1024);
    const d = await download(`/${bucket}/flipped`);
    expect(d.status).toBe(200);
    expect(d.complete, 'a complete body would pass bad bytes as good').toBe(false);
    expect(d.body.length).toBeLessThan(body.length);
    expect(await logMentions(d.requestId, `of bytes 0-${body.length - 1} does not match the stored CRC32`)).toBe(true);
    expect(logLines.find((l) => l.includes(d.requestId))).toContain('flipped');
    await stillServes();
  });

  it('a flipped byte in the last chunk is caught too (the last chunk is held back)', async () => {
    const body = payload(300 * 1024, 3);
    const file = await putAndFindBlob('flipped-tail', body);
    await flipByte(file, body.length - 1);
    const d = await download(`/${bucket}/flipped-tail`);
    // Two chunks: the first is still held when the second fails the CRC, so
    // nothing has left and the answer is a 500; never a complete 200.
    expect(d.status === 200 && d.complete).toBe(false);
    expect(d.body.equals(body)).toBe(false);
    await stillServes();
  });

  it('a large single PUT (read in large chunks) with a flipped byte is cut short', async () => {
    const body = payload(largeReadFromBytes + 3 * largeReadChunkBytes + 5, 11);
    const file = await putAndFindBlob('large-flipped', body);
    const good = await download(`/${bucket}/large-flipped`);
    expect(good.complete).toBe(true);
    expect(good.body.equals(body)).toBe(true);
    await flipByte(file, largeReadFromBytes + 17);
    const bad = await download(`/${bucket}/large-flipped`);
    expect(bad.status).toBe(200);
    expect(bad.complete).toBe(false);
    expect(bad.body.length).toBeLessThan(body.length);
    expect(await logMentions(bad.requestId, 'does not match the stored CRC32')).toBe(true);
    await stillServes();
  });

  it('a large blob truncated on disk is cut short (the store pump path)', async () => {
    const body = payload(largeReadFromBytes + 2 * largeReadChunkBytes, 15);
    const file = await putAndFindBlob('large-truncated', body);
    await truncate(file, largeReadFromBytes + 100);
    const d = await download(`/${bucket}/large-truncated`);
    expect(d.complete).toBe(false);
    expect(d.body.length).toBeLessThan(body.length);
    expect(await logMentions(d.requestId, 'were expected (truncated)')).toBe(true);
    await stillServes();
  });

  it('concurrent large GETs with slow readers each get their own bytes (pooled read buffers)', async () => {
    const bodies = [payload(largeReadFromBytes + 5, 16), payload(largeReadFromBytes + largeReadChunkBytes + 7, 17)];
    for (const [i, b] of bodies.entries()) await putAndFindBlob(`large-concurrent-${i}`, b);
    const gets = [0, 1, 0, 1, 0, 1].map((i) => download(`/${bucket}/large-concurrent-${i}`, {}, { pauseMs: 1 }).then((d) => ({ i, d })));
    for (const { i, d } of await Promise.all(gets)) {
      expect(d.complete).toBe(true);
      expect(d.body.equals(bodies[i]!)).toBe(true);
    }
  });

  it('damage found before anything was sent (a one-chunk body) is a 500 InternalError, not a hang-up', async () => {
    // Hashed (over the inline limit) and read in one chunk: the check fails before the headers leave.
    const size = Math.floor((inlineBodyBytesMax + readChunkBytes) / 2);
    const body = payload(size, 8);
    const file = await putAndFindBlob('one-chunk', body);
    await flipByte(file, 5);
    const r = await rawRequest(t, { method: 'GET', path: `/${bucket}/one-chunk` });
    expect(r.status, r.text).toBe(500);
    expect(xmlText(r.text, 'Code')).toBe('InternalError');
    expect(r.headers.etag, 'no object headers on the error').toBeUndefined();
    expect(r.text).not.toContain(gw.dataDir);
    const requestId = String(r.headers['x-amz-request-id']);
    expect(await logMentions(requestId, 'does not match the stored CRC32')).toBe(true);
    await stillServes();
  });

  it('a truncated blob is detected by size on whole and ranged reads, without hanging', async () => {
    const body = payload(1024 * 1024, 4);
    const file = await putAndFindBlob('truncated', body);
    await truncate(file, 600 * 1024);
    const whole = await download(`/${bucket}/truncated`);
    expect(whole.complete).toBe(false);
    expect(await logMentions(whole.requestId, 'were expected (truncated)')).toBe(true);
    const ranged = await download(`/${bucket}/truncated`, { range: 'bytes=100000-700000' });
    expect(ranged.complete).toBe(false);
    // A range inside what is left is still served (and is correct).
    const inside = await download(`/${bucket}/truncated`, { range: 'bytes=0-1023' });
    expect(inside.complete).toBe(true);
    expect(inside.body.equals(body.subarray(0, 1024))).toBe(true);
    await stillServes();
  });

  it('a blob with bytes appended is detected on a whole read', async () => {
    const body = payload(300 * 1024, 5);
    const file = await putAndFindBlob('extended', body);
    await appendFile(file, Buffer.alloc(10, 1));
    const d = await download(`/${bucket}/extended`);
    // Either the extra bytes or the hash give it away; never a clean complete body.
    expect(d.complete && d.body.equals(body) === false).toBe(false);
    await stillServes();
  });

  it('a multipart object with a flipped byte in one part is cut short, naming that part', async () => {
    const parts = [payload(5 * 1024 * 1024, 6), payload(213 * 1024 + 17, 7)];
    const blobs = await multipartPut('mpu', parts);
    const good = await download(`/${bucket}/mpu`);
    expect(good.complete).toBe(true);
    expect(good.body.equals(Buffer.concat(parts))).toBe(true);
    await flipByte(blobs[1]!, 10);
    const bad = await download(`/${bucket}/mpu`);
    expect(bad.complete).toBe(false);
    const part2 = `${parts[0]!.length}-${parts[0]!.length + parts[1]!.length - 1}`;
    expect(await logMentions(bad.requestId, `of bytes ${part2} does not match the stored CRC32`)).toBe(true);
    await stillServes();
  });

  it('a ranged or partNumber read that spans a whole part checks it; a range inside a part is size-only', async () => {
    const parts = [payload(5 * 1024 * 1024, 12), payload(5 * 1024 * 1024 + 9, 13), payload(100 * 1024, 14)];
    const blobs = await multipartPut('mpu-ranged', parts);
    const p1 = parts[0]!.length;
    const p2 = p1 + parts[1]!.length;
    const spanning = `bytes=${p1 - 100}-${p2 + 100}`; // all of part 2, a bit of 1 and 3
    const whole = Buffer.concat(parts);
    const good = await download(`/${bucket}/mpu-ranged`, { range: spanning });
    expect(good.complete).toBe(true);
    expect(good.body.equals(whole.subarray(p1 - 100, p2 + 101))).toBe(true);
    await flipByte(blobs[1]!, 1000);
    const bad = await download(`/${bucket}/mpu-ranged`, { range: spanning });
    expect(bad.status).toBe(206);
    expect(bad.complete).toBe(false);
    expect(await logMentions(bad.requestId, `of bytes ${p1}-${p2 - 1} does not match the stored CRC32`)).toBe(true);
    const byNumber = await download(`/${bucket}/mpu-ranged?partNumber=2`);
    expect(byNumber.status === 206 && byNumber.complete).toBe(false);
    // Part 3 is intact and read whole; part 1 is read only in part (not checkable).
    const partThree = await download(`/${bucket}/mpu-ranged`, { range: `bytes=${p2}-${whole.length - 1}` });
    expect(partThree.complete).toBe(true);
    expect(partThree.body.equals(parts[2]!)).toBe(true);
    await flipByte(blobs[0]!, 50);
    const inside = await download(`/${bucket}/mpu-ranged`, { range: 'bytes=0-99999' });
    expect(inside.complete, 'a range inside a blob has only its length checked').toBe(true);
    await stillServes();
  });

  it('a replica of a single PUT object records its CRC32 and is verified by it', async () => {
    const body = payload(900 * 1024 + 1, 15);
    const added = await applyReplicaAndFindBlob('replica-single', body, createHash('md5').update(body).digest('hex'));
    expect((await gw.store.headObject(bucket, 'replica-single')).blobs[0]?.crc32).toBe(zlib.crc32(body));
    await flipByte(added, 123_457);
    const bad = await download(`/${bucket}/replica-single`);
    expect(bad.complete).toBe(false);
    expect(await logMentions(bad.requestId, 'does not match the stored CRC32')).toBe(true);
  });

  it('a replica of a multipart object (one blob, recorded part sizes) is verified too', async () => {
    const parts = [payload(5 * 1024 * 1024, 9), payload(77 * 1024 + 3, 10)];
    const body = Buffer.concat(parts);
    const added = await applyReplicaAndFindBlob('replica-mpu', body, multipartEtagOf(parts), parts.map((p) => p.length));
    await flipByte(added, body.length - 10);
    const bad = await download(`/${bucket}/replica-mpu`);
    expect(bad.complete).toBe(false);
    expect(await logMentions(bad.requestId, `of bytes 0-${body.length - 1} does not match the stored CRC32`)).toBe(true);
  });

  it('records written before blob CRC32s (none recorded) are still verified by the ETag MD5', async () => {
    const single = payload(700 * 1024, 16);
    const singleBlob = await putAndFindBlob('old-single', single);
    const parts = [payload(5 * 1024 * 1024, 17), payload(50 * 1024, 18)];
    const mpuBlobs = await multipartPut('old-mpu', parts);
    for (const key of ['old-single', 'old-mpu']) await rewriteWithoutCrc(key);
    const intact = await download(`/${bucket}/old-mpu`);
    expect(intact.complete, 'an old record without CRC32 still reads').toBe(true);
    expect(intact.body.equals(Buffer.concat(parts))).toBe(true);
    await flipByte(singleBlob, 4000);
    await flipByte(mpuBlobs[1]!, 7);
    for (const key of ['old-single', 'old-mpu']) {
      const bad = await download(`/${bucket}/${key}`);
      expect(bad.complete, key).toBe(false);
      expect(await logMentions(bad.requestId, 'does not match the stored ETag'), key).toBe(true);
    }
    await stillServes();
  });
});

/** Uploads `parts` as a multipart object; returns the part blob files in part order. */
async function multipartPut(key: string, parts: Buffer[]): Promise<string[]> {
  const create = await rawRequest(t, { method: 'POST', path: `/${bucket}/${key}`, query: { uploads: '' } });
  const uploadId = /<UploadId>([^<]+)</.exec(create.text)![1]!;
  const etags: string[] = [];
  const blobs: string[] = [];
  for (const [i, part] of parts.entries()) {
    const before = new Set(await dataFiles(gw.dataDir));
    const r = await rawRequest(t, { method: 'PUT', path: `/${bucket}/${key}`, query: { partNumber: String(i + 1), uploadId }, body: part });
    expect(r.status, r.text).toBe(200);
    etags.push(String(r.headers.etag));
    const added = (await dataFiles(gw.dataDir)).filter((f) => !before.has(f));
    expect(added).toHaveLength(1);
    blobs.push(added[0]!);
  }
  const xml = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
  expect((await rawRequest(t, { method: 'POST', path: `/${bucket}/${key}`, query: { uploadId }, body: xml })).status).toBe(200);
  const meta = await gw.store.headObject(bucket, key);
  expect(meta.blobs.map((b) => b.crc32), 'each part blob keeps the CRC32 of its bytes').toEqual(parts.map((p) => zlib.crc32(p)));
  return blobs;
}

function multipartEtagOf(parts: Buffer[]): string {
  const digests = parts.map((p) => createHash('md5').update(p).digest());
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}`;
}

/** Applies `body` as a secondary would (the primary's metadata, a fresh seq); returns its blob file. */
async function applyReplicaAndFindBlob(key: string, body: Buffer, etag: string, partSizes?: number[]): Promise<string> {
  const meta: ObjectMeta = {
    v: 1,
    bucket,
    key,
    size: body.length,
    etag,
    lastModified: Date.now(),
    seq: 1_000_000 + body.length,
    headers: {},
    userMeta: {},
    tags: {},
    ...(partSizes ? { partSizes } : {}),
    blobs: [],
  };
  const before = new Set(await dataFiles(gw.dataDir));
  expect(await gw.store.applyReplica(meta, Readable.from([body]))).toBe(true);
  const added = (await dataFiles(gw.dataDir)).filter((f) => !before.has(f));
  expect(added).toHaveLength(1);
  const good = await download(`/${bucket}/${key}`);
  expect(good.complete).toBe(true);
  expect(good.body.equals(body)).toBe(true);
  return added[0]!;
}

/** Rewrites an object's record as a build from before blob CRC32s stored it (format v1, no crc32). */
async function rewriteWithoutCrc(key: string): Promise<void> {
  const objects = openMetaDbs(root).objects;
  const meta = objects.get(objectKey(bucket, key))!;
  expect(meta.blobs.every((b) => b.crc32 !== undefined)).toBe(true);
  await objects.put(objectKey(bucket, key), { ...meta, blobs: meta.blobs.map(({ id, size }) => ({ id, size })) });
  expect((await gw.store.headObject(bucket, key)).blobs.some((b) => b.crc32 !== undefined)).toBe(false);
}

describe('a damaged source is not copied into a new, good-looking object', () => {
  it('CopyObject of a flipped source fails with InternalError and creates nothing', async () => {
    const body = payload(600 * 1024, 21);
    const file = await putAndFindBlob('copy-src', body);
    // The intact source copies fine (the check passes good data).
    const ok = await rawRequest(t, { method: 'PUT', path: `/${bucket}/copy-good`, headers: { 'x-amz-copy-source': `/${bucket}/copy-src` } });
    expect(ok.status, ok.text).toBe(200);
    expect((await rawRequest(t, { method: 'GET', path: `/${bucket}/copy-good` })).text.length).toBe(body.length);
    await flipByte(file, 123_456);
    const r = await rawRequest(t, { method: 'PUT', path: `/${bucket}/copy-dst`, headers: { 'x-amz-copy-source': `/${bucket}/copy-src` } });
    expect(r.status, r.text).toBe(500);
    expect(xmlText(r.text, 'Code')).toBe('InternalError');
    expect(await logMentions(String(r.headers['x-amz-request-id']), 'does not match the stored CRC32')).toBe(true);
    expect((await rawRequest(t, { method: 'HEAD', path: `/${bucket}/copy-dst` })).status).toBe(404);
    await stillServes();
  });

  it('UploadPartCopy of a flipped source fails and records no part', async () => {
    const body = payload(700 * 1024, 22);
    const file = await putAndFindBlob('part-src', body);
    await flipByte(file, 1000);
    const created = await rawRequest(t, { method: 'POST', path: `/${bucket}/part-dst`, query: { uploads: '' } });
    expect(created.status, created.text).toBe(200);
    const uploadId = xmlText(created.text, 'UploadId')!;
    const r = await rawRequest(t, {
      method: 'PUT',
      path: `/${bucket}/part-dst`,
      query: { partNumber: '1', uploadId },
      headers: { 'x-amz-copy-source': `/${bucket}/part-src` },
    });
    expect(r.status, r.text).toBe(500);
    const parts = await rawRequest(t, { method: 'GET', path: `/${bucket}/part-dst`, query: { uploadId } });
    expect(parts.status, parts.text).toBe(200);
    expect(parts.text).not.toContain('<Part>');
    await rawRequest(t, { method: 'DELETE', path: `/${bucket}/part-dst`, query: { uploadId } });
    await stillServes();
  });
});
