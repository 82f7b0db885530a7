// The record R kept as objects on a plain S3 target (PROTOCOL.md "Secondary
// kinds: plain S3 server"): the target runs no code of ours, so every record
// message becomes one small object, and the primary folds them.
//
// Under the record prefix (url.ts recordLocation):
//   state                          epoch, session, role   (fencing, sessions)
//   record/snapshot                R as of (session, lastMsgId)
//   record/delta/SSSSSSSSSS/MMMMMMMMMMMMMMMM
//                                  one record message: session S, msgId M
//
// Reading R: the snapshot, then the deltas of the snapshot's session with a
// msgId above its lastMsgId, in msgId order. Deltas of other sessions are
// ignored: opening a session writes a snapshot carrying the new session
// number first, which seals every older session. A record message of a dead
// session that lands late (it was delayed in the network across a primary
// restart) is therefore never folded, so it cannot undo a removal the
// rebuilt R' relies on (target.ts openSession, invariant 2).
//
// Every object starts with a format version byte (habit 8), then JSON.

import type { LocationEntry } from '../../predict/types.ts';
import { parseLocationName } from '../../predict/locations.ts';
import { recordEntriesMax, recordMessageEntriesMax } from '../../core/limits.ts';

/** Format version byte of the state, snapshot and delta objects. */
export const s3RecordFormatVersion = 1;

/** What the target says about itself. */
export interface S3TargetState {
  epoch: number;
  session: number;
  /** 'primary' once promoted (clients write to the target directly). */
  role: 'secondary' | 'primary';
  /** Where clients should write, when known. */
  primary?: string;
}

export interface S3RecordSnapshot {
  session: number;
  lastMsgId: number;
  entries: LocationEntry[];
}

export interface S3RecordDelta {
  epoch: number;
  from: string;
  session: number;
  msgId: number;
  add: LocationEntry[];
  remove: number[];
}

/** A record object we cannot read: another format, or not ours. */
export class S3RecordFormatError extends Error {
  constructor(what: string, reason: string) {
    super(`${what}: ${reason}`);
    this.name = 'S3RecordFormatError';
  }
}

export const initialState: S3TargetState = { epoch: 1, session: 0, role: 'secondary' };
export const emptySnapshot: S3RecordSnapshot = { session: 0, lastMsgId: 0, entries: [] };

const sessionDigits = 10;
const msgIdDigits = 16;

export function stateKey(prefix: string): string {
  return `${prefix}state`;
}

export function snapshotKey(prefix: string): string {
  return `${prefix}record/snapshot`;
}

export function deltasPrefix(prefix: string): string {
  return `${prefix}record/delta/`;
}

export function sessionDeltasPrefix(prefix: string, session: number): string {
  return `${deltasPrefix(prefix)}${String(session).padStart(sessionDigits, '0')}/`;
}

/** Zero-padded so a listing returns a session's deltas in msgId order. */
export function deltaKey(prefix: string, session: number, msgId: number): string {
  return `${sessionDeltasPrefix(prefix, session)}${String(msgId).padStart(msgIdDigits, '0')}`;
}

/** Session and msgId of a delta key, undefined for anything else. */
export function parseDeltaKey(prefix: string, key: string): { session: number; msgId: number } | undefined {
  const base = deltasPrefix(prefix);
  if (!key.startsWith(base)) return undefined;
  const m = /^(\d{10})\/(\d{16})$/.exec(key.slice(base.length));
  if (m === null) return undefined;
  return { session: Number(m[1]), msgId: Number(m[2]) };
}

// ------------------------------------------------------------ codec

function encode(value: unknown): Buffer {
  return Buffer.concat([Buffer.from([s3RecordFormatVersion]), Buffer.from(JSON.stringify(value), 'utf8')]);
}

