// Recomputing an S3 ETag from a body as it streams: a single PUT's ETag is
// the body's MD5; a multipart one ("hex-N") is the MD5 of the N parts' MD5s,
// so the hasher needs the part boundaries. Used to check stored bytes on
// read (gateway) and replica bodies on apply (object store).

import { createHash, type Hash } from 'node:crypto';

export class EtagHasher {
  private hash: Hash = createHash('md5');
  /** Multipart: digests of finished parts, the part being hashed, bytes left in it. */
  private readonly partDigests: Buffer[] = [];
  private partIndex = 0;
  private partLeft = 0;

  private constructor(private readonly partSizes: readonly number[] | undefined) {
    if (partSizes) {
      this.partLeft = partSizes[0] ?? 0;
      this.settle();
    }
  }

  /**
   * A hasher for `etag` (unquoted) over `size` bytes, or undefined when the
   * ETag cannot be recomputed: not an MD5 shape, or a multipart ETag without
   * `partSizes` that add up to the size and match its part count.
   */
  static for(etag: string, size: number, partSizes?: readonly number[]): EtagHasher | undefined {
    const dash = etag.indexOf('-');
    if (dash < 0) return /^[0-9a-f]{32}$/.test(etag) ? new EtagHasher(undefined) : undefined;
    const parts = Number(etag.slice(dash + 1));
    if (!partSizes || parts === 0 || partSizes.length !== parts) return undefined;
    if (partSizes.reduce((a, b) => a + b, 0) !== size) return undefined;
    return new EtagHasher(partSizes);
  }

  update(chunk: Buffer): void {
    const sizes = this.partSizes;
    if (!sizes) {
      this.hash.update(chunk);
      return;
    }
    let rest = chunk;
    // Bounded: each turn finishes a part or consumes the chunk.
    while (rest.length > 0 && this.partIndex < sizes.length) {
      const take = Math.min(rest.length, this.partLeft);
      this.hash.update(rest.subarray(0, take));
      rest = rest.subarray(take);
      this.partLeft -= take;
      if (this.partLeft === 0) this.settle();
    }
  }

  /** The ETag of what was hashed (call once, after the last update). */
  digest(): string {
    if (!this.partSizes) return this.hash.digest('hex');
    const all = createHash('md5').update(Buffer.concat(this.partDigests)).digest('hex');
    return `${all}-${this.partDigests.length}`;
  }

  /** Finishes the current part while it has no bytes left (empty parts too). */
  private settle(): void {
    const sizes = this.partSizes!;
    while (this.partIndex < sizes.length && this.partLeft === 0) {
      this.partDigests.push(this.hash.digest());
      this.hash = createHash('md5');
      this.partIndex++;
      this.partLeft = sizes[this.partIndex] ?? 0;
    }
  }
}
