// Adapter from src/predict's Predictions facade and RecentWrites tracker to
// the replicator's Predict function (claims 18-20: on a miss, the record
// gains the locations the client is likely to write next).

import type { ChangeIntent } from '../core/changes.ts';
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
