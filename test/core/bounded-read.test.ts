// readBounded: every small body read whole (admin JSON, replica messages and
// batches, inter-site answers) stops at its limit.
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { readBounded } from '../../src/core/bounded-read.ts';

class TooLarge extends Error {}

function chunks(sizes: number[]): { stream: Readable; pulled: () => number } {
  let pulled = 0;
  const stream = Readable.from(
    (function* () {
      for (const [i, n] of sizes.entries()) {
        pulled++;
        yield Buffer.alloc(n, i);
      }
    })(),
  );
  return { stream, pulled: () => pulled };
}

it('returns the bytes in order when they fit, up to exactly the limit', async () => {
  const { stream } = chunks([3, 4, 3]);
  const got = await readBounded(stream, 10, () => new TooLarge());
  expect(got).toEqual(Buffer.concat([Buffer.alloc(3, 0), Buffer.alloc(4, 1), Buffer.alloc(3, 2)]));
});

it('an empty body is an empty buffer', async () => {
  expect((await readBounded(chunks([]).stream, 10, () => new TooLarge())).length).toBe(0);
});

it('one byte over the limit throws the caller\'s error and stops reading', async () => {
  const { stream, pulled } = chunks([6, 5, 100, 100]);
  await expect(readBounded(stream, 10, () => new TooLarge('too big'))).rejects.toBeInstanceOf(TooLarge);
  expect(pulled()).toBeLessThan(4);
});
