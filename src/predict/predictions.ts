// The Predictions facade: on a miss, which locations join the record
// (PROTOCOL.md write path step 2: "send S a record message { add:
// predict(K), remove: pendingRemovals }"; claims 18-20, 38-40).

import type { ChangeIntent } from '../core/changes.ts';
import { assertNever } from '../core/assert.ts';
import { predictedLocationsMax, prefixGroupKeysMax } from '../core/limits.ts';
import { locationName, ownLocation } from './locations.ts';
import { AncestorFreshPredictor } from './predictors/ancestor-fresh.ts';
import { MultipartPredictor } from './predictors/multipart.ts';
import { NameSequencePredictor } from './predictors/name-sequence.ts';
import { RecencyPredictor } from './predictors/recency.ts';
import { SamePrefixPredictor } from './predictors/same-prefix.ts';
import { SiblingDirPredictor } from './predictors/sibling-dir.ts';
import type { Location, LocationName, PredictContext, Predictor, PredictorName } from './types.ts';

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

/**
 * Defaults, from the workload table (test/predict/workloads.test.ts):
 * name-sequence is off because it saved no miss on the log, tree and
 * multipart workloads while adding entries (on uniform keys it filled the
 * record to its limit); each enabled one lowers misses on some workload.
 * Frozen: a shared default must not be mutated by one caller for all.
 */
export const defaultPredictorConfig: PredictorConfig = Object.freeze({
  enabled: Object.freeze(['same-prefix', 'ancestor-fresh', 'sibling-dir', 'multipart', 'recency'] as const),
  groupKeysMax: prefixGroupKeysMax,
  freshRatio: 0.5,
  freshMinWrites: 8,
  siblingCount: 1,
  sequenceCount: 8,
  hotMs: 60_000,
});

/** Parses "same-prefix,multipart" (CLI / config); throws on unknown names. */
export function parsePredictorNames(list: string): PredictorName[] {
  const names = list
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  for (const name of names) {
    if (!(allPredictorNames as readonly string[]).includes(name)) {
      throw new Error(`unknown predictor "${name}" (known: ${allPredictorNames.join(', ')})`);
    }
  }
  return [...new Set(names as PredictorName[])];
}

/** Builds one predictor from its name and the shared configuration. */
function makePredictor(name: PredictorName, config: PredictorConfig): Predictor {
  switch (name) {
    case 'same-prefix':
      return new SamePrefixPredictor(config.groupKeysMax);
    case 'ancestor-fresh':
      return new AncestorFreshPredictor(config);
    case 'sibling-dir':
      return new SiblingDirPredictor({ count: config.siblingCount, groupKeysMax: config.groupKeysMax });
    case 'name-sequence':
      return new NameSequencePredictor(config.sequenceCount);
    case 'multipart':
      return new MultipartPredictor();
    case 'recency':
      return new RecencyPredictor(config.hotMs);
    default:
      return assertNever(name, 'predictor name');
  }
}

export class Predictions {
  private readonly list: readonly Predictor[];
  private readonly recencyMs: number;

  constructor(config: PredictorConfig = defaultPredictorConfig) {
    this.list = [...new Set(config.enabled)].map((name) => makePredictor(name, config));
    this.recencyMs = config.enabled.includes('recency') ? config.hotMs : 0;
  }

  /** The enabled predictors, in order. */
  get predictors(): readonly Predictor[] {
    return this.list;
  }

  /** hotMs for the removal policy: 0 when the recency predictor is off. */
  get hotMs(): number {
    return this.recencyMs;
  }

  /**
   * Locations to add on a miss: the change's own location first
   * (`ownLocation`), then every enabled predictor's, deduplicated by name,
   * at most predictedLocationsMax. PROTOCOL.md write path step 2: "send S a
   * record message { add: predict(K), remove: pendingRemovals }".
   */
  predict(change: ChangeIntent, context: PredictContext): Location[] {
    const seen = new Map<LocationName, Location>();
    const own = ownLocation(change);
    seen.set(locationName(own), own);
    for (const predictor of this.list) {
      for (const loc of predictor.predict(change, context)) {
        if (seen.size >= predictedLocationsMax) return [...seen.values()];
        const name = locationName(loc);
        if (!seen.has(name)) seen.set(name, loc);
      }
    }
    return [...seen.values()];
  }
}
