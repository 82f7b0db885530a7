// Sibling-directory sequence (PROTOCOL.md "Prediction"; claims 19, 39:
// "consecutive locations in proximity"): "sibling-directory sequences
// (day=29/ then day=30/, tenant-73/ then tenant-74/) help too". The deepest
// directory of the key whose name holds a number is bumped: the next
// directories of a partitioned layout become group entries.

import type { ChangeIntent } from '../../core/changes.ts';
import { prefixLocation } from '../locations.ts';
import type { Location, PredictContext, Predictor } from '../types.ts';
import { bumpLastNumber, isObjectChange, lastNumber } from './util.ts';

export interface SiblingDirOptions {
  /** Next sibling directories to predict. */
  count: number;
  /** Largest group, in keys under the prefix (resync cost). */
  groupKeysMax: number;
}

export class SiblingDirPredictor implements Predictor {
  readonly name = 'sibling-dir' as const;

  constructor(private readonly options: SiblingDirOptions) {}

  predict(change: ChangeIntent, context: PredictContext): Location[] {
    if (!isObjectChange(change)) return [];
    const dirs = change.key.split('/').slice(0, -1); // the last part is the file name
    const at = findLastIndex(dirs, (segment) => lastNumber(segment) !== undefined);
    if (at < 0) return [];
    const base = dirs.slice(0, at).map((d) => `${d}/`).join('');
    const found: Location[] = [];
    for (let step = 1; step <= this.options.count; step++) {
      const sibling = bumpLastNumber(dirs[at] as string, step);
      if (sibling === undefined) break;
      const prefix = `${base}${sibling}/`;
      if (context.keysUnderPrefix(change.bucket, prefix) > this.options.groupKeysMax) continue;
      found.push(prefixLocation(change.bucket, prefix));
    }
    return found;
  }
}

function findLastIndex<T>(items: T[], test: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i] as T)) return i;
  return -1;
}
