// Stored bytes are checked while they stream out: a body that is shorter or
// longer than its metadata says, or (for a whole-object read) whose MD5 does
// not match the stored ETag, fails the stream before its last chunk leaves.
// The response is then cut (reply.ts), so a client sees a short body and an
// error, never a complete body of bad bytes.
//
// What is verified:
// - every read: the byte count (a truncated or extended blob file);
// - whole-object reads of objects larger than inlineBodyBytesMax: the MD5
//   (single PUT: the ETag is the body's MD5; multipart "hex-N": the MD5 of
//   the parts' MD5s, split at the recorded part sizes or the blobs). Smaller objects live inside the
//   lmdb commit and are not hashed on every GET; an ETag of another shape
//   (none we write today) is size-checked only.
// - ranged reads: the byte count only; a flipped byte inside a range cannot
//   be told from the stored ETag without reading the whole blob.

import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
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

/** How the ETag can be checked: one MD5, MD5 of per-blob MD5s, or not at all. */
type EtagCheck = { mode: 'md5' } | { mode: 'parts'; sizes: number[] } | { mode: 'none' };

function etagCheckOf(meta: ObjectMeta, whole: boolean): EtagCheck {
  if (!whole || meta.size <= inlineBodyBytesMax) return { mode: 'none' };
  const dash = meta.etag.indexOf('-');
  if (dash < 0) return /^[0-9a-f]{32}$/.test(meta.etag) ? { mode: 'md5' } : { mode: 'none' };
  const parts = Number(meta.etag.slice(dash + 1));
  // Part boundaries: the recorded part sizes (a replica keeps a multipart
  // object in one blob), else one blob per part.
  const sizes = meta.partSizes ?? meta.blobs.map((b) => b.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (parts === 0 || sizes.length !== parts || total !== meta.size) return { mode: 'none' };
  return { mode: 'parts', sizes };
}

class VerifyingStream extends Transform {
  private seen = 0;
  private held: Buffer | undefined;
  private hash: Hash | undefined;
  /** Parts mode: digests of finished blobs, bytes left in the current one. */
  private readonly partDigests: Buffer[] = [];
  private partIndex = 0;
  private partLeft = 0;

  constructor(
    private readonly meta: ObjectMeta,
    private readonly expected: number,
    private readonly check: EtagCheck,
  ) {
    super();
    if (check.mode !== 'none') this.hash = createHash('md5');
    if (check.mode === 'parts') {
      this.partLeft = check.sizes[0] ?? 0;
      this.settle();
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.expected) {
      done(this.corrupt(`more than the ${this.expected} bytes expected`));
      return;
    }
    this.digest(chunk);
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
    const got = this.finalDigest();
    if (got !== undefined && got !== this.meta.etag) {
      done(this.corrupt(`content hash ${got} does not match the stored ETag ${this.meta.etag}`));
      return;
    }
    if (this.held) this.push(this.held);
    this.held = undefined;
    done();
  }

  private digest(chunk: Buffer): void {
    if (this.check.mode === 'md5') this.hash!.update(chunk);
    if (this.check.mode !== 'parts') return;
    const sizes = this.check.sizes;
    let rest = chunk;
    // Bounded: each turn finishes a blob or consumes the chunk.
    while (rest.length > 0 && this.partIndex < sizes.length) {
      const take = Math.min(rest.length, this.partLeft);
      this.hash!.update(rest.subarray(0, take));
      rest = rest.subarray(take);
      this.partLeft -= take;
      if (this.partLeft === 0) this.settle();
    }
  }

  /** Finishes the current part while it has no bytes left (empty parts too). */
  private settle(): void {
    const sizes = (this.check as { sizes: number[] }).sizes;
    while (this.partIndex < sizes.length && this.partLeft === 0) {
      this.partDigests.push(this.hash!.digest());
      this.hash = createHash('md5');
      this.partIndex++;
      this.partLeft = sizes[this.partIndex] ?? 0;
    }
  }

  private finalDigest(): string | undefined {
    if (this.check.mode === 'md5') return this.hash!.digest('hex');
    if (this.check.mode !== 'parts') return undefined;
    const all = createHash('md5').update(Buffer.concat(this.partDigests)).digest('hex');
    return `${all}-${this.partDigests.length}`;
  }

  private corrupt(reason: string): StoredDataCorrupt {
    return new StoredDataCorrupt(this.meta.bucket, this.meta.key, reason);
  }
}

/** Wraps a stored body so a mismatch with `meta` fails the stream (see above). */
export function verifiedBody(meta: ObjectMeta, range: ReadRange | undefined, body: Readable): Readable {
  const whole = range === undefined || (range.start === 0 && range.end === meta.size - 1);
  const expected = range === undefined ? meta.size : Math.max(0, range.end - range.start + 1);
  const out = new VerifyingStream(meta, expected, etagCheckOf(meta, whole));
  body.once('error', (err) => out.destroy(err));
  // The consumer went away: stop reading (and let the reader release its pins).
  out.once('close', () => {
    if (!body.destroyed) body.destroy();
  });
  return body.pipe(out);
}
