// A minimal AWS Signature V4 signer (header auth) for the load generator and
// the process tests. It exists because @aws-sdk/client-s3 costs ~3 ms of CPU
// per request here and would measure itself instead of the server.
//
// Path-style only: the canonical URI is the request path, each segment
// RFC 3986-encoded once (S3 does not double-encode).

import { createHash, createHmac } from 'node:crypto';

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

/** RFC 3986 encoding as SigV4 wants it (unreserved: A-Z a-z 0-9 - _ . ~). */
export function uriEncode(value: string, encodeSlash = true): string {
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
  return createHash('sha256').update(data, 'utf8').digest('hex');
}

/** "20260102T030405Z" */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** Signs one request. Signing keys are cached per day and secret. */
export class SigV4Signer {
  private readonly creds: Credentials;
  private cachedDay = '';
  private cachedKey: Buffer = Buffer.alloc(0);

  constructor(creds: Credentials) {
    this.creds = creds;
  }

  private signingKey(day: string): Buffer {
    if (day !== this.cachedDay) {
      const kDate = hmac('AWS4' + this.creds.secretKey, day);
      const kRegion = hmac(kDate, this.creds.region);
      const kService = hmac(kRegion, 's3');
      this.cachedKey = hmac(kService, 'aws4_request');
      this.cachedDay = day;
    }
    return this.cachedKey;
  }

  sign(input: SignInput): SignedRequest {
    const stamp = amzDate(input.date ?? new Date());
    const day = stamp.slice(0, 8);
    const headers: Record<string, string> = {
      ...input.headers,
      host: input.host,
      'x-amz-date': stamp,
      'x-amz-content-sha256': input.payloadHash,
    };
    const names = Object.keys(headers)
      .map((n) => n.toLowerCase())
      .sort();
    const lowered: Record<string, string> = {};
    for (const [n, v] of Object.entries(headers)) lowered[n.toLowerCase()] = String(v);
    const canonicalHeaders = names
      .map((n) => `${n}:${lowered[n]!.trim().replace(/\s+/g, ' ')}\n`)
      .join('');
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
