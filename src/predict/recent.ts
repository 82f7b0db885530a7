// RecentWrites: what the predictors know about the recent past (claims
// 18-20: predictions from "a logical connection between storage objects").
// A bounded LRU of recently written keys, with per-prefix counts so that
// "most keys under this prefix are recent writes" (PROTOCOL.md, ancestor
// groups while a subtree is fresh) is one lookup.
//
// Every committed write passes through `note`, so it must cost O(1) however
// long the process has run. The LRU order is a FIFO of writes, not a Map
// re-ordered by delete + set: evicting a Map's oldest entry means iterating
// from its start, and V8 keeps deleted slots there until the next rehash,
// so each eviction skipped up to tens of thousands of them (~39 µs per
// write at 100,000 keys; it cost a long-running primary ~18 µs of main
// thread per 4 KiB PUT, bench/primary-cpu.ts rounds 4-6 against rounds 1-3).

import type { ChangeIntent } from '../core/changes.ts';
import { recentWritesKeysMax } from '../core/limits.ts';
import type { PredictContext } from './types.ts';

export interface RecentWritesOptions {
  /** Writes older than this are forgotten (ms). */
  windowMs: number;
  /** LRU capacity (keys); defaults to recentWritesKeysMax. */
  keysMax?: number;
}

/** A remembered key; `write` is the number of its latest FIFO record. */
interface Entry {
  bucket: string;
  key: string;
  time: number;
  write: number;
}

export class RecentWrites {
  private readonly windowMs: number;
  private readonly keysMax: number;
  /** bucket -> key -> entry: no joined string is built per write. */
  private readonly keys = new Map<string, Map<string, Entry>>();
  private keyCount = 0;
  /** Every write in time order, as (entry, write number). A record is
   * stale when its entry was written again later (entry.write differs):
   * the entry's latest record is its place in the LRU order, so the first
   * live record is the least recently written key. */
  private fifo: Array<Entry | undefined> = [];
  private fifoWrites: number[] = [];
  private head = 0;
  private writes = 0;
  /** bucket -> prefix ('' for the bucket) -> remembered keys under it. Only
   * prefixes of remembered keys have an entry, so this is bounded by the LRU. */
  private readonly counts = new Map<string, Map<string, number>>();

  constructor(options: RecentWritesOptions) {
    this.windowMs = options.windowMs;
    this.keysMax = options.keysMax ?? recentWritesKeysMax;
  }

  /** Records a committed write of an object key (bucket changes ignored). */
  note(change: ChangeIntent, now: number): void {
    if (change.kind === 'bucket-create' || change.kind === 'bucket-delete') return;
    const { bucket, key } = change;
    let inBucket = this.keys.get(bucket);
    if (inBucket === undefined) this.keys.set(bucket, (inBucket = new Map()));
    let entry = inBucket.get(key);
    if (entry === undefined) {
      entry = { bucket, key, time: now, write: 0 };
      inBucket.set(key, entry);
      this.keyCount++;
      this.count(bucket, key, +1);
    }
    entry.time = now;
    entry.write = ++this.writes;
    this.fifo.push(entry);
    this.fifoWrites.push(entry.write);
    this.evict(now);
  }

  /** Distinct keys under the prefix written within the window. */
  recentWrites(bucket: string, prefix: string, now: number): number {
    this.evict(now);
    return this.counts.get(bucket)?.get(prefix) ?? 0;
  }

  /** Last write time of a key, if still remembered. */
  lastWrite(bucket: string, key: string): number | undefined {
    return this.keys.get(bucket)?.get(key)?.time;
  }

  get size(): number {
    return this.keyCount;
  }

  /** FIFO records held, stale ones included (bounded: see compact). */
  get recordsHeld(): number {
    return this.fifo.length - this.head;
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

  /** Forgets keys past the window or the capacity, least recent first.
   * Each record is dropped once, so the work is O(1) per write amortized. */
  private evict(now: number): void {
    while (this.head < this.fifo.length) {
      const entry = this.fifo[this.head]!;
      const live = entry.write === this.fifoWrites[this.head];
      if (live && this.keyCount <= this.keysMax && now - entry.time < this.windowMs) break;
      this.fifo[this.head] = undefined; // no longer retained
      this.head++;
      if (live) this.forget(entry);
    }
    this.compact();
  }

  private forget(entry: Entry): void {
    const inBucket = this.keys.get(entry.bucket)!;
    inBucket.delete(entry.key);
    if (inBucket.size === 0) this.keys.delete(entry.bucket);
    this.keyCount--;
    this.count(entry.bucket, entry.key, -1);
  }

  /**
   * Bounds the FIFO: the consumed head goes once it is half the array, and
   * stale records (keys written again) go once they outnumber the live
   * ones twice over. Both copy at most what was appended since the last
   * copy, so appends stay O(1) amortized.
   */
  private compact(): void {
    const held = this.fifo.length - this.head;
    if (held > 2 * this.keyCount + 1024) {
      const fifo: Array<Entry | undefined> = [];
      const writes: number[] = [];
      for (let i = this.head; i < this.fifo.length; i++) {
        const entry = this.fifo[i]!;
        if (entry.write !== this.fifoWrites[i]) continue;
        fifo.push(entry);
        writes.push(this.fifoWrites[i]!);
      }
      this.fifo = fifo;
      this.fifoWrites = writes;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.fifoWrites = this.fifoWrites.slice(this.head);
      this.head = 0;
    }
  }

  /** Over the ancestor prefixes of key (locations.ts ancestorPrefixes)
   * without building that array: every new key comes here. */
  private count(bucket: string, key: string, delta: number): void {
    let inBucket = this.counts.get(bucket);
    if (inBucket === undefined) this.counts.set(bucket, (inBucket = new Map()));
    countOne(inBucket, '', delta);
    for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) countOne(inBucket, key.slice(0, i + 1), delta);
    if (inBucket.size === 0) this.counts.delete(bucket);
  }
}

function countOne(counts: Map<string, number>, prefix: string, delta: number): void {
  const value = (counts.get(prefix) ?? 0) + delta;
  if (value > 0) counts.set(prefix, value);
  else counts.delete(prefix);
}
