// The disk object store: blobs under <dataDir>/blobs, metadata in lmdb.
//
// Every mutation follows one shape:
//   1. cheap checks on current metadata (bad input fails before anything)
//   2. hooks.admit(intent), started at once, in parallel with the data write
//   3. data (if any) through durableWrite (src/core/durable.ts)
//   4. after the admission resolved: one lmdb child transaction that
//      re-checks, takes the next `seq`, writes the records and calls
//      hooks.committed({...intent, seq}) so replication's queue entry commits
//      with it
//   5. after the commit: hooks.settled (the ack may wait on the secondary:
//      claim 2's synchronous copy on a miss), then unlink replaced blobs
//      (deferred while readers pin them)
// A failure anywhere after step 2 calls hooks.aborted with the write's token
// (src/objects/hooked-write.ts), so its admission stops pinning record
// entries at once rather than at the end of its lease.
// Replica applies (applyReplica / applyReplicaDelete) are the replication
// itself: they call neither hook, keep the primary's seq, and raise this
// store's counter to at least that seq so a promoted secondary continues
// above everything it received.

import { hash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { readdir, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { RootDatabase } from 'lmdb';
import type { ChangeHooks, ChangeIntent } from '../core/changes.ts';
import { noReplication } from '../core/changes.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { BlobSpace, durableWrite, isInlineBlobId, newInlineBlobIds, unlinkQuietly } from '../core/durable.ts';
import { createHasher } from '../core/checksum.ts';
import { EtagHasher } from '../core/etag.ts';
import { S3Error } from '../core/errors.ts';
import { commitErrorWaitMs, inlineBodyBytesMax, keyBytesMax, largeReadChunkBytes, largeReadPoolBuffersMax, openObjectAttemptsMax, partNumberMax, partNumberMin, partSizeBytesMax, putObjectBytesMax } from '../core/limits.ts';
import { ReadBufferPool } from './pump.ts';
import { HookedWrite } from './hooked-write.ts';
import { scanPage } from './listing.ts';
import {
  bucketBase, bucketEnd, bucketKey, inlineKey, objectKey, openMetaDbs, partKey, partRange, recordVersion,
  seqKey, uploadKey, type MetaDbs, type PartRecord, type UploadRecord,
} from './meta-db.ts';
import { buildCompletedMeta, normalizeEtag, validateCompleteParts } from './multipart.ts';
import { BlobPins, PinnedReader } from './reader.ts';
import {
  objectMetaVersion,
  type BlobRef, type BodyDigest, type BucketInfo, type ChecksumAlgorithm, type CompletePart,
  type CopySource, type ListQuery, type ListResult, type ListUploadsQuery, type MultipartUpload,
  type ObjectMeta, type ObjectReader, type ObjectStore, type PartInfo, type PutObjectInput,
  type ReadRange, type ReplicaBody, type WriteAttributes,
} from './types.ts';
import { verifiedBody } from './verify-read.ts';

export { openMetaDb } from './meta-db.ts';

export interface DiskObjectStoreOptions {
  dataDir: string;
  /** lmdb root opened by the composition root (openMetaDb); the store opens its sub-dbs on it. */
  db: RootDatabase;
  hooks?: ChangeHooks;
  clock?: Clock;
  /** Region recorded for buckets a replica apply creates implicitly. */
  defaultRegion?: string;
  /** Bodies up to this size live in lmdb, not in files (0: always files). */
  inlineMaxBytes?: number;
}

const openFd = promisify(fs.open);

/** Thrown inside a replica commit to drop a stale copy (its blob is removed). */
class StaleReplica extends Error {}

export class DiskObjectStore implements ObjectStore {
  private readonly pins: BlobPins;
  /** Read buffers for large GETs (pump.ts). */
  private readonly readPool = new ReadBufferPool(largeReadChunkBytes, largeReadPoolBuffersMax);
  /** Unlinks of replaced blobs still running (bounded by the writes in flight). */
  private readonly unlinking = new Set<Promise<void>>();
  private closed = false;
  /** What the sweep on open removed (for logs and tests). */
  lastSweep: { tmp: number; orphans: number } = { tmp: 0, orphans: 0 };

  private constructor(
    private readonly space: BlobSpace,
    private readonly dbs: MetaDbs,
    private hooks: ChangeHooks,
    private readonly clock: Clock,
    private readonly defaultRegion: string,
    private readonly inlineMaxBytes: number,
  ) {
    this.pins = new BlobPins((id) => this.unlinkBlob(id));
  }

  /** Opens the store, creating its dirs, then sweeps temp files and orphan blobs. */
  static async open(options: DiskObjectStoreOptions): Promise<DiskObjectStore> {
    const space = new BlobSpace(options.dataDir);
    await space.ensureDirs();
    const store = new DiskObjectStore(
      space,
      openMetaDbs(options.db),
      options.hooks ?? noReplication,
      options.clock ?? systemClock,
      options.defaultRegion ?? 'us-east-1',
      options.inlineMaxBytes ?? inlineBodyBytesMax,
    );
    await store.sweep();
    return store;
  }

  private unlinkBlob(id: string): void {
    const p: Promise<void> = unlinkQuietly(this.space.pathOf(id))
      .catch(() => {}) // a leftover is swept on the next open
      .finally(() => this.unlinking.delete(p));
    this.unlinking.add(p);
  }

  /** Resolves when replaced blobs released so far are unlinked (tests, close). */
  async settled(): Promise<void> {
    await Promise.all([...this.unlinking]);
  }

  setChangeHooks(hooks: ChangeHooks): void {
    this.hooks = hooks;
  }

  /** Highest seq this store assigned or applied. */
  currentSeq(): number {
    return this.dbs.state.get(seqKey)?.seq ?? 0;
  }

  // ------------------------------------------------------------ plumbing

  /**
   * Crash recovery, run once on open before any write: empties tmp and
   * unlinks every blob file that no object or in-progress part references.
   * Cost: one pass over all object and part records (the referenced set is
   * held in memory, ~100 bytes per blob) plus one readdir of each of the 256
   * shard dirs: O(objects + parts + files). Fine for millions of objects; a
   * reverse blob index would make it O(files) if that ever matters.
   */
  private async sweep(): Promise<{ tmp: number; orphans: number }> {
    let tmp = 0;
    for (const name of await readdir(this.space.tmpDir)) {
      await rm(join(this.space.tmpDir, name), { recursive: true, force: true });
      tmp++;
    }
    const referenced = new Set<string>();
    for (const { value } of this.dbs.objects.getRange({})) for (const b of value.blobs) referenced.add(b.id);
    for (const { value } of this.dbs.parts.getRange({})) referenced.add(value.blobId);
    let orphans = await this.sweepInline(referenced);
    for (const shard of this.space.shards()) {
      const dir = join(this.space.blobDir, shard);
      for (const name of await readdir(dir)) {
        if (referenced.has(name)) continue;
        await unlinkQuietly(join(dir, name));
        orphans++;
      }
    }
    this.lastSweep = { tmp, orphans };
    return this.lastSweep;
  }

  /** Inline bodies are written and removed in the transactions that reference
   * and unreference them, so none should be orphaned; check anyway (cheap). */
  private async sweepInline(referenced: Set<string>): Promise<number> {
    const orphans = Array.from(this.dbs.inline.getKeys({}), (k) => k.toString('utf8')).filter((id) => !referenced.has(id));
    if (orphans.length > 0) await this.txn(() => orphans.forEach((id) => this.dbs.inline.remove(inlineKey(id))));
    return orphans.length;
  }

  /** Inside a transaction: drops the inline bodies among `ids` now (readers
   * copied theirs at open) and returns the file blobs to release after commit. */
  private forgetBlobs(ids: readonly string[]): string[] {
    const files: string[] = [];
    for (const id of ids) {
      if (isInlineBlobId(id)) this.dbs.inline.remove(inlineKey(id));
      else files.push(id);
    }
    return files;
  }

  /** Inside a transaction: stores an inline body under its blob id. */
  private keepInline(blob: BlobRef, inline?: Buffer): void {
    if (inline) this.dbs.inline.put(inlineKey(blob.id), inline);
  }

  /** Starts the admission (the caller awaits it before committing). */
  private begin(kind: ChangeIntent['kind'], bucket: string, key: string, uploadId?: string): HookedWrite {
    return new HookedWrite(this.hooks, { kind, bucket, key, ...(uploadId !== undefined ? { uploadId } : {}) });
  }

  /** One atomic, durable lmdb transaction (rolled back if `fn` throws). */
  private async txn<T>(fn: () => T): Promise<T> {
    if (this.closed) throw new S3Error('ServiceUnavailable', 'The store is closed.');
    try {
      return (await this.dbs.objects.childTransaction(fn)) as T;
    } catch (err) {
      throw await commitFailure(err);
    }
  }

  /** Inside a transaction: the next seq, persisted with the change. */
  private nextSeq(): number {
    const seq = this.currentSeq() + 1;
    this.dbs.state.put(seqKey, { v: recordVersion, seq });
    return seq;
  }

  /** Inside a transaction: raise the counter to at least `seq`. */
  private raiseSeq(seq: number): void {
    if (this.currentSeq() < seq) this.dbs.state.put(seqKey, { v: recordVersion, seq });
  }

  private requireBucket(bucket: string): void {
    // doesExist: the same lookup as get, without decoding a record we do not use.
    if (!this.dbs.buckets.doesExist(bucketKey(bucket))) {
      throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { extra: { BucketName: bucket } });
    }
  }

  private requireObject(bucket: string, key: string): ObjectMeta {
    this.requireBucket(bucket);
    const meta = this.dbs.objects.get(objectKey(bucket, key));
    if (!meta) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { extra: { Key: key } });
    return meta;
  }

  private requireUpload(bucket: string, key: string, uploadId: string): UploadRecord {
    this.requireBucket(bucket);
    const upload = this.dbs.uploads.get(uploadKey(bucket, key, uploadId));
    if (!upload) {
      throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { extra: { UploadId: uploadId } });
    }
    return upload;
  }

  private releaseBlobs(ids: readonly string[]): void {
    this.pins.release(ids);
  }

  private blobsOf(bucket: string, key: string): string[] {
    return this.dbs.objects.get(objectKey(bucket, key))?.blobs.map((b) => b.id) ?? [];
  }

  // -------------------------------------------------------------- buckets

  async createBucket(name: string, region: string): Promise<void> {
    if (this.dbs.buckets.get(bucketKey(name))) throw alreadyOwned(name);
    const w = this.begin('bucket-create', name, '');
    await w.run(async () => {
      await w.admission;
      await this.txn(() => {
        if (this.dbs.buckets.get(bucketKey(name))) throw alreadyOwned(name);
        const seq = this.nextSeq();
        this.dbs.buckets.put(bucketKey(name), { v: recordVersion, name, created: this.clock.now(), region });
        w.committed(seq);
      });
    });
  }

  async deleteBucket(name: string): Promise<void> {
    this.requireEmptyBucket(name);
    const w = this.begin('bucket-delete', name, '');
    await w.run(async () => {
      await w.admission;
      await this.txn(() => {
        this.requireEmptyBucket(name);
        const seq = this.nextSeq();
        this.dbs.buckets.remove(bucketKey(name));
        w.committed(seq);
      });
    });
  }

  private requireEmptyBucket(name: string): void {
    this.requireBucket(name);
    const range = { start: bucketBase(name), end: bucketEnd(name), limit: 1 };
    const hasObject = Array.from(this.dbs.objects.getKeys(range)).length > 0;
    const hasUpload = Array.from(this.dbs.uploads.getKeys(range)).length > 0;
    if (hasObject || hasUpload) {
      throw new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty', { extra: { BucketName: name } });
    }
  }

  async headBucket(name: string): Promise<BucketInfo> {
    const rec = this.dbs.buckets.get(bucketKey(name));
    if (!rec) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { extra: { BucketName: name } });
    return { name: rec.name, created: rec.created, region: rec.region };
  }

  async listBuckets(): Promise<BucketInfo[]> {
    const out: BucketInfo[] = [];
    for (const { value } of this.dbs.buckets.getRange({})) {
      out.push({ name: value.name, created: value.created, region: value.region });
    }
    return out;
  }

  // -------------------------------------------------------------- objects

  async putObject(input: PutObjectInput): Promise<ObjectMeta> {
    const { bucket, key } = input;
    checkKey(key);
    this.requireBucket(bucket);
    this.checkConditions(bucket, key, input);
    const w = this.begin('put', bucket, key);
    const algorithms = withAlgorithm(input.algorithms, input.checksumAlgorithm);
    const { meta, replaced } = await w.run(() =>
      durableWrite({
        space: this.space,
        body: input.body,
        digest: { algorithms, sha256: input.sha256 },
        verify: input.verify,
        maxBytes: putObjectBytesMax,
        inlineMaxBytes: this.inlineMaxBytes,
        admission: w.admission,
        commit: (blob, digest, inline) =>
          this.txn(() => {
            this.requireBucket(bucket);
            this.checkConditions(bucket, key, input);
            this.keepInline(blob, inline);
            const seq = this.nextSeq();
            const meta = this.newMeta(bucket, key, input, blob, digest, seq, input.checksumAlgorithm);
            const replaced = this.writeMeta(meta);
            // The copier may send this version from memory (same bytes as stored).
            w.committed(seq, inline ? { meta, body: inline } : undefined);
            return { meta, replaced };
          }),
      }),
    );
    this.releaseBlobs(replaced);
    return meta;
  }

  private newMeta(
    bucket: string,
    key: string,
    attrs: WriteAttributes,
    blob: BlobRef,
    digest: BodyDigest,
    seq: number,
    checksumAlgorithm?: ChecksumAlgorithm,
  ): ObjectMeta {
    const value = checksumAlgorithm ? digest.checksums[checksumAlgorithm] : undefined;
    return {
      v: objectMetaVersion,
      bucket,
      key,
      size: digest.size,
      etag: digest.md5Hex,
      lastModified: this.clock.now(),
      seq,
      headers: attrs.headers,
      userMeta: attrs.userMeta,
      tags: attrs.tags,
      ...(checksumAlgorithm && value ? { checksum: { algorithm: checksumAlgorithm, value, type: 'FULL_OBJECT' as const } } : {}),
      blobs: [blob],
    };
  }

  /** Inside a transaction: stores the version, returns the file blobs it replaced. */
  private writeMeta(meta: ObjectMeta): string[] {
    const replaced = this.forgetBlobs(this.blobsOf(meta.bucket, meta.key));
    this.dbs.objects.put(objectKey(meta.bucket, meta.key), meta);
    this.dbs.tombstones.remove(objectKey(meta.bucket, meta.key));
    return replaced;
  }

  /** If-None-Match: * and If-Match; run early and again inside the commit. */
  private checkConditions(bucket: string, key: string, c: { ifNoneMatchStar?: boolean; ifMatch?: string }): void {
    if (!c.ifNoneMatchStar && c.ifMatch === undefined) return;
    const current = this.dbs.objects.get(objectKey(bucket, key));
    if (c.ifNoneMatchStar && current) {
      throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { extra: { Condition: 'If-None-Match' } });
    }
    if (c.ifMatch !== undefined) {
      if (!current) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { extra: { Key: key } });
      if (normalizeEtag(c.ifMatch) !== current.etag && c.ifMatch.trim() !== '*') {
        throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { extra: { Condition: 'If-Match' } });
      }
    }
  }

  async openObject(bucket: string, key: string): Promise<ObjectReader> {
    for (let attempt = 1; ; attempt++) {
      const meta = this.requireObject(bucket, key);
      const inline = this.readInline(meta); // same snapshot as the meta
      const files = meta.blobs.map((b) => b.id).filter((id) => !isInlineBlobId(id));
      this.pins.pin(files); // same tick as the read: no unlink can slip between
      const first = meta.blobs[0];
      try {
        if (!inline) throw Object.assign(new Error('inline body vanished'), { code: 'ENOENT' });
        const fd = first && !isInlineBlobId(first.id) ? await openFd(this.space.pathOf(first.id), 'r') : undefined;
        const deps = { pins: this.pins, pathOf: (id: string) => this.space.pathOf(id), pool: this.readPool };
        return new PinnedReader(meta, deps, fd, inline);
      } catch (err) {
        this.pins.unpin(files);
        const vanished = (err as NodeJS.ErrnoException).code === 'ENOENT';
        if (!vanished || attempt >= openObjectAttemptsMax) throw err;
      }
    }
  }

  readInlineObject(bucket: string, key: string, copyBody?: (view: Buffer) => Buffer): ReplicaBody | null | undefined {
    // No bucket lookup: a bucket holding objects cannot be deleted.
    const meta = this.dbs.objects.get(objectKey(bucket, key));
    if (!meta) return null;
    const only = meta.blobs.length === 1 ? meta.blobs[0] : undefined;
    if (!only || !isInlineBlobId(only.id)) return undefined;
    // Same snapshot as the meta (no turn in between). lmdb-js's get returns
    // a copy (binary encoding); getBinaryFast a view of its shared buffer,
    // valid until the next read, which copyBody copies where it wants.
    if (copyBody === undefined) {
      const body = this.dbs.inline.get(inlineKey(only.id));
      return body ? { meta, body } : undefined;
    }
    const view = this.dbs.inline.getBinaryFast(inlineKey(only.id));
    return view ? { meta, body: copyBody(view) } : undefined;
  }

  /** Copies of the version's inline bodies (small: at most inlineBodyBytesMax each). */
  private readInline(meta: ObjectMeta): Map<string, Buffer> | undefined {
    const out = new Map<string, Buffer>();
    for (const b of meta.blobs) {
      if (!isInlineBlobId(b.id)) continue;
      const data = this.dbs.inline.get(inlineKey(b.id));
      if (!data) return undefined;
      out.set(b.id, Buffer.from(data));
    }
    return out;
  }

  async headObject(bucket: string, key: string): Promise<ObjectMeta> {
    return this.requireObject(bucket, key);
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    checkKey(key);
    this.requireBucket(bucket);
    const w = this.begin('delete', bucket, key);
    const replaced = await w.run(async () => {
      await w.admission;
      return this.txn(() => {
        const replaced = this.forgetBlobs(this.blobsOf(bucket, key));
        const seq = this.nextSeq();
        this.dbs.objects.remove(objectKey(bucket, key));
        w.committed(seq);
        return replaced;
      });
    });
    this.releaseBlobs(replaced);
  }

  /** A copy's source, checked like a GET (verify-read.ts): a damaged source
   * fails the copy instead of becoming a new object whose CRC32 and ETag
   * vouch for the damaged bytes. Always 'full': the CRC32 is cheap and a copy
   * is the one place where damage would be laundered into good checksums. */
  private verifiedSource(reader: ObjectReader, range: ReadRange | undefined): Readable {
    return verifiedBody(reader.meta, range, reader.stream(range), 'full');
  }

  async copyObject(
    source: CopySource,
    dest: { bucket: string; key: string },
    attrs: WriteAttributes | 'copy',
    conditions: { ifNoneMatchStar?: boolean } = {},
  ): Promise<ObjectMeta> {
    checkKey(dest.key);
    this.requireBucket(dest.bucket);
    this.checkConditions(dest.bucket, dest.key, conditions);
    const reader = await this.openObject(source.bucket, source.key);
    try {
      const src = reader.meta;
      const chosen: WriteAttributes = attrs === 'copy' ? { headers: src.headers, userMeta: src.userMeta, tags: src.tags } : attrs;
      const algorithm = src.checksum?.algorithm;
      const body = this.verifiedSource(reader, source.range); // a bad range fails before admission
      const w = this.begin('put', dest.bucket, dest.key);
      const expected = source.range ? source.range.end - source.range.start + 1 : src.size;
      const { meta, replaced } = await w.run(() =>
        durableWrite({
          space: this.space,
          body,
          digest: { algorithms: algorithm ? [algorithm] : [], sha256: false },
          verify: (d) => checkSize(d, expected),
          maxBytes: putObjectBytesMax,
          inlineMaxBytes: this.inlineMaxBytes,
          admission: w.admission,
          commit: (blob, digest, inline) =>
            this.txn(() => {
              this.requireBucket(dest.bucket);
              this.checkConditions(dest.bucket, dest.key, conditions);
              this.keepInline(blob, inline);
              const seq = this.nextSeq();
              const meta = this.newMeta(dest.bucket, dest.key, chosen, blob, digest, seq, algorithm);
              const replaced = this.writeMeta(meta);
              w.committed(seq);
              return { meta, replaced };
            }),
        }),
      );
      this.releaseBlobs(replaced);
      return meta;
    } finally {
      await reader.close();
    }
  }

  async setTags(bucket: string, key: string, tags: Record<string, string>): Promise<ObjectMeta> {
    this.requireObject(bucket, key);
    const w = this.begin('tagging', bucket, key);
    return w.run(async () => {
      await w.admission;
      return this.txn(() => {
        const current = this.requireObject(bucket, key);
        const seq = this.nextSeq();
        // The version's seq moves too, so a replica accepts the new tags.
        const meta: ObjectMeta = { ...current, tags, seq };
        this.dbs.objects.put(objectKey(bucket, key), meta);
        w.committed(seq);
        return meta;
      });
    });
  }

  async list(query: ListQuery): Promise<ListResult> {
    this.requireBucket(query.bucket);
    const base = bucketBase(query.bucket);
    const prefix = Buffer.from(query.prefix ?? '', 'utf8');
    const after = query.after !== undefined && query.after !== '' ? Buffer.from(query.after, 'utf8') : undefined;
    const fromPrefix = Buffer.concat([base, prefix]);
    const fromAfter = after ? Buffer.concat([base, after, Buffer.from([0])]) : undefined;
    const start = fromAfter && Buffer.compare(fromAfter, fromPrefix) > 0 ? fromAfter : fromPrefix;
    const page = scanPage({
      db: this.dbs.objects,
      base,
      end: bucketEnd(query.bucket),
      prefix,
      delimiter: query.delimiter ? Buffer.from(query.delimiter, 'utf8') : undefined,
      start,
      after,
      nameOf: (rel) => rel,
      max: query.maxKeys,
    });
    const objects: ObjectMeta[] = [];
    const commonPrefixes: string[] = [];
    let nextAfter: string | undefined;
    for (const item of page.items) {
      if (item.kind === 'value') {
        objects.push(item.value);
        nextAfter = item.value.key;
      } else {
        commonPrefixes.push(item.prefix);
        nextAfter = item.prefix;
      }
    }
    return { objects, commonPrefixes, isTruncated: page.isTruncated, ...(nextAfter !== undefined ? { nextAfter } : {}) };
  }

  // ------------------------------------------------------------ multipart

  async createMultipartUpload(
    bucket: string,
    key: string,
    attrs: WriteAttributes,
    checksum?: { algorithm: ChecksumAlgorithm; type: 'FULL_OBJECT' | 'COMPOSITE' },
  ): Promise<MultipartUpload> {
    checkKey(key);
    this.requireBucket(bucket);
    const uploadId = newUploadId(this.clock.now());
    const w = this.begin('mpu-create', bucket, key, uploadId);
    return w.run(async () => {
      await w.admission;
      return this.txn(() => {
        this.requireBucket(bucket);
        const seq = this.nextSeq();
        const upload: UploadRecord = {
          v: recordVersion,
          bucket,
          key,
          uploadId,
          initiated: this.clock.now(),
          attrs,
          ...(checksum ? { checksumAlgorithm: checksum.algorithm, checksumType: checksum.type } : {}),
        };
        this.dbs.uploads.put(uploadKey(bucket, key, uploadId), upload);
        w.committed(seq);
        return toUpload(upload);
      });
    });
  }

  async uploadPart(input: Parameters<ObjectStore['uploadPart']>[0]): Promise<PartInfo> {
    const { bucket, key, uploadId, partNumber } = input;
    checkPartNumber(partNumber);
    const upload = this.requireUpload(bucket, key, uploadId);
    const algorithm = upload.checksumAlgorithm;
    return this.writePart(upload, partNumber, {
      body: input.body,
      algorithms: withAlgorithm(input.algorithms, algorithm),
      sha256: input.sha256,
      verify: input.verify,
    });
  }

  async uploadPartCopy(input: Parameters<ObjectStore['uploadPartCopy']>[0]): Promise<PartInfo> {
    const { bucket, key, uploadId, partNumber, source } = input;
    checkPartNumber(partNumber);
    const upload = this.requireUpload(bucket, key, uploadId);
    const reader = await this.openObject(source.bucket, source.key);
    try {
      const expected = source.range ? source.range.end - source.range.start + 1 : reader.meta.size;
      const body = this.verifiedSource(reader, source.range);
      return await this.writePart(upload, partNumber, {
        body,
        algorithms: withAlgorithm([], upload.checksumAlgorithm),
        sha256: false,
        verify: (d) => checkSize(d, expected),
      });
    } finally {
      await reader.close();
    }
  }

  /** Streams one part to its blob and records it, replacing a previous upload of the number. */
  private async writePart(
    upload: UploadRecord,
    partNumber: number,
    data: { body: Readable; algorithms: ChecksumAlgorithm[]; sha256: boolean; verify: (d: BodyDigest) => void },
  ): Promise<PartInfo> {
    const { bucket, key, uploadId } = upload;
    const w = this.begin('mpu-part', bucket, key, uploadId);
    const algorithm = upload.checksumAlgorithm;
    const { part, replaced } = await w.run(() =>
      durableWrite({
        space: this.space,
        body: data.body,
        digest: { algorithms: data.algorithms, sha256: data.sha256 },
        verify: data.verify,
        maxBytes: partSizeBytesMax,
        inlineMaxBytes: 0, // parts stay files: Complete references them in place
        admission: w.admission,
        commit: (blob, digest) =>
          this.txn(() => {
            this.requireUpload(bucket, key, uploadId);
            const pk = partKey(uploadId, partNumber);
            const previous = this.dbs.parts.get(pk);
            const seq = this.nextSeq();
            const checksum = algorithm ? digest.checksums[algorithm] : undefined;
            const part: PartRecord = {
              v: recordVersion,
              partNumber,
              etag: digest.md5Hex,
              size: digest.size,
              lastModified: this.clock.now(),
              ...(algorithm && checksum ? { checksum, checksumAlgorithm: algorithm } : {}),
              blobId: blob.id,
              ...(blob.crc32 !== undefined ? { blobCrc32: blob.crc32 } : {}),
            };
            this.dbs.parts.put(pk, part);
            w.committed(seq);
            return { part, replaced: previous ? [previous.blobId] : [] };
          }),
      }),
    );
    this.releaseBlobs(replaced);
    return toPartInfo(part);
  }

  private loadParts(uploadId: string): PartRecord[] {
    return Array.from(this.dbs.parts.getRange(partRange(uploadId)), ({ value }) => value);
  }

  async completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: CompletePart[]): Promise<ObjectMeta> {
    const upload = this.requireUpload(bucket, key, uploadId);
    validateCompleteParts(this.loadParts(uploadId), parts);
    const w = this.begin('put', bucket, key, uploadId);
    const { meta, replaced } = await w.run(async () => {
      await w.admission;
      return this.txn(() => {
        this.requireUpload(bucket, key, uploadId);
        const stored = this.loadParts(uploadId);
        const chosen = validateCompleteParts(stored, parts);
        const seq = this.nextSeq();
        const meta = buildCompletedMeta(upload, chosen, seq, this.clock.now());
        const replaced = this.writeMeta(meta);
        const used = new Set(chosen.map((p) => p.blobId));
        for (const p of stored) {
          this.dbs.parts.remove(partKey(uploadId, p.partNumber));
          if (!used.has(p.blobId)) replaced.push(p.blobId);
        }
        this.dbs.uploads.remove(uploadKey(bucket, key, uploadId));
        w.committed(seq);
        return { meta, replaced };
      });
    });
    this.releaseBlobs(replaced);
    return meta;
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    this.requireUpload(bucket, key, uploadId);
    const w = this.begin('mpu-abort', bucket, key, uploadId);
    const replaced = await w.run(async () => {
      await w.admission;
      return this.txn(() => {
        this.requireUpload(bucket, key, uploadId);
        const stored = this.loadParts(uploadId);
        const seq = this.nextSeq();
        for (const p of stored) this.dbs.parts.remove(partKey(uploadId, p.partNumber));
        this.dbs.uploads.remove(uploadKey(bucket, key, uploadId));
        w.committed(seq);
        return stored.map((p) => p.blobId);
      });
    });
    this.releaseBlobs(replaced);
  }

  async listParts(
    bucket: string,
    key: string,
    uploadId: string,
    options: { partNumberMarker?: number; maxParts: number },
  ): Promise<{ upload: MultipartUpload; parts: PartInfo[]; isTruncated: boolean }> {
    const upload = this.requireUpload(bucket, key, uploadId);
    const marker = options.partNumberMarker ?? 0;
    const { end } = partRange(uploadId);
    const start = partKey(uploadId, Math.min(marker + 1, partNumberMax + 1));
    const max = Math.max(0, options.maxParts);
    const rows = Array.from(this.dbs.parts.getRange({ start, end, limit: max + 1 }), ({ value }) => value);
    return {
      upload: toUpload(upload),
      parts: rows.slice(0, max).map(toPartInfo),
      isTruncated: rows.length > max,
    };
  }

  async listMultipartUploads(query: ListUploadsQuery): Promise<{ uploads: MultipartUpload[]; commonPrefixes: string[]; isTruncated: boolean }> {
    this.requireBucket(query.bucket);
    const base = bucketBase(query.bucket);
    const prefix = Buffer.from(query.prefix ?? '', 'utf8');
    const fromPrefix = Buffer.concat([base, prefix]);
    let fromMarker: Buffer | undefined;
    let after: Buffer | undefined;
    if (query.keyMarker) {
      after = Buffer.from(query.keyMarker, 'utf8');
      // With an upload-id marker: later uploads of the same key; without: keys after the marker.
      fromMarker = query.uploadIdMarker
        ? Buffer.concat([uploadKey(query.bucket, query.keyMarker, query.uploadIdMarker), Buffer.from([0])])
        : Buffer.concat([base, after, Buffer.from([1])]);
    }
    const start = fromMarker && Buffer.compare(fromMarker, fromPrefix) > 0 ? fromMarker : fromPrefix;
    const page = scanPage({
      db: this.dbs.uploads,
      base,
      end: bucketEnd(query.bucket),
      prefix,
      delimiter: query.delimiter ? Buffer.from(query.delimiter, 'utf8') : undefined,
      start,
      after,
      nameOf: (rel) => rel.subarray(0, rel.lastIndexOf(0)),
      max: query.maxUploads,
    });
    const uploads: MultipartUpload[] = [];
    const commonPrefixes: string[] = [];
    for (const item of page.items) {
      if (item.kind === 'value') uploads.push(toUpload(item.value));
      else commonPrefixes.push(item.prefix);
    }
    return { uploads, commonPrefixes, isTruncated: page.isTruncated };
  }

  // ----------------------------------------------------- replica applies

  /** Inside or outside a transaction: does this store hold `seq` or newer for the key? */
  private isStale(bucket: string, key: string, seq: number): boolean {
    const current = this.dbs.objects.get(objectKey(bucket, key));
    if (current && current.seq >= seq) return true;
    const tomb = this.dbs.tombstones.get(objectKey(bucket, key));
    return tomb !== undefined && tomb.seq >= seq;
  }

  /** Inside a transaction: replicas get buckets implicitly (no bucket-create copy needed). */
  private ensureBucket(bucket: string): void {
    if (this.dbs.buckets.get(bucketKey(bucket))) return;
    this.dbs.buckets.put(bucketKey(bucket), { v: recordVersion, name: bucket, created: this.clock.now(), region: this.defaultRegion });
  }

  async applyReplica(meta: ObjectMeta, body: Readable, options: { force?: boolean } = {}): Promise<boolean> {
    const force = options.force === true;
    if (!force && this.isStale(meta.bucket, meta.key, meta.seq)) {
      body.resume(); // drain: the copy is older than what we hold
      return false;
    }
    const algorithm = fullObjectAlgorithm(meta);
    const multipart = multipartEtagCheck(meta, body);
    try {
      const replaced = await durableWrite({
        space: this.space,
        body: multipart?.body ?? body,
        digest: { algorithms: algorithm ? [algorithm] : [], sha256: false },
        verify: (d) => {
          verifyReplicaBody(meta, d, algorithm);
          multipart?.verify();
        },
        maxBytes: meta.size,
        inlineMaxBytes: this.inlineMaxBytes,
        admission: Promise.resolve(),
        commit: (blob, _digest, inline) =>
          this.txn(() => {
            if (!force && this.isStale(meta.bucket, meta.key, meta.seq)) throw new StaleReplica();
            this.ensureBucket(meta.bucket);
            this.keepInline(blob, inline);
            const stored: ObjectMeta = { ...meta, v: objectMetaVersion, blobs: [blob] };
            const replaced = this.writeMeta(stored);
            this.raiseSeq(meta.seq);
            return replaced;
          }),
      });
      this.releaseBlobs(replaced);
      return true;
    } catch (err) {
      if (err instanceof StaleReplica) return false;
      throw err;
    }
  }

  async applyReplicaBatch(items: readonly ReplicaBody[]): Promise<Array<boolean | Error>> {
    const out: Array<boolean | Error> = new Array<boolean | Error>(items.length).fill(false);
    const inline: number[] = [];
    const alone: Promise<void>[] = [];
    items.forEach(({ meta, body }, n) => {
      // What durableWrite would not keep inline, or a multipart ETag (checked
      // per part): the single path.
      if (body.length > this.inlineMaxBytes || meta.etag.includes('-')) {
        alone.push(this.applyReplica(meta, Readable.from([body], { objectMode: false })).then((a) => void (out[n] = a), (e: Error) => void (out[n] = e)));
        return;
      }
      try {
        verifyReplicaBody(meta, digestOf(meta, body), fullObjectAlgorithm(meta));
        inline.push(n);
      } catch (err) {
        out[n] = err as Error;
      }
    });
    if (inline.length > 0) {
      const ids = newInlineBlobIds(inline.length);
      const replaced = await this.txn(() => {
        const gone: string[] = [];
        const ensured = new Set<string>();
        let seq = 0;
        inline.forEach((n, i) => {
          const { meta, body } = items[n]!;
          const written = this.writeReplicaInline(meta, { id: ids[i]!, size: body.length }, body, ensured);
          if (written === undefined) return; // stale
          gone.push(...written);
          seq = Math.max(seq, meta.seq);
          out[n] = true;
        });
        this.raiseSeq(seq);
        return gone;
      });
      this.releaseBlobs(replaced);
    }
    await Promise.all(alone);
    return out;
  }

  /** Inside a transaction: applyReplica's commit for an inline body, the
   * key built once (a batch runs this per copy). Undefined when stale.
   * `ensured`: buckets this transaction already ensured (a batch's copies
   * mostly share one bucket; each lookup decodes the bucket record). */
  private writeReplicaInline(meta: ObjectMeta, blob: BlobRef, body: Buffer, ensured: Set<string>): string[] | undefined {
    const k = objectKey(meta.bucket, meta.key);
    const current = this.dbs.objects.get(k);
    if (current && current.seq >= meta.seq) return undefined;
    const tomb = this.dbs.tombstones.get(k);
    if (tomb !== undefined && tomb.seq >= meta.seq) return undefined;
    if (!ensured.has(meta.bucket)) {
      this.ensureBucket(meta.bucket);
      ensured.add(meta.bucket);
    }
    this.keepInline(blob, body);
    const replaced = this.forgetBlobs(current?.blobs.map((b) => b.id) ?? []);
    this.dbs.objects.put(k, { ...meta, v: objectMetaVersion, blobs: [blob] });
    if (tomb !== undefined) this.dbs.tombstones.remove(k);
    return replaced;
  }

  async applyReplicaDelete(bucket: string, key: string, seq: number, options: { force?: boolean } = {}): Promise<boolean> {
    const force = options.force === true;
    const result = await this.txn(() => {
      if (!force && this.isStale(bucket, key, seq)) return undefined;
      const replaced = this.forgetBlobs(this.blobsOf(bucket, key));
      this.dbs.objects.remove(objectKey(bucket, key));
      this.dbs.tombstones.put(objectKey(bucket, key), { v: recordVersion, seq });
      this.raiseSeq(seq);
      return replaced;
    });
    if (!result) return false;
    this.releaseBlobs(result);
    return true;
  }

  /** The root lmdb belongs to the composition root; the store only stops writing. */
  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
    await this.space.close();
  }
}

