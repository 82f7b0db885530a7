// PutObject, GetObject, HeadObject, DeleteObject.

import { S3Error } from '../../core/errors.ts';
import { largeReadFromBytes, putObjectBytesMax } from '../../core/limits.ts';
import type { ObjectMeta, ReadRange } from '../../objects/types.ts';
import { checksumHeaderName, planBody } from '../body.ts';
import type { ObjectRef } from '../endpoint.ts';
import { emptyReply, type Reply, type ReplyHeaders } from '../reply.ts';
import { readVerifier, verifiedBody } from '../../objects/verify-read.ts';
import { quoteEtag } from '../xml.ts';
import {
  evaluateConditions,
  invalidRange,
  parseRange,
  preconditionFailed,
  type Conditions,
} from './conditions.ts';
import {
  checksumHeaders,
  header,
  objectHeaders,
  writeAttributesOf,
  type HandlerDeps,
  type RequestState,
} from './context.ts';

export async function putObject(op: ObjectRef, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const attrs = writeAttributesOf(rq.req);
  const plan = planBody(rq.req, rq.auth, putObjectBytesMax);
  const ifNoneMatch = header(rq.req, 'if-none-match');
  const ifMatch = header(rq.req, 'if-match');
  const meta = await deps.store.putObject({
    bucket: op.bucket,
    key: op.key,
    body: plan.stream,
    ...attrs,
    algorithms: plan.algorithms,
    sha256: plan.sha256,
    verify: plan.verify,
    ...(plan.checksumAlgorithm ? { checksumAlgorithm: plan.checksumAlgorithm } : {}),
    ...(ifNoneMatch?.trim() === '*' ? { ifNoneMatchStar: true } : {}),
    ...(ifMatch !== undefined ? { ifMatch: ifMatch.trim().replace(/^"(.*)"$/, '$1') } : {}),
  });
  return emptyReply(200, { etag: quoteEtag(meta.etag), ...echoedChecksum(meta, plan.checksumAlgorithm) });
}

/** The checksum a write computed, returned so SDKs can echo it in Complete. */
function echoedChecksum(meta: ObjectMeta, requested: string | undefined): ReplyHeaders {
  if (!requested || !meta.checksum) return {};
  return {
    [checksumHeaderName(meta.checksum.algorithm)]: meta.checksum.value,
    'x-amz-checksum-type': meta.checksum.type,
  };
}

function conditionsOf(rq: RequestState): Conditions {
  const c: Conditions = {};
  const ifMatch = header(rq.req, 'if-match');
  const ifNoneMatch = header(rq.req, 'if-none-match');
  const ifModifiedSince = header(rq.req, 'if-modified-since');
  const ifUnmodifiedSince = header(rq.req, 'if-unmodified-since');
  if (ifMatch !== undefined) c.ifMatch = ifMatch;
  if (ifNoneMatch !== undefined) c.ifNoneMatch = ifNoneMatch;
  if (ifModifiedSince !== undefined) c.ifModifiedSince = ifModifiedSince;
  if (ifUnmodifiedSince !== undefined) c.ifUnmodifiedSince = ifUnmodifiedSince;
  return c;
}

/** Throws 412 or returns a 304 reply when a condition fails. */
function checkConditions(meta: ObjectMeta, rq: RequestState): Reply | undefined {
  const outcome = evaluateConditions(meta, conditionsOf(rq));
  if (outcome === 'precondition-failed') throw preconditionFailed('If-Match or If-Unmodified-Since');
  if (outcome === 'not-modified') {
    return emptyReply(304, { etag: quoteEtag(meta.etag), 'last-modified': new Date(meta.lastModified).toUTCString() });
  }
  return undefined;
}

interface Selection {
  status: 200 | 206;
  range?: ReadRange;
  headers: ReplyHeaders;
}

function partRange(meta: ObjectMeta, partNumber: number): ReadRange | undefined {
  const sizes = meta.partSizes ?? [meta.size];
  if (partNumber > sizes.length) return undefined;
  let start = 0;
  for (let i = 0; i < partNumber - 1; i++) start += sizes[i]!;
  return { start, end: start + sizes[partNumber - 1]! - 1 };
}

/** Which bytes to send: whole object, a Range, or one part (partNumber). */
function select(meta: ObjectMeta, rq: RequestState): Selection {
  const rangeHeader = header(rq.req, 'range');
  const partParam = rq.query.get('partNumber');
  if (partParam !== undefined) {
    if (rangeHeader !== undefined) {
      throw new S3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter');
    }
    const n = /^\d{1,5}$/.test(partParam) ? Number(partParam) : 0;
    if (n < 1 || n > 10_000) throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive');
    const range = partRange(meta, n);
    if (!range) throw new S3Error('InvalidPartNumber', 'The requested partnumber is not satisfiable');
    if (!meta.partSizes) return { status: 200, headers: {} };
    return rangeSelection(range, meta.size);
  }
  const outcome = parseRange(rangeHeader, meta.size);
  if (outcome.kind === 'unsatisfiable') throw invalidRange(meta.size, rangeHeader ?? '');
  if (outcome.kind === 'whole') return { status: 200, headers: {} };
  return rangeSelection(outcome.range, meta.size);
}

function rangeSelection(range: ReadRange, size: number): Selection {
  return {
    status: 206,
    range,
    headers: { 'content-range': `bytes ${range.start}-${range.end}/${size}` },
  };
}

function lengthOf(meta: ObjectMeta, range?: ReadRange): number {
  return range ? range.end - range.start + 1 : meta.size;
}

export async function getObject(op: ObjectRef, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const reader = await deps.store.openObject(op.bucket, op.key);
  try {
    const meta = reader.meta;
    const notModified = checkConditions(meta, rq);
    if (notModified) {
      await reader.close();
      return notModified;
    }
    const sel = select(meta, rq);
    const headers: ReplyHeaders = {
      ...objectHeaders(meta, rq),
      ...(sel.range ? {} : checksumHeaders(meta, rq)),
      ...sel.headers,
      'content-length': lengthOf(meta, sel.range),
    };
    if (meta.size === 0) {
      await reader.close();
      return { status: sel.status, headers, body: Buffer.alloc(0) };
    }
    // Large reads: the store writes them with reused buffers (objects/pump.ts).
    if (lengthOf(meta, sel.range) >= largeReadFromBytes && reader.pump) {
      return { status: sel.status, headers, body: reader.pump(sel.range, readVerifier(meta, sel.range, deps.verifyReads)) };
    }
    return { status: sel.status, headers, body: verifiedBody(meta, sel.range, reader.stream(sel.range), deps.verifyReads) };
  } catch (err) {
    await reader.close();
    throw err;
  }
}

export async function headObject(op: ObjectRef, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const meta = await deps.store.headObject(op.bucket, op.key);
  const notModified = checkConditions(meta, rq);
  if (notModified) return notModified;
  const sel = select(meta, rq);
  return {
    status: sel.status,
    headers: {
      ...objectHeaders(meta, rq),
      ...(sel.range ? {} : checksumHeaders(meta, rq)),
      ...sel.headers,
      'content-length': lengthOf(meta, sel.range),
    },
  };
}

export async function deleteObject(op: ObjectRef, _rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  await deps.store.deleteObject(op.bucket, op.key);
  return emptyReply(204);
}
