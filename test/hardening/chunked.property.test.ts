// Property tests of the aws-chunked decoder beyond round trips and flipped
// bytes (test/gateway/auth/chunked.test.ts): a body cut anywhere before its
// final chunk never decodes as a success, and arbitrary bytes either fail
// with an S3 error or decode to exactly the declared length: never another
// exception, never a hang.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/core/errors.ts';
import { AwsChunkedDecoder } from '../../src/gateway/auth/chunked.ts';
import { deriveSigningKey, emptySha256Hex, hmacHex, sha256Hex } from '../../src/gateway/auth/signing.ts';
import type { AuthContext, PayloadMode } from '../../src/gateway/auth/sigv4.ts';

const amzDate = '20261130T000000Z';
const scope = '20261130/us-east-1/s3/aws4_request';
const signingKey = deriveSigningKey('chunked-property-secret', '20261130', 'us-east-1', 's3');
const seed = 'a'.repeat(64);

function authFor(payloadMode: PayloadMode): AuthContext {
  return { accessKeyId: 'AKIACHUNKPROPERTY001', presigned: false, payloadMode, signature: seed, signingKey, amzDate, scope };
}

/** Signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) or unsigned-trailer wire form; also where the final chunk starts. */
function encode(data: Buffer, size: number, signed: boolean): { wire: Buffer; finalAt: number } {
  const parts: Buffer[] = [];
  let previous = seed;
  const header = (piece: Buffer) => {
    if (!signed) return `${piece.length.toString(16)}\r\n`;
    previous = hmacHex(signingKey, ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, previous, emptySha256Hex, sha256Hex(piece)].join('\n'));
    return `${piece.length.toString(16)};chunk-signature=${previous}\r\n`;
  };
  for (let o = 0; o < data.length; o += size) {
    const piece = data.subarray(o, o + size);
    parts.push(Buffer.from(header(piece)), piece, Buffer.from('\r\n'));
  }
  const finalAt = parts.reduce((n, p) => n + p.length, 0);
  parts.push(Buffer.from(header(Buffer.alloc(0))), Buffer.from('\r\n'));
  return { wire: Buffer.concat(parts), finalAt };
}

type Outcome = { ok: true; body: Buffer } | { ok: false; err: unknown };

async function decode(wire: Buffer, mode: PayloadMode, decodedLength: number, packet: number): Promise<Outcome> {
  const decoder = new AwsChunkedDecoder({ auth: authFor(mode), decodedLength });
  const packets: Buffer[] = [];
  for (let o = 0; o < wire.length; o += packet) packets.push(wire.subarray(o, o + packet));
  const out: Buffer[] = [];
  try {
    await pipeline(Readable.from(packets), decoder, async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) out.push(c);
    });
    return { ok: true, body: Buffer.concat(out) };
  } catch (err) {
    return { ok: false, err };
  }
}

const modes: [PayloadMode, boolean][] = [
  ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', true],
  ['STREAMING-UNSIGNED-PAYLOAD-TRAILER', false],
];

describe('aws-chunked decoder properties', () => {
  for (const [mode, signed] of modes) {
    it(`${mode}: a body cut before its final chunk always fails with an S3 error`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.integer({ min: 1, max: 1200 }), fc.nat(), fc.integer({ min: 1, max: 700 }), async (bytes, size, cutSeed, packet) => {
          const data = Buffer.from(bytes);
          const { wire, finalAt } = encode(data, size, signed);
          const cut = cutSeed % finalAt;
          const outcome = await decode(wire.subarray(0, cut), mode, data.length, packet);
          expect(outcome.ok, `cut at ${cut} of ${wire.length}`).toBe(false);
          if (!outcome.ok) expect(outcome.err).toBeInstanceOf(S3Error);
        }),
        { numRuns: 300 },
      );
    });

    it(`${mode}: arbitrary bytes fail with an S3 error or decode to exactly the declared length`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), fc.nat(500), fc.integer({ min: 1, max: 64 }), async (bytes, declared, packet) => {
          const outcome = await decode(Buffer.from(bytes), mode, declared, packet);
          if (outcome.ok) expect(outcome.body.length).toBe(declared);
          else expect(outcome.err).toBeInstanceOf(S3Error);
        }),
        { numRuns: 500 },
      );
    });

    it(`${mode}: plausible framing with random sizes and noise fails cleanly or is exact`, async () => {
      const line = fc.oneof(
        fc.nat(0xffff).map((n) => `${n.toString(16)}\r\n`),
        fc.constantFrom('\r\n', '0\r\n', '0\r\n\r\n', ';chunk-signature=\r\n', 'ffffffffffffffffffff\r\n', '-1\r\n', 'x-amz-checksum-crc32:AAAAAA==\r\n'),
        fc.string({ maxLength: 20 }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(line, { maxLength: 12 }), fc.nat(100), async (lines, declared) => {
          const outcome = await decode(Buffer.from(lines.join('')), mode, declared, 7);
          if (outcome.ok) expect(outcome.body.length).toBe(declared);
          else expect(outcome.err).toBeInstanceOf(S3Error);
        }),
        { numRuns: 500 },
      );
    });
  }
});
