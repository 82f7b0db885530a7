// Ancestor group while a subtree is fresh (PROTOCOL.md "Prediction"; claims
// 18, 20): "a tree upload (aws s3 sync of a directory) keeps creating new
// directories, so the parent prefix alone still misses once per directory.
// Covering an ancestor prefix while most keys under it are recent writes
// turns a whole upload into a handful of misses."

import type { ChangeIntent } from '../../core/changes.ts';
import { ancestorPrefixes, prefixLocation } from '../locations.ts';
import type { Location, PredictContext, Predictor } from '../types.ts';
import { isObjectChange } from './util.ts';

export interface AncestorFreshOptions {
  /** Largest group, in keys under the prefix (resync cost). */
  groupKeysMax: number;
  /** Recent writes / keys under the prefix needed to call it fresh. */
  freshRatio: number;
  /** Recent writes needed at all: two writes do not make an upload. */
  freshMinWrites: number;
}

export class AncestorFreshPredictor implements Predictor {
  readonly name = 'ancestor-fresh' as const;

  constructor(private readonly options: AncestorFreshOptions) {}

  /** The shortest fresh ancestor: it covers the most of the upload. */
  predict(change: ChangeIntent, context: PredictContext): Location[] {
    if (!isObjectChange(change)) return [];
    for (const prefix of ancestorPrefixes(change.key)) {
      if (this.isFresh(change.bucket, prefix, context)) return [prefixLocation(change.bucket, prefix)];
    }
    return [];
  }

  private isFresh(bucket: string, prefix: string, context: PredictContext): boolean {
    const { groupKeysMax, freshRatio, freshMinWrites } = this.options;
    const keys = context.keysUnderPrefix(bucket, prefix);
    if (keys > groupKeysMax) return false;
    const recent = context.recentWrites(bucket, prefix);
    return recent >= freshMinWrites && recent >= freshRatio * keys;
  }
}
