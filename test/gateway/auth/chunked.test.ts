import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../../src/core/errors.ts';
import { AwsChunkedDecoder } from '../../../src/gateway/auth/chunked.ts';
import { deriveSigningKey, emptySha256Hex, hmacHex, sha256Hex } from '../../../src/gateway/auth/signing.ts';
import type { AuthContext, PayloadMode } from '../../../src/gateway/auth/sigv4.ts';
import { chunkedExample, s3AmzDate, s3Credentials } from './fixtures.ts';

const scope = '20130524/us-east-1/s3/aws4_request';
const signingKey = deriveSigningKey(s3Credentials.secret, '20130524', 'us-east-1', 's3');

function authFor(payloadMode: PayloadMode, seed = chunkedExample.seedSignature): AuthContext {
  return { accessKeyId: s3Credentials.accessKeyId, presigned: false, payloadMode, signature: seed, signingKey, amzDate: s3AmzDate, scope };
}

function chunkSig(previous: string, data: Buffer): string {
  return hmacHex(signingKey, ['AWS4-HMAC-SHA256-PAYLOAD', s3AmzDate, scope, previous, emptySha256Hex, sha256Hex(data)].join('\n'));
}

function trailerSig(previous: string, canonical: string): string {
  return hmacHex(signingKey, ['AWS4-HMAC-SHA256-TRAILER', s3AmzDate, scope, previous, sha256Hex(canonical)].join('\n'));
}

