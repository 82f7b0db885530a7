// The ReplicaTarget contract (src/replica/target.ts): what the primary's
// replication core relies on from ANY secondary, run against every
// implementation (issue 5: "The contract suite of the target interface runs
// against the gateway secondary and both servers"). Not a test file itself:
// each *.test.ts calls `targetContract` with a factory for its target.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContentHeaders, ObjectMeta } from '../../src/objects/types.ts';
import type { ReplicaTarget } from '../../src/replica/target.ts';
import { FencedError, StaleSessionError } from '../../src/replica/target.ts';
import { replicaWireVersion } from '../../src/replica/messages.ts';
import type { RecordMessage } from '../../src/replica/messages.ts';
import type { LocationEntry } from '../../src/predict/types.ts';

/** A replica as a client of the secondary reads it back. */
export interface ReadBack {
  body: Buffer;
  etag: string;
  headers: ContentHeaders;
  /** Without the target's own reserved names. */
  userMeta: Record<string, string>;
  tags: Record<string, string>;
}

/** One isolated secondary (its own record, its own objects). */
export interface TargetSite {
  /** A new target instance over the same durable storage: what a primary
   * gets after a restart. Instances are closed by the suite. */
  open(): Promise<ReplicaTarget>;
  read(bucket: string, key: string): Promise<ReadBack | undefined>;
  close(): Promise<void>;
}

export interface TargetContractSetup {
  newSite(): Promise<TargetSite>;
  /** Keeps a tombstone so a copy older than a delete is dropped (a
   * gateway does; plain S3 without versioning does not). */
  tombstones: boolean;
  /** Multipart objects up to this size are exercised (0: skip). */
  multipartBytes: number;
  /** The target computes multipart ETags as md5-of-part-md5s "-N" (AWS,
   * MinIO, moto, a gateway); s3rver uses the whole body's MD5. */
  multipartEtags: boolean;
  /** Keys the target's storage cannot hold, with the reason in the setup
   * (s3rver maps keys to file paths, so "a//b" collapses). */
  unsupportedKey?: (key: string) => boolean;
}

const epoch = 1;
const mib = 1024 * 1024;

function entry(id: number, key: string): LocationEntry {
  return { id, name: `k/contract/${key}` };
}

