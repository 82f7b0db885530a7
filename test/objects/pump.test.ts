// The large-read pump (src/objects/pump.ts): bytes arrive in order across
// file ranges and inline pieces, and a pooled buffer is reused only after
// the sink has flushed it. The sink below copies each chunk only when it
// calls back, as a socket reads the buffer only when it flushes: a buffer
// reused too early would show up as wrong bytes.

import { mkdtempSync, rmSync, writeFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/clock.ts';
import { pumpSegments, ReadBufferPool, ResponseClosed, type PumpSegment } from '../../src/objects/pump.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pump-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const chunkBytes = 64 * 1024;

function fileOf(name: string, size: number, seed: number): { file: string; bytes: Buffer } {
  const rnd = seededRandom(seed);
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = Math.floor(rnd.next() * 256);
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return { file, bytes };
}

/** A sink with a small buffer that flushes (copies) each chunk after a random delay. */
class LateSink extends Writable {
  readonly got: Buffer[] = [];
  private readonly rnd: ReturnType<typeof seededRandom>;
  constructor(seed: number) {
    super({ highWaterMark: 16 * 1024 });
    this.rnd = seededRandom(seed);
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error) => void): void {
    setTimeout(() => {
      this.got.push(Buffer.from(chunk)); // the "socket" reads the buffer now
      done();
    }, Math.floor(this.rnd.next() * 3));
  }
}

function fileSeg(file: string, from: number, to: number): PumpSegment {
  return { kind: 'file', open: async () => openSync(file, 'r'), from, to };
}

describe('pumpSegments', () => {
  it('writes file ranges and inline bytes in order, buffers reused only after the flush', async () => {
    const a = fileOf('a', 5 * chunkBytes + 123, 1);
    const b = fileOf('b', 3 * chunkBytes, 2);
    const inline = Buffer.from('inline piece');
    const pool = new ReadBufferPool(chunkBytes, 2);
    const segs = (): PumpSegment[] => [fileSeg(a.file, 10, a.bytes.length - 1), { kind: 'inline', bytes: inline }, fileSeg(b.file, 0, b.bytes.length - 1)];
    const want = Buffer.concat([a.bytes.subarray(10), inline, b.bytes]);
    // Three pumps at once share the pool: each must get only its own bytes.
    const sinks = [new LateSink(3), new LateSink(4), new LateSink(5)];
    await Promise.all(sinks.map((s) => pumpSegments(segs(), s, pool, undefined)));
    await Promise.all(sinks.map((s) => new Promise<void>((resolve) => s.end(resolve))));
    for (const s of sinks) expect(Buffer.concat(s.got).equals(want)).toBe(true);
    expect(pool.idle).toBeLessThanOrEqual(2);
    expect(pool.idle).toBeGreaterThan(0);
  });

  it('a file shorter than its range ends the read early (the verifier reports it)', async () => {
    const a = fileOf('short', 2 * chunkBytes, 6);
    const sink = new LateSink(7);
    await pumpSegments([fileSeg(a.file, 0, 4 * chunkBytes - 1)], sink, new ReadBufferPool(chunkBytes, 4), undefined);
    await new Promise<void>((resolve) => sink.end(resolve));
    expect(Buffer.concat(sink.got).equals(a.bytes)).toBe(true);
  });

  it('a sink that closes midway rejects with ResponseClosed and stops reading', async () => {
    const a = fileOf('closing', 8 * chunkBytes, 8);
    const sink = new LateSink(9);
    let writes = 0;
    const origWrite = sink.write.bind(sink);
    sink.write = ((chunk: Buffer, cb?: (err?: Error | null) => void) => {
      if (++writes === 3) setImmediate(() => sink.destroy());
      return origWrite(chunk, cb);
    }) as typeof sink.write;
    await expect(pumpSegments([fileSeg(a.file, 0, a.bytes.length - 1)], sink, new ReadBufferPool(chunkBytes, 4), undefined)).rejects.toBeInstanceOf(ResponseClosed);
    expect(writes).toBeLessThan(8);
  });
});

describe('ReadBufferPool', () => {
  it('keeps at most keepMax idle buffers and only buffers of its size', () => {
    const pool = new ReadBufferPool(1024, 2);
    const bufs = [pool.take(), pool.take(), pool.take()];
    for (const b of bufs) pool.give(b);
    expect(pool.idle).toBe(2);
    pool.give(Buffer.alloc(10));
    expect(pool.idle).toBe(2);
    expect(bufs).toContain(pool.take());
  });
});
