import { describe, expect, it } from 'vitest';
import { coveringNames } from '../../../src/predict/locations.ts';
import { MultipartPredictor } from '../../../src/predict/predictors/multipart.ts';
import { fixedContext, names } from './helpers.ts';

describe('MultipartPredictor (claims 18, 20)', () => {
  const p = new MultipartPredictor();

  it('CreateMultipartUpload adds the upload group, which covers parts and Complete', () => {
    const create = { kind: 'mpu-create' as const, bucket: 'bk', key: 'v/a.mp4', uploadId: 'U7' };
    const [group] = names(p.predict(create, fixedContext()));
    expect(group).toBe('u/bk/U7/v/a.mp4');
    expect(coveringNames({ kind: 'mpu-part', bucket: 'bk', key: 'v/a.mp4', uploadId: 'U7' })).toContain(group);
    expect(coveringNames({ kind: 'put', bucket: 'bk', key: 'v/a.mp4', uploadId: 'U7' })).toContain(group);
  });

  it('predicts nothing for other changes', () => {
    expect(p.predict({ kind: 'put', bucket: 'bk', key: 'v/a.mp4' }, fixedContext())).toEqual([]);
    expect(p.predict({ kind: 'mpu-part', bucket: 'bk', key: 'v/a', uploadId: 'U' }, fixedContext())).toEqual([]);
  });
});
