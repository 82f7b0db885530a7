// Streaming checksums as S3 uses them: MD5 (ETag), SHA1, SHA256, CRC32,
// CRC32C, CRC64NVME; base64 of the big-endian digest, as on the wire.
//
// CRC32 uses node's zlib.crc32 (native, takes a running value). CRC32C and
// CRC64NVME are table-driven slicing-by-8 in plain JS; CRC64 works on two
// 32-bit halves so no BigInt is touched per byte (BigInt only appears in the
// per-part CRC combination, which runs a few hundred steps per part).

import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import type { BodyDigest, ChecksumAlgorithm } from '../objects/types.ts';

export interface IncrementalHasher {
  update(data: Uint8Array): void;
  /** Big-endian digest bytes. Call once. */
  digest(): Buffer;
}

// ---------------------------------------------------------------- CRC32C

function makeTables32(poly: number): Uint32Array[] {
  const t0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t0[i] = c >>> 0;
  }
  const tables = [t0];
  for (let s = 1; s < 8; s++) {
    const prev = tables[s - 1]!;
    const t = new Uint32Array(256);
    for (let i = 0; i < 256; i++) t[i] = (prev[i]! >>> 8) ^ t0[prev[i]! & 0xff]!;
    tables.push(t);
  }
  return tables;
}

/** Reflected Castagnoli polynomial. */
const crc32cPoly = 0x82f63b78;
let crc32cTables: Uint32Array[] | undefined;

/** Raw CRC32C register update (no pre/post inversion). */
function crc32cUpdate(crc: number, data: Uint8Array): number {
  const t = (crc32cTables ??= makeTables32(crc32cPoly));
  const [t0, t1, t2, t3, t4, t5, t6, t7] = t as [
    Uint32Array, Uint32Array, Uint32Array, Uint32Array,
    Uint32Array, Uint32Array, Uint32Array, Uint32Array,
  ];
  let c = crc >>> 0;
  let i = 0;
  const n = data.length;
  const end8 = n - (n % 8);
  for (; i < end8; i += 8) {
    const a = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    c =
      t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]! ^
      t3[data[i + 4]!]! ^ t2[data[i + 5]!]! ^ t1[data[i + 6]!]! ^ t0[data[i + 7]!]!;
  }
  for (; i < n; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

class Crc32cHasher implements IncrementalHasher {
  private reg = 0xffffffff;
  update(data: Uint8Array): void {
    this.reg = crc32cUpdate(this.reg, data);
  }
  digest(): Buffer {
    const out = Buffer.alloc(4);
    out.writeUInt32BE((this.reg ^ 0xffffffff) >>> 0);
    return out;
  }
}

class Crc32Hasher implements IncrementalHasher {
  /** The running CRC32 (zlib's, unsigned). */
  value = 0;
  update(data: Uint8Array): void {
    this.value = zlib.crc32(data, this.value);
  }
  digest(): Buffer {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.value >>> 0);
    return out;
  }
}

// ------------------------------------------------------------- CRC64NVME

/** Reflected CRC-64/NVME polynomial 0x9A6C9329AC4BC9B5, split in halves. */
const crc64PolyHi = 0x9a6c9329;
const crc64PolyLo = 0xac4bc9b5;

interface Tables64 {
  hi: Uint32Array[];
  lo: Uint32Array[];
}
let crc64Tables: Tables64 | undefined;

function makeTables64(): Tables64 {
  const hi0 = new Uint32Array(256);
  const lo0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let h = 0;
    let l = i;
    for (let k = 0; k < 8; k++) {
      const bit = l & 1;
      l = ((l >>> 1) | (h << 31)) >>> 0;
      h = h >>> 1;
      if (bit) {
        h = (h ^ crc64PolyHi) >>> 0;
        l = (l ^ crc64PolyLo) >>> 0;
      }
    }
    hi0[i] = h;
    lo0[i] = l;
  }
  const hi = [hi0];
  const lo = [lo0];
  for (let s = 1; s < 8; s++) {
    const ph = hi[s - 1]!;
    const pl = lo[s - 1]!;
    const th = new Uint32Array(256);
    const tl = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      // (prev >>> 8) ^ T0[prev & 0xff] on a 64-bit value in two halves.
      const idx = pl[i]! & 0xff;
      th[i] = (ph[i]! >>> 8) ^ hi0[idx]!;
      tl[i] = ((pl[i]! >>> 8) | (ph[i]! << 24)) ^ lo0[idx]!;
    }
    hi.push(th);
    lo.push(tl);
  }
  return { hi, lo };
}

