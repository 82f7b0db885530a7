// Domain errors and the one table that maps them to S3 wire errors.
//
// Every layer throws `S3Error` (with an S3 code) or one of the domain
// subclasses below; the gateway turns them into XML exactly once
// (src/gateway/errors-xml.ts). Anything else is a bug: it becomes
// InternalError with a generic message and is logged in full.

/** HTTP status of each S3 error code we emit. The only place statuses live. */
export const s3ErrorStatus = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyExists: 409,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  ExpiredToken: 400,
  IllegalLocationConstraintException: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidPartNumber: 416,
  InvalidRange: 416,
  InvalidRequest: 400,
  InvalidTag: 400,
  InvalidObjectState: 403,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MaxMessageLengthExceeded: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingSecurityHeader: 400,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchTagSet: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  NotModified: 304,
  PreconditionFailed: 412,
  RequestHeaderSectionTooLarge: 400,
  RequestTimeTooSkewed: 403,
  RequestTimeout: 400,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  SlowDown: 503,
  XAmzContentSHA256Mismatch: 400,
} as const;

export type S3ErrorCode = keyof typeof s3ErrorStatus;

export interface S3ErrorOptions {
  /** Resource named in the error body; defaults to the request path. */
  resource?: string;
  /** Extra XML elements in the error body (e.g. BucketName, Key, UploadId). */
  extra?: Record<string, string>;
  /** Extra response headers (e.g. x-amz-lookahead-primary on a fenced site). */
  headers?: Record<string, string>;
  cause?: unknown;
}

/** An error the client is meant to see, with its S3 code. */
export class S3Error extends Error {
  readonly code: S3ErrorCode;
  readonly status: number;
  readonly resource?: string;
  readonly extra: Record<string, string>;
  readonly headers: Record<string, string>;

  constructor(code: S3ErrorCode, message: string, options: S3ErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'S3Error';
    this.code = code;
    this.status = s3ErrorStatus[code];
    this.resource = options.resource;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }
}

/** This site may not accept client writes: it is a secondary or fenced. */
export class NotPrimaryError extends S3Error {
  constructor(message: string, primaryUrl?: string) {
    super('MethodNotAllowed', message, {
      headers: primaryUrl ? { 'x-amz-lookahead-primary': primaryUrl } : {},
      extra: primaryUrl ? { Primary: primaryUrl } : {},
    });
    this.name = 'NotPrimaryError';
  }
}

/** The secondary could not be reached and the site is in refuse mode. */
export class SecondaryUnavailableError extends S3Error {
  constructor(message: string) {
    super('ServiceUnavailable', message);
    this.name = 'SecondaryUnavailableError';
  }
}

/** Shape of what the gateway writes for any thrown value. */
export interface WireError {
  code: S3ErrorCode;
  status: number;
  message: string;
  resource?: string;
  extra: Record<string, string>;
  headers: Record<string, string>;
  /** True when the value was not an S3Error: log it in full. */
  unexpected: boolean;
}

/** The single mapping from thrown values to wire errors. */
export function toWireError(err: unknown): WireError {
  if (err instanceof S3Error) {
    return {
      code: err.code,
      status: err.status,
      message: err.message,
      resource: err.resource,
      extra: err.extra,
      headers: err.headers,
      unexpected: false,
    };
  }
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return {
      code: 'ServiceUnavailable',
      status: s3ErrorStatus.ServiceUnavailable,
      message: 'The server is out of storage space.',
      extra: {},
      headers: {},
      unexpected: true,
    };
  }
  return {
    code: 'InternalError',
    status: s3ErrorStatus.InternalError,
    message: 'We encountered an internal error. Please try again.',
    extra: {},
    headers: {},
    unexpected: true,
  };
}
