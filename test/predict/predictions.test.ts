import { describe, expect, it } from 'vitest';
import { predictedLocationsMax } from '../../src/core/limits.ts';
import { locationName } from '../../src/predict/locations.ts';
import { defaultPredictorConfig, parsePredictorNames, Predictions } from '../../src/predict/predictions.ts';
import { fixedContext, put } from './predictors/helpers.ts';

describe('Predictions', () => {
  it('puts the own location first, then enabled predictors, deduplicated', () => {
    const p = new Predictions({ ...defaultPredictorConfig, enabled: ['same-prefix', 'sibling-dir', 'ancestor-fresh'] });
    const ctx = fixedContext({ '': 10, 'day=29/': 3 }, { '': 10, 'day=29/': 3 });
    const got = p.predict(put('day=29/a'), ctx).map(locationName);
    // ancestor-fresh picks "" (10/10 fresh); same-prefix the parent.
    expect(got).toEqual(['k/bk/day=29/a', 'p/bk/day=29/', 'p/bk/day=30/', 'p/bk/']);
    expect(new Set(got).size).toBe(got.length);
  });

  it('switches predictors by name', () => {
    const only = new Predictions({ ...defaultPredictorConfig, enabled: ['multipart'] });
    expect(only.predictors.map((x) => x.name)).toEqual(['multipart']);
    expect(only.predict(put('a/b'), fixedContext()).map(locationName)).toEqual(['k/bk/a/b']);
  });

  it('never returns more than predictedLocationsMax', () => {
    const p = new Predictions({ ...defaultPredictorConfig, enabled: ['name-sequence'], sequenceCount: 500 });
    const got = p.predict(put('f-1'), fixedContext());
    expect(got.length).toBe(predictedLocationsMax);
  });

  it('parses predictor lists and rejects unknown names', () => {
    expect(parsePredictorNames('same-prefix, multipart,same-prefix')).toEqual(['same-prefix', 'multipart']);
    expect(() => parsePredictorNames('same-prefix,bogus')).toThrow(/bogus/);
  });
});