function decode(what: string, buf: Uint8Array): Record<string, unknown> {
  if (buf.length < 1 || buf[0] !== s3RecordFormatVersion) {
    throw new S3RecordFormatError(what, `unknown format version ${buf[0]}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 1, buf.byteLength - 1).toString('utf8'));
  } catch {
    throw new S3RecordFormatError(what, 'not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new S3RecordFormatError(what, 'not an object');
  return json as Record<string, unknown>;
}

function uint(what: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new S3RecordFormatError(what, `expected an integer in [0, ${max}]`);
  }
  return value;
}

/** Entries travel as [id, name] pairs: half the bytes of {id, name}. */
function encodeEntries(entries: readonly LocationEntry[]): Array<[number, string]> {
  return entries.map((e) => [e.id, e.name]);
}

function decodeEntries(what: string, value: unknown, max: number): LocationEntry[] {
  if (!Array.isArray(value) || value.length > max) throw new S3RecordFormatError(what, `expected at most ${max} entries`);
  return value.map((pair: unknown) => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[1] !== 'string' || parseLocationName(pair[1]) === undefined) {
      throw new S3RecordFormatError(what, 'expected [id, location name] pairs');
    }
    return { id: uint(what, pair[0], 0xffffffff), name: pair[1] };
  });
}

export function encodeState(state: S3TargetState): Buffer {
  return encode(state);
}

export function decodeState(buf: Uint8Array): S3TargetState {
  const json = decode('state', buf);
  const role = json.role;
  if (role !== 'secondary' && role !== 'primary') throw new S3RecordFormatError('state', 'bad role');
  const primary = json.primary;
  if (primary !== undefined && typeof primary !== 'string') throw new S3RecordFormatError('state', 'bad primary');
  return {
    epoch: uint('state.epoch', json.epoch),
    session: uint('state.session', json.session),
    role,
    ...(primary === undefined ? {} : { primary }),
  };
}

export function encodeSnapshot(snapshot: S3RecordSnapshot): Buffer {
  return encode({ session: snapshot.session, lastMsgId: snapshot.lastMsgId, entries: encodeEntries(snapshot.entries) });
}

export function decodeSnapshot(buf: Uint8Array): S3RecordSnapshot {
  const json = decode('snapshot', buf);
  return {
    session: uint('snapshot.session', json.session),
    lastMsgId: uint('snapshot.lastMsgId', json.lastMsgId),
    entries: decodeEntries('snapshot.entries', json.entries, recordEntriesMax),
  };
}

export function encodeDelta(delta: S3RecordDelta): Buffer {
  return encode({ ...delta, add: encodeEntries(delta.add) });
}

export function decodeDelta(buf: Uint8Array): S3RecordDelta {
  const json = decode('delta', buf);
  const remove = json.remove;
  if (!Array.isArray(remove) || remove.length > recordMessageEntriesMax) throw new S3RecordFormatError('delta.remove', 'too many ids');
  if (typeof json.from !== 'string') throw new S3RecordFormatError('delta.from', 'expected a string');
  return {
    epoch: uint('delta.epoch', json.epoch),
    from: json.from,
    session: uint('delta.session', json.session),
    msgId: uint('delta.msgId', json.msgId),
    add: decodeEntries('delta.add', json.add, recordMessageEntriesMax),
    remove: remove.map((id: unknown) => uint('delta.remove', id, 0xffffffff)),
  };
}

// ------------------------------------------------------------ fold

/** R in memory on the primary side of an S3 target: id -> location name. */
export type RecordMap = Map<number, string>;

/**
 * Applies one record message as the gateway secondary does: "removals first,
 * then additions, as the primary composed them: an id in both stays".
 */
export function applyDelta(record: RecordMap, delta: Pick<S3RecordDelta, 'add' | 'remove'>): void {
  const adding = new Set(delta.add.map((e) => e.id));
  for (const id of delta.remove) if (!adding.has(id)) record.delete(id);
  for (const e of delta.add) record.set(e.id, e.name);
}

/** Folds the deltas of the snapshot's session newer than it, in msgId order;
 * others are ignored (see the header). Returns R and the last msgId. */
export function foldRecord(
  snapshot: S3RecordSnapshot,
  deltas: readonly S3RecordDelta[],
): { record: RecordMap; lastMsgId: number } {
  const record: RecordMap = new Map(snapshot.entries.map((e) => [e.id, e.name]));
  let lastMsgId = snapshot.lastMsgId;
  const live = deltas
    .filter((d) => d.session === snapshot.session && d.msgId > snapshot.lastMsgId)
    .sort((a, b) => a.msgId - b.msgId);
  for (const d of live) {
    applyDelta(record, d);
    lastMsgId = d.msgId;
  }
  return { record, lastMsgId };
}

export function recordEntries(record: RecordMap): LocationEntry[] {
  return [...record].map(([id, name]) => ({ id, name }));
}
