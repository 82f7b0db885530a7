// Object keys in lmdb are "<bucket>\0<key>" in UTF-8: listing order is their
// byte order, and records already on disk were stored under these bytes.

import { describe, expect, it } from 'vitest';
import { bucketBase, bucketEnd, objectKey } from '../../src/objects/meta-db.ts';

describe('objectKey', () => {
  it('is the bucket, a zero byte and the key, in UTF-8', () => {
    const cases: Array<[string, string]> = [
      ['bench', 'obj/00000001'],
      ['bücket', 'ключ/😀/ü'],
      ['b', ''],
      ['a-bucket', 'k'.repeat(1024)],
    ];
    for (const [bucket, key] of cases) {
      const want = Buffer.concat([Buffer.from(bucket, 'utf8'), Buffer.from([0]), Buffer.from(key, 'utf8')]);
      expect(objectKey(bucket, key).equals(want)).toBe(true);
      // Inside the bucket's listing range.
      expect(Buffer.compare(objectKey(bucket, key), bucketBase(bucket))).toBeGreaterThanOrEqual(0);
      expect(Buffer.compare(objectKey(bucket, key), bucketEnd(bucket))).toBeLessThan(0);
    }
  });
});
