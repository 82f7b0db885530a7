// RecentWrites: what the predictors know about the recent past (claims
// 18-20: predictions from "a logical connection between storage objects").
// A bounded LRU of recently written keys, with per-prefix counts so that
// "most keys under this prefix are recent writes" (PROTOCOL.md, ancestor
// groups while a subtree is fresh) is one lookup.
//
// Every committed write passes through `note`, and a primary remembers up
// to recentWritesKeysMax keys, so two things matter:
// - O(1) per write however long the process has run. The LRU order is a
//   FIFO of writes, not a Map re-ordered by delete + set: evicting a Map's
//   oldest entry iterates from its start, over the deleted slots V8 keeps
//   there until it rehashes (~38 µs per write at 100,000 keys).
// - No JS object per remembered key. A key is known by a 64-bit hash of
//   its bucket and name, and everything kept per key lives in typed arrays
//   that the GC never traces: the heap a held primary keeps per queued key
//   went from 365 to 204 bytes, and its CPU per 4 KiB PUT during a burst
//   from 186 to 181 µs (bench/primary-cpu.ts --compare, 8 rounds, 6
//   better). Two keys whose hashes collide count as one: a predictor
//   heuristic, never coverage.

import type { ChangeIntent } from '../core/changes.ts';
import { recentWritesKeysMax } from '../core/limits.ts';
import type { PredictContext } from './types.ts';

export interface RecentWritesOptions {
  /** Writes older than this are forgotten (ms). */
  windowMs: number;
  /** LRU capacity (keys); defaults to recentWritesKeysMax. */
  keysMax?: number;
}

/** Initial slots of the key table and the FIFO; both grow by doubling. */
const initialSlots = 1024;
/** Table slot states beside a write number (which is always >= 1). */
const emptySlot = 0;
const deletedSlot = -1;

export class RecentWrites {
  private readonly windowMs: number;
  private readonly keysMax: number;
  private readonly keys: KeyTable;
  /** Every write in time order: (key hash, write number, time). A record
   * is stale when its key was written again later (the table holds a newer
   * write number): a key's latest record is its place in the LRU order, so
   * the first live record is the least recently written key. */
  private fifo: Fifo;
  private writes = 0;
  private readonly prefixes = new PrefixCounts();

  constructor(options: RecentWritesOptions) {
    this.windowMs = options.windowMs;
    this.keysMax = options.keysMax ?? recentWritesKeysMax;
    this.keys = new KeyTable();
    this.fifo = new Fifo(initialSlots);
  }

  /** Records a committed write of an object key (bucket changes ignored). */
  note(change: ChangeIntent, now: number): void {
    if (change.kind === 'bucket-create' || change.kind === 'bucket-delete') return;
    const { bucket, key } = change;
    const h1 = hashOf(bucket, key, 0x811c9dc5);
    const h2 = hashOf(bucket, key, 0x01000193);
    const write = ++this.writes;
    let slot = this.keys.find(h1, h2);
    if (slot < 0) slot = this.keys.insert(h1, h2, this.prefixes.add(bucket, key));
    this.keys.write[slot] = write;
    this.keys.time[slot] = now;
    if (this.fifo.full) this.fifo = this.fifo.compacted((r) => this.liveSlot(r) >= 0, 2 * this.keys.count + initialSlots);
    this.fifo.push(h1, h2, write, now);
    this.evict(now);
  }

  /** Distinct keys under the prefix written within the window. */
  recentWrites(bucket: string, prefix: string, now: number): number {
    this.evict(now);
    return this.prefixes.count(bucket, prefix);
  }

  /** Last write time of a key, if still remembered. */
  lastWrite(bucket: string, key: string): number | undefined {
    const slot = this.keys.find(hashOf(bucket, key, 0x811c9dc5), hashOf(bucket, key, 0x01000193));
    return slot < 0 ? undefined : this.keys.time[slot];
  }

  get size(): number {
    return this.keys.count;
  }

