// A replica body must match the ETag its signed metadata names before the
// secondary's store commits it: single-PUT bodies by MD5, multipart bodies by
// the MD5 of their parts' MD5s (split at the recorded part sizes). A body
// damaged in transit (same length, one byte changed) is BadDigest, commits
// nothing and leaves no temp file; the intact body then applies.

import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Error } from '../../src/core/errors.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import type { ObjectMeta } from '../../src/objects/types.ts';
import { dataFiles } from './harness.ts';

let dir: string;
let db: ReturnType<typeof openMetaDb>;
let store: DiskObjectStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lookahead-replica-verify-'));
  db = openMetaDb(dir);
  store = await DiskObjectStore.open({ dataDir: dir, db });
});
afterAll(async () => {
  await store?.close();
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest();

function payload(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

function metaOf(key: string, body: Buffer, seq: number, parts?: Buffer[]): ObjectMeta {
  const etag = parts ? `${createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex')}-${parts.length}` : md5(body).toString('hex');
  return {
    v: 1,
    bucket: 'replicas',
    key,
    size: body.length,
    etag,
    lastModified: Date.now(),
    seq,
    headers: {},
    userMeta: {},
    tags: {},
    ...(parts ? { partSizes: parts.map((p) => p.length) } : {}),
    blobs: [],
  };
}

function damaged(body: Buffer, at: number): Buffer {
  const copy = Buffer.from(body);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

async function readBack(key: string): Promise<Buffer | undefined> {
  const reader = await store.openObject('replicas', key).catch(() => undefined);
  if (!reader) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of reader.stream()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('replica bodies are checked against their ETag before commit', () => {
  const cases: [string, () => { body: Buffer; parts?: Buffer[] }][] = [
    ['single PUT, in a file', () => ({ body: payload(300 * 1024, 1) })],
    ['single PUT, inline', () => ({ body: payload(3000, 2) })],
    ['multipart, two parts', () => {
      const parts = [payload(5 * 1024 * 1024, 3), payload(100 * 1024 + 1, 4)];
      return { body: Buffer.concat(parts), parts };
    }],
    ['multipart, three small parts (inline)', () => {
      const parts = [payload(1000, 5), payload(2000, 6), payload(17, 7)];
      return { body: Buffer.concat(parts), parts };
    }],
  ];

  let seq = 1000;
  for (const [name, make] of cases) {
    it(name, async () => {
      const { body, parts } = make();
      const key = name.replace(/\W+/g, '-');
      const meta = metaOf(key, body, ++seq, parts);
      const filesBefore = await dataFiles(dir);
      // A byte changed in every part in turn (and at the very end).
      const offsets = parts ? parts.map((_, i) => parts.slice(0, i).reduce((n, p) => n + p.length, 0) + 3) : [3];
      for (const at of [...offsets, body.length - 1]) {
        const err = await rejection(store.applyReplica(meta, Readable.from([damaged(body, at)])));
        expect(err, `byte ${at} changed`).toBeInstanceOf(S3Error);
        expect((err as S3Error).code).toBe('BadDigest');
      }
      expect(await readBack(key)).toBeUndefined();
      expect(await dataFiles(dir)).toEqual(filesBefore);
      expect(await store.applyReplica(meta, Readable.from([body]))).toBe(true);
      expect((await readBack(key))?.equals(body)).toBe(true);
    });
  }
});
