// One object copy to a plain S3 target: content headers, user metadata,
// tags and checksums travel as the target's own request fields, so a client
// reading the replica after a failover sees what it wrote on the primary.
//
// ETag: a single PUT sends Content-MD5 (the primary's ETag of a single-part
// object is the body's MD5), so the target verifies the body and computes
// the same ETag. An object that was multipart on the primary goes with the
// same part sizes, so a target computing the usual md5-of-part-md5s "-N"
// ETag (AWS, MinIO, moto) shows the same ETag as well. Only a single-part
// object above s3TargetMultipartBytesMin, cut into parts for the trip, gets
// a different ETag ("-N"): its primary ETag stays in x-amz-meta-lookahead-etag,
// which `verify` compares instead.
//
// Checksums: a FULL_OBJECT checksum goes on the single PUT
// (x-amz-checksum-ALG) so the target verifies and stores it. A COMPOSITE one
// (multipart on the primary) cannot be recomputed without the part
// checksums, and a target storing a different composite would be worse than
// none: it stays in x-amz-meta-lookahead-checksum ("ALG:TYPE:value").

import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { ObjectMeta } from '../../objects/types.ts';
import { mapS3Error } from './client.ts';
import { exactLength, forEachPart, planParts } from './parts.ts';

/** Reserved user-metadata names (x-amz-meta-lookahead-*): a client's own
 * metadata of the same name is overwritten on the target. */
export const seqMetaName = 'lookahead-seq';
export const etagMetaName = 'lookahead-etag';
export const checksumMetaName = 'lookahead-checksum';
export const reservedMetaNames: readonly string[] = [seqMetaName, etagMetaName, checksumMetaName];

export interface CopyOptions {
  multipartBytesMin: number;
  partBytes: number;
  /** 'on-put': x-amz-tagging on the PUT (atomic; AWS, MinIO, moto).
   * 'separate': PutObjectTagging after it (s3rver ignores x-amz-tagging). */
  tagging: 'on-put' | 'separate';
  /** Send FULL_OBJECT checksums as x-amz-checksum-* (off for targets that
   * reject an algorithm, e.g. CRC64NVME on older servers). */
  sendChecksums: boolean;
}

const md5Hex = /^[0-9a-f]{32}$/;

function tagging(tags: Record<string, string>): string | undefined {
  const pairs = Object.entries(tags);
  if (pairs.length === 0) return undefined;
  return new URLSearchParams(pairs).toString();
}

function expiresDate(raw: string | undefined): Date | undefined {
  if (raw === undefined) return undefined;
  const date = new Date(raw);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Fields shared by PutObject and CreateMultipartUpload. */
function commonFields(meta: ObjectMeta, options: CopyOptions) {
  const h = meta.headers;
  const metadata: Record<string, string> = { ...meta.userMeta, [seqMetaName]: String(meta.seq), [etagMetaName]: meta.etag };
  if (meta.checksum !== undefined) {
    metadata[checksumMetaName] = `${meta.checksum.algorithm}:${meta.checksum.type}:${meta.checksum.value}`;
  }
  return {
    ContentType: h.contentType,
    ContentEncoding: h.contentEncoding,
    ContentDisposition: h.contentDisposition,
    ContentLanguage: h.contentLanguage,
    CacheControl: h.cacheControl,
    // The SDK takes a Date: a raw Expires that is not a date is dropped.
    Expires: expiresDate(h.expires),
    Metadata: metadata,
    Tagging: options.tagging === 'on-put' ? tagging(meta.tags) : undefined,
  };
}

function checksumField(meta: ObjectMeta, options: CopyOptions): Record<string, string> {
  const c = meta.checksum;
  if (!options.sendChecksums || c === undefined || c.type !== 'FULL_OBJECT') return {};
  return { [`Checksum${c.algorithm}`]: c.value };
}

/** Streams `body` to the target; returns the target's ETag (unquoted). */
export async function copyObject(
  client: S3Client,
  target: { bucket: string; key: string },
  meta: ObjectMeta,
  body: Readable,
  options: CopyOptions,
): Promise<string | undefined> {
  const multipart = (meta.partSizes?.length ?? 0) > 0 || meta.size >= options.multipartBytesMin;
  const etag = multipart
    ? await multipartCopy(client, target, meta, body, options)
    : await singleCopy(client, target, meta, body, options);
  if (options.tagging === 'separate') await putTags(client, target, meta.tags);
  return etag;
}

async function singleCopy(
  client: S3Client,
  target: { bucket: string; key: string },
  meta: ObjectMeta,
  body: Readable,
  options: CopyOptions,
): Promise<string | undefined> {
  // A source that fails (or is shorter than its metadata) aborts the
  // request at once instead of leaving the target waiting for bytes.
  const abort = new AbortController();
  const guarded = exactLength(body, meta.size);
  guarded.once('error', (err) => abort.abort(err));
  try {
    const out = await client.send(
      new PutObjectCommand({
        Bucket: target.bucket,
        Key: target.key,
        Body: guarded,
        ContentLength: meta.size,
        ContentMD5: md5Hex.test(meta.etag) ? Buffer.from(meta.etag, 'hex').toString('base64') : undefined,
        ...commonFields(meta, options),
        ...checksumField(meta, options),
      }),
      { abortSignal: abort.signal },
    );
    return out.ETag?.replace(/"/g, '');
  } catch (err) {
    if (abort.signal.aborted) throw abort.signal.reason;
    throw mapS3Error(err, `PUT ${target.bucket}/${target.key}`);
  }
}

async function multipartCopy(
  client: S3Client,
  target: { bucket: string; key: string },
  meta: ObjectMeta,
  body: Readable,
  options: CopyOptions,
): Promise<string | undefined> {
  const what = `multipart ${target.bucket}/${target.key}`;
  let uploadId: string | undefined;
  try {
    const created = await client.send(
      new CreateMultipartUploadCommand({ Bucket: target.bucket, Key: target.key, ...commonFields(meta, options) }),
    );
    uploadId = created.UploadId;
    if (uploadId === undefined) throw new Error('no UploadId');
    const id = uploadId;
    const sizes = planParts(meta.size, options.partBytes, meta.partSizes);
    const etags = await forEachPart(body, sizes, async (i, part, size) => {
      const out = await client.send(
        new UploadPartCommand({ Bucket: target.bucket, Key: target.key, UploadId: id, PartNumber: i + 1, Body: part, ContentLength: size }),
      );
      return out.ETag;
    });
    const done = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: target.bucket,
        Key: target.key,
        UploadId: id,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    return done.ETag?.replace(/"/g, '');
  } catch (err) {
    if (uploadId !== undefined) {
      // Best effort: an upload left behind costs storage, not correctness.
      await client.send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: target.key, UploadId: uploadId })).catch(() => {});
    }
    throw mapS3Error(err, what);
  }
}

async function putTags(client: S3Client, target: { bucket: string; key: string }, tags: Record<string, string>): Promise<void> {
  try {
    await client.send(
      new PutObjectTaggingCommand({
        Bucket: target.bucket,
        Key: target.key,
        Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
      }),
    );
  } catch (err) {
    throw mapS3Error(err, `PUT tagging ${target.bucket}/${target.key}`);
  }
}
