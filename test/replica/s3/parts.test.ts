import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BodyLengthError, forEachPart, planParts } from '../../../src/replica/s3/parts.ts';

const mib = 1024 * 1024;

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

describe('planParts', () => {
  it('keeps the primary part sizes when they are valid S3 parts', () => {
    expect(planParts(11 * mib, 16 * mib, [5 * mib, 5 * mib, mib])).toEqual([5 * mib, 5 * mib, mib]);
  });
  it('cuts otherwise, never below 5 MiB nor above 10000 parts', () => {
    expect(planParts(40 * mib, 16 * mib)).toEqual([16 * mib, 16 * mib, 8 * mib]);
    expect(planParts(11 * mib, mib, [mib, 10 * mib])).toEqual([5 * mib, 5 * mib, mib]);
    expect(planParts(12 * mib, 16 * mib, [5 * mib, 5 * mib])).toEqual([12 * mib]);
    const huge = planParts(200_000 * mib, 5 * mib);
    expect(huge.length).toBeLessThanOrEqual(10_000);
    expect(huge.reduce((a, b) => a + b, 0)).toBe(200_000 * mib);
  });
});

describe('forEachPart', () => {
  it('hands every part exactly its bytes whatever the chunking (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 30 }),
        async (sizes, chunkSizes) => {
          const total = sizes.reduce((a, b) => a + b, 0);
          const body = Buffer.from(Array.from({ length: total }, (_, i) => i & 0xff));
          const chunks: Buffer[] = [];
          for (let off = 0, i = 0; off < total; i++) {
            const n = chunkSizes[i % chunkSizes.length] as number;
            chunks.push(body.subarray(off, off + n));
            off += n;
          }
          const parts = await forEachPart(Readable.from(chunks), sizes, async (_i, part) => collect(part));
          expect(parts.map((p) => p.length)).toEqual(sizes);
          expect(Buffer.concat(parts).equals(body)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('fails on a short or a long body', async () => {
    await expect(forEachPart(Readable.from([Buffer.alloc(5)]), [3, 3], async (_i, p) => collect(p))).rejects.toBeInstanceOf(BodyLengthError);
    await expect(forEachPart(Readable.from([Buffer.alloc(7)]), [3, 3], async (_i, p) => collect(p))).rejects.toBeInstanceOf(BodyLengthError);
  });

  it('stops feeding when a consumer fails', async () => {
    let second = false;
    const body = Readable.from([Buffer.alloc(4 * mib), Buffer.alloc(4 * mib)]);
    const run = forEachPart(body, [4 * mib, 4 * mib], async (i, part) => {
      if (i === 1) second = true;
      part.resume();
      throw new Error('upload failed');
    });
    await expect(run).rejects.toThrow('upload failed');
    expect(second).toBe(false);
  });
});