  /** FIFO records held, stale ones included (bounded by compaction). */
  get recordsHeld(): number {
    return this.fifo.length;
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
    const { fifo, keys } = this;
    while (fifo.length > 0) {
      const r = fifo.head;
      const slot = this.liveSlot(r);
      if (slot >= 0 && keys.count <= this.keysMax && now - fifo.time[r]! < this.windowMs) return;
      fifo.shift();
      if (slot >= 0) this.prefixes.remove(keys.remove(slot));
    }
  }

  /** The key table slot of FIFO record `r` if it is its key's latest
   * write; -1 when stale (written again since, or forgotten). */
  private liveSlot(r: number): number {
    const slot = this.keys.find(this.fifo.h1[r]!, this.fifo.h2[r]!);
    return slot >= 0 && this.keys.write[slot] === this.fifo.write[r] ? slot : -1;
  }
}

/** FNV-1a over "bucket/key" (UTF-16 code units) from `seed`, finished with
 * murmur3's mixer: two seeds give the 64 bits a key is known by. */
function hashOf(bucket: string, key: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < bucket.length; i++) h = Math.imul(h ^ bucket.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0x2f, 0x01000193);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Open addressing (linear probing) over typed arrays: per key its hash,
 * latest write number, last write time and deepest prefix (PrefixCounts). */
class KeyTable {
  h1 = new Uint32Array(initialSlots);
  h2 = new Uint32Array(initialSlots);
  /** emptySlot, deletedSlot, or the key's latest write number. */
  write = new Float64Array(initialSlots);
  time = new Float64Array(initialSlots);
  prefix = new Int32Array(initialSlots);
  count = 0;
  private used = 0; // live + deleted slots

  find(h1: number, h2: number): number {
    const mask = this.write.length - 1;
    for (let i = h1 & mask; ; i = (i + 1) & mask) {
      const w = this.write[i]!;
      if (w === emptySlot) return -1;
      if (w !== deletedSlot && this.h1[i] === h1 && this.h2[i] === h2) return i;
    }
  }

  /** A new key (not found before); returns its slot. */
  insert(h1: number, h2: number, prefix: number): number {
    if ((this.used + 1) * 2 > this.write.length) this.resize(this.count * 4 > this.write.length ? this.write.length * 2 : this.write.length);
    const mask = this.write.length - 1;
    let i = h1 & mask;
    while (this.write[i]! > emptySlot) i = (i + 1) & mask;
    if (this.write[i] === emptySlot) this.used++;
    this.h1[i] = h1;
    this.h2[i] = h2;
    this.prefix[i] = prefix;
    this.write[i] = 1; // the caller sets the real write number
    this.count++;
    return i;
  }

  /** Forgets the key in `slot`; returns its deepest prefix. */
  remove(slot: number): number {
    this.write[slot] = deletedSlot;
    this.count--;
    return this.prefix[slot]!;
  }

  /** Rehashes the live keys into `slots` slots (drops deleted ones). */
  private resize(slots: number): void {
    const old = { h1: this.h1, h2: this.h2, write: this.write, time: this.time, prefix: this.prefix };
    this.h1 = new Uint32Array(slots);
    this.h2 = new Uint32Array(slots);
    this.write = new Float64Array(slots);
    this.time = new Float64Array(slots);
    this.prefix = new Int32Array(slots);
    this.used = this.count;
    const mask = slots - 1;
    for (let j = 0; j < old.write.length; j++) {
      if (old.write[j]! <= emptySlot) continue;
      let i = old.h1[j]! & mask;
      while (this.write[i] !== emptySlot) i = (i + 1) & mask;
      this.h1[i] = old.h1[j]!;
      this.h2[i] = old.h2[j]!;
      this.write[i] = old.write[j]!;
      this.time[i] = old.time[j]!;
      this.prefix[i] = old.prefix[j]!;
    }
  }
}

/** A ring of write records in typed arrays. */
class Fifo {
  readonly h1: Uint32Array;
  readonly h2: Uint32Array;
  readonly write: Float64Array;
  readonly time: Float64Array;
  private start = 0;
  length = 0;

