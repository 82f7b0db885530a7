// Request -> S3 operation. A pure function of method, raw path, raw query and
// headers: no I/O, so every URL shape is unit-tested without a server.
//
// Parsing never throws: bad input becomes `{ kind: 'Invalid', error }` so the
// server can authenticate first and only then reveal what was wrong.

import { S3Error } from '../core/errors.ts';
import { bucketNameCharsMax, bucketNameCharsMin, keyBytesMax } from '../core/limits.ts';

export interface ObjectRef {
  bucket: string;
  key: string;
}

export interface CopySourceRef extends ObjectRef {
  /** Only 'null' (unversioned) is accepted; kept for error messages. */
  versionId?: string;
}

export type Operation =
  | { kind: 'ListBuckets' }
  | { kind: 'CreateBucket'; bucket: string }
  | { kind: 'HeadBucket'; bucket: string }
  | { kind: 'DeleteBucket'; bucket: string }
  | { kind: 'GetBucketLocation'; bucket: string }
  | { kind: 'ListObjects'; bucket: string }
  | { kind: 'ListObjectsV2'; bucket: string }
  | { kind: 'ListMultipartUploads'; bucket: string }
  | { kind: 'DeleteObjects'; bucket: string }
  | ({ kind: 'PutObject' } & ObjectRef)
  | ({ kind: 'CopyObject'; source: CopySourceRef } & ObjectRef)
  | ({ kind: 'GetObject' } & ObjectRef)
  | ({ kind: 'HeadObject' } & ObjectRef)
  | ({ kind: 'DeleteObject' } & ObjectRef)
  | ({ kind: 'GetObjectTagging' } & ObjectRef)
  | ({ kind: 'PutObjectTagging' } & ObjectRef)
  | ({ kind: 'DeleteObjectTagging' } & ObjectRef)
  | ({ kind: 'CreateMultipartUpload' } & ObjectRef)
  | ({ kind: 'UploadPart'; uploadId: string; partNumber: number } & ObjectRef)
  | ({
      kind: 'UploadPartCopy';
      uploadId: string;
      partNumber: number;
      source: CopySourceRef;
    } & ObjectRef)
  | ({ kind: 'CompleteMultipartUpload'; uploadId: string } & ObjectRef)
  | ({ kind: 'AbortMultipartUpload'; uploadId: string } & ObjectRef)
  | ({ kind: 'ListParts'; uploadId: string } & ObjectRef)
  | { kind: 'NotImplemented'; operation: string; bucket?: string; key?: string }
  | { kind: 'Invalid'; error: S3Error; bucket?: string };

export type OperationKind = Operation['kind'];

