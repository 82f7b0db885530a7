// The look-ahead record's vocabulary: locations, their ids, predictors.
// src/replica depends on this file; the implementations live beside it.

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
 *   upload:  "u/" + bucket + "/" + uploadId + "/" + key
 *   bucket:  "b/" + bucket                     (bucket create/delete)
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
  /** Id of the name if it has one. */
  peek(name: LocationName): number | undefined;
  nameOf(id: number): LocationName | undefined;
  /** The id may be handed out again (its removal from R was acked). */
  release(id: number): Promise<void>;
}

/** What predictors see about the recent past. */
export interface PredictContext {
  /** Milliseconds, from the injected clock. */
  now: number;
  /** Number of keys currently known under a prefix (for the group cap). */
  keysUnderPrefix(bucket: string, prefix: string): number;
  /** Recently written keys (recency predictor, ancestor freshness). */
  recentWrites(bucket: string, prefix: string): number;
}

/** One prediction rule (claims 18-20). Each is switchable in configuration. */
export interface Predictor {
  readonly name: string;
  /** Locations to add to the record on a miss for `change`, besides its own. */
  predict(change: ChangeIntent, context: PredictContext): Location[];
}
