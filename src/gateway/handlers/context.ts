// What every handler receives, and request-header helpers shared by them.

import type { IncomingMessage } from 'node:http';
import { S3Error } from '../../core/errors.ts';
import {
  tagKeyCharsMax,
  tagsPerObjectMax,
  tagValueCharsMax,
  userMetadataBytesMax,
} from '../../core/limits.ts';
import type { ContentHeaders, ObjectMeta, ObjectStore, WriteAttributes } from '../../objects/types.ts';
import type { AuthContext } from '../auth/sigv4.ts';
import { storedContentEncoding } from '../body.ts';
import type { QueryParams } from '../endpoint.ts';
import type { ReplyHeaders } from '../reply.ts';
import { httpDate, quoteEtag, type XmlCodec } from '../xml.ts';
import type { ReadVerification } from '../../objects/verify-read.ts';

export interface HandlerDeps {
  store: ObjectStore;
  region: string;
  xml: XmlCodec;
  /** What GETs check of a stored body (verify-read.ts); 'full' when absent. */
  verifyReads?: ReadVerification;
}

export interface RequestState {
  req: IncomingMessage;
  query: QueryParams;
  /** Undefined for an anonymous request (allowed for reads only). */
  auth?: AuthContext;
  requestId: string;
  /** The authenticated key's bucket allow-list, when it has one. */
  allowedBuckets?: ReadonlySet<string>;
}

/** The single owner every bucket and object reports. */
export const owner = { ID: 'lookahead', DisplayName: 'lookahead' };

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

// ---------------------------------------------------------------------------
// Write attributes from request headers

const contentHeaderNames: [keyof ContentHeaders, string][] = [
  ['contentType', 'content-type'],
  ['contentDisposition', 'content-disposition'],
  ['contentLanguage', 'content-language'],
  ['cacheControl', 'cache-control'],
  ['expires', 'expires'],
];

export function contentHeadersOf(req: IncomingMessage): ContentHeaders {
  const out: ContentHeaders = {};
  for (const [field, name] of contentHeaderNames) {
    const v = header(req, name);
    if (v !== undefined) out[field] = v;
  }
  const encoding = storedContentEncoding(req.headers);
  if (encoding !== undefined) out.contentEncoding = encoding;
  return out;
}

/**
 * x-amz-meta-* headers, names lower-cased without the prefix. Values stay
 * the latin1 strings node made of the raw bytes, so they go back out
 * byte-identical; the 2 KB limit counts those bytes.
 */
export function userMetaOf(req: IncomingMessage): Record<string, string> {
  const meta: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const key = name.slice('x-amz-meta-'.length);
    const v = Array.isArray(value) ? value.join(',') : value;
    meta[key] = v;
    bytes += Buffer.byteLength(key, 'latin1') + Buffer.byteLength(v, 'latin1');
  }
  if (bytes > userMetadataBytesMax) {
    throw new S3Error('MetadataTooLarge', 'Your metadata headers exceed the maximum allowed metadata size.', {
      extra: { Size: String(bytes), MaxSizeAllowed: String(userMetadataBytesMax) },
    });
  }
  return meta;
}

function invalidTag(message: string): S3Error {
  return new S3Error('InvalidTag', message);
}

/** S3 tag rules: count, lengths in characters, no duplicates, no aws: prefix. */
export function validateTags(pairs: [string, string][]): Record<string, string> {
  if (pairs.length > tagsPerObjectMax) invalidTagThrow(`Object tags cannot be greater than ${tagsPerObjectMax}`);
  const tags: Record<string, string> = {};
  for (const [k, v] of pairs) {
    const keyChars = [...k].length;
    if (keyChars === 0 || keyChars > tagKeyCharsMax) invalidTagThrow('The TagKey you have provided is invalid');
    if ([...v].length > tagValueCharsMax) invalidTagThrow('The TagValue you have provided is invalid');
    if (k.toLowerCase().startsWith('aws:')) invalidTagThrow('Your TagKey cannot be prefixed with aws:');
    if (Object.hasOwn(tags, k)) invalidTagThrow('Cannot provide multiple Tags with the same key');
    tags[k] = v;
  }
  return tags;
}

function invalidTagThrow(message: string): never {
  throw invalidTag(message);
}

/** x-amz-tagging: a url-encoded query string `k1=v1&k2=v2`. */
export function taggingHeaderOf(req: IncomingMessage): Record<string, string> {
  const raw = header(req, 'x-amz-tagging');
  if (raw === undefined || raw === '') return {};
  const pairs: [string, string][] = [];
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    try {
      const k = decodeURIComponent((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' '));
      const v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '));
      pairs.push([k, v]);
    } catch {
      throw invalidTag('The header x-amz-tagging is not a valid url-encoded query string');
    }
  }
  return validateTags(pairs);
}

export function writeAttributesOf(req: IncomingMessage): WriteAttributes {
  return { headers: contentHeadersOf(req), userMeta: userMetaOf(req), tags: taggingHeaderOf(req) };
}

// ---------------------------------------------------------------------------
// Object headers for GET/HEAD

const responseOverrides: [string, string][] = [
  ['response-content-type', 'content-type'],
  ['response-content-language', 'content-language'],
  ['response-expires', 'expires'],
  ['response-cache-control', 'cache-control'],
  ['response-content-disposition', 'content-disposition'],
  ['response-content-encoding', 'content-encoding'],
];

export function objectHeaders(meta: ObjectMeta, rq: RequestState): ReplyHeaders {
  const h: ReplyHeaders = {
    etag: quoteEtag(meta.etag),
    'last-modified': httpDate(meta.lastModified),
    'accept-ranges': 'bytes',
    'content-type': meta.headers.contentType ?? 'binary/octet-stream',
  };
  const c = meta.headers;
  if (c.contentEncoding !== undefined) h['content-encoding'] = c.contentEncoding;
  if (c.contentDisposition !== undefined) h['content-disposition'] = c.contentDisposition;
  if (c.contentLanguage !== undefined) h['content-language'] = c.contentLanguage;
  if (c.cacheControl !== undefined) h['cache-control'] = c.cacheControl;
  if (c.expires !== undefined) h.expires = c.expires;
  for (const [k, v] of Object.entries(meta.userMeta)) h[`x-amz-meta-${k}`] = v;
  const tagCount = Object.keys(meta.tags).length;
  if (tagCount > 0) h['x-amz-tagging-count'] = String(tagCount);
  if (meta.partSizes && meta.partSizes.length > 0) h['x-amz-mp-parts-count'] = String(meta.partSizes.length);
  applyResponseOverrides(h, rq);
  return h;
}

function applyResponseOverrides(h: ReplyHeaders, rq: RequestState): void {
  for (const [param, name] of responseOverrides) {
    const v = rq.query.get(param);
    if (v === undefined) continue;
    if (!rq.auth) {
      throw new S3Error('InvalidRequest', 'Request specific response headers cannot be used for anonymous GET requests.');
    }
    h[name] = v;
  }
}

/** Stored checksum headers, when the client asked with x-amz-checksum-mode. */
export function checksumHeaders(meta: ObjectMeta, rq: RequestState): ReplyHeaders {
  if ((header(rq.req, 'x-amz-checksum-mode') ?? '').toUpperCase() !== 'ENABLED' || !meta.checksum) return {};
  return {
    [`x-amz-checksum-${meta.checksum.algorithm.toLowerCase()}`]: meta.checksum.value,
    'x-amz-checksum-type': meta.checksum.type,
  };
}
