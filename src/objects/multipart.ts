// CompleteMultipartUpload rules and the object it produces. Pure functions:
// the store runs them once before admission (bad input changes nothing) and
// again inside the commit transaction (authoritative).

import { compositeChecksum, fullObjectCrc, multipartEtag, supportsFullObjectCombine } from '../core/checksum.ts';
import { S3Error } from '../core/errors.ts';
import { partSizeBytesMin } from '../core/limits.ts';
import type { PartRecord, UploadRecord } from './meta-db.ts';
import { objectMetaVersion, type CompletePart, type ObjectMeta, type StoredChecksum } from './types.ts';

/** ETags arrive quoted, unquoted or XML-escaped-quoted; compare them bare. */
export function normalizeEtag(etag: string): string {
  return etag.trim().replace(/^(&quot;|")/, '').replace(/(&quot;|")$/, '').toLowerCase();
}

/** The stored parts a Complete names, in order; throws the S3 error otherwise. */
export function validateCompleteParts(stored: readonly PartRecord[], requested: readonly CompletePart[]): PartRecord[] {
  if (requested.length === 0) {
    throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
  }
  const byNumber = new Map(stored.map((p) => [p.partNumber, p]));
  const chosen: PartRecord[] = [];
  let previous = 0;
  for (const req of requested) {
    if (req.partNumber <= previous) {
      throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
    }
    previous = req.partNumber;
    const part = byNumber.get(req.partNumber);
    if (!part || normalizeEtag(req.etag) !== part.etag || (req.checksum && part.checksum && req.checksum !== part.checksum)) {
      throw invalidPart(req.partNumber);
    }
    chosen.push(part);
  }
  for (const part of chosen.slice(0, -1)) {
    if (part.size < partSizeBytesMin) {
      throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
        extra: { PartNumber: String(part.partNumber), MinSizeAllowed: String(partSizeBytesMin), ProposedSize: String(part.size) },
      });
    }
  }
  return chosen;
}

function invalidPart(partNumber: number): S3Error {
  return new S3Error(
    'InvalidPart',
    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    { extra: { PartNumber: String(partNumber) } },
  );
}

/** The final object: references the part blobs in order, no data copied. */
export function buildCompletedMeta(upload: UploadRecord, parts: readonly PartRecord[], seq: number, now: number): ObjectMeta {
  const checksum = completedChecksum(upload, parts);
  return {
    v: objectMetaVersion,
    bucket: upload.bucket,
    key: upload.key,
    size: parts.reduce((sum, p) => sum + p.size, 0),
    etag: multipartEtag(parts.map((p) => p.etag)),
    lastModified: now,
    seq,
    headers: upload.attrs.headers,
    userMeta: upload.attrs.userMeta,
    tags: upload.attrs.tags,
    ...(checksum ? { checksum } : {}),
    partSizes: parts.map((p) => p.size),
    blobs: parts.map((p) => ({ id: p.blobId, size: p.size, ...(p.blobCrc32 !== undefined ? { crc32: p.blobCrc32 } : {}) })),
  };
}

/**
 * COMPOSITE: checksum of the concatenated part checksums, "base64-N".
 * FULL_OBJECT: the CRC of the whole object, combined from the part CRCs
 * (CRC32, CRC32C, CRC64NVME; S3 allows FULL_OBJECT only for CRCs).
 * None when the upload named no algorithm or a part lacks its checksum.
 */
function completedChecksum(upload: UploadRecord, parts: readonly PartRecord[]): StoredChecksum | undefined {
  const algorithm = upload.checksumAlgorithm;
  if (!algorithm) return undefined;
  const values: string[] = [];
  for (const p of parts) {
    if (!p.checksum || p.checksumAlgorithm !== algorithm) return undefined;
    values.push(p.checksum);
  }
  // S3's default: CRC64NVME exists only as FULL_OBJECT, the others default to COMPOSITE.
  const type = upload.checksumType ?? (algorithm === 'CRC64NVME' ? 'FULL_OBJECT' : 'COMPOSITE');
  if (type === 'FULL_OBJECT' && supportsFullObjectCombine(algorithm)) {
    return { algorithm, type, value: fullObjectCrc(algorithm, parts.map((p) => ({ checksum: p.checksum!, size: p.size }))) };
  }
  return { algorithm, type: 'COMPOSITE', value: compositeChecksum(algorithm, values) };
}
