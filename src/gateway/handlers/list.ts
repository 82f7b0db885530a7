// ListObjects (v1), ListObjectsV2, ListMultipartUploads.

import { S3Error } from '../../core/errors.ts';
import { listKeysMax } from '../../core/limits.ts';
import type { ListResult, ObjectMeta } from '../../objects/types.ts';
import { xmlReply, type Reply } from '../reply.ts';
import { isoTime, quoteEtag, type XmlNode } from '../xml.ts';
import { owner, type HandlerDeps, type RequestState } from './context.ts';

/** max-keys / max-uploads: a non-negative integer, capped at 1000. */
export function parseMaxKeys(raw: string | undefined, name: string): number {
  if (raw === undefined) return listKeysMax;
  if (!/^\d{1,10}$/.test(raw)) {
    throw new S3Error('InvalidArgument', `Provided ${name} not an integer or within integer range`, {
      extra: { ArgumentName: name, ArgumentValue: raw },
    });
  }
  return Math.min(Number(raw), listKeysMax);
}

type Encoder = (s: string) => string;

/** encoding-type=url: percent-encode like S3 (slashes stay, '+' is encoded). */
function encoderOf(rq: RequestState): { encode: Encoder; encodingType?: string } {
  const type = rq.query.get('encoding-type');
  if (type === undefined) return { encode: (s) => s };
  if (type !== 'url') {
    throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', {
      extra: { ArgumentName: 'encoding-type', ArgumentValue: type },
    });
  }
  return { encode: (s) => encodeURIComponent(s).replace(/%2F/g, '/'), encodingType: 'url' };
}

function contents(objects: ObjectMeta[], encode: Encoder, withOwner: boolean): XmlNode[] {
  return objects.map((o) => ({
    Key: encode(o.key),
    LastModified: isoTime(o.lastModified),
    ETag: quoteEtag(o.etag),
    ...(o.checksum ? { ChecksumAlgorithm: o.checksum.algorithm, ChecksumType: o.checksum.type } : {}),
    Size: o.size,
    ...(withOwner ? { Owner: owner } : {}),
    StorageClass: 'STANDARD',
  }));
}

function commonPrefixes(prefixes: string[], encode: Encoder): XmlNode[] {
  return prefixes.map((p) => ({ Prefix: encode(p) }));
}

async function runList(bucket: string, rq: RequestState, deps: HandlerDeps, after: string | undefined): Promise<{ result: ListResult; maxKeys: number }> {
  const maxKeys = parseMaxKeys(rq.query.get('max-keys'), 'max-keys');
  const prefix = rq.query.get('prefix') || undefined;
  const delimiter = rq.query.get('delimiter') || undefined;
  // max-keys=0 still checks the bucket exists, and returns an empty page.
  const result = await deps.store.list({
    bucket,
    ...(prefix ? { prefix } : {}),
    ...(delimiter ? { delimiter } : {}),
    ...(after ? { after } : {}),
    maxKeys: Math.max(maxKeys, 1),
  });
  if (maxKeys === 0) return { result: { objects: [], commonPrefixes: [], isTruncated: false }, maxKeys };
  return { result, maxKeys };
}

export async function listObjects(bucket: string, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const { encode, encodingType } = encoderOf(rq);
  const marker = rq.query.get('marker') ?? '';
  const { result, maxKeys } = await runList(bucket, rq, deps, marker || undefined);
  const delimiter = rq.query.get('delimiter') ?? '';
  const body: XmlNode = {
    Name: bucket,
    Prefix: encode(rq.query.get('prefix') ?? ''),
    Marker: encode(marker),
    MaxKeys: maxKeys,
    ...(delimiter ? { Delimiter: encode(delimiter) } : {}),
    IsTruncated: result.isTruncated,
    ...(result.isTruncated && result.nextAfter ? { NextMarker: encode(result.nextAfter) } : {}),
    ...(encodingType ? { EncodingType: encodingType } : {}),
    Contents: contents(result.objects, encode, true),
    CommonPrefixes: commonPrefixes(result.commonPrefixes, encode),
  };
  return xmlReply(deps.xml.build('ListBucketResult', body));
}