// ---------------------------------------------------------------- helpers

/**
 * lmdb-js reports a failed commit as "Commit failed" with the cause in a
 * separate promise (`commitError`) that would otherwise reject unhandled.
 * Observe it and surface the errno (ENOSPC: the gateway answers 503).
 */
async function commitFailure(err: unknown): Promise<unknown> {
  const pending = (err as { commitError?: Promise<unknown> } | undefined)?.commitError;
  if (!pending || typeof pending.then !== 'function') return err;
  const settled = Promise.resolve(pending).then(
    () => undefined,
    (e: unknown) => e,
  );
  // lmdb-js rejects it right after the commit fails; never wait on it for long.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), commitErrorWaitMs)));
  const cause = await Promise.race([settled, late]);
  clearTimeout(timer);
  const errno = (cause as { code?: unknown } | undefined)?.code;
  const name = typeof errno === 'number' ? errnoName(errno) : undefined;
  return Object.assign(new Error(`metadata commit failed: ${(cause as Error | undefined)?.message ?? 'unknown'}`, { cause: err }), {
    ...(name ? { code: name } : {}),
  });
}

function errnoName(errno: number): string | undefined {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return undefined;
}

function alreadyOwned(name: string): S3Error {
  return new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', {
    extra: { BucketName: name },
  });
}