export interface EndpointRequest {
  method: string;
  /** Path exactly as sent, still percent-encoded. */
  rawPath: string;
  /** Query string without '?', still encoded. */
  rawQuery: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface EndpointOptions {
  /** e.g. 's3.example.com': `bucket.s3.example.com` is virtual-host style. */
  baseDomain?: string;
}

/** Decoded query parameters; a name without '=' maps to ''. */
export type QueryParams = Map<string, string>;

/** Sub-resources S3 knows at bucket or object level that we do not serve. */
const unsupportedSubresources: Record<string, string> = {
  accelerate: 'BucketAccelerateConfiguration',
  acl: 'Acl',
  analytics: 'BucketAnalyticsConfiguration',
  attributes: 'ObjectAttributes',
  cors: 'BucketCors',
  encryption: 'BucketEncryption',
  'intelligent-tiering': 'BucketIntelligentTieringConfiguration',
  inventory: 'BucketInventoryConfiguration',
  'legal-hold': 'ObjectLegalHold',
  lifecycle: 'BucketLifecycle',
  logging: 'BucketLogging',
  metadataTable: 'BucketMetadataTableConfiguration',
  metrics: 'BucketMetricsConfiguration',
  notification: 'BucketNotification',
  'object-lock': 'ObjectLockConfiguration',
  ownershipControls: 'BucketOwnershipControls',
  policy: 'BucketPolicy',
  policyStatus: 'BucketPolicyStatus',
  publicAccessBlock: 'PublicAccessBlock',
  renameObject: 'RenameObject',
  replication: 'BucketReplication',
  requestPayment: 'BucketRequestPayment',
  restore: 'RestoreObject',
  retention: 'ObjectRetention',
  select: 'SelectObjectContent',
  session: 'CreateSession',
  torrent: 'ObjectTorrent',
  versioning: 'BucketVersioning',
  versions: 'ListObjectVersions',
  website: 'BucketWebsite',
};

const methodPrefix: Record<string, string> = {
  GET: 'Get',
  HEAD: 'Head',
  PUT: 'Put',
  DELETE: 'Delete',
  POST: 'Post',
};

// ---------------------------------------------------------------------------
// Decoding

/** Percent-decodes to bytes, then UTF-8 strictly: invalid input is null. */
export function percentDecode(raw: string, plusIsSpace = false): string | null {
  const text = plusIsSpace ? raw.replace(/\+/g, ' ') : raw;
  // Fast path: plain ASCII without escapes is already the answer.
  if (!/[%\u0080-\uffff]/.test(text)) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x25) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (ch < 0x100) {
      // Node hands over URLs and headers as latin1: one char per raw byte,
      // so unencoded UTF-8 arrives as its bytes.
      bytes.push(ch);
    } else {
      // Only JS-built strings get here: encode the code point as UTF-8.
      const cp = text.codePointAt(i)!;
      bytes.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
      if (cp > 0xffff) i++;
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

export function parseQuery(rawQuery: string): QueryParams | null {
  const params: QueryParams = new Map();
  if (rawQuery === '') return params;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = percentDecode(eq < 0 ? part : part.slice(0, eq), true);
    const value = eq < 0 ? '' : percentDecode(part.slice(eq + 1), true);
    if (name === null || value === null) return null;
    if (!params.has(name)) params.set(name, value);
  }
  return params;
}

function header(req: EndpointRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

// ---------------------------------------------------------------------------
// Validation

/** S3 bucket naming rules (general purpose buckets). */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < bucketNameCharsMin || name.length > bucketNameCharsMax) {
    return `Bucket names must be between ${bucketNameCharsMin} and ${bucketNameCharsMax} characters long.`;
  }
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) {
    return 'Bucket names may contain only lowercase letters, numbers, dots and hyphens, and must begin and end with a letter or number.';
  }
  if (name.includes('..')) return 'Bucket names must not contain two adjacent periods.';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) {
    return 'Bucket names must not be formatted as an IP address.';
  }
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name) || /(-s3alias|--ol-s3|\.mrap|--x-s3)$/.test(name)) {
    return 'Bucket names must not use a reserved prefix or suffix.';
  }
  return undefined;
}

export function checkBucketName(name: string): S3Error | undefined {
  const problem = bucketNameProblem(name);
  return problem
    ? new S3Error('InvalidBucketName', `The specified bucket is not valid. ${problem}`, {
        extra: { BucketName: name },
      })
    : undefined;
}

