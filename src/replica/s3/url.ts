// Where a plain S3 secondary keeps the primary's buckets (issue 5: "Bucket
// mapping: same names, or a prefix within one target bucket") and where it
// keeps the record, parsed from one URL so `--secondary s3://...` is enough.
//
//   s3://TARGETBUCKET[/PREFIX][@ENDPOINT]   every primary bucket B, key K goes
//                                           to TARGETBUCKET / PREFIX B/K; the
//                                           record lives in TARGETBUCKET under
//                                           PREFIX.lookahead/
//   s3://*[@ENDPOINT]                       same bucket names on the target;
//                                           the record lives in the bucket
//                                           named by record-bucket (default
//                                           lookahead-record)
//
// ENDPOINT is http(s)://host[:port]; without it the SDK's AWS endpoint for
// the region is used. Options ride in the endpoint's query string (an S3
// endpoint has no query of its own):
//   ?region=eu-west-1          SigV4 region (default us-east-1)
//   &path-style=true|false     default true with an endpoint (MinIO, moto,
//                              s3rver need it), false for AWS
//   &record-bucket=NAME        same-names mapping only
// Credentials never go in the URL: see S3TargetOptions.credentials.

import { bucketNameCharsMax, bucketNameCharsMin, keyBytesMax } from '../../core/limits.ts';

export type S3BucketMapping =
  /** Primary bucket B, key K -> target bucket `bucket`, key `prefix + B + "/" + K`. */
  | { kind: 'prefix'; bucket: string; prefix: string }
  /** Primary bucket B, key K -> target bucket B, key K. */
  | { kind: 'same'; recordBucket: string };

export interface S3TargetUrl {
  mapping: S3BucketMapping;
  /** undefined: the SDK's AWS endpoint for the region. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
}

export const defaultRecordBucket = 'lookahead-record';
export const defaultS3Region = 'us-east-1';

export class S3TargetUrlError extends Error {
  constructor(url: string, reason: string) {
    super(`bad S3 target URL ${JSON.stringify(url)}: ${reason}`);
    this.name = 'S3TargetUrlError';
  }
}

const bucketPattern = /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/;
const knownOptions = new Set(['region', 'path-style', 'record-bucket']);

function checkBucket(url: string, name: string, what: string): void {
  if (name.length < bucketNameCharsMin || name.length > bucketNameCharsMax || !bucketPattern.test(name)) {
    throw new S3TargetUrlError(url, `${what} ${JSON.stringify(name)} is not a valid bucket name`);
  }
}

/** Splits "mapping@endpoint" at the last "@http://" or "@https://": a prefix
 * may contain "@", an endpoint never does (no credentials in URLs). */
function splitEndpoint(rest: string): { mapping: string; endpoint?: string } {
  const at = Math.max(rest.lastIndexOf('@http://'), rest.lastIndexOf('@https://'));
  if (at < 0) return { mapping: rest };
  return { mapping: rest.slice(0, at), endpoint: rest.slice(at + 1) };
}

interface EndpointParts {
  endpoint?: string;
  options: URLSearchParams;
}

function parseEndpoint(url: string, raw: string | undefined): EndpointParts {
  if (raw === undefined) return { options: new URLSearchParams() };
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new S3TargetUrlError(url, `endpoint ${JSON.stringify(raw)} is not a URL`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new S3TargetUrlError(url, 'credentials do not belong in the URL');
  }
  if (parsed.pathname !== '/' && parsed.pathname !== '') {
    throw new S3TargetUrlError(url, 'the endpoint takes no path (put the prefix before the @)');
  }
  for (const name of parsed.searchParams.keys()) {
    if (!knownOptions.has(name)) throw new S3TargetUrlError(url, `unknown option ${JSON.stringify(name)}`);
  }
  return { endpoint: `${parsed.protocol}//${parsed.host}`, options: parsed.searchParams };
}

function parseBool(url: string, value: string | null, fallback: boolean): boolean {
  if (value === null) return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new S3TargetUrlError(url, `path-style must be true or false, not ${JSON.stringify(value)}`);
}

function parseMapping(url: string, raw: string, options: URLSearchParams): S3BucketMapping {
  if (raw === '*') {
    const recordBucket = options.get('record-bucket') ?? defaultRecordBucket;
    checkBucket(url, recordBucket, 'record bucket');
    return { kind: 'same', recordBucket };
  }
  if (options.has('record-bucket')) {
    throw new S3TargetUrlError(url, 'record-bucket applies to the same-names mapping (s3://*@...) only');
  }
  const slash = raw.indexOf('/');
  const bucket = slash < 0 ? raw : raw.slice(0, slash);
  let prefix = slash < 0 ? '' : raw.slice(slash + 1);
  checkBucket(url, bucket, 'target bucket');
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  if (prefix.startsWith('/') || prefix.includes('//')) {
    throw new S3TargetUrlError(url, 'the prefix has an empty path segment');
  }
  // A target key is prefix + bucket + "/" + key: leave room for real keys.
  if (Buffer.byteLength(prefix) > keyBytesMax / 2) throw new S3TargetUrlError(url, 'the prefix is too long');
  return { kind: 'prefix', bucket, prefix };
}

export function parseS3TargetUrl(url: string): S3TargetUrl {
  if (!url.startsWith('s3://')) throw new S3TargetUrlError(url, 'expected s3://');
  const { mapping, endpoint: rawEndpoint } = splitEndpoint(url.slice('s3://'.length));
  if (mapping === '') throw new S3TargetUrlError(url, 'no bucket (use s3://BUCKET[/PREFIX] or s3://*)');
  const { endpoint, options } = parseEndpoint(url, rawEndpoint);
  const region = options.get('region') ?? defaultS3Region;
  if (!/^[a-z0-9-]+$/.test(region)) throw new S3TargetUrlError(url, `bad region ${JSON.stringify(region)}`);
  return {
    mapping: parseMapping(url, mapping, options),
    endpoint,
    region,
    forcePathStyle: parseBool(url, options.get('path-style'), endpoint !== undefined),
  };
}

/** Bucket and key on the target of the primary's bucket/key. */
export function targetLocation(mapping: S3BucketMapping, bucket: string, key: string): { bucket: string; key: string } {
  if (mapping.kind === 'same') return { bucket, key };
  return { bucket: mapping.bucket, key: `${mapping.prefix}${bucket}/${key}` };
}

/** Bucket and key prefix of the reserved place holding the record. Bucket
 * names cannot start with ".", so ".lookahead/" never meets a replica. */
export function recordLocation(mapping: S3BucketMapping): { bucket: string; prefix: string } {
  if (mapping.kind === 'same') return { bucket: mapping.recordBucket, prefix: '.lookahead/' };
  return { bucket: mapping.bucket, prefix: `${mapping.prefix}.lookahead/` };
}
