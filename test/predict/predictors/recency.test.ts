import { describe, expect, it } from 'vitest';
import { Predictions, defaultPredictorConfig } from '../../../src/predict/predictions.ts';
import { RecencyPredictor } from '../../../src/predict/predictors/recency.ts';
import { fixedContext, put } from './helpers.ts';

describe('RecencyPredictor', () => {
  it('adds nothing itself and hands hotMs to the removal policy', () => {
    const p = new RecencyPredictor(5000);
    expect(p.predict(put('a'), fixedContext())).toEqual([]);
    expect(p.hotMs).toBe(5000);
    expect(new Predictions({ ...defaultPredictorConfig, hotMs: 7 }).hotMs).toBe(7);
    const off = defaultPredictorConfig.enabled.filter((n) => n !== 'recency');
    expect(new Predictions({ ...defaultPredictorConfig, enabled: off, hotMs: 7 }).hotMs).toBe(0);
  });
});