/** Key rules: 1..1024 bytes of UTF-8, no NUL. Shared with DeleteObjects. */
export function checkKey(key: string): S3Error | undefined {
  if (key.length === 0) return new S3Error('InvalidArgument', 'Object key must not be empty.');
  if (Buffer.byteLength(key, 'utf8') > keyBytesMax) {
    return new S3Error('KeyTooLongError', 'Your key is too long', {
      extra: { MaxSizeAllowed: String(keyBytesMax), Size: String(Buffer.byteLength(key, 'utf8')) },
    });
  }
  if (key.includes('\0')) return new S3Error('InvalidArgument', 'Object key must not contain NUL.');
  if (/[\ud800-\udfff]/u.test(key)) {
    return new S3Error('InvalidArgument', 'Object key is not valid UTF-8.');
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Copy source

/** Parses x-amz-copy-source: `[/]bucket/key[?versionId=...]`, url-encoded. */
export function parseCopySource(raw: string): CopySourceRef | S3Error {
  let path = raw;
  let versionId: string | undefined;
  const q = raw.indexOf('?');
  if (q >= 0) {
    path = raw.slice(0, q);
    const params = parseQuery(raw.slice(q + 1));
    versionId = params?.get('versionId');
    if (params === null || versionId === undefined) {
      return new S3Error('InvalidArgument', 'Invalid copy source query.');
    }
  }
  const decoded = percentDecode(path.startsWith('/') ? path.slice(1) : path);
  if (decoded === null) return new S3Error('InvalidArgument', 'Copy source is not valid UTF-8.');
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) {
    return new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey');
  }
  const bucket = decoded.slice(0, slash);
  const key = decoded.slice(slash + 1);
  const bad = checkBucketName(bucket) ?? checkKey(key);
  if (bad) return bad;
  if (versionId !== undefined && versionId !== 'null') {
    return new S3Error('InvalidArgument', 'Invalid version id specified');
  }
  return versionId === undefined ? { bucket, key } : { bucket, key, versionId };
}

// ---------------------------------------------------------------------------
// Addressing: which bucket and key

interface Address {
  bucket?: string;
  key?: string;
}

/** The bucket a virtual-hosted request names in its Host header, if any. */
export function virtualHostBucket(hostHeader: string | undefined, baseDomain?: string): string | undefined {
  if (!baseDomain) return undefined;
  const host = (hostHeader ?? '').toLowerCase().replace(/:\d+$/, '');
  const base = baseDomain.toLowerCase();
  if (host === base || !host.endsWith(`.${base}`)) return undefined;
  return host.slice(0, host.length - base.length - 1);
}

function address(req: EndpointRequest, options: EndpointOptions): Address | S3Error {
  const vhost = virtualHostBucket(header(req, 'host'), options.baseDomain);
  const path = req.rawPath.startsWith('/') ? req.rawPath.slice(1) : req.rawPath;
  let rawBucket: string | undefined = vhost;
  let rawKey: string;
  if (vhost === undefined) {
    const slash = path.indexOf('/');
    rawBucket = slash < 0 ? path : path.slice(0, slash);
    rawKey = slash < 0 ? '' : path.slice(slash + 1);
    if (rawBucket === '') return {};
  } else {
    rawKey = path;
  }
  const bucket = percentDecode(rawBucket!);
  const key = percentDecode(rawKey);
  if (bucket === null || key === null) {
    return new S3Error('InvalidArgument', 'The request path is not valid percent-encoded UTF-8.');
  }
  return key === '' ? { bucket } : { bucket, key };
}

// ---------------------------------------------------------------------------
// Dispatch

function unsupported(
  method: string,
  q: QueryParams,
  level: 'bucket' | 'object',
  addr: Address,
): Operation | undefined {
  for (const name of q.keys()) {
    const op = unsupportedSubresources[name];
    if (op !== undefined) {
      return {
        kind: 'NotImplemented',
        operation: `${methodPrefix[method] ?? method}${op}`,
        bucket: addr.bucket,
        ...(level === 'object' ? { key: addr.key } : {}),
      };
    }
  }
  // Bucket-level tagging is a sub-resource we do not serve either.
  if (level === 'bucket' && q.has('tagging')) {
    return { kind: 'NotImplemented', operation: `${methodPrefix[method] ?? method}BucketTagging`, bucket: addr.bucket };
  }
  return undefined;
}

function methodNotAllowed(method: string, bucket?: string): Operation {
  return {
    kind: 'Invalid',
    error: new S3Error('MethodNotAllowed', `The specified method ${method} is not allowed against this resource.`, {
      extra: { Method: method },
    }),
    bucket,
  };
}

function bucketOperation(method: string, bucket: string, q: QueryParams): Operation {
  const unsup = unsupported(method, q, 'bucket', { bucket });
  if (unsup) return unsup;
  switch (method) {
    case 'GET':
      if (q.has('location')) return { kind: 'GetBucketLocation', bucket };
      if (q.has('uploads')) return { kind: 'ListMultipartUploads', bucket };
      if (q.get('list-type') === '2') return { kind: 'ListObjectsV2', bucket };
      if (q.has('list-type') && q.get('list-type') !== '1') {
        return { kind: 'Invalid', error: new S3Error('InvalidArgument', 'Invalid list-type.'), bucket };
      }
      return { kind: 'ListObjects', bucket };
    case 'HEAD':
      return { kind: 'HeadBucket', bucket };
    case 'PUT':
      return { kind: 'CreateBucket', bucket };
    case 'DELETE':
      return { kind: 'DeleteBucket', bucket };
    case 'POST':
      if (q.has('delete')) return { kind: 'DeleteObjects', bucket };
      // Browser form uploads (POST Object) are S3 but not served here.
      return { kind: 'NotImplemented', operation: 'PostObject', bucket };
    default:
      return methodNotAllowed(method, bucket);
  }
}

function uploadIdOf(q: QueryParams): string | undefined {
  return q.get('uploadId');
}

function partNumberOf(q: QueryParams): number | S3Error {
  const raw = q.get('partNumber') ?? '';
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 10_000) {
    return new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', {
      extra: { ArgumentName: 'partNumber', ArgumentValue: raw },
    });
  }
  return Number(raw);
}

