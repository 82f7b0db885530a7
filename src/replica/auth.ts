// Inter-site request signing (issue 3: "Inter-site traffic is authenticated
// (its own replication credentials ...); a client's S3 key cannot touch the
// record or write replicas"). HMAC-SHA256 with the replication secret over
// method, path, query, a timestamp and the body's SHA-256 (or, for a
// streamed object body, the signed metadata header that describes it).

import { createHash, createHmac, hash, timingSafeEqual } from 'node:crypto';
import { replicaAuthSkewMs } from '../core/limits.ts';

export const authHeader = 'x-lookahead-replica-auth';
export const dateHeader = 'x-lookahead-date';
export const contentHashHeader = 'x-lookahead-content-sha256';
export const metaHeader = 'x-lookahead-meta';
export const epochHeader = 'x-lookahead-epoch';
const scheme = 'LAR1-HMAC-SHA256';

/** The body hash of a streamed object: it is the metadata that is signed
 * (it names size and ETag; the store verifies what it can). */
export const streamedBodyHash = 'STREAMED';

export function sha256Hex(data: string | Buffer): string {
  // One-shot: no Hash object (every inter-site request hashes its body).
  return hash('sha256', data, 'hex');
}

/** sha256Hex of the parts' concatenation, without concatenating them. */
export function sha256HexOfParts(parts: readonly Buffer[]): string {
  if (parts.length === 1) return sha256Hex(parts[0]!);
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  return h.digest('hex');
}

export interface SignInput {
  method: string;
  /** Path and query as sent (`/_lookahead/replica/record?x=1`). */
  url: string;
  date: number;
  contentSha256: string;
  /** Value of x-lookahead-meta, '' when absent. */
  meta: string;
  epoch: string;
}

function stringToSign(input: SignInput): string {
  return [scheme, input.method.toUpperCase(), input.url, String(input.date), input.contentSha256, input.meta, input.epoch].join('\n');
}

export function signature(secret: string, input: SignInput): string {
  return createHmac('sha256', secret).update(stringToSign(input)).digest('hex');
}

/** Headers to add to a request. */
export function signHeaders(secret: string, input: SignInput): Record<string, string> {
  return {
    [authHeader]: `${scheme} ${signature(secret, input)}`,
    [dateHeader]: String(input.date),
    [contentHashHeader]: input.contentSha256,
  };
}

/** Checks a request's signature and freshness; returns a reason on failure. */
export function verifySignature(
  secret: string,
  request: { method: string; url: string; header: (name: string) => string | undefined },
  now: number,
): string | undefined {
  const auth = request.header(authHeader);
  const date = Number(request.header(dateHeader));
  const contentSha256 = request.header(contentHashHeader);
  if (auth === undefined || !auth.startsWith(`${scheme} `)) return 'missing replication signature';
  if (!Number.isFinite(date) || Math.abs(now - date) > replicaAuthSkewMs) return 'request date outside the allowed window';
  if (contentSha256 === undefined) return 'missing content hash';
  const expected = signature(secret, {
    method: request.method,
    url: request.url,
    date,
    contentSha256,
    meta: request.header(metaHeader) ?? '',
    epoch: request.header(epochHeader) ?? '',
  });
  const given = Buffer.from(auth.slice(scheme.length + 1), 'utf8');
  const want = Buffer.from(expected, 'utf8');
  if (given.length !== want.length || !timingSafeEqual(given, want)) return 'signature does not match';
  return undefined;
}
