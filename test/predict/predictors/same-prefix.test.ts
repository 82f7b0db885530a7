import { describe, expect, it } from 'vitest';
import { SamePrefixPredictor } from '../../../src/predict/predictors/same-prefix.ts';
import { fixedContext, names, put } from './helpers.ts';

describe('SamePrefixPredictor (claims 18, 20)', () => {
  const p = new SamePrefixPredictor(100);

  it('predicts the parent prefix group', () => {
    expect(names(p.predict(put('logs/2026/11/29/a.log'), fixedContext()))).toEqual(['p/bk/logs/2026/11/29/']);
    expect(names(p.predict(put('top.txt'), fixedContext()))).toEqual(['p/bk/']);
  });

  it('skips a prefix holding more keys than the cap', () => {
    expect(p.predict(put('big/x'), fixedContext({ 'big/': 101 }))).toEqual([]);
    expect(p.predict(put('big/x'), fixedContext({ 'big/': 100 }))).toHaveLength(1);
  });

  it('predicts nothing for bucket changes', () => {
    expect(p.predict({ kind: 'bucket-create', bucket: 'bk', key: '' }, fixedContext())).toEqual([]);
  });
});
