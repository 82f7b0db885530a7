// Stored bytes are checked while they stream out: a body that is shorter or
// longer than its metadata says, or (for a whole-object read) whose MD5 does
// not match the stored ETag, fails the stream before its last chunk leaves.
// The response is then cut (reply.ts), so a client sees a short body and an
// error, never a complete body of bad bytes.
//
// What is verified:
// - every read of a body kept in files: the byte count (a truncated or
//   extended blob file); bodies held wholly in lmdb pass through unchecked;
// - whole-object reads of objects larger than inlineBodyBytesMax: the MD5
//   (single PUT: the ETag is the body's MD5; multipart "hex-N": the MD5 of
//   the parts' MD5s, split at the recorded part sizes or the blobs). Smaller objects live inside the
//   lmdb commit and are not hashed on every GET; an ETag of another shape
//   (none we write today) is size-checked only.
// - ranged reads: the byte count only; a flipped byte inside a range cannot
//   be told from the stored ETag without reading the whole blob.
//
// `serve --verify-reads size` (ReadVerification 'size') skips the MD5 and
// keeps the byte count: MD5 runs at ~300-600 MB/s on one core, below what
// loopback and fast links carry, so full verification caps a large GET.

import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { isInlineBlobId } from '../core/durable.ts';
import { EtagHasher } from '../core/etag.ts';
import { inlineBodyBytesMax } from '../core/limits.ts';
import type { ObjectMeta, ReadRange } from '../objects/types.ts';

/** Stored data that does not match its metadata (disk corruption, truncation). */
export class StoredDataCorrupt extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`stored data of ${bucket}/${key} is corrupt: ${reason}`);
    this.name = 'StoredDataCorrupt';
  }
}

/** How much of a stored body GETs check: 'full' hashes whole reads against
 * the ETag (the default), 'size' checks the byte count only. */
export type ReadVerification = 'full' | 'size';

export const readVerifications: readonly ReadVerification[] = ['full', 'size'];

/** The hasher for a read, when its ETag can be checked (see above). */
function hasherFor(meta: ObjectMeta, whole: boolean, verification: ReadVerification): EtagHasher | undefined {
  if (verification !== 'full' || !whole || meta.size <= inlineBodyBytesMax) return undefined;
  // Part boundaries: the recorded part sizes (a replica keeps a multipart
  // object in one blob), else one blob per part.
  return EtagHasher.for(meta.etag, meta.size, meta.partSizes ?? meta.blobs.map((b) => b.size));
}

class VerifyingStream extends Transform {
  private seen = 0;
  private held: Buffer | undefined;

  constructor(
    private readonly meta: ObjectMeta,
    private readonly expected: number,
    private readonly hasher: EtagHasher | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.expected) {
      done(this.corrupt(`more than the ${this.expected} bytes expected`));
      return;
    }
    this.hasher?.update(chunk);
    // Hold one chunk back: the last one leaves only after the checks passed.
    if (this.held) this.push(this.held);
    this.held = chunk;
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.seen !== this.expected) {
      done(this.corrupt(`${this.seen} bytes where ${this.expected} were expected (truncated)`));
      return;
    }
    const got = this.hasher?.digest();
    if (got !== undefined && got !== this.meta.etag) {
      done(this.corrupt(`content hash ${got} does not match the stored ETag ${this.meta.etag}`));
      return;
    }
    if (this.held) this.push(this.held);
    this.held = undefined;
    done();
  }

  private corrupt(reason: string): StoredDataCorrupt {
    return new StoredDataCorrupt(this.meta.bucket, this.meta.key, reason);
  }
}

/** Wraps a stored body so a mismatch with `meta` fails the stream (see above).
 * Bodies held wholly inside lmdb are passed through as they are: their
 * length comes from the record itself, and small GETs stay on the fast path. */
export function verifiedBody(
  meta: ObjectMeta,
  range: ReadRange | undefined,
  body: Readable,
  verification: ReadVerification = 'full',
): Readable {
  if (meta.blobs.every((b) => isInlineBlobId(b.id))) return body;
  const whole = range === undefined || (range.start === 0 && range.end === meta.size - 1);
  const expected = range === undefined ? meta.size : Math.max(0, range.end - range.start + 1);
  const out = new VerifyingStream(meta, expected, hasherFor(meta, whole, verification));
  body.once('error', (err) => out.destroy(err));
  // The consumer went away: stop reading (and let the reader release its pins).
  out.once('close', () => {
    if (!body.destroyed) body.destroy();
  });
  return body.pipe(out);
}