function checkKey(key: string): void {
  if (key.length === 0) throw new S3Error('InvalidArgument', 'Object key must not be empty');
  if (Buffer.byteLength(key, 'utf8') > keyBytesMax) throw new S3Error('KeyTooLongError', 'Your key is too long');
}

function checkPartNumber(n: number): void {
  if (!Number.isInteger(n) || n < partNumberMin || n > partNumberMax) {
    throw new S3Error('InvalidArgument', `Part number must be an integer between ${partNumberMin} and ${partNumberMax}, inclusive`);
  }
}

function checkSize(d: BodyDigest, expected: number): void {
  if (d.size !== expected) throw new S3Error('IncompleteBody', 'The source ended before the expected length');
}

/**
 * A multipart replica's ETag is the MD5 of its parts' MD5s: the store's
 * whole-body MD5 cannot check it, so the body passes through a hasher split
 * at the recorded part sizes, checked with the other digests before commit.
 * Undefined for single-PUT ETags (the body MD5 checks those) and for
 * multipart metadata without usable part sizes (size only, as before).
 */
function multipartEtagCheck(meta: ObjectMeta, body: Readable): { body: Readable; verify(): void } | undefined {
  if (!meta.etag.includes('-')) return undefined;
  const hasher = EtagHasher.for(meta.etag, meta.size, meta.partSizes);
  if (!hasher) return undefined;
  const hashed = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hasher.update(chunk);
      done(null, chunk);
    },
  });
  // pipe() does not forward errors: a peer gone mid-body must fail the write.
  body.once('error', (err) => hashed.destroy(err));
  hashed.once('close', () => {
    if (!body.destroyed && !body.readableEnded) body.destroy();
  });
  return {
    body: body.pipe(hashed),
    verify() {
      if (hasher.digest() !== meta.etag) throw new S3Error('BadDigest', 'Replica body does not match its ETag');
    },
  };
}

