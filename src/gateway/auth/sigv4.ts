// AWS Signature Version 4 verification for S3: the Authorization header and
// presigned (query string) URLs.
//
// Signature Version 2 is not supported. aws-cli v1 presigns with SigV2 when
// it has no config file (`?AWSAccessKeyId=..&Signature=..&Expires=..`) and
// old tools send `Authorization: AWS key:sig`. Both get AccessDenied with a
// message that says SigV4 is required (the fix on the client side is
// `signature_version = s3v4`), rather than a confusing SignatureDoesNotMatch.

import type { KeyObject } from 'node:crypto';
import { S3Error } from '../../core/errors.ts';
import { presignExpiresSecondsMax, presignExpiresSecondsMin, requestSkewMsMax } from '../../core/limits.ts';
import {
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  parseQuery,
  type HeaderBag,
  type QueryParam,
} from './canonical.ts';
import {
  SigningKeyCache,
  credentialScope,
  deriveSigningKey,
  hmacHex,
  sigV4Algorithm,
  signaturesEqual,
  stringToSign,
} from './signing.ts';

export interface CredentialLookup {
  secretFor(accessKeyId: string): string | undefined;
  /** The buckets a key is limited to; undefined: every bucket. */
  bucketsFor?(accessKeyId: string): ReadonlySet<string> | undefined;
}

export interface SignedRequest {
  method: string;
  /** Path exactly as received on the wire (still percent-encoded). */
  rawPath: string;
  /** Query string as received, without '?'. */
  rawQuery: string;
  /**
   * Node's lower-cased headers. Pass `req.headersDistinct` when available:
   * node joins repeated headers with ', ' in `req.headers`, SigV4 with ','.
   */
  headers: HeaderBag;
}

export type PayloadMode =
  | 'UNSIGNED-PAYLOAD'
  | 'SIGNED'
  | 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'
  | 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'
  | 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';

export interface AuthContext {
  accessKeyId: string;
  presigned: boolean;
  payloadMode: PayloadMode;
  /** When payloadMode is 'SIGNED': the lower-case hex SHA-256 the body must match. */
  payloadSha256Hex?: string;
  /** The request's signature: the seed of an aws-chunked signature chain. */
  signature: string;
  signingKey: Buffer;
  amzDate: string;
  scope: string;
}

export interface VerifyOptions {
  /** Milliseconds since the epoch (the caller's clock). */
  now: number;
  /** Signing-key cache owned by the gateway; keys are derived afresh without it. */
  keyCache?: SigningKeyCache;
}

const presignParams = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature'] as const;

/**
 * Verifies a request's SigV4 signature. Returns undefined for an anonymous
 * request (no authentication at all); throws S3Error when authentication is
 * present but wrong.
 */
export function verifyRequest(
  req: SignedRequest,
  creds: CredentialLookup,
  options: VerifyOptions,
): AuthContext | undefined {
  const query = parseQuery(req.rawQuery);
  const authorization = firstHeader(req.headers, 'authorization');
  const presigned = query.some((p) => (presignParams as readonly string[]).includes(p.name));
  if (authorization !== undefined && presigned) {
    throw new S3Error('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified');
  }
  if (authorization !== undefined) return verifyHeaderAuth(req, query, authorization, creds, options);
  if (presigned) return verifyPresigned(req, query, creds, options);
  if (query.some((p) => p.name === 'AWSAccessKeyId') || (hasParam(query, 'Signature') && hasParam(query, 'Expires'))) {
    throw sigV2Rejected();
  }
  return undefined;
}

function sigV2Rejected(): S3Error {
  return new S3Error(
    'AccessDenied',
    'Signature Version 2 is not supported; sign requests with AWS Signature Version 4 (AWS4-HMAC-SHA256). For aws-cli v1 presigned URLs set `signature_version = s3v4` in the s3 section of its config.',
  );
}

function hasParam(query: readonly QueryParam[], name: string): boolean {
  return query.some((p) => p.name === name);
}

