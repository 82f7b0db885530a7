// Large reads written straight into the response with reused buffers.
//
// A stream of fresh 1 MiB buffers (fs.createReadStream) allocates and
// garbage-collects the whole body on every GET: profiles of a 64 MiB GET put
// GC at ~10 ms of ~50 ms server CPU, and a Transform hop for the checks on
// top. Here a read lands in a buffer taken from a small pool, is checked
// (ReadVerifier) and handed to the response; the buffer goes back to the pool
// when the response's write callback says the socket no longer needs it
// (node calls it once the chunk is flushed to the kernel). One read runs
// ahead of the write in progress, so disk and socket overlap.

import fs from 'node:fs';
import type { Writable } from 'node:stream';
import type { ReadVerifier } from './verify-read.ts';

/** Buffers of one size, kept for reuse up to a bound. */
export class ReadBufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly bufferBytes: number,
    /** Idle buffers kept; more are allocated when GETs need them and dropped on return. */
    private readonly keepMax: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  give(buf: Buffer): void {
    if (buf.length === this.bufferBytes && this.free.length < this.keepMax) this.free.push(buf);
  }

  get idle(): number {
    return this.free.length;
  }
}

/** One piece of the body: bytes [from, to] of a blob file, or inline bytes. */
export type PumpSegment =
  | { kind: 'file'; open: () => Promise<number>; from: number; to: number }
  | { kind: 'inline'; bytes: Buffer };

/** The response went away before the body was written. */
export class ResponseClosed extends Error {
  constructor() {
    super('the response closed before the body was written');
    this.name = 'ResponseClosed';
  }
}

/**
 * Writes the segments to `out` in order, each chunk checked before it is
 * written; rejects with the verifier's StoredDataCorrupt (the caller cuts the
 * response), a read error, or ResponseClosed. Does not end `out`.
 */
export async function pumpSegments(
  segments: readonly PumpSegment[],
  out: Writable,
  pool: ReadBufferPool,
  verifier: ReadVerifier | undefined,
): Promise<void> {
  const check = (chunk: Buffer): void => {
    const bad = verifier?.update(chunk);
    if (bad) throw verifier!.corrupt(bad);
  };
  for (const seg of segments) {
    if (seg.kind === 'inline') {
      check(seg.bytes);
      await writeChunk(out, seg.bytes, () => {});
      continue;
    }
    const fd = await seg.open();
    try {
      await pumpFile(fd, seg.from, seg.to, out, pool, check);
    } finally {
      await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
    }
  }
  const bad = verifier?.finish();
  if (bad) throw verifier!.corrupt(bad);
}

async function pumpFile(fd: number, from: number, to: number, out: Writable, pool: ReadBufferPool, check: (chunk: Buffer) => void): Promise<void> {
  let next: Promise<Chunk> | undefined = readChunk(fd, pool, from, to);
  try {
    while (next !== undefined) {
      const { buf, bytes, end }: Chunk = await next;
      // Read ahead while this chunk goes out.
      next = end < to ? readChunk(fd, pool, end + 1, to) : undefined;
      check(bytes);
      await writeChunk(out, bytes, () => pool.give(buf));
    }
  } finally {
    // A failure left a read in flight: let it finish before the fd closes.
    if (next !== undefined) await next.catch(() => undefined);
  }
}

interface Chunk {
  /** The pool buffer, returned once the bytes are flushed. */
  buf: Buffer;
  /** The bytes read (a view of buf). */
  bytes: Buffer;
  /** File offset of the last byte read; `to` after a short read (the file
   * ended early: the verifier's length check reports it). */
  end: number;
}

/** Reads up to one pool buffer from `at`, at most to `to`. */
function readChunk(fd: number, pool: ReadBufferPool, at: number, to: number): Promise<Chunk> {
  const buf = pool.take();
  const len = Math.min(buf.length, to - at + 1);
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, 0, len, at, (err, n) => {
      if (err) return reject(err);
      resolve({ buf, bytes: n === buf.length ? buf : buf.subarray(0, n), end: n < len ? to : at + n - 1 });
    });
  });
}

/** out.write with backpressure: resolves when `out` can take more. */
function writeChunk(out: Writable, chunk: Buffer, flushed: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.destroyed || out.writableEnded) {
      reject(new ResponseClosed());
      return;
    }
    // Only a clean flush returns the buffer: after an error the socket may still hold it.
    const more = out.write(chunk, (err) => {
      if (!err) flushed();
    });
    if (more) {
      resolve();
      return;
    }
    const onDrain = (): void => {
      out.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      out.off('drain', onDrain);
      reject(new ResponseClosed());
    };
    out.once('drain', onDrain);
    out.once('close', onClose);
  });
}
