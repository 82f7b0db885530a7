// The object store's data model and interface. The gateway and the replica
// code depend on this file, never on the concrete store.

import type { Readable, Writable } from 'node:stream';
import type { ChangeHooks } from '../core/changes.ts';
import type { ReadVerifier } from './verify-read.ts';

/**
 * Format version byte of stored metadata records (habit 8). Still 1 with
 * `BlobRef.crc32`: the field is optional and additive, so a record written
 * before it existed reads as "no CRC" (its reads keep the ETag/MD5 check),
 * and an older build reading a newer record ignores the field.
 */
export const objectMetaVersion = 1;

export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';

export interface StoredChecksum {
  algorithm: ChecksumAlgorithm;
  /** Base64, as on the wire. For COMPOSITE, "base64-N". */
  value: string;
  type: 'FULL_OBJECT' | 'COMPOSITE';
}

/** Content headers stored with an object and returned on GET/HEAD. */
export interface ContentHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  /** Raw header value, returned as given. */
  expires?: string;
}

/** One data file of an object (a single PUT has one, a multipart one per part). */
export interface BlobRef {
  id: string;
  size: number;
  /**
   * zlib CRC32 (unsigned) of the blob's stored bytes, computed while they were
   * written; GETs check every blob they read whole against it. Absent for
   * inline blobs and for blobs written before it was recorded.
   */
  crc32?: number;
}

export interface ObjectMeta {
  v: typeof objectMetaVersion;
  bucket: string;
  key: string;
  size: number;
  /** Without quotes: hex MD5, or "hex-N" for multipart. */
  etag: string;
  /** Milliseconds since the epoch. */
  lastModified: number;
  /** Per-store monotonic sequence number of the write that made this version. */
  seq: number;
  headers: ContentHeaders;
  /** x-amz-meta-* without the prefix, names lower-cased. */
  userMeta: Record<string, string>;
  tags: Record<string, string>;
  checksum?: StoredChecksum;
  /** Sizes of the parts for a multipart object (PartsCount, partNumber GET). */
  partSizes?: number[];
  blobs: BlobRef[];
}

export interface BucketInfo {
  name: string;
  created: number;
  region: string;
}

export interface ListQuery {
  bucket: string;
  prefix?: string;
  delimiter?: string;
  /** Exclusive start: marker (v1), start-after or continuation token (v2). */
  after?: string;
  maxKeys: number;
}

export interface ListResult {
  objects: ObjectMeta[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** Last key or common prefix returned, for NextMarker/continuation. */
  nextAfter?: string;
}

/** What a writer supplies besides the body. */
export interface WriteAttributes {
  headers: ContentHeaders;
  userMeta: Record<string, string>;
  tags: Record<string, string>;
}

/** Digests computed while the body streamed to disk. */
export interface BodyDigest {
  size: number;
  md5Hex: string;
  /** Base64 values for the algorithms that were asked for. */
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
  sha256Hex?: string;
  /** zlib CRC32 of the body, when asked for (DigestingTransform.trackCrc32). */
  crc32?: number;
}

/**
 * Checks the streamed body before it may be committed. Throws an S3Error
 * (BadDigest, XAmzContentSHA256Mismatch, IncompleteBody...) to reject it: the
 * temp file is removed and nothing is committed.
 */
export type BodyVerifier = (digest: BodyDigest) => void;

export interface PutObjectInput extends WriteAttributes {
  bucket: string;
  key: string;
  body: Readable;
  /** Checksums to compute while streaming (MD5 always). */
  algorithms: ChecksumAlgorithm[];
  /** Also compute SHA-256 (signed payload). */
  sha256: boolean;
  verify: BodyVerifier;
  /** The checksum to store, chosen by the gateway from the request. */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Conditional write: If-None-Match: * / If-Match. */
  ifNoneMatchStar?: boolean;
  ifMatch?: string;
}

export interface ReadRange {
  /** Inclusive byte offsets. */
  start: number;
  end: number;
}

export interface ObjectReader {
  meta: ObjectMeta;
  /** Streams the whole object or the range; the version read is fixed at open. */
  stream(range?: ReadRange): Readable;
  /** Like `stream`, for large reads: the store writes the bytes into the
   * response itself with reused buffers (pump.ts), checking them on the way. */
  pump?(range: ReadRange | undefined, verifier: ReadVerifier | undefined): BodyPump;
  /** Releases file handles if `stream` is never called. */
  close(): Promise<void>;
}

/** A body the store writes into a Writable itself (ObjectReader.pump). */
export interface BodyPump {
  readonly kind: 'pump';
  /** Writes the body into `out` without ending it. Rejects on a read error,
   * bad stored bytes (StoredDataCorrupt: cut the response if anything went
   * out) or a closed `out` (pump.ts ResponseClosed). Releases the version. */
  writeTo(out: Writable): Promise<void>;
  /** Releases the version without writing (HEAD, 304). */
  destroy(): void;
}

export interface MultipartUpload {
  bucket: string;
  key: string;
  uploadId: string;
  initiated: number;
  attrs: WriteAttributes;
  checksumAlgorithm?: ChecksumAlgorithm;
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
}

export interface PartInfo {
  partNumber: number;
  etag: string;
  size: number;
  lastModified: number;
  checksum?: string;
}

export interface CompletePart {
  partNumber: number;
  etag: string;
  checksum?: string;
}

export interface ListUploadsQuery {
  bucket: string;
  prefix?: string;
  delimiter?: string;
  keyMarker?: string;
  uploadIdMarker?: string;
  maxUploads: number;
}

export interface CopySource {
  bucket: string;
  key: string;
  range?: ReadRange;
}

/** A version with its whole body in memory (small objects only). */
export interface ReplicaBody {
  meta: ObjectMeta;
  body: Buffer;
}

/** The store as the gateway and replica code see it. */
export interface ObjectStore {
  // Buckets
  createBucket(name: string, region: string): Promise<void>;
  deleteBucket(name: string): Promise<void>;
  headBucket(name: string): Promise<BucketInfo>;
  listBuckets(): Promise<BucketInfo[]>;

