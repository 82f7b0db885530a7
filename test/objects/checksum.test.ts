import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checksumBase64, compositeChecksum, createHasher, DigestingTransform, fullObjectCrc, multipartEtag,
} from '../../src/core/checksum.ts';

const hex = (alg: Parameters<typeof createHasher>[0], data: Buffer | string) => {
  const h = createHasher(alg);
  h.update(Buffer.from(data));
  return h.digest().toString('hex');
};

/** Bit-at-a-time reflected CRC, the slow and obviously correct way. */
function naiveCrc(data: Buffer, width: 32 | 64, poly: bigint): string {
  const mask = (1n << BigInt(width)) - 1n;
  let crc = mask;
  for (const byte of data) {
    crc ^= BigInt(byte);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return ((crc ^ mask) & mask).toString(16).padStart(width / 4, '0');
}

describe('checksum vectors', () => {
  it('matches the published check values for "123456789"', () => {
    expect(hex('CRC32', '123456789')).toBe('cbf43926');
    expect(hex('CRC32C', '123456789')).toBe('e3069283');
    expect(hex('CRC64NVME', '123456789')).toBe('ae8b14860a799888');
    expect(hex('SHA1', '123456789')).toBe('f7c3bc1d808e04732adf679965ccc34ca7ae3441');
    expect(hex('SHA256', 'abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hex('MD5', '')).toBe('d41d8cd98f00b204e9800998ecf8427e');
  });

  it('matches the RFC 3720 CRC32C vectors', () => {
    expect(hex('CRC32C', Buffer.alloc(32, 0))).toBe('8a9136aa');
    expect(hex('CRC32C', Buffer.alloc(32, 0xff))).toBe('62a8ab43');
    expect(hex('CRC32C', Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe('46dd794e');
  });

  it('is base64 of the big-endian digest, as S3 sends it', () => {
    expect(checksumBase64('CRC32', Buffer.from('123456789'))).toBe(Buffer.from('cbf43926', 'hex').toString('base64'));
    expect(checksumBase64('CRC64NVME', Buffer.alloc(0))).toBe('AAAAAAAAAAA=');
  });

  it('slicing-by-8 agrees with a bitwise reference, however the data is split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 5 }), (bytes, cuts) => {
        const data = Buffer.from(bytes);
        const points = [...new Set(cuts.map((c) => Math.min(c, data.length)))].sort((a, b) => a - b);
        for (const [alg, width, poly] of [['CRC32C', 32, 0x82f63b78n], ['CRC64NVME', 64, 0x9a6c9329ac4bc9b5n], ['CRC32', 32, 0xedb88320n]] as const) {
          const h = createHasher(alg);
          let prev = 0;
          for (const p of [...points, data.length]) {
            h.update(data.subarray(prev, p));
            prev = p;
          }
          expect(h.digest().toString('hex')).toBe(naiveCrc(data, width, poly));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('combines part CRCs into the full-object CRC', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { minLength: 1, maxLength: 5 }), (parts) => {
        for (const alg of ['CRC32', 'CRC32C', 'CRC64NVME'] as const) {
          const bufs = parts.map((p) => Buffer.from(p));
          const combined = fullObjectCrc(alg, bufs.map((b) => ({ checksum: checksumBase64(alg, b), size: b.length })));
          expect(combined).toBe(checksumBase64(alg, Buffer.concat(bufs)));
        }
      }),
      { numRuns: 50 },
    );
  });

  it('builds multipart ETags and composite checksums from raw part digests', () => {
    const a = Buffer.from('part one');
    const b = Buffer.from('part two');
    const md5 = (x: Buffer) => createHash('md5').update(x).digest();
    expect(multipartEtag([md5(a).toString('hex'), md5(b).toString('hex')])).toBe(
      `${createHash('md5').update(Buffer.concat([md5(a), md5(b)])).digest('hex')}-2`,
    );
    const sha = (x: Buffer) => createHash('sha256').update(x).digest();
    expect(compositeChecksum('SHA256', [sha(a).toString('base64'), sha(b).toString('base64')])).toBe(
      `${createHash('sha256').update(Buffer.concat([sha(a), sha(b)])).digest('base64')}-2`,
    );
  });

  it('DigestingTransform passes data through and digests it', async () => {
    const data = randomBytes(200_000);
    const t = new DigestingTransform({ algorithms: ['CRC32C', 'SHA1'], sha256: true });
    const out: Buffer[] = [];
    const chunks = Array.from({ length: 20 }, (_, i) => data.subarray(i * 10_000, (i + 1) * 10_000));
    await pipeline(Readable.from(chunks), t, new Writable({ write(c, _e, cb) { out.push(c); cb(); } }));
    expect(Buffer.concat(out).equals(data)).toBe(true);
    const d = t.result();
    expect(d.size).toBe(data.length);
    expect(d.md5Hex).toBe(createHash('md5').update(data).digest('hex'));
    expect(d.sha256Hex).toBe(createHash('sha256').update(data).digest('hex'));
    expect(d.checksums.SHA1).toBe(createHash('sha1').update(data).digest('base64'));
    expect(d.checksums.CRC32C).toBe(checksumBase64('CRC32C', data));
    expect(d.checksums.SHA256).toBeUndefined(); // only asked for as the signed-payload hash
  });

  it('CRC64NVME and CRC32C are table-driven: far faster than bit-at-a-time', () => {
    // Relative, so a loaded machine slows both sides alike: best of 3 runs.
    const best = (fn: () => void) => Math.min(...[0, 1, 2].map(() => { const t = performance.now(); fn(); return performance.now() - t; }));
    const big = randomBytes(4 * 1024 * 1024);
    const small = big.subarray(0, 16 * 1024);
    for (const [alg, width, poly] of [['CRC32C', 32, 0x82f63b78n], ['CRC64NVME', 64, 0x9a6c9329ac4bc9b5n]] as const) {
      const fastPerByte = best(() => createHasher(alg).update(big)) / big.length;
      const slowPerByte = best(() => naiveCrc(small, width, poly)) / small.length;
      expect(slowPerByte / fastPerByte).toBeGreaterThan(20);
    }
  });
});
