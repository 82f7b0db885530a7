import { describe, expect, it } from 'vitest';
import { NameSequencePredictor } from '../../../src/predict/predictors/name-sequence.ts';
import { fixedContext, names, put } from './helpers.ts';

describe('NameSequencePredictor (claims 19, 39)', () => {
  const p = new NameSequencePredictor(3);

  it('predicts the next names of the numeric run in the file name', () => {
    expect(names(p.predict(put('out/part-00041.gz'), fixedContext()))).toEqual([
      'k/bk/out/part-00042.gz',
      'k/bk/out/part-00043.gz',
      'k/bk/out/part-00044.gz',
    ]);
    expect(names(p.predict(put('v9/frame_0099.png'), fixedContext()))[0]).toBe('k/bk/v9/frame_0100.png');
  });

  it('predicts nothing without a number in the file name, or for deletes', () => {
    expect(p.predict(put('v1/readme.md'), fixedContext())).toEqual([]);
    expect(p.predict({ kind: 'delete', bucket: 'bk', key: 'a-1' }, fixedContext())).toEqual([]);
  });
});
