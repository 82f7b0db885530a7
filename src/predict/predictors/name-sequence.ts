// Numeric sequence in the name (claims 19, 39: "a predetermined number of
// consecutive locations in proximity to the specified location"):
// part-00041 predicts part-00042 ... part-000(41+N). PROTOCOL.md warns:
// "Numeric sequences inside file names rarely pay: they add record entries
// that are never written" -- off by default; see the workload table.

import type { ChangeIntent } from '../../core/changes.ts';
import { keyLocation } from '../locations.ts';
import type { Location, PredictContext, Predictor } from '../types.ts';
import { bumpLastNumber } from './util.ts';

export class NameSequencePredictor implements Predictor {
  readonly name = 'name-sequence' as const;

  /** @param count next names to predict. */
  constructor(private readonly count: number) {}

  predict(change: ChangeIntent, _context: PredictContext): Location[] {
    if (change.kind !== 'put') return [];
    const slash = change.key.lastIndexOf('/') + 1;
    const dir = change.key.slice(0, slash);
    const file = change.key.slice(slash);
    const found: Location[] = [];
    for (let step = 1; step <= this.count; step++) {
      const next = bumpLastNumber(file, step);
      if (next === undefined) break;
      found.push(keyLocation(change.bucket, dir + next));
    }
    return found;
  }
}
