// The look-ahead record: R on the secondary, R' on the primary (claims 5, 10).
//
// A set of location ids kept as roaring bitmaps (claims 9, 29: "bitmap
// record"), grouped by generation: "entries are grouped by the order they
// were added; a generation leaves when every entry in it is in sync"
// (PROTOCOL.md "Removal", claim 16). The caller numbers generations (one per
// record message, say), in non-decreasing order, so R and R' that apply the
// same messages hold the same generations.

import roaring from 'roaring';
import type { RoaringBitmap32 as Bitmap } from 'roaring';
import type { Database, RootDatabase } from 'lmdb';
import { assert } from '../core/assert.ts';

const { RoaringBitmap32 } = roaring;

/** Format version byte of serialized records and stored generations. */
export const recordFormatVersion = 1;

/** One generation: the ids added together (and not removed since). */
export interface Generation {
  readonly generation: number;
  readonly ids: Readonly<Bitmap>;
}

/** What changed since the last `takeDelta`, for persistence. */
export interface RecordDelta {
  /** Generations whose bitmaps changed (empty ones are to be deleted). */
  readonly generations: readonly number[];
}

export class GenerationalRecord {
  /** generation -> ids. Map iteration order = insertion order = oldest first,
   * because generations only grow (asserted in add). */
  private readonly gens = new Map<number, Bitmap>();
  /** id -> generation, so remove and re-add find the bitmap in O(1). */
  private readonly genOf = new Map<number, number>();
  private dirty = new Set<number>();
  private last = 0;
  private addCount = 0;

  /** Adds ids to `generation`. An id already present moves to it (it was
   * added again: it is as new as the others). Returns ids that were absent. */
  add(ids: Iterable<number>, generation: number): number[] {
    assert(Number.isInteger(generation) && generation >= 0 && generation <= 0xffffffff, 'generation is a u32');
    assert(generation >= this.last, `generation ${generation} older than ${this.last}`);
    this.last = generation;
    const added: number[] = [];
    for (const id of ids) {
      assert(Number.isInteger(id) && id >= 0 && id <= 0xffffffff, `location id ${id} is not a u32`);
      const old = this.genOf.get(id);
      if (old === generation) continue;
      if (old === undefined) added.push(id);
      else this.dropFrom(old, id);
      this.bitmapOf(generation).add(id);
      this.genOf.set(id, generation);
    }
    if (added.length > 0) this.addCount++;
    return added;
  }

  /** Changes whenever an id joins: while it stays the same, an id that was
   * absent still is (caches of "not in the record" check it). */
  get adds(): number {
    return this.addCount;
  }

  /** Removes ids; returns those that were present. */
  remove(ids: Iterable<number>): number[] {
    const removed: number[] = [];
    for (const id of ids) {
      const gen = this.genOf.get(id);
      if (gen === undefined) continue;
      this.dropFrom(gen, id);
      this.genOf.delete(id);
      removed.push(id);
    }
    return removed;
  }

  has(id: number): boolean {
    return this.genOf.has(id);
  }

  get size(): number {
    return this.genOf.size;
  }

  /** Generation holding the id, if present. */
  generationOf(id: number): number | undefined {
    return this.genOf.get(id);
  }

  /** Non-empty generations, oldest first. */
  generations(): Generation[] {
    return [...this.gens].map(([generation, ids]) => ({ generation, ids }));
  }

  /** Newest generation number seen (0 when none). */
  get lastGeneration(): number {
    return this.last;
  }

  /** Every id, as one bitmap (a copy). */
  toBitmap(): Bitmap {
    return RoaringBitmap32.orMany([...this.gens.values()]);
  }

  /** Entries that may still be added before `entriesMax` (never negative).
   * Invariant 4, "|R| never exceeds the configured limit. When it would,
   * misses wait (backpressure) until removals free room": the caller checks
   * this before a miss and waits; the record never drops entries itself. */
  room(entriesMax: number): number {
    return Math.max(0, entriesMax - this.size);
  }

  /** Generations changed since the previous call, and forget them. */
  takeDelta(): RecordDelta {
    const generations = [...this.dirty];
    this.dirty = new Set();
    return { generations };
  }

  /** Marks generations to be written again (a failed save). */
  markDirty(generations: Iterable<number>): void {
    for (const gen of generations) this.dirty.add(gen);
  }

  /** The ids of one generation, optimized for storage (a copy). */
  generationBytes(generation: number): Buffer | undefined {
    const ids = this.gens.get(generation);
    if (ids === undefined) return undefined;
    return encodeBitmap(ids);
  }

  /** [version][u32 gen count] then per generation [u32 gen][u32 len][portable bitmap]. */
  serialize(): Buffer {
    const parts: Buffer[] = [header(this.gens.size)];
    for (const [gen, ids] of this.gens) {
      const body = portable(ids);
      const head = Buffer.alloc(8);
      head.writeUInt32BE(gen, 0);
      head.writeUInt32BE(body.length, 4);
      parts.push(head, body);
    }
    return Buffer.concat(parts);
  }

