// RecentWrites: what the predictors know about the recent past (claims
// 18-20: predictions from "a logical connection between storage objects").
// A bounded LRU of recently written keys, with per-prefix counts so that
// "most keys under this prefix are recent writes" (PROTOCOL.md, ancestor
// groups while a subtree is fresh) is one lookup.

import type { ChangeIntent } from '../core/changes.ts';
import { recentWritesKeysMax } from '../core/limits.ts';
import type { PredictContext } from './types.ts';

export interface RecentWritesOptions {
  /** Writes older than this are forgotten (ms). */
  windowMs: number;
  /** LRU capacity (keys); defaults to recentWritesKeysMax. */
  keysMax?: number;
}

interface Entry {
  bucket: string;
  key: string;
  time: number;
}

export class RecentWrites {
  private readonly windowMs: number;
  private readonly keysMax: number;
  /** Insertion order = last write order: the oldest entry is first. */
  private readonly lru = new Map<string, Entry>();
  /** bucket + "/" + prefix -> remembered keys under it. Only prefixes of
   * remembered keys have an entry, so this is bounded by the LRU. */
  private readonly counts = new Map<string, number>();

  constructor(options: RecentWritesOptions) {
    this.windowMs = options.windowMs;
    this.keysMax = options.keysMax ?? recentWritesKeysMax;
  }

  /** Records a committed write of an object key (bucket changes ignored). */
  note(change: ChangeIntent, now: number): void {
    if (change.kind === 'bucket-create' || change.kind === 'bucket-delete') return;
    const id = `${change.bucket}/${change.key}`;
    const known = this.lru.get(id);
    if (known !== undefined) {
      this.lru.delete(id);
      known.time = now;
      this.lru.set(id, known);
    } else {
      this.lru.set(id, { bucket: change.bucket, key: change.key, time: now });
      this.count(change.bucket, change.key, +1);
    }
    this.evict(now);
  }

  /** Distinct keys under the prefix written within the window. */
  recentWrites(bucket: string, prefix: string, now: number): number {
    this.evict(now);
    return this.counts.get(`${bucket}/${prefix}`) ?? 0;
  }

  /** Last write time of a key, if still remembered. */
  lastWrite(bucket: string, key: string): number | undefined {
    return this.lru.get(`${bucket}/${key}`)?.time;
  }

  get size(): number {
    return this.lru.size;
  }

  /**
   * A PredictContext at `now`. `keysUnderPrefix` comes from the store (for
   * example lmdb getKeysCount over the prefix range with a limit of
   * prefixGroupKeysMax + 1: a capped count is enough).
   */
  context(now: number, keysUnderPrefix: (bucket: string, prefix: string) => number): PredictContext {
    return {
      now,
      keysUnderPrefix,
      recentWrites: (bucket, prefix) => this.recentWrites(bucket, prefix, now),
    };
  }

  /** Forgets entries past the window or the capacity; each runs once per
   * entry, so the loop is bounded by the LRU size. */
  private evict(now: number): void {
    for (const [id, entry] of this.lru) {
      if (this.lru.size <= this.keysMax && now - entry.time < this.windowMs) return;
      this.lru.delete(id);
      this.count(entry.bucket, entry.key, -1);
    }
  }

  /** Over the ancestor prefixes of key (locations.ts ancestorPrefixes)
   * without building that array: every committed write comes here, and
   * evicts one older key. */
  private count(bucket: string, key: string, delta: number): void {
    this.countOne(`${bucket}/`, delta);
    for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) this.countOne(`${bucket}/${key.slice(0, i + 1)}`, delta);
  }

  private countOne(name: string, delta: number): void {
    const value = (this.counts.get(name) ?? 0) + delta;
    if (value > 0) this.counts.set(name, value);
    else this.counts.delete(name);
  }
}
