// SigV4 primitives: hashing, key derivation, the signing-key cache and a
// constant-time signature comparison.

import { createHmac, createSecretKey, hash, type KeyObject } from 'node:crypto';
import { signingKeyCacheEntriesMax } from '../../core/limits.ts';

export const sigV4Algorithm = 'AWS4-HMAC-SHA256';
export const emptySha256Hex = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** One-shot crypto.hash: no Hash object per call (it showed in PUT profiles). */
export function sha256Hex(data: string | Buffer): string {
  return hash('sha256', data, 'hex');
}

export function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** A KeyObject key (SigningKeyCache.entry) skips the key import a Buffer costs per call. */
export function hmacHex(key: Buffer | KeyObject, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('hex');
}

/** kSigning = HMAC chain over "AWS4"+secret, date, region, service, "aws4_request". */
export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  const kDate = hmac(`AWS4${secret}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, 'aws4_request');
}

export function credentialScope(date: string, region: string, service: string): string {
  return `${date}/${region}/${service}/aws4_request`;
}

export function stringToSign(amzDate: string, scope: string, canonicalRequestText: string): string {
  return [sigV4Algorithm, amzDate, scope, sha256Hex(canonicalRequestText)].join('\n');
}

/** Hex chars of a SHA-256 signature. */
const signatureHexChars = 64;

/**
 * Constant-time comparison of two lower-case hex signatures. A provided
 * value of the wrong shape is simply unequal (never an exception): the
 * expected one is lower-case hex, so any other char differs. Compared char
 * by char with no early exit, which costs less than decoding both to
 * buffers for timingSafeEqual on every request.
 */
export function signaturesEqual(expectedHex: string, providedHex: string): boolean {
  if (providedHex.length !== signatureHexChars || expectedHex.length !== signatureHexChars) return false;
  let diff = 0;
  for (let i = 0; i < signatureHexChars; i++) diff |= expectedHex.charCodeAt(i) ^ providedHex.charCodeAt(i);
  return diff === 0;
}

/**
 * Bounded LRU of derived signing keys. Deriving costs four HMACs per
 * request; a client signs thousands of requests a day with the same key.
 * The secret is part of the cache key so a rotated secret never reuses a
 * stale entry.
 */
export interface SigningKey {
  raw: Buffer;
  /** The same key imported once, for hmacHex. */
  key: KeyObject;
}

export class SigningKeyCache {
  private readonly entries = new Map<string, SigningKey>();
  /** The entry used last: most requests repeat it, and it is already the most recent. */
  private last?: { cacheKey: string; entry: SigningKey };

  constructor(private readonly capacity: number = signingKeyCacheEntriesMax) {}

  get(secret: string, date: string, region: string, service: string): Buffer {
    return this.entry(secret, date, region, service).raw;
  }

  entry(secret: string, date: string, region: string, service: string): SigningKey {
    const cacheKey = `${date}\n${region}\n${service}\n${secret}`;
    if (this.last?.cacheKey === cacheKey && this.entries.has(cacheKey)) return this.last.entry;
    let entry = this.entries.get(cacheKey);
    if (entry !== undefined) {
      // Re-insert so Map order tracks recency.
      this.entries.delete(cacheKey);
      this.entries.set(cacheKey, entry);
    } else {
      const raw = deriveSigningKey(secret, date, region, service);
      entry = { raw, key: createSecretKey(raw) };
      this.entries.set(cacheKey, entry);
      if (this.entries.size > this.capacity) {
        const oldest = this.entries.keys().next().value as string;
        this.entries.delete(oldest);
      }
    }
    this.last = { cacheKey, entry };
    return entry;
  }

  get size(): number {
    return this.entries.size;
  }
}