  /** Throws on a bad version or truncated buffer (input from another site). */
  static deserialize(buf: Uint8Array): GenerationalRecord {
    const data = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (data.length < 5 || data[0] !== recordFormatVersion) {
      throw new Error(`record: unknown format version ${data[0]}`);
    }
    const record = new GenerationalRecord();
    const count = data.readUInt32BE(1);
    let at = 5;
    for (let i = 0; i < count; i++) {
      if (at + 8 > data.length) throw new Error('record: truncated');
      const gen = data.readUInt32BE(at);
      const len = data.readUInt32BE(at + 4);
      at += 8;
      if (at + len > data.length) throw new Error('record: truncated');
      const ids = RoaringBitmap32.deserialize(data.subarray(at, at + len), 'portable');
      at += len;
      record.add(ids, gen);
    }
    if (at !== data.length) throw new Error('record: trailing bytes');
    record.takeDelta();
    return record;
  }

  /** Loads one stored generation (see LmdbRecordStore); used while loading. */
  restoreGeneration(generation: number, stored: Uint8Array): void {
    this.add(decodeBitmap(stored), generation);
  }

  private bitmapOf(generation: number): Bitmap {
    let ids = this.gens.get(generation);
    if (ids === undefined) {
      ids = new RoaringBitmap32();
      this.gens.set(generation, ids);
    }
    this.dirty.add(generation);
    return ids;
  }

  private dropFrom(generation: number, id: number): void {
    const ids = this.gens.get(generation);
    assert(ids !== undefined, `generation ${generation} of id ${id} missing`);
    ids.delete(id);
    if (ids.isEmpty) this.gens.delete(generation);
    this.dirty.add(generation);
  }
}

function header(count: number): Buffer {
  const head = Buffer.alloc(5);
  head[0] = recordFormatVersion;
  head.writeUInt32BE(count, 1);
  return head;
}

/** runOptimize before persisting: runs of ids shrink a hundredfold. */
function portable(ids: Bitmap): Buffer {
  const copy = ids.clone();
  copy.runOptimize();
  const bytes = copy.serialize('portable');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** [version][portable bitmap]: one stored generation. */
function encodeBitmap(ids: Bitmap): Buffer {
  return Buffer.concat([Buffer.of(recordFormatVersion), portable(ids)]);
}

function decodeBitmap(stored: Uint8Array): Bitmap {
  if (stored.length < 1 || stored[0] !== recordFormatVersion) {
    throw new Error(`record: unknown stored generation version ${stored[0]}`);
  }
  return RoaringBitmap32.deserialize(Buffer.from(stored.subarray(1)), 'portable');
}

/** Where a record lives between restarts. */
export interface RecordStore {
  /** The stored record, or an empty one. */
  load(): Promise<GenerationalRecord>;
  /**
   * Persists the record's changes since the last save in ONE durable
   * transaction; `alsoWrite` runs inside it (lmdb puts of the caller, e.g.
   * id bindings or the last applied message number) so they commit together.
   * Resolves when durable: the secondary acks a record message only then
   * (invariant 3, "Ack means durable"; claim 1: the acknowledgment
   * "indicating that the record has been updated").
   */
  save(record: GenerationalRecord, alsoWrite?: () => void): Promise<void>;
}

/** Record persisted in lmdb: sub-db `${dbPrefix}record`, key = generation
 * (uint32), value = [version][portable bitmap]. Only changed generations
 * are rewritten, so a record message costs its own size, not |R|. */
export class LmdbRecordStore implements RecordStore {
  private readonly root: RootDatabase;
  private readonly db: Database<Buffer, number>;

  constructor(root: RootDatabase, options: { dbPrefix?: string } = {}) {
    this.root = root;
    this.db = root.openDB<Buffer, number>({
      name: `${options.dbPrefix ?? ''}record`,
      keyEncoding: 'uint32',
      encoding: 'binary',
    });
  }

  async load(): Promise<GenerationalRecord> {
    const record = new GenerationalRecord();
    // Keys are uint32 in ascending order: generations come back oldest first.
    for (const { key, value } of this.db.getRange()) {
      record.restoreGeneration(key, value);
    }
    record.takeDelta();
    return record;
  }

  async save(record: GenerationalRecord, alsoWrite?: () => void): Promise<void> {
    const { generations } = record.takeDelta();
    const writes = generations.map((gen) => [gen, record.generationBytes(gen)] as const);
    try {
      await this.root.transaction(() => {
        for (const [gen, bytes] of writes) {
          if (bytes === undefined) this.db.removeSync(gen);
          else this.db.putSync(gen, bytes);
        }
        alsoWrite?.();
      });
    } catch (err) {
      // Not durable: the next save must write these generations again.
      record.markDirty(generations);
      throw err;
    }
  }
}

/** In-memory store for simulations: keeps the last saved serialization. */
export class MemoryRecordStore implements RecordStore {
  private saved: Buffer | undefined;

  async load(): Promise<GenerationalRecord> {
    return this.saved === undefined ? new GenerationalRecord() : GenerationalRecord.deserialize(this.saved);
  }

  async save(record: GenerationalRecord, alsoWrite?: () => void): Promise<void> {
    record.takeDelta();
    this.saved = record.serialize();
    alsoWrite?.();
  }
}
