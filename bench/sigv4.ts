// A minimal AWS Signature V4 signer (header auth) for the load generator and
// the process tests. It exists because @aws-sdk/client-s3 costs ~3 ms of CPU
// per request here and would measure itself instead of the server.
//
// Path-style only: the canonical URI is the request path, each segment
// RFC 3986-encoded once (S3 does not double-encode).

import { createHash, createHmac, createSecretKey, hash, type KeyObject } from 'node:crypto';

export const unsignedPayload = 'UNSIGNED-PAYLOAD';
export const emptySha256 = createHash('sha256').update('').digest('hex');

export interface Credentials {
  accessKey: string;
  secretKey: string;
  region: string;
}

export interface SignInput {
  method: string;
  /** Decoded path, e.g. "/bucket/some key". Encoded here. */
  path: string;
  /** Decoded query parameters; a value of "" is sent as "name=". */
  query?: Record<string, string>;
  host: string;
  /** Extra headers to send and sign (names lower-case). */
  headers?: Record<string, string>;
  /** Hex SHA-256 of the body, or UNSIGNED-PAYLOAD. */
  payloadHash: string;
  /** Defaults to now; a parameter so tests can sign with a fixed clock. */
  date?: Date;
}

export interface SignedRequest {
  /** Encoded path plus query string, ready for node:http's `path`. */
  pathAndQuery: string;
  headers: Record<string, string>;
}

/** Strings uriEncode leaves as they are (with and without '/' kept). */
const unreservedOnly = /^[A-Za-z0-9\-_.~]*$/;
const unreservedOrSlash = /^[A-Za-z0-9\-_.~/]*$/;

/** RFC 3986 encoding as SigV4 wants it (unreserved: A-Z a-z 0-9 - _ . ~). */
export function uriEncode(value: string, encodeSlash = true): string {
  // The load generator's keys need no encoding: skip the per-byte loop.
  if ((encodeSlash ? unreservedOnly : unreservedOrSlash).test(value)) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (c === '/' && !encodeSlash)) out += c;
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(data: string): string {
  return hash('sha256', data, 'hex');
}

/** "20260102T030405Z" */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** A header value as SigV4 signs it: trimmed, inner whitespace runs as one space. */
function canonicalValue(value: string): string {
  return /^\S+$/.test(value) ? value : value.trim().replace(/\s+/g, ' ');
}

/**
 * Signs one request. Signing keys are cached per day and secret, the
 * X-Amz-Date text per second: the signer runs in the load generator, whose
 * CPU competes with the server's on the bench machine.
 */
export class SigV4Signer {
  private readonly creds: Credentials;
  private cachedDay = '';
  private cachedKey: KeyObject = createSecretKey(Buffer.alloc(32));
  private stampSecond = NaN;
  private stamp = '';

  constructor(creds: Credentials) {
    this.creds = creds;
  }

  private signingKey(day: string): KeyObject {
    if (day !== this.cachedDay) {
      const kDate = hmac('AWS4' + this.creds.secretKey, day);
      const kRegion = hmac(kDate, this.creds.region);
      const kService = hmac(kRegion, 's3');
      this.cachedKey = createSecretKey(hmac(kService, 'aws4_request'));
      this.cachedDay = day;
    }
    return this.cachedKey;
  }

  private amzDateOf(date: Date | undefined): string {
    if (date !== undefined) return amzDate(date);
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.stampSecond) {
      this.stamp = amzDate(new Date(second * 1000));
      this.stampSecond = second;
    }
    return this.stamp;
  }

  sign(input: SignInput): SignedRequest {
    const stamp = this.amzDateOf(input.date);
    const day = stamp.slice(0, 8);
    const lowered: Record<string, string> = {};
    for (const n in input.headers) lowered[n.toLowerCase()] = String(input.headers[n]);
    lowered['host'] = input.host;
    lowered['x-amz-date'] = stamp;
    lowered['x-amz-content-sha256'] = input.payloadHash;
    const names = Object.keys(lowered).sort();
    let canonicalHeaders = '';
    for (const n of names) canonicalHeaders += `${n}:${canonicalValue(lowered[n]!)}\n`;
    const signedHeaders = names.join(';');
    const encodedPath = uriEncode(input.path, false);
    const query = canonicalQuery(input.query ?? {});
    const canonicalRequest = [
      input.method,
      encodedPath,
      query,
      canonicalHeaders,
      signedHeaders,
      input.payloadHash,
    ].join('\n');
    const scope = `${day}/${this.creds.region}/s3/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', stamp, scope, sha256Hex(canonicalRequest)].join('\n');
    const signature = createHmac('sha256', this.signingKey(day)).update(stringToSign).digest('hex');
    lowered['authorization'] =
      `AWS4-HMAC-SHA256 Credential=${this.creds.accessKey}/${scope}, ` +
      `SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return { pathAndQuery: query ? `${encodedPath}?${query}` : encodedPath, headers: lowered };
  }
}

export function canonicalQuery(query: Record<string, string>): string {
  return Object.entries(query)
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}