function copySourceOf(req: EndpointRequest): CopySourceRef | S3Error | undefined {
  const raw = header(req, 'x-amz-copy-source');
  return raw === undefined ? undefined : parseCopySource(raw);
}

function putObjectOperation(req: EndpointRequest, ref: ObjectRef, q: QueryParams): Operation {
  const source = copySourceOf(req);
  if (source instanceof S3Error) return { kind: 'Invalid', error: source, bucket: ref.bucket };
  const uploadId = uploadIdOf(q);
  if (uploadId !== undefined || q.has('partNumber')) {
    const partNumber = partNumberOf(q);
    if (partNumber instanceof S3Error) return { kind: 'Invalid', error: partNumber, bucket: ref.bucket };
    if (uploadId === undefined) {
      return { kind: 'Invalid', error: new S3Error('InvalidRequest', 'uploadId is required with partNumber.'), bucket: ref.bucket };
    }
    return source
      ? { kind: 'UploadPartCopy', ...ref, uploadId, partNumber, source }
      : { kind: 'UploadPart', ...ref, uploadId, partNumber };
  }
  if (q.has('tagging')) return { kind: 'PutObjectTagging', ...ref };
  return source ? { kind: 'CopyObject', ...ref, source } : { kind: 'PutObject', ...ref };
}

function objectOperation(req: EndpointRequest, ref: ObjectRef, q: QueryParams): Operation {
  const unsup = unsupported(req.method, q, 'object', ref);
  if (unsup) return unsup;
  const versionId = q.get('versionId');
  if (versionId !== undefined && versionId !== 'null') {
    return { kind: 'Invalid', error: new S3Error('InvalidArgument', 'Invalid version id specified'), bucket: ref.bucket };
  }
  const uploadId = uploadIdOf(q);
  switch (req.method) {
    case 'GET':
      if (uploadId !== undefined) return { kind: 'ListParts', ...ref, uploadId };
      if (q.has('tagging')) return { kind: 'GetObjectTagging', ...ref };
      return { kind: 'GetObject', ...ref };
    case 'HEAD':
      return { kind: 'HeadObject', ...ref };
    case 'PUT':
      return putObjectOperation(req, ref, q);
    case 'DELETE':
      if (uploadId !== undefined) return { kind: 'AbortMultipartUpload', ...ref, uploadId };
      if (q.has('tagging')) return { kind: 'DeleteObjectTagging', ...ref };
      return { kind: 'DeleteObject', ...ref };
    case 'POST':
      if (q.has('uploads')) return { kind: 'CreateMultipartUpload', ...ref };
      if (uploadId !== undefined) return { kind: 'CompleteMultipartUpload', ...ref, uploadId };
      return methodNotAllowed(req.method, ref.bucket);
    default:
      return methodNotAllowed(req.method, ref.bucket);
  }
}

