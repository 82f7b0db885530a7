// Request bodies: framing (plain or aws-chunked), the checksums to compute
// while streaming, and the verifier the store calls before committing.
//
// Nothing here buffers a data body; only the small XML documents are read
// into memory, bounded by xmlBodyBytesMax.

import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { S3Error } from '../core/errors.ts';
import { DigestingTransform } from '../core/checksum.ts';
import { xmlBodyBytesMax } from '../core/limits.ts';
import type { BodyDigest, BodyVerifier, ChecksumAlgorithm } from '../objects/types.ts';
import { AwsChunkedDecoder } from './auth/chunked.ts';
import type { AuthContext } from './auth/sigv4.ts';

type Headers = IncomingMessage['headers'];

export const checksumAlgorithms: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

const digestBytes: Record<ChecksumAlgorithm, number> = {
  CRC32: 4,
  CRC32C: 4,
  CRC64NVME: 8,
  SHA1: 20,
  SHA256: 32,
};

export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

export function parseChecksumAlgorithm(value: string | undefined, header: string): ChecksumAlgorithm | undefined {
  if (value === undefined || value === '') return undefined;
  const upper = value.toUpperCase() as ChecksumAlgorithm;
  if (!checksumAlgorithms.includes(upper)) {
    throw new S3Error('InvalidRequest', `Value for ${header} header is invalid.`);
  }
  return upper;
}

function one(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A checksum the client declared, in a header or announced as a trailer. */
interface DeclaredChecksum {
  algorithm: ChecksumAlgorithm;
  /** Header value; undefined when it arrives in the trailer. */
  value?: string;
  trailer: boolean;
}

function checkChecksumValue(algorithm: ChecksumAlgorithm, value: string): void {
  const raw = /^[A-Za-z0-9+/]*={0,2}$/.test(value) ? Buffer.from(value, 'base64') : undefined;
  if (!raw || raw.length !== digestBytes[algorithm]) {
    throw new S3Error('InvalidRequest', `Value for ${checksumHeaderName(algorithm)} header is invalid.`);
  }
}

function declaredChecksum(headers: Headers): DeclaredChecksum | undefined {
  const found: DeclaredChecksum[] = [];
  for (const algorithm of checksumAlgorithms) {
    const value = one(headers, checksumHeaderName(algorithm));
    if (value !== undefined) found.push({ algorithm, value, trailer: false });
  }
  const trailer = (one(headers, 'x-amz-trailer') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.startsWith('x-amz-checksum-'));
  for (const name of trailer) {
    const algorithm = parseChecksumAlgorithm(name.slice('x-amz-checksum-'.length), 'x-amz-trailer')!;
    found.push({ algorithm, trailer: true });
  }
  if (found.length > 1) {
    throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  }
  const declared = found[0];
  if (declared?.value !== undefined) checkChecksumValue(declared.algorithm, declared.value);
  if (declared) return declared;
  // The SDK may name an algorithm without a value: compute and store it.
  const sdk = parseChecksumAlgorithm(one(headers, 'x-amz-sdk-checksum-algorithm'), 'x-amz-sdk-checksum-algorithm');
  return sdk ? { algorithm: sdk, trailer: false } : undefined;
}

function contentMd5Of(headers: Headers): string | undefined {
  const value = one(headers, 'content-md5');
  if (value === undefined) return undefined;
  const raw = /^[A-Za-z0-9+/]*={0,2}$/.test(value) ? Buffer.from(value, 'base64') : undefined;
  if (!raw || raw.length !== 16) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified was invalid.');
  return raw.toString('hex');
}

/** True when the body is aws-chunked framed, which only the payload mode says. */
export function isAwsChunked(headers: Headers, auth?: AuthContext): boolean {
  const streaming = auth?.payloadMode.startsWith('STREAMING-') ?? false;
  const encoding = (one(headers, 'content-encoding') ?? '').toLowerCase();
  const declared = encoding.split(',').some((e) => e.trim() === 'aws-chunked');
  if (declared && !streaming) {
    throw new S3Error('InvalidRequest', 'aws-chunked bodies need a STREAMING-* x-amz-content-sha256 payload mode.');
  }
  return streaming;
}

/** Content-Encoding to store: the request's, minus the aws-chunked framing. */
export function storedContentEncoding(headers: Headers): string | undefined {
  const value = one(headers, 'content-encoding');
  if (value === undefined) return undefined;
  const rest = value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '' && e.toLowerCase() !== 'aws-chunked');
  return rest.length ? rest.join(', ') : undefined;
}

