import { describe, expect, it } from 'vitest';
import { SiblingDirPredictor } from '../../../src/predict/predictors/sibling-dir.ts';
import { fixedContext, names, put } from './helpers.ts';

describe('SiblingDirPredictor (claims 19, 39)', () => {
  const p = new SiblingDirPredictor({ count: 2, groupKeysMax: 100 });

  it('predicts the next sibling directories of the deepest numbered one', () => {
    expect(names(p.predict(put('logs/year=2026/day=29/part.gz'), fixedContext()))).toEqual([
      'p/bk/logs/year=2026/day=30/',
      'p/bk/logs/year=2026/day=31/',
    ]);
    expect(names(p.predict(put('data/tenant-73/file.bin'), fixedContext()))[0]).toBe('p/bk/data/tenant-74/');
  });

  it('keeps zero padding and carries', () => {
    expect(names(p.predict(put('2026/11/09/x'), fixedContext()))).toEqual(['p/bk/2026/11/10/', 'p/bk/2026/11/11/']);
    expect(names(p.predict(put('run-099/x'), fixedContext()))).toEqual(['p/bk/run-100/', 'p/bk/run-101/']);
  });

  it('uses the deepest numbered directory, not the file name', () => {
    expect(names(p.predict(put('2026/reports/q1-summary-7.pdf'), fixedContext()))).toEqual(['p/bk/2027/', 'p/bk/2028/']);
    expect(p.predict(put('docs/readme-2.md'), fixedContext())).toEqual([]);
    expect(p.predict(put('file-9.txt'), fixedContext())).toEqual([]);
  });

  it('skips a sibling holding more keys than the cap', () => {
    expect(names(p.predict(put('d7/x'), fixedContext({ 'd8/': 500 })))).toEqual(['p/bk/d9/']);
  });
});
