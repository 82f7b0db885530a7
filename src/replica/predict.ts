// Adapter from src/predict's Predictions facade and RecentWrites tracker to
// the replicator's Predict function (claims 18-20: on a miss, the record
// gains the locations the client is likely to write next).

import type { RootDatabase } from 'lmdb';
import type { ChangeIntent } from '../core/changes.ts';
import { prefixGroupKeysMax } from '../core/limits.ts';
import { bucketEnd, objectKey } from '../objects/meta-db.ts';
import { locationName, ownLocation } from '../predict/locations.ts';
import type { Predictions } from '../predict/predictions.ts';
import type { RecentWrites } from '../predict/recent.ts';
import type { Predict } from './primary.ts';

export function predictWith(
  predictions: Predictions,
  recent: RecentWrites,
  keysUnderPrefix: (bucket: string, prefix: string) => number,
): Predict {
  return (change: ChangeIntent, now: number) => {
    const own = locationName(ownLocation(change));
    const names = predictions.predict(change, recent.context(now, keysUnderPrefix)).map(locationName);
    // The own location first, always: it is what the miss must cover.
    return [own, ...names.filter((n) => n !== own)];
  };
}

/**
 * Keys under a prefix in the object store's lmdb (PredictContext
 * keysUnderPrefix), counted up to prefixGroupKeysMax + 1: "Resync cost of a
 * group = the keys under it, so cap it". Only misses ask, so the bounded
 * scan stays off the hit path.
 */
export function storeKeysUnderPrefix(root: RootDatabase): (bucket: string, prefix: string) => number {
  const objects = root.openDB<unknown, Buffer>({ name: 'objects.objects', keyEncoding: 'binary' });
  return (bucket, prefix) => {
    const start = objectKey(bucket, prefix);
    // UTF-8 never holds 0xff: every key under the prefix sorts before this.
    const end = prefix === '' ? bucketEnd(bucket) : Buffer.concat([start, Buffer.from([0xff])]);
    return objects.getKeysCount({ start, end, limit: prefixGroupKeysMax + 1 });
  };
}