class Crc64NvmeHasher implements IncrementalHasher {
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(data: Uint8Array): void {
    const { hi: H, lo: L } = (crc64Tables ??= makeTables64());
    const [h0, h1, h2, h3, h4, h5, h6, h7] = H as [
      Uint32Array, Uint32Array, Uint32Array, Uint32Array,
      Uint32Array, Uint32Array, Uint32Array, Uint32Array,
    ];
    const [l0, l1, l2, l3, l4, l5, l6, l7] = L as [
      Uint32Array, Uint32Array, Uint32Array, Uint32Array,
      Uint32Array, Uint32Array, Uint32Array, Uint32Array,
    ];
    let hi = this.hi;
    let lo = this.lo;
    const n = data.length;
    const end8 = n - (n % 8);
    let i = 0;
    for (; i < end8; i += 8) {
      const a = lo ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
      const b = hi ^ (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24));
      const a0 = a & 0xff, a1 = (a >>> 8) & 0xff, a2 = (a >>> 16) & 0xff, a3 = a >>> 24;
      const b0 = b & 0xff, b1 = (b >>> 8) & 0xff, b2 = (b >>> 16) & 0xff, b3 = b >>> 24;
      hi = h7[a0]! ^ h6[a1]! ^ h5[a2]! ^ h4[a3]! ^ h3[b0]! ^ h2[b1]! ^ h1[b2]! ^ h0[b3]!;
      lo = l7[a0]! ^ l6[a1]! ^ l5[a2]! ^ l4[a3]! ^ l3[b0]! ^ l2[b1]! ^ l1[b2]! ^ l0[b3]!;
    }
    for (; i < n; i++) {
      const idx = (lo ^ data[i]!) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ l0[idx]!;
      hi = (hi >>> 8) ^ h0[idx]!;
    }
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
  }

  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE((this.hi ^ 0xffffffff) >>> 0, 0);
    out.writeUInt32BE((this.lo ^ 0xffffffff) >>> 0, 4);
    return out;
  }
}

// ------------------------------------------------------------ node hashes

class NodeHasher implements IncrementalHasher {
  private readonly hash: Hash;
  constructor(name: string) {
    this.hash = createHash(name);
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  digest(): Buffer {
    return this.hash.digest();
  }
}

export function createHasher(algorithm: ChecksumAlgorithm | 'MD5'): IncrementalHasher {
  switch (algorithm) {
    case 'MD5':
      return new NodeHasher('md5');
    case 'SHA1':
      return new NodeHasher('sha1');
    case 'SHA256':
      return new NodeHasher('sha256');
    case 'CRC32':
      return new Crc32Hasher();
    case 'CRC32C':
      return new Crc32cHasher();
    case 'CRC64NVME':
      return new Crc64NvmeHasher();
  }
}

/** One-shot checksum, base64 of the big-endian digest (as in x-amz-checksum-*). */
export function checksumBase64(algorithm: ChecksumAlgorithm, data: Uint8Array): string {
  const h = createHasher(algorithm);
  h.update(data);
  return h.digest().toString('base64');
}

// ------------------------------------------------------ streaming digest

export interface DigestOptions {
  /** Checksums to compute besides MD5. */
  algorithms: readonly ChecksumAlgorithm[];
  /** Also compute SHA-256 hex (signed payload), even if SHA256 is not listed. */
  sha256: boolean;
}

/**
 * Passes data through unchanged while counting bytes and hashing it. Read
 * `result()` after the stream ended.
 */
export class DigestingTransform extends Transform {
  private size = 0;
  private readonly md5 = createHash('md5');
  private readonly hashers = new Map<ChecksumAlgorithm, IncrementalHasher>();
  private readonly sha256Hasher?: IncrementalHasher;
  /** The CRC32 a file blob records (see trackCrc32); shares the CRC32 checksum's hasher. */
  private blobCrc?: Crc32Hasher;
  private ownBlobCrc = false;
  private finished?: BodyDigest;

  constructor(options: DigestOptions) {
    super();
    for (const a of options.algorithms) if (!this.hashers.has(a)) this.hashers.set(a, createHasher(a));
    if (options.sha256) this.sha256Hasher = this.hashers.get('SHA256') ?? createHasher('SHA256');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.update(chunk);
    done(null, chunk);
  }

  /** Hashes a chunk without passing it on (for callers that write it themselves). */
  update(chunk: Buffer): void {
    this.size += chunk.length;
    this.md5.update(chunk);
    for (const h of this.hashers.values()) h.update(chunk);
    if (this.sha256Hasher && !this.hashers.has('SHA256')) this.sha256Hasher.update(chunk);
    if (this.ownBlobCrc) this.blobCrc!.update(chunk);
  }

  /**
   * Also compute the CRC32 that a file blob records (reads check it), from
   * here on; `already` are the chunks digested before (the durable write
   * decides file or inline only after reading a head of the body). When the
   * client asked for CRC32 as its checksum, that running value is reused
   * rather than hashing every byte twice.
   */
  trackCrc32(already: readonly Buffer[]): void {
    if (this.blobCrc) return;
    const shared = this.hashers.get('CRC32');
    if (shared instanceof Crc32Hasher) {
      this.blobCrc = shared;
      return;
    }
    this.blobCrc = new Crc32Hasher();
    this.ownBlobCrc = true;
    for (const chunk of already) this.blobCrc.update(chunk);
  }