function fullObjectAlgorithm(meta: ObjectMeta): ChecksumAlgorithm | undefined {
  return meta.checksum?.type === 'FULL_OBJECT' ? meta.checksum.algorithm : undefined;
}

/** The digests verifyReplicaBody checks, of a body held in memory. */
function digestOf(meta: ObjectMeta, body: Buffer): BodyDigest {
  const algorithm = fullObjectAlgorithm(meta);
  const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
  if (algorithm) {
    const h = createHasher(algorithm);
    h.update(body);
    checksums[algorithm] = h.digest().toString('base64');
  }
  // One-shot hash: no Hash object per copy (a batch hashes 64 bodies).
  return { size: body.length, md5Hex: hash('md5', body, 'hex'), checksums };
}

function verifyReplicaBody(meta: ObjectMeta, d: BodyDigest, algorithm?: ChecksumAlgorithm): void {
  checkSize(d, meta.size);
  if (!meta.etag.includes('-') && d.md5Hex !== meta.etag) throw new S3Error('BadDigest', 'Replica body does not match its ETag');
  if (algorithm && meta.checksum && d.checksums[algorithm] !== meta.checksum.value) {
    throw new S3Error('BadDigest', 'Replica body does not match its checksum');
  }
}

function withAlgorithm(list: readonly ChecksumAlgorithm[], extra?: ChecksumAlgorithm): ChecksumAlgorithm[] {
  return extra && !list.includes(extra) ? [...list, extra] : [...list];
}

/** Upload ids sort by creation time (S3 lists a key's uploads oldest first). */
function newUploadId(now: number): string {
  return `${now.toString(16).padStart(12, '0')}${randomBytes(12).toString('hex')}`;
}

function toUpload(u: UploadRecord): MultipartUpload {
  return {
    bucket: u.bucket,
    key: u.key,
    uploadId: u.uploadId,
    initiated: u.initiated,
    attrs: u.attrs,
    ...(u.checksumAlgorithm ? { checksumAlgorithm: u.checksumAlgorithm } : {}),
    ...(u.checksumType ? { checksumType: u.checksumType } : {}),
  };
}

function toPartInfo(p: PartRecord): PartInfo {
  return {
    partNumber: p.partNumber,
    etag: p.etag,
    size: p.size,
    lastModified: p.lastModified,
    ...(p.checksum ? { checksum: p.checksum } : {}),
  };
}