function firstHeader(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

// ---------------------------------------------------------------------------
// Credential scope and dates

interface Credential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

type ParamErrorCode = 'AuthorizationHeaderMalformed' | 'AuthorizationQueryParametersError';

/** `AKID/20130524/us-east-1/s3/aws4_request`; any region, service must be s3. */
function parseCredential(text: string, amzDate: string, code: ParamErrorCode): Credential {
  const parts = text.split('/');
  if (parts.length < 5 || parts.slice(0, -4).join('/') === '') {
    throw new S3Error(code, `The credential is malformed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request", got "${text}".`);
  }
  const [date, region, service, terminal] = parts.slice(-4) as [string, string, string, string];
  const accessKeyId = parts.slice(0, -4).join('/');
  if (terminal !== 'aws4_request') {
    throw new S3Error(code, `The credential is malformed; incorrect terminal "${terminal}". This endpoint uses "aws4_request".`);
  }
  if (service !== 's3') {
    throw new S3Error(code, `The credential is malformed; incorrect service "${service}". This endpoint belongs to "s3".`);
  }
  if (region === '' || !/^\d{8}$/.test(date)) {
    throw new S3Error(code, `The credential is malformed; bad date or region in "${text}".`);
  }
  if (date !== amzDate.slice(0, 8)) {
    throw new S3Error(code, `Invalid credential date "${date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  }
  return { accessKeyId, date, region, service };
}

const amzDatePattern = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Milliseconds for a valid `YYYYMMDDTHHMMSSZ`, undefined otherwise. */
export function parseAmzDate(text: string): number | undefined {
  const m = amzDatePattern.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  // Reject 20130231 and friends, and years below 100 (Date.UTC would move
  // them to 19xx): the same dates a format-and-compare round trip rejects,
  // checked with arithmetic instead of string work on every request.
  if (y < 100 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 59) return undefined;
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

/** Days of month `mo` (1-12) of year `y` in the proleptic Gregorian calendar, as Date uses. */
function daysInMonth(y: number, mo: number): number {
  if (mo !== 2) return mo === 4 || mo === 6 || mo === 9 || mo === 11 ? 30 : 31;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return leap ? 29 : 28;
}

export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** x-amz-date, or an RFC 1123 Date header (SigV4 allows either). */
function headerAmzDate(headers: HeaderBag): { amzDate: string; ms: number } {
  const amz = firstHeader(headers, 'x-amz-date');
  if (amz !== undefined) {
    const ms = parseAmzDate(amz.trim());
    if (ms !== undefined) return { amzDate: amz.trim(), ms };
  } else {
    const date = firstHeader(headers, 'date');
    const ms = date === undefined ? NaN : Date.parse(date);
    if (Number.isFinite(ms)) return { amzDate: formatAmzDate(ms), ms };
  }
  throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
}

function lookupSecret(creds: CredentialLookup, accessKeyId: string): string {
  const secret = creds.secretFor(accessKeyId);
  if (secret === undefined) {
    throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      extra: { AWSAccessKeyId: accessKeyId },
    });
  }
  return secret;
}

function signingKeyFor(options: VerifyOptions, secret: string, cred: Credential): { raw: Buffer; key: Buffer | KeyObject } {
  if (options.keyCache) return options.keyCache.entry(secret, cred.date, cred.region, cred.service);
  const raw = deriveSigningKey(secret, cred.date, cred.region, cred.service);
  return { raw, key: raw };
}

// ---------------------------------------------------------------------------
// Payload modes

const streamingModes: readonly PayloadMode[] = [
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
];

function payloadModeOf(value: string): { mode: PayloadMode; hex?: string } {
  if (value === 'UNSIGNED-PAYLOAD') return { mode: 'UNSIGNED-PAYLOAD' };
  if ((streamingModes as readonly string[]).includes(value)) return { mode: value as PayloadMode };
  if (/^[0-9a-fA-F]{64}$/.test(value)) return { mode: 'SIGNED', hex: value.toLowerCase() };
  throw new S3Error('InvalidArgument', `x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.`, {
    extra: { ArgumentName: 'x-amz-content-sha256', ArgumentValue: value },
  });
}

// ---------------------------------------------------------------------------
// Shared final step

interface Claimed {
  req: SignedRequest;
  query: readonly QueryParam[];
  cred: Credential;
  amzDate: string;
  signedHeaders: string[];
  signature: string;
  payloadHash: string;
  presigned: boolean;
}

/**
 * x-amz-* headers change what a request does (copy source, ACL, checksums),
 * so like S3 we refuse requests that carry one the client did not sign.
 */
function requireAmzHeadersSigned(headers: HeaderBag, signedHeaders: readonly string[]): void {
  const unsigned = Object.keys(headers).filter(
    (name) => name.startsWith('x-amz-') && headers[name] !== undefined && !signedHeaders.includes(name),
  );
  if (unsigned.length > 0) {
    throw new S3Error('AccessDenied', 'There were headers present in the request which were not signed', {
      extra: { HeadersNotSigned: unsigned.join(', ') },
    });
  }
}

function parseSignedHeaders(text: string, code: ParamErrorCode): string[] {
  const names = text.split(';');
  if (names.some((n) => !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(n))) {
    throw new S3Error(code, `SignedHeaders must be a ';'-separated list of lower-case header names, got "${text}".`);
  }
  if (!names.includes('host')) {
    throw new S3Error(code, 'The host header must be signed.');
  }
  return names;
}

function checkSignature(claimed: Claimed, secret: string, options: VerifyOptions): AuthContext {
  const { req, cred } = claimed;
  const canonical = canonicalRequest({
    method: req.method.toUpperCase(),
    canonicalUri: canonicalUri(req.rawPath),
    canonicalQuery: canonicalQuery(claimed.query, claimed.presigned ? 'X-Amz-Signature' : undefined),
    signedHeaders: claimed.signedHeaders,
    headers: req.headers,
    payloadHash: claimed.payloadHash,
  });
  const scope = credentialScope(cred.date, cred.region, cred.service);
  const toSign = stringToSign(claimed.amzDate, scope, canonical);
  const signingKey = signingKeyFor(options, secret, cred);
  const expected = hmacHex(signingKey.key, toSign);
  if (!signaturesEqual(expected, claimed.signature)) {
    throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {
      extra: {
        AWSAccessKeyId: cred.accessKeyId,
        StringToSign: toSign,
        SignatureProvided: claimed.signature,
        CanonicalRequest: canonical,
      },
    });
  }
  const { mode, hex } = payloadModeOf(claimed.payloadHash);
  return {
    accessKeyId: cred.accessKeyId,
    presigned: claimed.presigned,
    payloadMode: mode,
    ...(hex === undefined ? {} : { payloadSha256Hex: hex }),
    signature: claimed.signature,
    signingKey: signingKey.raw,
    amzDate: claimed.amzDate,
    scope,
  };
}

// ---------------------------------------------------------------------------
// Authorization header

interface AuthorizationFields {
  credential: string;
  signedHeaders: string;
  signature: string;
}

/** `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` */
function parseAuthorization(value: string): AuthorizationFields {
  const trimmed = value.trim();
  if (trimmed.startsWith('AWS ')) throw sigV2Rejected();
  const space = trimmed.indexOf(' ');
  const algorithm = space < 0 ? trimmed : trimmed.slice(0, space);
  if (algorithm !== sigV4Algorithm) {
    throw new S3Error('InvalidArgument', `Unsupported Authorization Type "${algorithm}"; this endpoint accepts AWS4-HMAC-SHA256.`, {
      extra: { ArgumentName: 'Authorization', ArgumentValue: algorithm },
    });
  }
  const fields = new Map<string, string>();
  for (const piece of trimmed.slice(space + 1).split(',')) {
    const eq = piece.indexOf('=');
    const name = piece.slice(0, Math.max(eq, 0)).trim();
    if (eq < 0 || fields.has(name)) throw malformedHeader(value);
    fields.set(name, piece.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signedHeaders || !signature) throw malformedHeader(value);
  return { credential, signedHeaders, signature };
}

function malformedHeader(value: string): S3Error {
  return new S3Error(
    'AuthorizationHeaderMalformed',
    'The authorization header is malformed; it must carry Credential=, SignedHeaders= and Signature= once each.',
    { extra: { Authorization: value.slice(0, 512) } },
  );
}

function verifyHeaderAuth(
  req: SignedRequest,
  query: readonly QueryParam[],
  authorization: string,
  creds: CredentialLookup,
  options: VerifyOptions,
): AuthContext {
  const fields = parseAuthorization(authorization);
  const { amzDate, ms } = headerAmzDate(req.headers);
  const cred = parseCredential(fields.credential, amzDate, 'AuthorizationHeaderMalformed');
  const signedHeaders = parseSignedHeaders(fields.signedHeaders, 'AuthorizationHeaderMalformed');
  const payloadHash = firstHeader(req.headers, 'x-amz-content-sha256');
  if (payloadHash === undefined) {
    throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  payloadModeOf(payloadHash); // rejects an invalid value before any crypto
  requireAmzHeadersSigned(req.headers, signedHeaders);
  const secret = lookupSecret(creds, cred.accessKeyId);
  if (Math.abs(options.now - ms) > requestSkewMsMax) {
    throw new S3Error('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
      extra: { RequestTime: amzDate, ServerTime: new Date(options.now).toISOString(), MaxAllowedSkewMilliseconds: String(requestSkewMsMax) },
    });
  }
  return checkSignature(
    { req, query, cred, amzDate, signedHeaders, signature: fields.signature, payloadHash, presigned: false },
    secret,
    options,
  );
}

// ---------------------------------------------------------------------------
// Presigned URLs

const requiredPresignParams = [
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Signature',
  'X-Amz-Date',
  'X-Amz-SignedHeaders',
  'X-Amz-Expires',
] as const;

function queryError(message: string): S3Error {
  return new S3Error('AuthorizationQueryParametersError', message);
}

function presignValues(query: readonly QueryParam[]): Record<(typeof requiredPresignParams)[number], string> {
  const values: Partial<Record<string, string>> = {};
  for (const name of requiredPresignParams) {
    const found = query.filter((p) => p.name === name);
    if (found.length !== 1) {
      throw queryError('Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters, once each.');
    }
    values[name] = found[0]!.value;
  }
  return values as Record<(typeof requiredPresignParams)[number], string>;
}

function parseExpires(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw queryError('X-Amz-Expires should be a number of seconds.');
  const seconds = Number(text);
  if (seconds < presignExpiresSecondsMin || seconds > presignExpiresSecondsMax) {
    throw queryError(`X-Amz-Expires must be between ${presignExpiresSecondsMin} and ${presignExpiresSecondsMax} seconds (a week).`);
  }
  return seconds;
}

/** X-Amz-Content-Sha256 in the query, else a signed header, else UNSIGNED-PAYLOAD. */
function presignPayloadHash(req: SignedRequest, query: readonly QueryParam[], signedHeaders: readonly string[]): string {
  const fromQuery = query.find((p) => p.name.toLowerCase() === 'x-amz-content-sha256');
  if (fromQuery) return fromQuery.value;
  const fromHeader = firstHeader(req.headers, 'x-amz-content-sha256');
  if (fromHeader !== undefined && signedHeaders.includes('x-amz-content-sha256')) return fromHeader;
  return 'UNSIGNED-PAYLOAD';
}

function verifyPresigned(
  req: SignedRequest,
  query: readonly QueryParam[],
  creds: CredentialLookup,
  options: VerifyOptions,
): AuthContext {
  const values = presignValues(query);
  if (values['X-Amz-Algorithm'] !== sigV4Algorithm) {
    throw queryError(`X-Amz-Algorithm only supports "${sigV4Algorithm}".`);
  }
  const amzDate = values['X-Amz-Date'];
  const ms = parseAmzDate(amzDate);
  if (ms === undefined) throw queryError(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'".`);
  const expires = parseExpires(values['X-Amz-Expires']);
  const cred = parseCredential(values['X-Amz-Credential'], amzDate, 'AuthorizationQueryParametersError');
  const signedHeaders = parseSignedHeaders(values['X-Amz-SignedHeaders'], 'AuthorizationQueryParametersError');
  const payloadHash = presignPayloadHash(req, query, signedHeaders);
  payloadModeOf(payloadHash);
  requireAmzHeadersSigned(req.headers, signedHeaders);
  const secret = lookupSecret(creds, cred.accessKeyId);
  checkPresignWindow(options.now, ms, expires, amzDate);
  return checkSignature(
    { req, query, cred, amzDate, signedHeaders, signature: values['X-Amz-Signature'], payloadHash, presigned: true },
    secret,
    options,
  );
}

function checkPresignWindow(now: number, signedAt: number, expiresSeconds: number, amzDate: string): void {
  if (now > signedAt + expiresSeconds * 1000) {
    throw new S3Error('AccessDenied', 'Request has expired', {
      extra: {
        'X-Amz-Expires': String(expiresSeconds),
        Expires: new Date(signedAt + expiresSeconds * 1000).toISOString(),
        ServerTime: new Date(now).toISOString(),
      },
    });
  }
  // A URL signed in the future (beyond clock skew) is not valid yet.
  if (signedAt - now > requestSkewMsMax) {
    throw new S3Error('AccessDenied', 'Request is not valid yet', {
      extra: { RequestTime: amzDate, ServerTime: new Date(now).toISOString() },
    });
  }
}