  // Objects
  putObject(input: PutObjectInput): Promise<ObjectMeta>;
  /** Opens the current version; throws NoSuchKey / NoSuchBucket. */
  openObject(bucket: string, key: string): Promise<ObjectReader>;
  headObject(bucket: string, key: string): Promise<ObjectMeta>;
  /** Idempotent: resolves for a missing key. */
  deleteObject(bucket: string, key: string): Promise<void>;
  copyObject(
    source: CopySource,
    dest: { bucket: string; key: string },
    attrs: WriteAttributes | 'copy',
    conditions?: { ifNoneMatchStar?: boolean },
  ): Promise<ObjectMeta>;
  setTags(bucket: string, key: string, tags: Record<string, string>): Promise<ObjectMeta>;
  list(query: ListQuery): Promise<ListResult>;

  // Multipart
  createMultipartUpload(
    bucket: string,
    key: string,
    attrs: WriteAttributes,
    checksum?: { algorithm: ChecksumAlgorithm; type: 'FULL_OBJECT' | 'COMPOSITE' },
  ): Promise<MultipartUpload>;
  uploadPart(input: {
    bucket: string;
    key: string;
    uploadId: string;
    partNumber: number;
    body: Readable;
    algorithms: ChecksumAlgorithm[];
    sha256: boolean;
    verify: BodyVerifier;
  }): Promise<PartInfo>;
  uploadPartCopy(input: {
    bucket: string;
    key: string;
    uploadId: string;
    partNumber: number;
    source: CopySource;
  }): Promise<PartInfo>;
  completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: CompletePart[],
  ): Promise<ObjectMeta>;
  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void>;
  listParts(
    bucket: string,
    key: string,
    uploadId: string,
    options: { partNumberMarker?: number; maxParts: number },
  ): Promise<{ upload: MultipartUpload; parts: PartInfo[]; isTruncated: boolean }>;
  listMultipartUploads(query: ListUploadsQuery): Promise<{
    uploads: MultipartUpload[];
    commonPrefixes: string[];
    isTruncated: boolean;
  }>;

  // Replica side (a secondary applying the primary's copies, or a resync)
  /**
   * Installs a copy of another site's version. Dropped (returns false) when
   * this store already holds a version or tombstone with seq >= meta.seq,
   * unless `force` (resync after failover).
   */
  applyReplica(
    meta: ObjectMeta,
    body: Readable,
    options?: { force?: boolean },
  ): Promise<boolean>;
  /**
   * Many small copies at once (replication batches): each item as
   * applyReplica would apply it (stale ones false, a body that fails its
   * ETag or checksum an error of its own), the small ones in one
   * transaction. Optional: callers fall back to applyReplica.
   */
  applyReplicaBatch?(items: readonly ReplicaBody[]): Promise<Array<boolean | Error>>;
  /**
   * The current version when its whole body sits in the metadata store
   * (small objects), read in one snapshot without opening a stream: the
   * copier reads many per turn. null: no such key or bucket; undefined: the
   * body is elsewhere (use openObject). `copyBody`, when given, receives a
   * view of the body valid only during the call and returns the body's copy
   * (the copier gathers a batch's bodies in shared buffers); without it the
   * body is a buffer of its own. Optional.
   */
  readInlineObject?(bucket: string, key: string, copyBody?: (view: Buffer) => Buffer): ReplicaBody | null | undefined;
  /** Deletes with a tombstone at `seq` so a late copy cannot resurrect it. */
  applyReplicaDelete(
    bucket: string,
    key: string,
    seq: number,
    options?: { force?: boolean },
  ): Promise<boolean>;

  close(): Promise<void>;
}

export interface ObjectStoreOptions {
  dataDir: string;
  hooks: ChangeHooks;
}