/**
 * Write headers asking for something we would not do (encryption at rest,
 * object lock, ACL grants, other storage classes). Accepting them silently
 * would claim a property the data does not have.
 */
function unsupportedWriteHeader(req: EndpointRequest): string | undefined {
  for (const name of Object.keys(req.headers)) {
    if (name.startsWith('x-amz-server-side-encryption')) return 'ServerSideEncryption';
    if (name.startsWith('x-amz-object-lock-')) return 'ObjectLock';
    if (name.startsWith('x-amz-grant-')) return 'AclGrants';
  }
  const acl = header(req, 'x-amz-acl');
  if (acl !== undefined && acl !== 'private' && acl !== 'bucket-owner-full-control') return 'CannedAcl';
  const storageClass = header(req, 'x-amz-storage-class');
  if (storageClass !== undefined && storageClass !== 'STANDARD') return 'StorageClass';
  return undefined;
}

const writeKinds: ReadonlySet<OperationKind> = new Set([
  'PutObject',
  'CopyObject',
  'CreateMultipartUpload',
  'CreateBucket',
]);

function withWriteHeaderCheck(req: EndpointRequest, op: Operation): Operation {
  if (!writeKinds.has(op.kind)) return op;
  const feature = unsupportedWriteHeader(req);
  if (feature === undefined) return op;
  return { kind: 'NotImplemented', operation: `${op.kind} with ${feature}`, ...('bucket' in op ? { bucket: op.bucket } : {}) };
}

export interface ParsedRequest {
  operation: Operation;
  query: QueryParams;
}

/** The whole parser: request line and headers to one typed operation. */
export function parseRequest(req: EndpointRequest, options: EndpointOptions = {}): ParsedRequest {
  const query = parseQuery(req.rawQuery);
  if (query === null) {
    const error = new S3Error('InvalidArgument', 'The query string is not valid percent-encoded UTF-8.');
    return { operation: { kind: 'Invalid', error }, query: new Map() };
  }
  return { operation: withWriteHeaderCheck(req, operationOf(req, query, options)), query };
}

function operationOf(req: EndpointRequest, q: QueryParams, options: EndpointOptions): Operation {
  const addr = address(req, options);
  if (addr instanceof S3Error) return { kind: 'Invalid', error: addr };
  if (addr.bucket === undefined) {
    return req.method === 'GET' ? { kind: 'ListBuckets' } : methodNotAllowed(req.method);
  }
  const badBucket = checkBucketName(addr.bucket);
  if (badBucket) return { kind: 'Invalid', error: badBucket };
  if (addr.key === undefined) return bucketOperation(req.method, addr.bucket, q);
  const badKey = checkKey(addr.key);
  if (badKey) return { kind: 'Invalid', error: badKey, bucket: addr.bucket };
  return objectOperation(req, { bucket: addr.bucket, key: addr.key }, q);
}

/** Operations an anonymous client may run on a bucket configured for it. */
export function isAnonymousReadable(op: Operation): boolean {
  switch (op.kind) {
    case 'GetObject':
    case 'HeadObject':
    case 'HeadBucket':
    case 'ListObjects':
    case 'ListObjectsV2':
    case 'GetBucketLocation':
      return true;
    default:
      return false;
  }
}

export function bucketOf(op: Operation): string | undefined {
  return 'bucket' in op ? op.bucket : undefined;
}
