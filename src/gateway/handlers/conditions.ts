// Conditional requests (RFC 7232 as S3 applies them) and byte ranges.

import { S3Error } from '../../core/errors.ts';
import type { ObjectMeta, ReadRange } from '../../objects/types.ts';

export interface Conditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
}

/** 'ok', or what a failed condition means: 304 (GET/HEAD) or 412. */
export type ConditionOutcome = 'ok' | 'not-modified' | 'precondition-failed';

function etagList(value: string): string[] {
  return value.split(',').map((t) => t.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'));
}

export function etagMatches(value: string, etag: string): boolean {
  return etagList(value).some((t) => t === '*' || t === etag);
}

/** Seconds since the epoch for an HTTP date; undefined (ignored) when invalid. */
function dateSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/**
 * S3's precedence: If-Match true overrides a false If-Unmodified-Since;
 * If-None-Match false (the ETag matches) gives 304 whatever If-Modified-Since
 * says, and If-Modified-Since is only consulted without If-None-Match.
 */
export function evaluateConditions(meta: ObjectMeta, c: Conditions): ConditionOutcome {
  const modified = Math.floor(meta.lastModified / 1000);
  if (c.ifMatch !== undefined) {
    if (!etagMatches(c.ifMatch, meta.etag)) return 'precondition-failed';
  } else {
    const since = dateSeconds(c.ifUnmodifiedSince);
    if (since !== undefined && modified > since) return 'precondition-failed';
  }
  if (c.ifNoneMatch !== undefined) {
    if (etagMatches(c.ifNoneMatch, meta.etag)) return 'not-modified';
  } else {
    const since = dateSeconds(c.ifModifiedSince);
    if (since !== undefined && modified <= since) return 'not-modified';
  }
  return 'ok';
}

export function preconditionFailed(condition: string): S3Error {
  return new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
    extra: { Condition: condition },
  });
}

// ---------------------------------------------------------------------------
// Ranges

export type RangeOutcome =
  | { kind: 'whole' }
  | { kind: 'range'; range: ReadRange }
  | { kind: 'unsatisfiable' };

/**
 * One `bytes=` range: `a-b`, `a-`, `-n`. Syntax S3 does not honour
 * (several ranges, other units, garbage) means the whole object, as on AWS.
 */
export function parseRange(value: string | undefined, size: number): RangeOutcome {
  if (value === undefined) return { kind: 'whole' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'whole' };
  const [first, last] = [m[1]!, m[2]!];
  if (first === '') {
    const n = Number(last);
    if (n === 0) return { kind: 'unsatisfiable' };
    // AWS answers a tail read of an empty object with the (empty) object.
    if (size === 0) return { kind: 'whole' };
    return { kind: 'range', range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return { kind: 'whole' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', range: { start, end } };
}

export function invalidRange(size: number, requested: string): S3Error {
  return new S3Error('InvalidRange', 'The requested range is not satisfiable', {
    extra: { ActualObjectSize: String(size), RangeRequested: requested },
    headers: { 'content-range': `bytes */${size}` },
  });
}

/** x-amz-copy-source-range: `bytes=a-b` only, and it must fit the source. */
export function parseCopyRange(value: string | undefined, size: number): ReadRange | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d+)-(\d+)$/.exec(value.trim());
  if (!m) {
    throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy');
  }
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start || end >= size) {
    throw new S3Error('InvalidRange', 'The requested range is not satisfiable', {
      extra: { ActualObjectSize: String(size), RangeRequested: value },
    });
  }
  return { start, end };
}
