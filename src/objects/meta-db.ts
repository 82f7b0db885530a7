// The store's metadata in lmdb: named sub-databases on the root the
// composition root opened, binary keys whose byte order is S3's listing order
// (UTF-8 byte order), and record shapes that all carry a format version `v`.
//
// lmdb-js 3.5 transaction semantics the store relies on (checked by
// test/objects/lmdb-semantics.test.ts):
// - `db.childTransaction(cb)` outside a transaction queues `cb` into the next
//   batched write transaction of the whole environment; concurrent callers'
//   callbacks share one commit (one fsync), which is where PUT throughput
//   comes from. `put`/`remove` called on ANY sub-db of the same root while
//   `cb` runs execute immediately inside that transaction and are readable at
//   once, so the replication code's copy-queue write in `hooks.committed`
//   commits or rolls back with the object.
// - If `cb` throws, the child transaction aborts: all its writes, including
//   other sub-dbs', are rolled back and the promise rejects with the error.
//   (Plain `transaction(cb)` does NOT roll back writes made before a throw,
//   which is why the store never uses it.)
// - With `overlappingSync` on (lmdb-js's default on Linux) the commit promise
//   resolves before the data is flushed; we turn it off so a resolved commit
//   is a durable one (PROTOCOL.md invariant 3).

import { open, type Database, type RootDatabase } from 'lmdb';
import { metaMapBytesInitial } from '../core/limits.ts';
import { join } from 'node:path';
import type { ChecksumAlgorithm, MultipartUpload, ObjectMeta } from './types.ts';

/** Format version of every record below (ObjectMeta has its own `v`). */
export const recordVersion = 1;

/** Opens the metadata environment at <dataDir>/meta. */
export function openMetaDb(dataDir: string): RootDatabase {
  return open({
    path: join(dataDir, 'meta'),
    // Room for the store's five sub-dbs plus replication's and predict's.
    maxDbs: 64,
    // Durable commits: the commit promise resolves after the fsync.
    overlappingSync: false,
    // Off: with it, lmdb-js keeps an internal promise per batch that nobody
    // awaits, so one failed commit (a full disk) becomes an unhandled
    // rejection that kills the process. Concurrent transactions still share
    // commits: callbacks queued while one commits go into the next together.
    eventTurnBatching: false,
    // Address space reserved up front (the file grows only as pages are
    // used); lmdb-js grows the map past it when it fills, but each growth
    // pauses writers, so start where a small site never needs one.
    mapSize: metaMapBytesInitial,
  });
}

export interface BucketRecord {
  v: typeof recordVersion;
  name: string;
  created: number;
  region: string;
}

export interface UploadRecord extends MultipartUpload {
  v: typeof recordVersion;
}

export interface PartRecord {
  v: typeof recordVersion;
  partNumber: number;
  /** Hex MD5, unquoted. */
  etag: string;
  size: number;
  lastModified: number;
  /** Base64, for the upload's checksum algorithm. */
  checksum?: string;
  checksumAlgorithm?: ChecksumAlgorithm;
  blobId: string;
  /** CRC32 of the part's blob (BlobRef.crc32); absent in parts stored before it was recorded. */
  blobCrc32?: number;
}

export interface TombstoneRecord {
  v: typeof recordVersion;
  seq: number;
}

export interface SeqRecord {
  v: typeof recordVersion;
  seq: number;
}

/** The store's sub-databases, all with binary (byte-ordered) keys. */
export interface MetaDbs {
  buckets: Database<BucketRecord, Buffer>;
  objects: Database<ObjectMeta, Buffer>;
  uploads: Database<UploadRecord, Buffer>;
  parts: Database<PartRecord, Buffer>;
  tombstones: Database<TombstoneRecord, Buffer>;
  state: Database<SeqRecord, Buffer>;
  /** Bodies of small objects, keyed by their inline blob id (raw bytes). */
  inline: Database<Buffer, Buffer>;
}

export function openMetaDbs(root: RootDatabase): MetaDbs {
  const sub = <V>(name: string) =>
    root.openDB<V, Buffer>({ name: `objects.${name}`, keyEncoding: 'binary' });
  return {
    buckets: sub('buckets'),
    objects: sub('objects'),
    uploads: sub('uploads'),
    parts: sub('parts'),
    tombstones: sub('tombstones'),
    state: sub('state'),
    inline: root.openDB<Buffer, Buffer>({ name: 'objects.inline', keyEncoding: 'binary', encoding: 'binary' }),
  };
}

// ------------------------------------------------------------------ keys

const zero = Buffer.from([0]);
const one = Buffer.from([1]);

export const seqKey = Buffer.from('seq');

export function inlineKey(blobId: string): Buffer {
  return Buffer.from(blobId, 'utf8');
}

export function bucketKey(bucket: string): Buffer {
  return Buffer.from(bucket, 'utf8');
}

/** "<bucket>\0": every object key of the bucket starts with it. */
export function bucketBase(bucket: string): Buffer {
  return Buffer.concat([Buffer.from(bucket, 'utf8'), zero]);
}

/** First key past the bucket's range ("<bucket>\x01"). */
export function bucketEnd(bucket: string): Buffer {
  return Buffer.concat([Buffer.from(bucket, 'utf8'), one]);
}

export function objectKey(bucket: string, key: string): Buffer {
  // One allocation (replica batches build one per copy, PUTs several).
  const b = Buffer.byteLength(bucket, 'utf8');
  const out = Buffer.allocUnsafe(b + 1 + Buffer.byteLength(key, 'utf8'));
  out.write(bucket, 0, 'utf8');
  out[b] = 0;
  out.write(key, b + 1, 'utf8');
  return out;
}

export function uploadKey(bucket: string, key: string, uploadId: string): Buffer {
  return Buffer.concat([objectKey(bucket, key), zero, Buffer.from(uploadId, 'utf8')]);
}

/** Parts sort by number under their upload: "<uploadId>\0" + uint32 BE. */
export function partKey(uploadId: string, partNumber: number): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(partNumber);
  return Buffer.concat([Buffer.from(uploadId, 'utf8'), zero, n]);
}

export function partRange(uploadId: string): { start: Buffer; end: Buffer } {
  return {
    start: Buffer.concat([Buffer.from(uploadId, 'utf8'), zero]),
    end: Buffer.concat([Buffer.from(uploadId, 'utf8'), one]),
  };
}

/**
 * Smallest byte string greater than every string starting with `prefix`.
 * Used to seek past a common prefix. UTF-8 never contains 0xff, but handle it.
 */
export function prefixSuccessor(prefix: Buffer): Buffer {
  const out = Buffer.from(prefix);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 0xff) {
      out[i] = out[i]! + 1;
      return out.subarray(0, i + 1);
    }
  }
  // All 0xff (or empty): nothing is greater within this prefix space.
  return Buffer.concat([out, Buffer.alloc(1024, 0xff)]);
}
