// Reading an object version that stays readable while it is overwritten.
//
// A reader pins the blobs of the version it opened; the store unlinks a
// replaced blob only when no reader pins it (BlobPins.release). The first
// blob is opened eagerly so openObject notices a blob that vanished between
// reading metadata and pinning (a stale read snapshot) and retries; the others
// are opened as the stream reaches them, which keeps a 10,000-part object
// from holding 10,000 descriptors. Pins live in memory: after a crash there
// are no readers, and the sweep on open removes what a pin kept alive.

import fs, { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { assert } from '../core/assert.ts';
import { S3Error } from '../core/errors.ts';
import { largeReadChunkBytes, largeReadFromBytes, readChunkBytes } from '../core/limits.ts';
import type { BodyPump, ObjectMeta, ObjectReader, ReadRange } from './types.ts';
import { pumpSegments, type PumpSegment, type ReadBufferPool } from './pump.ts';
import type { ReadVerifier } from './verify-read.ts';

/** Reference counts of blobs in use by readers, and unlinks waiting for them. */
export class BlobPins {
  private readonly counts = new Map<string, number>();
  private readonly doomed = new Set<string>();

  constructor(private readonly unlink: (id: string) => void) {}

  pin(ids: readonly string[]): void {
    for (const id of ids) this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  }

  unpin(ids: readonly string[]): void {
    for (const id of ids) {
      const n = this.counts.get(id);
      assert(n !== undefined && n > 0, `unpin of unpinned blob ${id}`);
      if (n > 1) {
        this.counts.set(id, n - 1);
        continue;
      }
      this.counts.delete(id);
      if (this.doomed.delete(id)) this.unlink(id);
    }
  }

  /** Unlinks now, or when the last reader lets go. */
  release(ids: readonly string[]): void {
    for (const id of ids) {
      if (this.counts.has(id)) this.doomed.add(id);
      else this.unlink(id);
    }
  }

  get pinnedCount(): number {
    return this.counts.size;
  }
}

export interface ReaderDeps {
  pins: BlobPins;
  pathOf(id: string): string;
  /** Buffers for `pump` (large reads). */
  pool: ReadBufferPool;
}

/** A pinned version; `stream` once, or `close`. */
export class PinnedReader implements ObjectReader {
  private released = false;
  private streamed = false;

  constructor(
    readonly meta: ObjectMeta,
    private readonly deps: ReaderDeps,
    /** Descriptor of the first blob, opened by openObject (a plain fd: cheaper than a FileHandle). */
    private firstFd: number | undefined,
    /** Inline bodies of this version, copied at open. */
    private readonly inline: ReadonlyMap<string, Buffer> = new Map(),
  ) {}

  stream(range?: ReadRange): Readable {
    const { start, end } = this.claim(range);
    if (this.meta.size === 0 || end < start) {
      void this.close();
      return Readable.from([]);
    }
    const out = this.singleBlobStream(start, end) ?? Readable.from(this.chunks(start, end), { objectMode: false });
    out.once('close', () => void this.close());
    return out;
  }

  pump(range: ReadRange | undefined, verifier: ReadVerifier | undefined): BodyPump {
    const { start, end } = this.claim(range);
    const segments = this.meta.size === 0 || end < start ? [] : this.segments(start, end);
    return {
      kind: 'pump',
      writeTo: async (out) => {
        try {
          await pumpSegments(segments, out, this.deps.pool, verifier);
        } finally {
          await this.close();
        }
      },
      destroy: () => void this.close(),
    };
  }

  /** Marks the reader used and returns the range (checked against the size). */
  private claim(range: ReadRange | undefined): ReadRange {
    assert(!this.streamed, 'ObjectReader.stream called twice');
    this.streamed = true;
    const { start, end } = range ?? { start: 0, end: this.meta.size - 1 };
    if (this.meta.size > 0 && end >= start && (start < 0 || end >= this.meta.size)) {
      void this.close();
      throw new S3Error('InvalidRange', 'The requested range is not satisfiable');
    }
    return { start, end };
  }

  /** The pieces of [start, end] for pump: blob file ranges and inline bytes. */
  private segments(start: number, end: number): PumpSegment[] {
    return this.blobSpans(start, end).map(({ index, id, from, to }): PumpSegment => {
      const inline = this.inline.get(id);
      return inline ? { kind: 'inline', bytes: inline.subarray(from, to + 1) } : { kind: 'file', open: () => this.openBlob(index, id), from, to };
    });
  }

  /** The blobs [start, end] of the object touches, with the bytes [from, to] of each. */
  private blobSpans(start: number, end: number): { index: number; id: string; from: number; to: number }[] {
    const out: { index: number; id: string; from: number; to: number }[] = [];
    let offset = 0;
    for (const [index, blob] of this.meta.blobs.entries()) {
      const blobStart = offset;
      offset += blob.size;
      if (offset <= start || blob.size === 0) continue;
      if (blobStart > end) break;
      out.push({ index, id: blob.id, from: Math.max(start, blobStart) - blobStart, to: Math.min(end, offset - 1) - blobStart });
    }
    return out;
  }

  /** The first blob's descriptor opened at openObject (now the caller's), or a fresh one. */
  private openBlob(index: number, id: string): Promise<number> {
    const fd = index === 0 ? this.firstFd : undefined;
    if (fd !== undefined) {
      this.firstFd = undefined;
      return Promise.resolve(fd);
    }
    return new Promise((resolve, reject) => fs.open(this.deps.pathOf(id), 'r', (err, opened) => (err ? reject(err) : resolve(opened))));
  }

  /** The common case, one blob: its file stream itself, no generator hop per chunk. */
  private singleBlobStream(start: number, end: number): Readable | undefined {
    const only = this.meta.blobs.length === 1 ? this.meta.blobs[0] : undefined;
    if (!only || this.inline.has(only.id)) return undefined;
    return this.readBlob(0, only.id, start, end) as Readable;
  }

  async close(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const fd = this.firstFd;
    this.firstFd = undefined;
    this.deps.pins.unpin(this.meta.blobs.map((b) => b.id).filter((id) => !this.inline.has(id)));
    if (fd !== undefined) await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
  }

  /** Yields the bytes [start, end] across the blobs, one blob at a time. */
  private async *chunks(start: number, end: number): AsyncGenerator<Buffer> {
    for (const { index, id, from, to } of this.blobSpans(start, end)) yield* this.readBlob(index, id, from, to);
  }

  private readBlob(index: number, id: string, from: number, to: number): AsyncIterable<Buffer> | Iterable<Buffer> {
    const inline = this.inline.get(id);
    if (inline) return [inline.subarray(from, to + 1)];
    const fd = index === 0 ? this.firstFd : undefined;
    const highWaterMark = to - from + 1 >= largeReadFromBytes ? largeReadChunkBytes : readChunkBytes;
    if (fd !== undefined) {
      this.firstFd = undefined; // the stream owns and closes it now
      return createReadStream('', { fd, start: from, end: to, autoClose: true, highWaterMark });
    }
    return createReadStream(this.deps.pathOf(id), { start: from, end: to, highWaterMark });
  }
}