  /** The digests; valid once the data has passed through. */
  result(): BodyDigest {
    if (this.finished) return this.finished;
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    let sha256Raw: Buffer | undefined;
    for (const [a, h] of this.hashers) {
      const raw = h.digest();
      if (a === 'SHA256') sha256Raw = raw;
      checksums[a] = raw.toString('base64');
    }
    if (this.sha256Hasher && !sha256Raw) sha256Raw = this.sha256Hasher.digest();
    this.finished = {
      size: this.size,
      md5Hex: this.md5.digest('hex'),
      checksums,
      ...(sha256Raw ? { sha256Hex: sha256Raw.toString('hex') } : {}),
      ...(this.blobCrc ? { crc32: this.blobCrc.value >>> 0 } : {}),
    };
    return this.finished;
  }
}

// -------------------------------------------------------------- multipart

/** S3 multipart ETag: hex(md5(concat(binary part md5s))) + "-N". */
export function multipartEtag(partMd5Hex: readonly string[]): string {
  const h = createHash('md5');
  for (const p of partMd5Hex) h.update(Buffer.from(p, 'hex'));
  return `${h.digest('hex')}-${partMd5Hex.length}`;
}

/** COMPOSITE checksum: checksum of the concatenated raw part checksums, "base64-N". */
export function compositeChecksum(algorithm: ChecksumAlgorithm, partBase64: readonly string[]): string {
  const h = createHasher(algorithm);
  for (const p of partBase64) h.update(Buffer.from(p, 'base64'));
  return `${h.digest().toString('base64')}-${partBase64.length}`;
}

interface CrcSpec {
  width: bigint;
  /** Reflected polynomial. */
  poly: bigint;
}

const crcSpecs: Partial<Record<ChecksumAlgorithm, CrcSpec>> = {
  CRC32: { width: 32n, poly: 0xedb88320n },
  CRC32C: { width: 32n, poly: 0x82f63b78n },
  CRC64NVME: { width: 64n, poly: 0x9a6c9329ac4bc9b5n },
};

/** True for the algorithms whose part checksums combine into a full-object one. */
export function supportsFullObjectCombine(algorithm: ChecksumAlgorithm): boolean {
  return crcSpecs[algorithm] !== undefined;
}

/** a(x) * b(x) mod p(x) for reflected polynomials (zlib's multmodp). */
function multModP(spec: CrcSpec, a: bigint, b: bigint): bigint {
  const top = 1n << (spec.width - 1n);
  let m = top;
  let p = 0n;
  let bb = b;
  // Bounded: one step per bit of a.
  for (let step = 0n; step < spec.width; step++) {
    if (a & m) {
      p ^= bb;
      if ((a & (m - 1n)) === 0n) break;
    }
    m >>= 1n;
    bb = bb & 1n ? (bb >> 1n) ^ spec.poly : bb >> 1n;
  }
  return p;
}

/** x^(8 * bytes) mod p, by repeated squaring. */
function xPowBytes(spec: CrcSpec, bytes: number): bigint {
  const top = 1n << (spec.width - 1n);
  let result = top; // x^0
  let square = top >> 8n; // x^8 (reflected: x^k is bit width-1-k)
  let n = BigInt(bytes);
  while (n > 0n) {
    if (n & 1n) result = multModP(spec, square, result);
    square = multModP(spec, square, square);
    n >>= 1n;
  }
  return result;
}

/**
 * Full-object CRC of A||B from crc(A), crc(B) and len(B), like zlib's
 * crc32_combine; works for any reflected CRC whose init equals its xorout.
 */
export function combineCrc(
  algorithm: ChecksumAlgorithm,
  crcA: Buffer,
  crcB: Buffer,
  lengthB: number,
): Buffer {
  const spec = crcSpecs[algorithm];
  if (!spec) throw new Error(`cannot combine ${algorithm}`);
  const a = BigInt(`0x${crcA.toString('hex')}`);
  const b = BigInt(`0x${crcB.toString('hex')}`);
  const combined = multModP(spec, xPowBytes(spec, lengthB), a) ^ b;
  const out = Buffer.alloc(Number(spec.width / 8n));
  const hex = combined.toString(16).padStart(out.length * 2, '0');
  Buffer.from(hex, 'hex').copy(out);
  return out;
}

/** Full-object checksum of the concatenated parts from their base64 CRCs and sizes. */
export function fullObjectCrc(
  algorithm: ChecksumAlgorithm,
  parts: readonly { checksum: string; size: number }[],
): string {
  let acc: Buffer | undefined;
  for (const p of parts) {
    const raw = Buffer.from(p.checksum, 'base64');
    acc = acc ? combineCrc(algorithm, acc, raw, p.size) : raw;
  }
  if (!acc) acc = createHasher(algorithm).digest();
  return acc.toString('base64');
}
