// Recency (PROTOCOL.md "Prediction": "recently written keys stay in the
// record while hot"; "Removal": "A location that stays hot (written again
// and again) should stay in the record: that is what makes its writes
// hits"). It adds nothing on a miss -- the key itself is always added --
// but while it is enabled the removal policy keeps entries active within
// `hotMs` (Predictions.hotMs feeds RemovalPolicy.hotMs).

import type { ChangeIntent } from '../../core/changes.ts';
import type { Location, PredictContext, Predictor } from '../types.ts';

export class RecencyPredictor implements Predictor {
  readonly name = 'recency' as const;

  /** @param hotMs an entry active within this many ms stays in the record. */
  constructor(readonly hotMs: number) {}

  predict(_change: ChangeIntent, _context: PredictContext): Location[] {
    return [];
  }
}
