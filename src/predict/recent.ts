// RecentWrites: what the predictors know about the recent past (claims
// 18-20: predictions from "a logical connection between storage objects").
// A bounded LRU of recently written keys, with per-prefix counts so that
// "most keys under this prefix are recent writes" is one lookup.

import type { ChangeIntent } from '../core/changes.ts';
import type { PredictContext } from './types.ts';

export interface RecentWritesOptions {
  /** Writes older than this are forgotten (ms). */
  windowMs: number;
  /** LRU capacity (keys); defaults to recentWritesKeysMax. */
  keysMax?: number;
}

export class RecentWrites {
  constructor(options: RecentWritesOptions) {
    void options;
    throw new Error('not implemented yet');
  }
  /** Records a committed write of an object key (bucket changes ignored). */
  note(change: ChangeIntent, now: number): void {
    void change;
    void now;
    throw new Error('not implemented yet');
  }
  /** Distinct keys under the prefix written within the window. */
  recentWrites(bucket: string, prefix: string, now: number): number {
    void bucket;
    void prefix;
    void now;
    throw new Error('not implemented yet');
  }
  /** Last write time of a key, if still remembered. */
  lastWrite(bucket: string, key: string): number | undefined {
    void bucket;
    void key;
    throw new Error('not implemented yet');
  }
  get size(): number {
    throw new Error('not implemented yet');
  }
  /**
   * A PredictContext at `now`. `keysUnderPrefix` comes from the store (for
   * example lmdb getKeysCount over the prefix range with a limit of
   * prefixGroupKeysMax + 1: a capped count is enough).
   */
  context(now: number, keysUnderPrefix: (bucket: string, prefix: string) => number): PredictContext {
    void now;
    void keysUnderPrefix;
    throw new Error('not implemented yet');
  }
}
