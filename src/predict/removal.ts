// Removal selection: keeping the record small (PROTOCOL.md "Removal",
// claims 13-17). Pure: everything it needs comes in as parameters.
//
// "P chooses what leaves the record: only locations not in Q (in sync,
// claims 14-15), least recently written first, and whole generations at a
// time (claim 16) ... A location that stays hot (written again and again)
// should stay in the record."

import type { ChangeIntent } from '../core/changes.ts';
import { coveringNames, ownLocation } from './locations.ts';
import type { GenerationalRecord } from './record.ts';
import type { Location, LocationIds } from './types.ts';

export interface RemovalPolicy {
  /** Trim down to this many entries using cold, in-sync entries. */
  targetEntries: number;
  /** An entry active (added or written) within this many ms is hot: it
   * stays unless room is needed. 0 disables (recency predictor off). */
  hotMs: number;
  /** An in-sync entry idle this long leaves even below the target. A hot
   * entry is never idle: the effective threshold is max(idleMs, hotMs). */
  idleMs: number;
  /** At most this many ids per removal message. */
  removalsMax: number;
}

export interface RemovalInput {
  record: GenerationalRecord;
  /**
   * Ids that must stay because they cover a key in Q or in flight
   * (admitted, not yet acked by S's copy): they never leave (claims 14-15).
   * Use `pinnedIds` over Q and the in-flight changes: it pins, per change,
   * the narrowest covering entry, so wider groups can still leave. (Every
   * covering id of every queued change is also correct, just more
   * conservative.)
   */
  unsynced: { has(id: number): boolean };
  /** Last activity (add or write) per id, ms; undefined = unknown (cold). */
  lastActive: (id: number) => number | undefined;
  /** Ids of groups whose resync cost grew past the cap: they leave once in
   * sync, even hot, so the next miss re-predicts a narrower group. */
  oversized?: Iterable<number>;
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

/**
 * Chooses ids to leave the record, in five passes:
 *  1. whole generations, oldest first, whose every entry is in sync and idle
 *     (claim 16: "a generation leaves when every entry in it is in sync");
 *     while above the target, also those whose entries are merely not hot;
 *  2. oversized groups that are in sync, even hot;
 *  3. single idle in-sync entries: one hot entry must not hold a cold group
 *     (and its resync cost) in the record with its generation;
 *  4. while above the target: single in-sync, not-hot entries, least
 *     recently active first (claims 13-15, 35: "least-recently added");
 *  5. while fewer than `need` were chosen: in-sync hot entries, LRU. Hot
 *     entries give way before a miss waits (invariant 4, backpressure).
 * Never an unsynced id: "only locations not in Q (in sync, claims 14-15)".
 */
export function chooseRemovals(input: RemovalInput): RemovalChoice {
  const state = new Selection(input);
  state.wholeGenerations();
  state.oversized();
  state.leastRecent((id) => state.isIdle(id), () => true);
  if (state.above()) state.leastRecent((id) => !state.isHot(id), () => state.above());
  const need = input.need ?? 0;
  if (state.chosen.size < need) state.leastRecent(() => true, () => state.chosen.size < need);
  return { ids: [...state.chosen], wholeGenerations: state.whole };
}

class Selection {
  readonly chosen = new Set<number>();
  readonly whole: number[] = [];

  constructor(private readonly input: RemovalInput) {}

  /** Above the soft target, counting what is already chosen. */
  above(): boolean {
    return this.input.record.size - this.chosen.size > this.input.policy.targetEntries;
  }

  isHot(id: number): boolean {
    return this.age(id) < this.input.policy.hotMs;
  }

  isIdle(id: number): boolean {
    return this.age(id) >= Math.max(this.input.policy.idleMs, this.input.policy.hotMs);
  }

  private age(id: number): number {
    const last = this.input.lastActive(id);
    return last === undefined ? Infinity : this.input.now - last;
  }

  private budget(): number {
    return this.input.policy.removalsMax - this.chosen.size;
  }

  private removable(id: number): boolean {
    return !this.input.unsynced.has(id) && !this.chosen.has(id);
  }