  constructor(slots: number) {
    this.h1 = new Uint32Array(slots);
    this.h2 = new Uint32Array(slots);
    this.write = new Float64Array(slots);
    this.time = new Float64Array(slots);
  }

  get full(): boolean {
    return this.length === this.write.length;
  }

  /** Index of the oldest record (valid while length > 0). */
  get head(): number {
    return this.start;
  }

  push(h1: number, h2: number, write: number, time: number): void {
    const i = (this.start + this.length) % this.write.length;
    this.h1[i] = h1;
    this.h2[i] = h2;
    this.write[i] = write;
    this.time[i] = time;
    this.length++;
  }

  shift(): void {
    this.start = (this.start + 1) % this.write.length;
    this.length--;
  }

  /**
   * A new ring holding only the records `live` keeps, in order, with room
   * for at least `atLeast` (doubled until it leaves half free): stale
   * records go once the ring fills, so each write is copied O(1) times.
   */
  compacted(live: (index: number) => boolean, atLeast: number): Fifo {
    const kept: number[] = [];
    for (let n = 0, i = this.start; n < this.length; n++, i = (i + 1) % this.write.length) if (live(i)) kept.push(i);
    let slots = this.write.length;
    while (slots < atLeast || kept.length * 2 > slots) slots *= 2;
    const next = new Fifo(slots);
    for (const i of kept) next.push(this.h1[i]!, this.h2[i]!, this.write[i]!, this.time[i]!);
    return next;
  }
}

/** Remembered keys under each prefix: prefixes get small ids, each with its
 * parent's id, so a key is one id (its deepest prefix) and forgetting it
 * walks the chain. Only prefixes of remembered keys are kept. */
class PrefixCounts {
  /** bucket + "\0" + prefix ('' for the bucket) -> id */
  private readonly ids = new Map<string, number>();
  private names: string[] = [];
  private parent = new Int32Array(initialSlots);
  private counts = new Int32Array(initialSlots);
  private readonly free: number[] = [];

  /** The deepest prefix of the last add, while its id still names it:
   * keys written one after another mostly share it (a log, a directory
   * synced), and then no prefix name is built or looked up again. */
  private last: { bucket: string; dir: string; id: number; name: string } | undefined;

  /** Counts a new key under every ancestor prefix; returns the deepest. */
  add(bucket: string, key: string): number {
    const last = this.last;
    const cut = key.lastIndexOf('/') + 1;
    if (last !== undefined && last.bucket === bucket && last.dir.length === cut && key.startsWith(last.dir) && this.names[last.id] === last.name) {
      for (let id = last.id; id >= 0; id = this.parent[id]!) this.counts[id]!++;
      return last.id;
    }
    let id = this.retain(`${bucket}\0`, -1);
    for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) id = this.retain(`${bucket}\0${key.slice(0, i + 1)}`, id);
    this.last = { bucket, dir: key.slice(0, cut), id, name: this.names[id]! };
    return id;
  }

  /** Uncounts a forgotten key, from its deepest prefix up. */
  remove(deepest: number): void {
    for (let id = deepest; id >= 0; ) {
      const up = this.parent[id]!;
      if (--this.counts[id]! === 0) {
        this.ids.delete(this.names[id]!);
        this.names[id] = '';
        this.free.push(id);
      }
      id = up;
    }
  }

  count(bucket: string, prefix: string): number {
    const id = this.ids.get(`${bucket}\0${prefix}`);
    return id === undefined ? 0 : this.counts[id]!;
  }

  private retain(name: string, parent: number): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.free.pop() ?? this.names.length;
      if (id >= this.counts.length) this.grow();
      this.ids.set(name, id);
      this.names[id] = name;
      this.parent[id] = parent;
      this.counts[id] = 0;
    }
    this.counts[id]!++;
    return id;
  }

  private grow(): void {
    const parent = new Int32Array(this.counts.length * 2);
    const counts = new Int32Array(this.counts.length * 2);
    parent.set(this.parent);
    counts.set(this.counts);
    this.parent = parent;
    this.counts = counts;
  }
}
