// Same-prefix group (PROTOCOL.md "Prediction"; claims 18, 20, 38, 40: "a
// logical connection between storage objects"): "a group entry for K's
// parent prefix, so the next keys under logs/2026/11/29/ are hits. Resync
// cost of a group = the keys under it, so cap it."

import type { ChangeIntent } from '../../core/changes.ts';
import { parentPrefix, prefixLocation } from '../locations.ts';
import type { Location, PredictContext, Predictor } from '../types.ts';
import { isObjectChange } from './util.ts';

export class SamePrefixPredictor implements Predictor {
  readonly name = 'same-prefix' as const;

  /** @param groupKeysMax largest group, in keys under the prefix. */
  constructor(private readonly groupKeysMax: number) {}

  predict(change: ChangeIntent, context: PredictContext): Location[] {
    if (!isObjectChange(change)) return [];
    const prefix = parentPrefix(change.key);
    if (context.keysUnderPrefix(change.bucket, prefix) > this.groupKeysMax) return [];
    return [prefixLocation(change.bucket, prefix)];
  }
}
