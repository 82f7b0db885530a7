// The Predictions facade: on a miss, which locations join the record
// (PROTOCOL.md write path step 2: "send S a record message { add:
// predict(K), remove: pendingRemovals }"; claims 18-20, 38-40).

import type { ChangeIntent } from '../core/changes.ts';
import type { Location, PredictContext, Predictor, PredictorName } from './types.ts';

export interface PredictorConfig {
  /** Predictors switched on, by name. */
  enabled: readonly PredictorName[];
  /** same-prefix / ancestor-fresh: largest group (keys under it). */
  groupKeysMax: number;
  /** ancestor-fresh: share of keys under an ancestor written recently. */
  freshRatio: number;
  /** ancestor-fresh: recent writes needed before an ancestor counts. */
  freshMinWrites: number;
  /** sibling-dir: next sibling directories predicted. */
  siblingCount: number;
  /** name-sequence: next names predicted. */
  sequenceCount: number;
  /** recency: entries written within this many ms stay (removal hotMs). */
  hotMs: number;
}

export const allPredictorNames: readonly PredictorName[] = [
  'same-prefix',
  'ancestor-fresh',
  'sibling-dir',
  'name-sequence',
  'multipart',
  'recency',
];

export const defaultPredictorConfig: PredictorConfig = {
  enabled: ['same-prefix', 'ancestor-fresh', 'sibling-dir', 'multipart', 'recency'],
  groupKeysMax: 10_000,
  freshRatio: 0.5,
  freshMinWrites: 8,
  siblingCount: 1,
  sequenceCount: 8,
  hotMs: 60_000,
};

/** Parses "same-prefix,multipart" (CLI / config); throws on unknown names. */
export function parsePredictorNames(list: string): PredictorName[] {
  void list;
  throw new Error('not implemented yet');
}

export class Predictions {
  constructor(config: PredictorConfig = defaultPredictorConfig) {
    void config;
    throw new Error('not implemented yet');
  }
  /** The enabled predictors, in order. */
  get predictors(): readonly Predictor[] {
    throw new Error('not implemented yet');
  }
  /** hotMs for the removal policy: 0 when the recency predictor is off. */
  get hotMs(): number {
    throw new Error('not implemented yet');
  }
  /**
   * Locations to add on a miss: the change's own location first
   * (`ownLocation`), then every enabled predictor's, deduplicated by name,
   * at most predictedLocationsMax.
   */
  predict(change: ChangeIntent, context: PredictContext): Location[] {
    void change;
    void context;
    throw new Error('not implemented yet');
  }
}
