// Removal selection: keeping the record small (PROTOCOL.md "Removal",
// claims 13-17). Pure: everything it needs comes in as parameters.
//
// "P chooses what leaves the record: only locations not in Q (in sync,
// claims 14-15), least recently written first, and whole generations at a
// time (claim 16) ... A location that stays hot (written again and again)
// should stay in the record."

import type { GenerationalRecord } from './record.ts';

export interface RemovalPolicy {
  /** Trim down to this many entries using cold, in-sync entries. */
  targetEntries: number;
  /** An entry active (added or written) within this many ms is hot: it
   * stays unless room is needed. 0 disables (recency predictor off). */
  hotMs: number;
  /** An in-sync entry idle this long leaves even below the target. */
  idleMs: number;
  /** At most this many ids per removal message. */
  removalsMax: number;
}

export interface RemovalInput {
  record: GenerationalRecord;
  /**
   * Ids that cover at least one key in Q or in flight (admitted, not yet
   * acked by S's copy). Such ids never leave (claims 14-15). The caller
   * computes them with `coveringIds` over Q.
   */
  unsynced: { has(id: number): boolean };
  /** Last activity (add or write) per id, ms; undefined = unknown (cold). */
  lastActive: (id: number) => number | undefined;
  /** Groups whose resync cost grew past the cap: they leave once in sync,
   * even hot, so the next miss re-predicts a narrower group. */
  oversized?: (id: number) => boolean;
  /** Entries the caller needs freed now (a miss waiting for room). */
  need?: number;
  /** Now, from the injected clock (ms). */
  now: number;
  policy: RemovalPolicy;
}

export interface RemovalChoice {
  /** Ids to remove: from R' first, then in the next record message. */
  ids: number[];
  /** Generations removed whole (claim 16). */
  wholeGenerations: number[];
}

export function chooseRemovals(input: RemovalInput): RemovalChoice {
  void input;
  throw new Error('not implemented yet');
}

/**
 * Last activity per id in the record: set when an id is added and when a
 * write it covers commits. Bounded by the record: forget ids on removal.
 */
export class LastActive {
  /** Marks ids active at `now`. */
  touch(ids: Iterable<number>, now: number): void {
    void ids;
    void now;
    throw new Error('not implemented yet');
  }
  get(id: number): number | undefined {
    void id;
    throw new Error('not implemented yet');
  }
  forget(ids: Iterable<number>): void {
    void ids;
    throw new Error('not implemented yet');
  }
  get size(): number {
    throw new Error('not implemented yet');
  }
}
