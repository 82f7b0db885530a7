// Multipart upload group (PROTOCOL.md "Prediction": "CreateMultipartUpload
// adds one entry covering every part and the final key, so UploadPart and
// CompleteMultipartUpload are hits"; claims 18, 20: objects linked by the
// upload).

import type { ChangeIntent } from '../../core/changes.ts';
import { uploadLocation } from '../locations.ts';
import type { Location, PredictContext, Predictor } from '../types.ts';

export class MultipartPredictor implements Predictor {
  readonly name = 'multipart' as const;

  predict(change: ChangeIntent, _context: PredictContext): Location[] {
    if (change.kind !== 'mpu-create' || change.uploadId === undefined) return [];
    return [uploadLocation(change.bucket, change.key, change.uploadId)];
  }
}