function message(session: number, msgId: number, add: LocationEntry[], remove: number[] = []): RecordMessage {
  return { v: replicaWireVersion, epoch, from: 'contract-primary', session, msgId, add, remove };
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

function meta(bucket: string, key: string, body: Buffer, seq: number, extra: Partial<ObjectMeta> = {}): ObjectMeta {
  return {
    v: 1,
    bucket,
    key,
    size: body.length,
    etag: md5(body),
    lastModified: Date.now(),
    seq,
    headers: {},
    userMeta: {},
    tags: {},
    blobs: [],
    ...extra,
  };
}

/** "md5 of the part md5s - N", the usual multipart ETag. */
function multipartEtag(parts: Buffer[]): string {
  const digests = parts.map((p) => createHash('md5').update(p).digest());
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}`;
}

function ids(entries: LocationEntry[]): number[] {
  return entries.map((e) => e.id).sort((a, b) => a - b);
}

/** Byte pattern that differs per seed, so a wrong version is visible. */
function pattern(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed * 7) & 0xff;
  return buf;
}

export function targetContract(name: string, setup: () => Promise<TargetContractSetup>): void {
  describe(`ReplicaTarget contract: ${name}`, () => {
    let config: TargetContractSetup;
    const cleanups: Array<() => Promise<void>> = [];

    beforeAll(async () => {
      config = await setup();
    });

    afterAll(async () => {
      for (const fn of cleanups.reverse()) await fn().catch(() => {});
    });

    async function site(): Promise<TargetSite> {
      const s = await config.newSite();
      cleanups.push(() => s.close());
      return s;
    }

    async function open(s: TargetSite): Promise<ReplicaTarget> {
      const t = await s.open();
      cleanups.push(() => t.close());
      return t;
    }

    async function withBucket(t: ReplicaTarget, bucket: string): Promise<void> {
      await t.putBucket({ epoch, bucket, exists: true, region: 'us-east-1', seq: 1 });
    }

    it('opens a session on an empty target: no entries, msgId 0, healthy secondary', async () => {
      const t = await open(await site());
      const info = await t.openSession('contract-primary', epoch);
      expect(info.entries).toEqual([]);
      expect(info.lastMsgId).toBe(0);
      expect(info.session).toBeGreaterThanOrEqual(1);
      expect(info.epoch).toBe(epoch);
      const health = await t.health();
      expect(health).toMatchObject({ role: 'secondary', epoch, recordSize: 0 });
    });

    it('keeps added and removed entries across a fresh target instance (primary restart)', async () => {
      const s = await site();
      const t1 = await open(s);
      const first = await t1.openSession('contract-primary', epoch);
      const a1 = await t1.applyRecord(message(first.session, first.lastMsgId + 1, [entry(1, 'a'), entry(2, 'b'), entry(3, 'c')]));
      expect(a1).toMatchObject({ duplicate: false, recordSize: 3 });
      // Removal first, then addition; an id in both stays.
      const a2 = await t1.applyRecord(message(first.session, first.lastMsgId + 2, [entry(4, 'd'), entry(3, 'c')], [2, 3]));
      expect(a2).toMatchObject({ duplicate: false, recordSize: 3 });
      await t1.close();

      const t2 = await open(s);
      const second = await t2.openSession('contract-primary', epoch);
      expect(second.session).toBeGreaterThan(first.session);
      expect(second.lastMsgId).toBe(first.lastMsgId + 2);
      expect(ids(second.entries)).toEqual([1, 3, 4]);
      expect(second.entries.find((e) => e.id === 4)?.name).toBe('k/contract/d');
      // The old session is refused by the new instance.
      await expect(t2.applyRecord(message(first.session, second.lastMsgId + 1, [entry(9, 'z')]))).rejects.toBeInstanceOf(StaleSessionError);
      // A third instance still sees exactly the same record (the refused
      // message changed nothing).
      const t3 = await open(s);
      const third = await t3.openSession('contract-primary', epoch);
      expect(ids(third.entries)).toEqual([1, 3, 4]);
    });

    it('acks a duplicate msgId without applying it again, also after a restart', async () => {
      const s = await site();
      const t1 = await open(s);
      const info = await t1.openSession('contract-primary', epoch);
      const m1 = message(info.session, info.lastMsgId + 1, [entry(10, 'x')]);
      expect((await t1.applyRecord(m1)).duplicate).toBe(false);
      const again = await t1.applyRecord({ ...m1, add: [entry(11, 'y')] });
      expect(again).toMatchObject({ msgId: m1.msgId, duplicate: true, recordSize: 1 });
      await t1.close();
      const t2 = await open(s);
      const next = await t2.openSession('contract-primary', epoch);
      expect(ids(next.entries)).toEqual([10]);
      const late = await t2.applyRecord(message(next.session, m1.msgId, [entry(12, 'w')]));
      expect(late.duplicate).toBe(true);
      const m2 = await t2.applyRecord(message(next.session, next.lastMsgId + 1, [entry(12, 'w')], [10]));
      expect(m2).toMatchObject({ duplicate: false, recordSize: 1 });
    });

    it('fences a primary whose epoch is older than one the target has seen', async () => {
      const s = await site();
      const newer = await open(s);
      const info = await newer.openSession('new-primary', epoch + 1);
      expect(info.epoch).toBe(epoch + 1);
      const old = await open(s);
      await expect(old.openSession('old-primary', epoch)).rejects.toBeInstanceOf(FencedError);
      await expect(newer.applyRecord({ ...message(info.session, info.lastMsgId + 1, [entry(1, 'a')]), epoch })).rejects.toBeInstanceOf(FencedError);
      const body = Buffer.from('fenced');
      await expect(newer.putObject({ epoch, meta: meta('fence-bkt', 'k', body, 5) }, Readable.from([body]))).rejects.toBeInstanceOf(FencedError);
    });

    it('copies objects with awkward keys, metadata, tags and content headers intact', async () => {
      const s = await site();
      const t = await open(s);
      await t.openSession('contract-primary', epoch);
      const bucket = 'contract-objects';
      await withBucket(t, bucket);
      const keys = ['plain.txt', 'a b/ü ñ 日本/x?y#z&=+%20.bin', 'dir//double/slash', ' lead and trail ', `deep/${'n'.repeat(200)}/leaf`, '~!@$^*()[]{};\',.'];
      let seq = 100;
      const usable = keys.filter((key) => !config.unsupportedKey?.(key));
      expect(usable.length).toBeGreaterThanOrEqual(keys.length - 1);
      for (const key of usable) {
        const body = Buffer.from(`body of ${key}`);
        const m = meta(bucket, key, body, ++seq, {
          headers: {
            contentType: 'text/x-contract; charset=utf-8',
            contentEncoding: 'identity',
            contentDisposition: 'attachment; filename="f.txt"',
            contentLanguage: 'de-CH',
            cacheControl: 'max-age=60',
            expires: 'Wed, 21 Oct 2037 07:28:00 GMT',
          },
          userMeta: { color: 'blue', 'multi-word': 'a value with spaces' },
          tags: { team: 'storage', 'with space': 'v=1+x:y/z@w' },
        });
        expect(await t.putObject({ epoch, meta: m }, Readable.from([body]))).toBe(true);
        const back = await s.read(bucket, key);
        expect(back, key).toBeDefined();
        expect(back?.body.equals(body), key).toBe(true);
        expect(back?.etag, key).toBe(m.etag);
        expect(back?.userMeta, key).toEqual(m.userMeta);
        expect(back?.tags, key).toEqual(m.tags);
        expect(back?.headers, key).toMatchObject({
          contentType: m.headers.contentType,
          contentEncoding: m.headers.contentEncoding,
          contentDisposition: m.headers.contentDisposition,
          contentLanguage: m.headers.contentLanguage,
          cacheControl: m.headers.cacheControl,
        });
        expect(new Date(back?.headers.expires ?? 0).getTime(), key).toBe(new Date(m.headers.expires as string).getTime());
      }
      // Deletes reach every key; a delete of a missing key succeeds.
      for (const key of usable) {
        expect(await t.deleteObject({ epoch, bucket, key, seq: ++seq })).toBe(true);
        expect(await s.read(bucket, key), key).toBeUndefined();
      }
      expect(await t.deleteObject({ epoch, bucket, key: 'never-existed', seq: ++seq })).toBe(true);
    });

    it('replaces an object with a newer copy, including dropping its tags and metadata', async () => {
      const s = await site();
      const t = await open(s);
      await t.openSession('contract-primary', epoch);
      const bucket = 'contract-overwrite';
      await withBucket(t, bucket);
      const v1 = Buffer.from('version one');
      await t.putObject({ epoch, meta: meta(bucket, 'k', v1, 10, { tags: { a: '1' }, userMeta: { old: 'x' } }) }, Readable.from([v1]));
      const v2 = Buffer.from('version two, longer');
      expect(await t.putObject({ epoch, meta: meta(bucket, 'k', v2, 11) }, Readable.from([v2]))).toBe(true);
      const back = await s.read(bucket, 'k');
      expect(back?.body.toString()).toBe('version two, longer');
      expect(back?.tags).toEqual({});
      expect(back?.userMeta).toEqual({});
    });

    it('does not install a stale copy over a newer one, nor delete a newer one', async () => {
      const s = await site();
      const t = await open(s);
      await t.openSession('contract-primary', epoch);
      const bucket = 'contract-stale';
      await withBucket(t, bucket);
      const newer = Buffer.from('newer version');
      const older = Buffer.from('older version!');
      expect(await t.putObject({ epoch, meta: meta(bucket, 'k', newer, 20) }, Readable.from([newer]))).toBe(true);
      expect(await t.putObject({ epoch, meta: meta(bucket, 'k', older, 19) }, Readable.from([older]))).toBe(false);
      expect((await s.read(bucket, 'k'))?.body.toString()).toBe('newer version');
      // A fresh instance (primary restart) still refuses it: the seq is on S.
      const t2 = await open(s);
      await t2.openSession('contract-primary', epoch);
      expect(await t2.putObject({ epoch, meta: meta(bucket, 'k', older, 19) }, Readable.from([older]))).toBe(false);
      expect(await t2.deleteObject({ epoch, bucket, key: 'k', seq: 18 })).toBe(false);
      expect((await s.read(bucket, 'k'))?.body.toString()).toBe('newer version');
      expect(await t2.deleteObject({ epoch, bucket, key: 'k', seq: 21 })).toBe(true);
      expect(await s.read(bucket, 'k')).toBeUndefined();
      if (config.tombstones) {
        expect(await t2.putObject({ epoch, meta: meta(bucket, 'k', older, 19) }, Readable.from([older]))).toBe(false);
        expect(await s.read(bucket, 'k')).toBeUndefined();
      }
    });

    it('copies a multipart object with its part sizes (same multipart ETag) and a streamed body', async () => {
      if (config.multipartBytes === 0) return;
      const s = await site();
      const t = await open(s);
      await t.openSession('contract-primary', epoch);
      const bucket = 'contract-multipart';
      await withBucket(t, bucket);
      const first = pattern(5 * mib, 1);
      const second = pattern(Math.max(1, config.multipartBytes - 5 * mib), 2);
      const body = Buffer.concat([first, second]);
      const m = meta(bucket, 'big/object.bin', body, 30, {
        etag: multipartEtag([first, second]),
        partSizes: [first.length, second.length],
        userMeta: { kind: 'multipart' },
        tags: { size: 'big' },
        headers: { contentType: 'application/x-big' },
      });
      // Chunks of 64 KiB: the target must not rely on one Buffer.
      const chunks = Array.from({ length: Math.ceil(body.length / 65536) }, (_, i) => body.subarray(i * 65536, (i + 1) * 65536));
      expect(await t.putObject({ epoch, meta: m }, Readable.from(chunks))).toBe(true);
      const back = await s.read(bucket, 'big/object.bin');
      expect(back?.body.length).toBe(body.length);
      expect(back?.body.equals(body)).toBe(true);
      expect(back?.etag).toBe(config.multipartEtags ? m.etag : md5(body));
      expect(back?.userMeta).toEqual({ kind: 'multipart' });
      expect(back?.tags).toEqual({ size: 'big' });
      expect(back?.headers.contentType).toBe('application/x-big');
    });

    it('reports health with the record size after messages', async () => {
      const t = await open(await site());
      const info = await t.openSession('contract-primary', epoch);
      await t.applyRecord(message(info.session, info.lastMsgId + 1, [entry(1, 'a'), entry(2, 'b')]));
      const health = await t.health();
      expect(health).toEqual({ role: 'secondary', epoch, recordSize: 2 });
    });
  });
}
