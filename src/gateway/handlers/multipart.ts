// CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
// AbortMultipartUpload, ListParts. UploadPartCopy lives in copy.ts.

import { S3Error } from '../../core/errors.ts';
import { partNumberMax, partSizeBytesMax } from '../../core/limits.ts';
import type { ChecksumAlgorithm, CompletePart } from '../../objects/types.ts';
import { checksumAlgorithms, checksumHeaderName, parseChecksumAlgorithm, planBody, readSmallBody } from '../body.ts';
import type { ObjectRef } from '../endpoint.ts';
import { emptyReply, xmlReply, type Reply, type ReplyHeaders } from '../reply.ts';
import { isoTime, list, malformed, quoteEtag, text, type XmlNode } from '../xml.ts';
import { header, owner, writeAttributesOf, type HandlerDeps, type RequestState } from './context.ts';
import { parseMaxKeys } from './list.ts';

type Upload = ObjectRef & { uploadId: string };

function checksumTypeOf(rq: RequestState, algorithm: ChecksumAlgorithm): 'FULL_OBJECT' | 'COMPOSITE' {
  const raw = header(rq.req, 'x-amz-checksum-type')?.toUpperCase();
  if (raw !== undefined && raw !== 'FULL_OBJECT' && raw !== 'COMPOSITE') {
    throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-type header is invalid.');
  }
  // CRC64NVME only exists as a full-object checksum; SHA checksums only composite.
  if (algorithm === 'CRC64NVME') {
    if (raw === 'COMPOSITE') throw new S3Error('InvalidRequest', 'The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.');
    return 'FULL_OBJECT';
  }
  if (raw === 'FULL_OBJECT' && (algorithm === 'SHA1' || algorithm === 'SHA256')) {
    throw new S3Error('InvalidRequest', `The FULL_OBJECT checksum type cannot be used with the ${algorithm.toLowerCase()} checksum algorithm.`);
  }
  return raw ?? 'COMPOSITE';
}

export async function createMultipartUpload(op: ObjectRef, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const attrs = writeAttributesOf(rq.req);
  const algorithm = parseChecksumAlgorithm(header(rq.req, 'x-amz-checksum-algorithm'), 'x-amz-checksum-algorithm');
  const checksum = algorithm ? { algorithm, type: checksumTypeOf(rq, algorithm) } : undefined;
  const upload = await deps.store.createMultipartUpload(op.bucket, op.key, attrs, checksum);
  const headers: ReplyHeaders = checksum
    ? { 'x-amz-checksum-algorithm': checksum.algorithm, 'x-amz-checksum-type': checksum.type }
    : {};
  return xmlReply(
    deps.xml.build('InitiateMultipartUploadResult', { Bucket: op.bucket, Key: op.key, UploadId: upload.uploadId }),
    200,
    headers,
  );
}

export async function uploadPart(op: Upload & { partNumber: number }, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const plan = planBody(rq.req, rq.auth, partSizeBytesMax);
  const part = await deps.store.uploadPart({
    bucket: op.bucket,
    key: op.key,
    uploadId: op.uploadId,
    partNumber: op.partNumber,
    body: plan.stream,
    algorithms: plan.algorithms,
    sha256: plan.sha256,
    verify: plan.verify,
  });
  const headers: ReplyHeaders = { etag: quoteEtag(part.etag) };
  if (plan.checksumAlgorithm && part.checksum !== undefined) {
    headers[checksumHeaderName(plan.checksumAlgorithm)] = part.checksum;
  }
  return emptyReply(200, headers);
}

function partChecksum(part: XmlNode): string | undefined {
  for (const algorithm of checksumAlgorithms) {
    const v = text(part, `Checksum${algorithm}`);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** The Complete body: parts in ascending order, ETags with or without quotes. */
export function parseCompleteBody(body: Buffer, deps: HandlerDeps): CompletePart[] {
  const root = deps.xml.parse(body, 'CompleteMultipartUpload');
  const parts = list(root, 'Part').map((p): CompletePart => {
    const n = text(p, 'PartNumber');
    const etag = text(p, 'ETag');
    if (n === undefined || etag === undefined || !/^\d{1,5}$/.test(n.trim())) throw malformed();
    const partNumber = Number(n.trim());
    if (partNumber < 1 || partNumber > partNumberMax) throw malformed();
    const checksum = partChecksum(p);
    return { partNumber, etag: etag.trim().replace(/^"(.*)"$/, '$1'), ...(checksum ? { checksum } : {}) };
  });
  if (parts.length === 0) throw malformed();
  for (let i = 1; i < parts.length; i++) {
    if (parts[i]!.partNumber <= parts[i - 1]!.partNumber) {
      throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
    }
  }
  return parts;
}

export async function completeMultipartUpload(op: Upload, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const parts = parseCompleteBody(await readSmallBody(rq.req, rq.auth), deps);
  const meta = await deps.store.completeMultipartUpload(op.bucket, op.key, op.uploadId, parts);
  const host = header(rq.req, 'host') ?? 'localhost';
  const result: XmlNode = {
    Location: `http://${host}/${op.bucket}/${encodeURIComponent(op.key).replace(/%2F/g, '/')}`,
    Bucket: op.bucket,
    Key: op.key,
    ETag: quoteEtag(meta.etag),
  };
  if (meta.checksum) {
    result[`Checksum${meta.checksum.algorithm}`] = meta.checksum.value;
    result.ChecksumType = meta.checksum.type;
  }
  return xmlReply(deps.xml.build('CompleteMultipartUploadResult', result));
}

export async function abortMultipartUpload(op: Upload, _rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  await deps.store.abortMultipartUpload(op.bucket, op.key, op.uploadId);
  return emptyReply(204);
}

export async function listParts(op: Upload, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const maxParts = parseMaxKeys(rq.query.get('max-parts'), 'max-parts');
  const markerRaw = rq.query.get('part-number-marker');
  if (markerRaw !== undefined && !/^\d{1,5}$/.test(markerRaw)) {
    throw new S3Error('InvalidArgument', 'Provided part-number-marker not an integer or within integer range');
  }
  const marker = markerRaw === undefined ? undefined : Number(markerRaw);
  const r = await deps.store.listParts(op.bucket, op.key, op.uploadId, {
    ...(marker !== undefined ? { partNumberMarker: marker } : {}),
    maxParts: Math.max(maxParts, 1),
  });
  const parts = maxParts === 0 ? [] : r.parts;
  const algorithm = r.upload.checksumAlgorithm;
  const last = parts[parts.length - 1];
  const body: XmlNode = {
    Bucket: op.bucket,
    Key: op.key,
    UploadId: op.uploadId,
    Initiator: owner,
    Owner: owner,
    StorageClass: 'STANDARD',
    PartNumberMarker: marker ?? 0,
    ...(last ? { NextPartNumberMarker: last.partNumber } : {}),
    MaxParts: maxParts,
    IsTruncated: maxParts === 0 ? false : r.isTruncated,
    ...(algorithm ? { ChecksumAlgorithm: algorithm, ChecksumType: r.upload.checksumType ?? 'COMPOSITE' } : {}),
    Part: parts.map((p) => ({
      PartNumber: p.partNumber,
      LastModified: isoTime(p.lastModified),
      ETag: quoteEtag(p.etag),
      Size: p.size,
      ...(algorithm && p.checksum ? { [`Checksum${algorithm}`]: p.checksum } : {}),
    })),
  };
  return xmlReply(deps.xml.build('ListPartsResult', body));
}
