// The look-ahead record: R on the secondary, R' on the primary (claims 5, 10).
//
// A set of location ids kept as roaring bitmaps (claims 9, 29: "bitmap
// record"), grouped by generation: "entries are grouped by the order they
// were added; a generation leaves when every entry in it is in sync"
// (PROTOCOL.md "Removal", claim 16). The caller numbers generations (one per
// record message, say), in non-decreasing order.

import roaring from 'roaring';
import type { RoaringBitmap32 as Bitmap } from 'roaring';
import type { RootDatabase } from 'lmdb';
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
  /** Adds ids to `generation`. An id already present moves to it (it was
   * added again: it is as new as the others). Returns ids that were absent. */
  add(ids: Iterable<number>, generation: number): number[] {
    void ids;
    void generation;
    throw new Error('not implemented yet');
  }
  /** Removes ids; returns those that were present. */
  remove(ids: Iterable<number>): number[] {
    void ids;
    throw new Error('not implemented yet');
  }
  has(id: number): boolean {
    void id;
    throw new Error('not implemented yet');
  }
  get size(): number {
    throw new Error('not implemented yet');
  }
  /** Generation holding the id, if present. */
  generationOf(id: number): number | undefined {
    void id;
    throw new Error('not implemented yet');
  }
  /** Non-empty generations, oldest first. */
  generations(): Generation[] {
    throw new Error('not implemented yet');
  }
  /** Newest generation number seen (0 when none). */
  get lastGeneration(): number {
    throw new Error('not implemented yet');
  }
  /** Every id, as one bitmap (a copy). */
  toBitmap(): Bitmap {
    throw new Error('not implemented yet');
  }
  /** Entries that may still be added before `entriesMax` (never negative).
   * Invariant 4: the caller waits for removals when this is too small. */
  room(entriesMax: number): number {
    void entriesMax;
    throw new Error('not implemented yet');
  }
  /** Generations changed since the previous call, and forget them. */
  takeDelta(): RecordDelta {
    throw new Error('not implemented yet');
  }
  /** [version][u32 count] then per generation [u32 gen][u32 len][portable bitmap]. */
  serialize(): Buffer {
    throw new Error('not implemented yet');
  }
  /** Throws on a bad version or truncated buffer (input from another site). */
  static deserialize(buf: Uint8Array): GenerationalRecord {
    void buf;
    throw new Error('not implemented yet');
  }
}

/** Where a record lives between restarts. */
export interface RecordStore {
  /** The stored record, or an empty one. */
  load(): Promise<GenerationalRecord>;
  /**
   * Persists the record's changes since the last save in ONE durable
   * transaction; `alsoWrite` runs inside it (lmdb puts of the caller, e.g.
   * id bindings or the last applied message number) so they commit together.
   * Resolves when durable: the secondary acks a record message only then.
   */
  save(record: GenerationalRecord, alsoWrite?: () => void): Promise<void>;
}

/** Record persisted in lmdb: sub-db `${prefix}record`, key = generation
 * (uint32), value = [version][portable bitmap]. */
export class LmdbRecordStore implements RecordStore {
  constructor(root: RootDatabase, options: { dbPrefix?: string } = {}) {
    void root;
    void options;
    throw new Error('not implemented yet');
  }
  load(): Promise<GenerationalRecord> {
    throw new Error('not implemented yet');
  }
  save(record: GenerationalRecord, alsoWrite?: () => void): Promise<void> {
    void record;
    void alsoWrite;
    throw new Error('not implemented yet');
  }
}

/** In-memory store for simulations: keeps the last saved serialization. */
export class MemoryRecordStore implements RecordStore {
  load(): Promise<GenerationalRecord> {
    throw new Error('not implemented yet');
  }
  save(record: GenerationalRecord, alsoWrite?: () => void): Promise<void> {
    void record;
    void alsoWrite;
    throw new Error('not implemented yet');
  }
}
void RoaringBitmap32;
void assert;
