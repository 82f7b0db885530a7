// Cuts one streamed body into consecutive parts of given sizes, each handed
// to a consumer (an UploadPart request) as its own stream, without ever
// holding more than a chunk plus the part stream's buffer in memory.

import { PassThrough, Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { once } from 'node:events';
import { partSizeBytesMax, partSizeBytesMin, partNumberMax } from '../../core/limits.ts';

/** Bytes a part stream buffers before the feeder waits for the consumer. */
const partStreamBufferBytes = 1024 * 1024;

/**
 * Part sizes for a multipart copy: the primary's own part sizes when it has
 * them (every part but the last is >= 5 MiB there too, and equal parts give
 * the target the same "md5-of-md5s-N" ETag), else `size` cut into parts of
 * `partBytes` (raised so that at most partNumberMax parts are needed).
 */
export function planParts(size: number, partBytes: number, sourceParts?: readonly number[]): number[] {
  if (sourceParts !== undefined && sourceParts.length > 0 && sourceParts.reduce((a, b) => a + b, 0) === size) {
    const last = sourceParts.length - 1;
    const valid = sourceParts.every((s, i) => s <= partSizeBytesMax && (i === last || s >= partSizeBytesMin));
    if (valid && sourceParts.length <= partNumberMax) return [...sourceParts];
  }
  const each = Math.max(partBytes, partSizeBytesMin, Math.ceil(size / partNumberMax));
  const parts: number[] = [];
  for (let left = size; left > 0; left -= each) parts.push(Math.min(each, left));
  return parts.length === 0 ? [0] : parts;
}

/** Thrown when the body ends before (or runs past) the sizes planned. */
export class BodyLengthError extends Error {
  constructor(expected: number, got: number) {
    super(`body length ${got}, expected ${expected}`);
    this.name = 'BodyLengthError';
  }
}

/**
 * Streams `body` through `consume(partIndex, partStream, partSize)` one part
 * at a time. A consumer failure stops the feed and is rethrown.
 */
export async function forEachPart<T>(
  body: Readable,
  sizes: readonly number[],
  consume: (index: number, part: Readable, size: number) => Promise<T>,
): Promise<T[]> {
  const expected = sizes.reduce((a, b) => a + b, 0);
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let carry: Buffer | undefined;
  let fed = 0;
  const results: T[] = [];
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i] as number;
    const part = new PassThrough({ highWaterMark: partStreamBufferBytes });
    const done = consume(i, part, size);
    const failed = done.then(
      () => new Promise<never>(() => {}),
      (err: unknown) => Promise.reject(err),
    );
    failed.catch(() => {});
    let left = size;
    while (left > 0) {
      let chunk = carry;
      carry = undefined;
      if (chunk === undefined) {
        const next = await Promise.race([iterator.next(), failed]);
        if (next.done) {
          part.destroy();
          await done.catch(() => {});
          throw new BodyLengthError(expected, fed);
        }
        chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      }
      if (chunk.length > left) {
        carry = chunk.subarray(left);
        chunk = chunk.subarray(0, left);
      }
      left -= chunk.length;
      fed += chunk.length;
      if (!part.write(chunk)) await Promise.race([once(part, 'drain'), failed]);
    }
    part.end();
    results.push(await done);
  }
  const extra = carry !== undefined && carry.length > 0 ? carry.length : 0;
  if (extra > 0 || !(await iterator.next()).done) throw new BodyLengthError(expected, fed + Math.max(extra, 1));
  return results;
}

/**
 * Passes `body` through, failing the stream when it carries fewer or more
 * than `size` bytes: a short body with a declared Content-Length would
 * otherwise leave the request waiting for bytes that never come, and the
 * failure aborts the request so the target commits nothing.
 */
export function exactLength(body: Readable, size: number): Readable {
  let seen = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > size) done(new BodyLengthError(size, seen));
      else done(null, chunk);
    },
    flush(done) {
      done(seen === size ? null : new BodyLengthError(size, seen));
    },
  });
  body.once('error', (err) => guard.destroy(err));
  return body.pipe(guard);
}