function declaredLength(headers: Headers, chunked: boolean, maxBytes: number): number {
  const name = chunked ? 'x-amz-decoded-content-length' : 'content-length';
  const raw = one(headers, name);
  if (raw === undefined) {
    throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.');
  }
  if (!/^\d{1,16}$/.test(raw)) throw new S3Error('InvalidArgument', `Invalid ${name}.`);
  const n = Number(raw);
  if (n > maxBytes) {
    throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
      extra: { ProposedSize: raw, MaxSizeAllowed: String(maxBytes) },
    });
  }
  return n;
}

export interface BodyPlan {
  /** The decoded payload, ready for the store. */
  stream: Readable;
  declaredLength: number;
  algorithms: ChecksumAlgorithm[];
  sha256: boolean;
  /** The checksum the client asked for: stored and echoed. */
  checksumAlgorithm?: ChecksumAlgorithm;
  verify: BodyVerifier;
}

/**
 * Everything about a request body that can be checked before reading it is
 * checked here; the rest goes into `verify`, run before the commit.
 */
export function planBody(req: IncomingMessage, auth: AuthContext | undefined, maxBytes: number): BodyPlan {
  const headers = req.headers;
  const chunked = isAwsChunked(headers, auth);
  const length = declaredLength(headers, chunked, maxBytes);
  const md5Hex = contentMd5Of(headers);
  const checksum = declaredChecksum(headers);
  const signedSha = auth?.payloadMode === 'SIGNED' ? auth.payloadSha256Hex : undefined;
  let stream: Readable = req;
  let decoder: AwsChunkedDecoder | undefined;
  if (chunked && auth) {
    decoder = new AwsChunkedDecoder({ auth, decodedLength: length });
    // Not pipeline(): destroying req would cut the socket before the error
    // response is written.
    req.on('error', (err) => decoder!.destroy(err));
    req.pipe(decoder);
    stream = decoder;
  }
  const verify: BodyVerifier = (digest) => {
    if (digest.size !== length) {
      throw new S3Error('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.');
    }
    if (signedSha !== undefined && digest.sha256Hex !== signedSha) {
      throw new S3Error('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", {
        extra: { ClientComputedContentSHA256: signedSha, S3ComputedContentSHA256: digest.sha256Hex ?? '' },
      });
    }
    if (md5Hex !== undefined && digest.md5Hex !== md5Hex) {
      throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    if (checksum) verifyChecksum(checksum, digest, decoder?.trailers);
  };
  return {
    stream,
    declaredLength: length,
    algorithms: checksum ? [checksum.algorithm] : [],
    sha256: signedSha !== undefined,
    ...(checksum ? { checksumAlgorithm: checksum.algorithm } : {}),
    verify,
  };
}

function verifyChecksum(
  declared: DeclaredChecksum,
  digest: BodyDigest,
  trailers: Record<string, string> | undefined,
): void {
  const name = checksumHeaderName(declared.algorithm);
  let expected = declared.value;
  if (declared.trailer) {
    expected = trailers?.[name];
    if (expected === undefined) {
      throw new S3Error('InvalidRequest', `The ${name} trailer was announced in x-amz-trailer but not sent.`);
    }
    checkChecksumValue(declared.algorithm, expected);
  }
  if (expected === undefined) return;
  if (digest.checksums[declared.algorithm] !== expected) {
    throw new S3Error('BadDigest', `The ${declared.algorithm} you specified did not match the calculated checksum.`);
  }
}

/**
 * Reads a small (XML) body into memory with the same checks as a data body.
 * Larger than xmlBodyBytesMax: MaxMessageLengthExceeded, without reading on.
 */
export async function readSmallBody(req: IncomingMessage, auth: AuthContext | undefined): Promise<Buffer> {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody && !isAwsChunked(req.headers, auth)) return Buffer.alloc(0);
  const tooLarge = () =>
    new S3Error('MaxMessageLengthExceeded', 'Your request was too big.');
  let plan: BodyPlan;
  try {
    plan = planBody(req, auth, xmlBodyBytesMax);
  } catch (err) {
    if (err instanceof S3Error && err.code === 'EntityTooLarge') throw tooLarge();
    throw err;
  }
  const digester = new DigestingTransform({ algorithms: plan.algorithms, sha256: plan.sha256 });
  const chunks: Buffer[] = [];
  let total = 0;
  plan.stream.on('error', (err) => digester.destroy(err));
  plan.stream.pipe(digester);
  for await (const chunk of digester as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > xmlBodyBytesMax) throw tooLarge();
    chunks.push(chunk);
  }
  plan.verify(digester.result());
  return Buffer.concat(chunks);
}