/** Continuation tokens are opaque to clients: base64url of the last key. */
export function encodeContinuationToken(after: string): string {
  return Buffer.from(`v1:${after}`, 'utf8').toString('base64url');
}

export function decodeContinuationToken(token: string): string {
  const text = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url').toString('utf8') : '';
  if (!text.startsWith('v1:')) {
    throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', {
      extra: { ArgumentName: 'continuation-token' },
    });
  }
  return text.slice(3);
}

export async function listObjectsV2(bucket: string, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const { encode, encodingType } = encoderOf(rq);
  const token = rq.query.get('continuation-token');
  const startAfter = rq.query.get('start-after') ?? '';
  const after = token !== undefined ? decodeContinuationToken(token) : startAfter;
  const { result, maxKeys } = await runList(bucket, rq, deps, after || undefined);
  const delimiter = rq.query.get('delimiter') ?? '';
  const body: XmlNode = {
    Name: bucket,
    Prefix: encode(rq.query.get('prefix') ?? ''),
    ...(startAfter ? { StartAfter: encode(startAfter) } : {}),
    ...(token !== undefined ? { ContinuationToken: token } : {}),
    ...(result.isTruncated && result.nextAfter
      ? { NextContinuationToken: encodeContinuationToken(result.nextAfter) }
      : {}),
    KeyCount: result.objects.length + result.commonPrefixes.length,
    MaxKeys: maxKeys,
    ...(delimiter ? { Delimiter: encode(delimiter) } : {}),
    IsTruncated: result.isTruncated,
    ...(encodingType ? { EncodingType: encodingType } : {}),
    Contents: contents(result.objects, encode, rq.query.get('fetch-owner') === 'true'),
    CommonPrefixes: commonPrefixes(result.commonPrefixes, encode),
  };
  return xmlReply(deps.xml.build('ListBucketResult', body));
}

export async function listMultipartUploads(bucket: string, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const { encode, encodingType } = encoderOf(rq);
  const maxUploads = parseMaxKeys(rq.query.get('max-uploads'), 'max-uploads');
  const q = rq.query;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const keyMarker = q.get('key-marker') ?? '';
  const uploadIdMarker = q.get('upload-id-marker') ?? '';
  const r = await deps.store.listMultipartUploads({
    bucket,
    ...(prefix ? { prefix } : {}),
    ...(delimiter ? { delimiter } : {}),
    ...(keyMarker ? { keyMarker } : {}),
    ...(uploadIdMarker ? { uploadIdMarker } : {}),
    maxUploads: Math.max(maxUploads, 1),
  });
  const uploads = maxUploads === 0 ? [] : r.uploads;
  const last = uploads[uploads.length - 1];
  const body: XmlNode = {
    Bucket: bucket,
    KeyMarker: encode(keyMarker),
    UploadIdMarker: uploadIdMarker,
    ...(r.isTruncated && last ? { NextKeyMarker: encode(last.key), NextUploadIdMarker: last.uploadId } : {}),
    Prefix: encode(prefix),
    ...(delimiter ? { Delimiter: encode(delimiter) } : {}),
    MaxUploads: maxUploads,
    IsTruncated: maxUploads === 0 ? false : r.isTruncated,
    ...(encodingType ? { EncodingType: encodingType } : {}),
    Upload: uploads.map((u) => ({
      Key: encode(u.key),
      UploadId: u.uploadId,
      Initiator: owner,
      Owner: owner,
      StorageClass: 'STANDARD',
      Initiated: isoTime(u.initiated),
      ...(u.checksumAlgorithm ? { ChecksumAlgorithm: u.checksumAlgorithm } : {}),
    })),
    CommonPrefixes: commonPrefixes(maxUploads === 0 ? [] : r.commonPrefixes, encode),
  };
  return xmlReply(deps.xml.build('ListMultipartUploadsResult', body));
}
