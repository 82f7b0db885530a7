import { describe, expect, it } from 'vitest';
import { AncestorFreshPredictor } from '../../../src/predict/predictors/ancestor-fresh.ts';
import { fixedContext, names, put } from './helpers.ts';

describe('AncestorFreshPredictor (claims 18, 20)', () => {
  const p = new AncestorFreshPredictor({ groupKeysMax: 1000, freshRatio: 0.5, freshMinWrites: 4 });

  it('covers the shortest ancestor whose keys are mostly recent writes', () => {
    const ctx = fixedContext({ '': 5000, 'site/': 40, 'site/img/': 10 }, { '': 35, 'site/': 35, 'site/img/': 10 });
    // "" holds too many keys; "site/" is 35/40 fresh.
    expect(names(p.predict(put('site/img/new/a.png'), ctx))).toEqual(['p/bk/site/']);
  });

  it('does not call a prefix fresh when few of its keys are recent', () => {
    const ctx = fixedContext({ '': 900, 'a/': 900 }, { '': 100, 'a/': 100 });
    expect(p.predict(put('a/b/c'), ctx)).toEqual([]);
  });

  it('needs a minimum of recent writes', () => {
    const ctx = fixedContext({ 'a/': 2 }, { 'a/': 3 });
    expect(p.predict(put('a/x'), ctx)).toEqual([]);
  });

  it('never exceeds the group cap even when fresh', () => {
    const ctx = fixedContext({ '': 5000 }, { '': 5000 });
    expect(p.predict(put('x'), ctx)).toEqual([]);
  });
});