/** Our own encoder, for property tests: returns the wire body. */
function encode(data: Buffer, sizes: number[], mode: PayloadMode, trailers: [string, string][] = []): Buffer {
  const parts: Buffer[] = [];
  let previous = chunkedExample.seedSignature;
  const signed = mode !== 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
  const header = (size: number, piece: Buffer) => {
    if (!signed) return `${size.toString(16)}\r\n`;
    previous = chunkSig(previous, piece);
    return `${size.toString(16)};chunk-signature=${previous}\r\n`;
  };
  let offset = 0;
  for (const size of sizes) {
    if (offset >= data.length) break;
    const piece = data.subarray(offset, offset + size);
    offset += piece.length;
    parts.push(Buffer.from(header(piece.length, piece)), piece, Buffer.from('\r\n'));
  }
  if (offset < data.length) {
    const piece = data.subarray(offset);
    parts.push(Buffer.from(header(piece.length, piece)), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(header(0, Buffer.alloc(0))));
  let canonical = '';
  for (const [name, value] of trailers) {
    parts.push(Buffer.from(`${name}:${value}\r\n`));
    canonical += `${name}:${value}\n`;
  }
  if (mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER') parts.push(Buffer.from(`x-amz-trailer-signature:${trailerSig(previous, canonical)}\r\n`));
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

function split(wire: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
  const packets: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    if (p > last) packets.push(wire.subarray(last, p));
    last = Math.max(last, p);
  }
  if (last < wire.length) packets.push(wire.subarray(last));
  return packets;
}

async function decode(packets: Buffer[], auth: AuthContext, decodedLength?: number): Promise<{ body: Buffer; trailers: Record<string, string> }> {
  const decoder = new AwsChunkedDecoder({ auth, decodedLength });
  const out: Buffer[] = [];
  await pipeline(Readable.from(packets), decoder, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  });
  return { body: Buffer.concat(out), trailers: decoder.trailers };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(S3Error);
  expect((err as S3Error).code).toBe(code);
}

function exampleWire(corruptAt?: number): Buffer {
  const parts: Buffer[] = [];
  for (const { size, signature } of chunkedExample.chunks) {
    const data = Buffer.alloc(size, 'a');
    parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${signature}\r\n`), data);
    if (size > 0) parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('\r\n'));
  const wire = Buffer.concat(parts);
  if (corruptAt !== undefined) wire[corruptAt] = 'b'.charCodeAt(0);
  return wire;
}

describe('AWS published chunked upload example', () => {
  it('decodes 66560 bytes of "a" with the published signatures', async () => {
    const wire = exampleWire();
    expect(wire.length).toBe(66824);
    const { body } = await decode([wire], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD'), 66560);
    expect(body.equals(Buffer.alloc(66560, 'a'))).toBe(true);
  });

  it('decodes it one byte at a time', async () => {
    const wire = exampleWire();
    const packets = Array.from({ length: wire.length }, (_, i) => wire.subarray(i, i + 1));
    const { body } = await decode(packets, authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD'), 66560);
    expect(body.length).toBe(66560);
  });

  it('fails on one changed data byte in the second chunk', async () => {
    // header "10000;chunk-signature=<64>\r\n" (88), data, CRLF, header "400;..." (86), 10 bytes in.
    const secondChunkData = 88 + 65536 + 2 + 86 + 10;
    await expectCode(decode([exampleWire(secondChunkData)], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD')), 'SignatureDoesNotMatch');
  });

  it('fails with a different seed signature', async () => {
    const otherSeed = '0'.repeat(64);
    await expectCode(decode([exampleWire()], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD', otherSeed)), 'SignatureDoesNotMatch');
  });

  it('verifies the aws-c-auth trailer signature chained from the final chunk', async () => {
    const wire = Buffer.concat([
      exampleWire().subarray(0, -2),
      Buffer.from(chunkedExample.trailers.map(([n, v]) => `${n}:${v}\r\n`).join('')),
      Buffer.from(`x-amz-trailer-signature:${chunkedExample.trailerSignature}\r\n\r\n`),
    ]);
    const { body, trailers } = await decode([wire], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'), 66560);
    expect(body.length).toBe(66560);
    expect(trailers).toEqual({ first: '1st', second: '2nd', third: '3rd' });
    const tampered = Buffer.from(wire.toString('latin1').replace('second:2nd', 'second:2nD'), 'latin1');
    await expectCode(decode([tampered], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER')), 'SignatureDoesNotMatch');
  });
});

describe('framing', () => {
  const unsigned = authFor('STREAMING-UNSIGNED-PAYLOAD-TRAILER');

  it('decodes the SDK unsigned-trailer shape and exposes trailers', async () => {
    const wire = Buffer.from(`400\r\n${'x'.repeat(1024)}\r\n0\r\nx-amz-checksum-crc32:OJazAg==\r\n\r\n`);
    const { body, trailers } = await decode([wire], unsigned, 1024);
    expect(body.toString()).toBe('x'.repeat(1024));
    expect(trailers).toEqual({ 'x-amz-checksum-crc32': 'OJazAg==' });
  });

  it('tolerates a missing final CRLF after complete trailers', async () => {
    const { trailers } = await decode([Buffer.from('3\r\nabc\r\n0\r\nX-Amz-Checksum-Crc32:AAAAAA==\r\n')], unsigned, 3);
    expect(trailers).toEqual({ 'x-amz-checksum-crc32': 'AAAAAA==' });
  });

  it('reports truncation as IncompleteBody', async () => {
    const wire = Buffer.from('3\r\nabc\r\n0\r\n\r\n');
    for (const cut of [1, 3, 5, 7, 8]) await expectCode(decode([wire.subarray(0, cut)], unsigned), 'IncompleteBody');
    await expectCode(decode([Buffer.alloc(0)], unsigned), 'IncompleteBody');
  });

  it('reports a decoded length mismatch as IncompleteBody', async () => {
    const wire = Buffer.from('3\r\nabc\r\n0\r\n\r\n');
    await expectCode(decode([wire], unsigned, 4), 'IncompleteBody');
    await expectCode(decode([wire], unsigned, 2), 'IncompleteBody');
    expect((await decode([wire], unsigned, 3)).body.toString()).toBe('abc');
  });

  it('rejects malformed framing', async () => {
    const bad = [
      'zz\r\nabc\r\n0\r\n\r\n', // not hex
      '3\nabc\r\n0\r\n\r\n', // bare LF
      '3\r\nabcd\r\n0\r\n\r\n', // data longer than its size
      '3\r\nabc\r\n0\r\n\r\nextra', // bytes after the end
      '3\r\nabc\r\n0\r\nno-colon\r\n\r\n', // trailer without ':'
      `${'1'.repeat(20)}\r\n`, // size beyond 2^53
    ];
    for (const text of bad) await expectCode(decode([Buffer.from(text)], unsigned), 'InvalidRequest');
  });

  it('bounds the chunk header line', async () => {
    const long = Buffer.from(`3;${'x'.repeat(5000)}`);
    await expectCode(decode([long], unsigned), 'InvalidRequest');
  });

  it('bounds the trailer section', async () => {
    const trailers = Array.from({ length: 400 }, (_, i) => `x-amz-meta-${i}:${'v'.repeat(40)}\r\n`).join('');
    await expectCode(decode([Buffer.from(`0\r\n${trailers}\r\n`)], unsigned), 'InvalidRequest');
  });

  it('requires chunk signatures in signed modes and a trailer signature in signed-trailer mode', async () => {
    const data = Buffer.from('hello');
    const signedWire = encode(data, [5], 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
    const stripped = Buffer.from(signedWire.toString('latin1').replace(/;chunk-signature=[0-9a-f]{64}/g, ''), 'latin1');
    await expectCode(decode([stripped], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD')), 'SignatureDoesNotMatch');
    const withTrailer = encode(data, [5], 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', [['x-amz-checksum-crc32', 'NhCmhg==']]);
    expect((await decode([withTrailer], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'))).trailers).toEqual({ 'x-amz-checksum-crc32': 'NhCmhg==' });
    const noTrailerSig = Buffer.from(withTrailer.toString('latin1').replace(/x-amz-trailer-signature:[0-9a-f]{64}\r\n/, ''), 'latin1');
    await expectCode(decode([noTrailerSig], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER')), 'SignatureDoesNotMatch');
    // Reordering chunks breaks the chain even though each chunk is intact.
    const two = encode(Buffer.from('aaaabbbb'), [4, 4], 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD').toString('latin1');
    const [c1, c2] = two.match(/[0-9a-f]+;chunk-signature=[0-9a-f]{64}\r\n[ab]{4}\r\n/g)!;
    const swapped = Buffer.from(two.replace(c1! + c2!, c2! + c1!), 'latin1');
    await expectCode(decode([swapped], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD')), 'SignatureDoesNotMatch');
  });
});

describe('properties', () => {
  const modes: PayloadMode[] = ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'];

  it('(a) any body, any chunk sizes, any packet splits decodes to the original bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 5000 }),
        fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.constantFrom(...modes),
        async (bytes, sizes, cuts, mode) => {
          const data = Buffer.from(bytes);
          const trailers: [string, string][] = mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' ? [] : [['x-amz-checksum-crc32', 'AAAAAA==']];
          const wire = encode(data, sizes, mode, trailers);
          const { body, trailers: got } = await decode(split(wire, cuts), authFor(mode), data.length);
          expect(body.equals(data)).toBe(true);
          expect(got).toEqual(Object.fromEntries(trailers));
        },
      ),
      { numRuns: 150 },
    );
  });

  // A flip that keeps the meaning (the case of a hex digit or of a trailer
  // name) may pass; anything that changes data or trailers must not.
  it('(b) a flipped byte anywhere in a signed chunked body fails or changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 3000 }),
        fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        async (bytes, sizes, at, xor, cuts) => {
          const data = Buffer.from(bytes);
          const wire = encode(data, sizes, 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', [['x-amz-checksum-crc32', 'AAAAAA==']]);
          const corrupt = Buffer.from(wire);
          corrupt[at % corrupt.length] ^= xor;
          const outcome = await decode(split(corrupt, cuts), authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'), data.length).then(
            (decoded): { body: Buffer; trailers: Record<string, string> } | Error => decoded,
            (e: unknown) => e as Error,
          );
          if (outcome instanceof Error) {
            expect(outcome).toBeInstanceOf(S3Error);
            expect(['SignatureDoesNotMatch', 'InvalidRequest', 'IncompleteBody']).toContain((outcome as S3Error).code);
          } else {
            expect(outcome.body.equals(data)).toBe(true);
            expect(outcome.trailers).toEqual({ 'x-amz-checksum-crc32': 'AAAAAA==' });
            expect(String.fromCharCode(corrupt[at % corrupt.length]!).toLowerCase()).toBe(String.fromCharCode(wire[at % wire.length]!).toLowerCase());
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('(b) a flipped byte inside chunk data is a signature failure', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.nat(), fc.integer({ min: 1, max: 255 }), async (bytes, at, xor) => {
        const data = Buffer.from(bytes);
        const wire = encode(data, [data.length], 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
        const headerLength = wire.indexOf('\r\n') + 2;
        const corrupt = Buffer.from(wire);
        corrupt[headerLength + (at % data.length)] ^= xor;
        await expectCode(decode([corrupt], authFor('STREAMING-AWS4-HMAC-SHA256-PAYLOAD'), data.length), 'SignatureDoesNotMatch');
      }),
      { numRuns: 100 },
    );
  });
});
