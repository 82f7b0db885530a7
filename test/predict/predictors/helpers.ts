import type { ChangeIntent } from '../../../src/core/changes.ts';
import { locationName } from '../../../src/predict/locations.ts';
import type { Location, PredictContext } from '../../../src/predict/types.ts';

export const put = (key: string, bucket = 'bk'): ChangeIntent => ({ kind: 'put', bucket, key });

/** A context with fixed counts per prefix (missing = 0). */
export function fixedContext(keys: Record<string, number> = {}, recent: Record<string, number> = {}): PredictContext {
  return {
    now: 0,
    keysUnderPrefix: (_bucket, prefix) => keys[prefix] ?? 0,
    recentWrites: (_bucket, prefix) => recent[prefix] ?? 0,
  };
}

export const names = (locs: Location[]): string[] => locs.map(locationName);
