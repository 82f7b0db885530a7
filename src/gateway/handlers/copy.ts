// CopyObject and UploadPartCopy.

import { S3Error } from '../../core/errors.ts';
import { partSizeBytesMax, putObjectBytesMax } from '../../core/limits.ts';
import type { ObjectMeta, WriteAttributes } from '../../objects/types.ts';
import type { CopySourceRef, ObjectRef } from '../endpoint.ts';
import { xmlReply, type Reply } from '../reply.ts';
import { isoTime, quoteEtag } from '../xml.ts';
import { etagMatches, parseCopyRange } from './conditions.ts';
import {
  contentHeadersOf,
  header,
  taggingHeaderOf,
  userMetaOf,
  type HandlerDeps,
  type RequestState,
} from './context.ts';

function directive(rq: RequestState, name: string): 'COPY' | 'REPLACE' {
  const v = (header(rq.req, name) ?? 'COPY').toUpperCase();
  if (v !== 'COPY' && v !== 'REPLACE') {
    throw new S3Error('InvalidArgument', `Unknown ${name}.`, { extra: { ArgumentName: name, ArgumentValue: v } });
  }
  return v;
}

function dateSeconds(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/**
 * x-amz-copy-source-if-*: every failure is 412. As on S3, If-Match true
 * overrides If-Unmodified-Since false, and If-None-Match false with
 * If-Modified-Since true still fails.
 */
export function checkCopySourceConditions(meta: ObjectMeta, rq: RequestState): void {
  const ifMatch = header(rq.req, 'x-amz-copy-source-if-match');
  const ifNoneMatch = header(rq.req, 'x-amz-copy-source-if-none-match');
  const modified = Math.floor(meta.lastModified / 1000);
  const unmodifiedSince = dateSeconds(header(rq.req, 'x-amz-copy-source-if-unmodified-since'));
  const modifiedSince = dateSeconds(header(rq.req, 'x-amz-copy-source-if-modified-since'));
  const fail = (condition: string) =>
    new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
      extra: { Condition: condition },
    });
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, meta.etag)) throw fail('x-amz-copy-source-If-Match');
  } else if (unmodifiedSince !== undefined && modified > unmodifiedSince) {
    throw fail('x-amz-copy-source-If-Unmodified-Since');
  }
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, meta.etag)) throw fail('x-amz-copy-source-If-None-Match');
  } else if (modifiedSince !== undefined && modified <= modifiedSince) {
    throw fail('x-amz-copy-source-If-Modified-Since');
  }
}

/** The attributes the copy gets, or 'copy' to take the source's unchanged. */
function copyAttributes(source: ObjectMeta, rq: RequestState): WriteAttributes | 'copy' {
  const metadata = directive(rq, 'x-amz-metadata-directive');
  const tagging = directive(rq, 'x-amz-tagging-directive');
  if (metadata === 'COPY' && tagging === 'COPY') return 'copy';
  const base: WriteAttributes =
    metadata === 'REPLACE'
      ? { headers: contentHeadersOf(rq.req), userMeta: userMetaOf(rq.req), tags: source.tags }
      : { headers: source.headers, userMeta: source.userMeta, tags: source.tags };
  return tagging === 'REPLACE' ? { ...base, tags: taggingHeaderOf(rq.req) } : base;
}

/** S3 copies at most 5 GiB in one request; larger objects copy by parts. */
function copyTooLarge(max: number): S3Error {
  return new S3Error('InvalidRequest', `The specified copy source is larger than the maximum allowable size for a copy source: ${max}`);
}

function sameObject(a: ObjectRef, b: CopySourceRef): boolean {
  return a.bucket === b.bucket && a.key === b.key;
}

export async function copyObject(
  op: ObjectRef & { source: CopySourceRef },
  rq: RequestState,
  deps: HandlerDeps,
): Promise<Reply> {
  // Validate the directives before touching the store.
  const metadataDirective = directive(rq, 'x-amz-metadata-directive');
  directive(rq, 'x-amz-tagging-directive');
  if (sameObject(op, op.source) && metadataDirective !== 'REPLACE') {
    throw new S3Error(
      'InvalidRequest',
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  const sourceMeta = await deps.store.headObject(op.source.bucket, op.source.key);
  checkCopySourceConditions(sourceMeta, rq);
  if (sourceMeta.size > putObjectBytesMax) throw copyTooLarge(putObjectBytesMax);
  const attrs = copyAttributes(sourceMeta, rq);
  const ifNoneMatch = header(rq.req, 'if-none-match');
  const meta = await deps.store.copyObject(
    { bucket: op.source.bucket, key: op.source.key },
    { bucket: op.bucket, key: op.key },
    attrs,
    ifNoneMatch?.trim() === '*' ? { ifNoneMatchStar: true } : undefined,
  );
  const result: Record<string, string> = { LastModified: isoTime(meta.lastModified), ETag: quoteEtag(meta.etag) };
  if (meta.checksum) result[`Checksum${meta.checksum.algorithm}`] = meta.checksum.value;
  return xmlReply(deps.xml.build('CopyObjectResult', result));
}

export async function uploadPartCopy(
  op: ObjectRef & { source: CopySourceRef; uploadId: string; partNumber: number },
  rq: RequestState,
  deps: HandlerDeps,
): Promise<Reply> {
  const sourceMeta = await deps.store.headObject(op.source.bucket, op.source.key);
  checkCopySourceConditions(sourceMeta, rq);
  const range = parseCopyRange(header(rq.req, 'x-amz-copy-source-range'), sourceMeta.size);
  const length = range ? range.end - range.start + 1 : sourceMeta.size;
  if (length > partSizeBytesMax) throw copyTooLarge(partSizeBytesMax);
  const part = await deps.store.uploadPartCopy({
    bucket: op.bucket,
    key: op.key,
    uploadId: op.uploadId,
    partNumber: op.partNumber,
    source: { bucket: op.source.bucket, key: op.source.key, ...(range ? { range } : {}) },
  });
  return xmlReply(
    deps.xml.build('CopyPartResult', { LastModified: isoTime(part.lastModified), ETag: quoteEtag(part.etag) }),
  );
}
