// The look-ahead record's vocabulary: locations, their ids, predictors.
// src/replica depends on this file; the implementations live beside it:
//   locations.ts  names, coveringNames, LmdbLocationIds / MemoryLocationIds
//   record.ts     GenerationalRecord (R and R'), LmdbRecordStore / MemoryRecordStore
//   removal.ts    chooseRemovals (claims 13-17), pinnedIds, narrowingFor, LastActive
//   recent.ts     RecentWrites (PredictContext provider)
//   predictions.ts Predictions facade, PredictorConfig
//   workloads.ts  workload generators and simulateMissRate

import type { ChangeIntent } from '../core/changes.ts';

/**
 * A location is what the record names (PROTOCOL.md "Sites, locations,
 * record"): one object key, a prefix group covering every key under it, or a
 * multipart upload group covering its parts and its final key.
 *
 * Names are canonical strings so they can be sent to the secondary and listed
 * in the at-risk report:
 *   key:     "k/" + bucket + "/" + key
 *   prefix:  "p/" + bucket + "/" + prefix      (prefix ends with the delimiter "/", or is "" for the whole bucket)
 *   upload:  "u/" + bucket + "/" + uploadId with "%" -> "%25", "/" -> "%2F" + "/" + key
 *   bucket:  "b/" + bucket                     (bucket create/delete)
 * (Bucket names never contain "/"; upload ids are escaped so they do not
 * either; the key is the rest of the name and may contain anything.)
 */
export type LocationName = string;

export type Location =
  | { kind: 'key'; bucket: string; key: string }
  | { kind: 'prefix'; bucket: string; prefix: string }
  | { kind: 'upload'; bucket: string; key: string; uploadId: string }
  | { kind: 'bucket'; bucket: string };

/** A location with its stable 32-bit id (claims 9, 29: bitmap record). */
export interface LocationEntry {
  id: number;
  name: LocationName;
}

/**
 * Durable dictionary name <-> id (lmdb). Ids are reused only after the
 * primary learned that the secondary removed them from R.
 */
export interface LocationIds {
  /** Id of the name, assigning a fresh one (durably) when absent. */
  idOf(name: LocationName): Promise<number>;
  /** Ids of several names, assigned in one durable transaction. Same order. */
  idsOf(names: readonly LocationName[]): Promise<number[]>;
  /** Id of the name if it has one (committed or being assigned). */
  peek(name: LocationName): number | undefined;
  nameOf(id: number): LocationName | undefined;
  /**
   * Adopt ids chosen by the other site (the secondary mirrors the primary's
   * ids so record messages and R name the same bits). Idempotent; throws when
   * a name or id is already bound differently (the sites diverged: a bug).
   */
  bind(entries: readonly LocationEntry[]): Promise<void>;
  /**
   * The id may be handed out again: its removal from R was acked. The name
   * loses its id. Callers must never release an id still in R or R'; the
   * implementations check it when given an `inRecord` guard.
   */
  release(ids: readonly number[]): Promise<void>;
  /** Number of bound names (for metrics and tests). */
  readonly size: number;
}

/** What predictors see about the recent past. */
export interface PredictContext {
  /** Milliseconds, from the injected clock. */
  now: number;
  /**
   * Number of keys currently stored under a prefix, before this change (for
   * the group cap). May be capped: any answer above the cap means "too many".
   */
  keysUnderPrefix(bucket: string, prefix: string): number;
  /** Distinct keys under the prefix written within the recency window. */
  recentWrites(bucket: string, prefix: string): number;
}

/** Predictor names, as used in configuration (`PredictorConfig.enabled`). */
export type PredictorName =
  | 'same-prefix'
  | 'ancestor-fresh'
  | 'sibling-dir'
  | 'name-sequence'
  | 'multipart'
  | 'recency';

/** One prediction rule (claims 18-20). Each is switchable in configuration. */
export interface Predictor {
  readonly name: PredictorName;
  /** Locations to add to the record on a miss for `change`, besides its own. */
  predict(change: ChangeIntent, context: PredictContext): Location[];
}
