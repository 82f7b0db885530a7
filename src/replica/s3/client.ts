// The S3 client of a plain S3 target and the small requests the record
// needs, with the SDK's errors mapped onto the ReplicaTarget error classes:
// the primary retries TargetUnavailableError (network, 5xx, throttling) and
// backs off on TargetRejectedError (4xx: missing bucket, bad request).

import { createHash } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { listKeysMax, replicaRequestTimeoutMs } from '../../core/limits.ts';
import { FencedError, StaleSessionError, TargetRejectedError, TargetUnavailableError } from '../target.ts';
import { S3RecordFormatError } from './record.ts';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3ClientConfig {
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  /** undefined: the SDK's default chain (AWS_ACCESS_KEY_ID, profiles...). */
  credentials?: S3Credentials;
  /** Socket idle timeout and connect timeout (ms). */
  requestTimeoutMs?: number;
}

/** Listing pages read at most in one scan of the record prefix (1000 keys
 * each): far above s3RecordDeltasMax, so only a target that stopped
 * deleting deltas for a very long time hits it. */
export const recordListPagesMax = 1000;

export function createS3Client(config: S3ClientConfig): S3Client {
  const timeout = config.requestTimeoutMs ?? replicaRequestTimeoutMs;
  return new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    ...(config.credentials === undefined ? {} : { credentials: config.credentials }),
    // Checksums only where the API requires them: s3rver and older MinIO
    // reject aws-chunked trailers, and we send the object's own checksum
    // (copy.ts) instead of a new one.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Two attempts: the second covers a keep-alive socket the server closed
    // (moto closes after every response). The primary retries on its own.
    maxAttempts: 2,
    // Idle (not total) socket timeout: a multi-GiB copy may take long, a
    // server that stops answering may not. (requestTimeout in this SDK
    // version is total and only warns unless told to throw.)
    requestHandler: { socketTimeout: timeout, connectionTimeout: timeout },
  });
}

interface SdkError {
  name?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

const transientCodes = new Set(['RequestTimeout', 'SlowDown', 'InternalError', 'ServiceUnavailable', 'ThrottlingException']);

/** SDK error -> the ReplicaTarget error the primary understands. */
export function mapS3Error(err: unknown, what: string): Error {
  if (
    err instanceof FencedError ||
    err instanceof StaleSessionError ||
    err instanceof TargetRejectedError ||
    err instanceof TargetUnavailableError ||
    err instanceof S3RecordFormatError
  ) {
    return err;
  }
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const code = e.Code ?? e.name;
  const text = `${what}: ${code ?? 'error'}: ${e.message ?? String(err)}`;
  if (status === undefined || status >= 500 || status === 429 || status === 408 || transientCodes.has(code ?? '')) {
    return new TargetUnavailableError(text, { cause: err });
  }
  return new TargetRejectedError(text, status, code);
}

/** True for a 404 of the object itself (HEAD answers 404 without a code). */
export function isNotFound(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  return e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket' && e.Code !== 'NoSuchBucket';
}

export function isNoSuchBucket(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  return e.name === 'NoSuchBucket' || e.Code === 'NoSuchBucket';
}

/** One small PUT whose 200 means durable on the target ("the target's 200
 * is the durable ack"). Content-MD5 lets the target reject a damaged body. */
export async function putBytes(client: S3Client, bucket: string, key: string, body: Buffer): Promise<void> {
  try {
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ContentType: 'application/octet-stream',
        ContentMD5: createHash('md5').update(body).digest('base64'),
      }),
    );
  } catch (err) {
    throw mapS3Error(err, `PUT ${bucket}/${key}`);
  }
}

/** The object's bytes, or undefined when it does not exist. */
export async function getBytes(client: S3Client, bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (out.Body === undefined) return Buffer.alloc(0);
    return Buffer.from(await out.Body.transformToByteArray());
  } catch (err) {
    const name = (err as SdkError).name;
    if (name === 'NoSuchKey' || isNotFound(err)) return undefined;
    throw mapS3Error(err, `GET ${bucket}/${key}`);
  }
}

export async function deleteKey(client: S3Client, bucket: string, key: string): Promise<void> {
  try {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    if (isNotFound(err)) return;
    throw mapS3Error(err, `DELETE ${bucket}/${key}`);
  }
}

/** Keys under `prefix` after `startAfter`, in key order, at most
 * recordListPagesMax pages (throws beyond: never silently truncated).
 * ListObjects v1 with the last key as marker: every server has it, and
 * s3rver fails a truncated v2 listing (continuation token). */
export async function listKeys(client: S3Client, bucket: string, prefix: string, startAfter?: string): Promise<string[]> {
  const keys: string[] = [];
  let marker = startAfter;
  for (let page = 0; page < recordListPagesMax; page++) {
    const out = await listPage(client, bucket, prefix, marker, listKeysMax);
    for (const o of out.contents) keys.push(o.key);
    if (!out.truncated) return keys;
    marker = keys[keys.length - 1];
  }
  throw new TargetRejectedError(`LIST ${bucket}/${prefix}: more than ${recordListPagesMax} pages`, 500);
}

export interface ListedObject {
  key: string;
  etag: string;
  size: number;
  lastModified: number;
}

/** One listing page (ListObjects v1, see listKeys). */
export async function listPage(
  client: S3Client,
  bucket: string,
  prefix: string,
  marker: string | undefined,
  max: number,
): Promise<{ contents: ListedObject[]; truncated: boolean }> {
  let out;
  try {
    out = await client.send(new ListObjectsCommand({ Bucket: bucket, Prefix: prefix, MaxKeys: max, ...(marker === undefined ? {} : { Marker: marker }) }));
  } catch (err) {
    throw mapS3Error(err, `LIST ${bucket}/${prefix}`);
  }
  const contents = (out.Contents ?? []).flatMap((o) =>
    o.Key === undefined
      ? []
      : [{ key: o.Key, etag: (o.ETag ?? '').replace(/"/g, ''), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 }],
  );
  // A truncated page with no entries would loop forever: count it as the end.
  return { contents, truncated: out.IsTruncated === true && contents.length > 0 };
}

/** Runs `fn` over `items` with at most `limit` in flight; results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