  wholeGenerations(): void {
    for (const { generation, ids } of this.input.record.generations()) {
      if (this.budget() <= 0) return;
      if (ids.size > this.budget()) continue;
      const members = ids.toArray();
      if (!members.every((id) => this.removable(id))) continue;
      const done = members.every((id) => this.isIdle(id));
      const cold = this.above() && members.every((id) => !this.isHot(id));
      if (!done && !cold) continue;
      for (const id of members) this.chosen.add(id);
      this.whole.push(generation);
    }
  }

  oversized(): void {
    for (const id of this.input.oversized ?? []) {
      if (this.budget() <= 0) return;
      if (this.input.record.has(id) && this.removable(id)) this.chosen.add(id);
    }
  }

  /** Takes removable ids passing `filter`, least recently active first,
   * while `more()` and the budget allow. */
  leastRecent(filter: (id: number) => boolean, more: () => boolean): void {
    const candidates = this.allIds().filter((id) => this.removable(id) && filter(id));
    // Stable sort: equal ages keep generation order (oldest added first).
    candidates.sort((a, b) => this.age(b) - this.age(a) || 0);
    for (const id of candidates) {
      if (!more() || this.budget() <= 0) return;
      this.chosen.add(id);
    }
  }

  private all: number[] | undefined;

  /** Every id, oldest generation first (computed once: bitmap iteration is slow). */
  private allIds(): number[] {
    this.all ??= this.input.record.generations().flatMap(({ ids }) => ids.toArray());
    return this.all;
  }
}

/** Covering names of a change, narrowest first: key, upload, then prefix
 * groups deepest first (coveringNames lists prefixes shortest first). */
function narrowestFirst(change: ChangeIntent): string[] {
  const names = coveringNames(change);
  if (change.kind === 'bucket-create' || change.kind === 'bucket-delete') return names;
  const upload = change.uploadId === undefined ? [] : [names.pop() as string];
  const [key, ...prefixes] = names;
  return [key as string, ...upload, ...prefixes.reverse()];
}

/**
 * The entries that keep Q covered (invariant 1: "if P and S may hold
 * different committed states for key K, then K is covered by R"): for each
 * queued or in-flight change, its narrowest covering id in the record.
 * Removing anything else leaves every such change covered.
 */
export function pinnedIds(
  changes: Iterable<ChangeIntent>,
  ids: Pick<LocationIds, 'peek'>,
  record: { has(id: number): boolean },
): Set<number> {
  const pinned = new Set<number>();
  for (const change of changes) {
    for (const name of narrowestFirst(change)) {
      const id = ids.peek(name);
      if (id !== undefined && record.has(id)) {
        pinned.add(id);
        break;
      }
    }
  }
  return pinned;
}

/**
 * Locations to add (in the same record message that removes the groups) so
 * that oversized groups stop being pinned: the own location of every
 * queued change whose only pin is one of them. A group whose keys outgrew
 * the cap would otherwise stay while writes under it keep coming.
 */
export function narrowingFor(
  changes: Iterable<ChangeIntent>,
  ids: Pick<LocationIds, 'peek'>,
  record: { has(id: number): boolean },
  oversized: ReadonlySet<number>,
): Location[] {
  const found: Location[] = [];
  for (const change of changes) {
    const [pin] = pinnedIds([change], ids, record);
    if (pin !== undefined && oversized.has(pin)) found.push(ownLocation(change));
  }
  return found;
}

/**
 * Last activity per id in the record: set when an id is added and when a
 * write it covers commits. Bounded by the record: forget ids on removal.
 */
export class LastActive {
  private readonly times = new Map<number, number>();

  /** Marks ids active at `now`. */
  touch(ids: Iterable<number>, now: number): void {
    for (const id of ids) this.times.set(id, now);
  }

  get(id: number): number | undefined {
    return this.times.get(id);
  }

  forget(ids: Iterable<number>): void {
    for (const id of ids) this.times.delete(id);
  }

  get size(): number {
    return this.times.size;
  }
}
