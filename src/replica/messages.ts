// Inter-site messages of the look-ahead record protocol (PROTOCOL.md) and
// their HTTP encodings. Every message carries the sender's epoch (fencing,
// issue 4: "every inter-site message carries the epoch").
//
// Input from the other site is input: decoders validate shapes and throw
// ReplicaProtocolError (HTTP 400), never assertion errors.

import type { ObjectMeta } from '../objects/types.ts';
import { objectMetaVersion } from '../objects/types.ts';
import type { LocationEntry } from '../predict/types.ts';
import { parseLocationName } from '../predict/locations.ts';
import { recordEntriesMax, recordMessageEntriesMax } from '../core/limits.ts';

/** Version of the wire messages below; a peer rejects others. */
export const replicaWireVersion = 1;

/**
 * A record update (claims 1, 10, 13, 17): S durably removes `remove`, then
 * adds `add`, then acks. Messages of one session are applied in msgId order;
 * a duplicate (msgId <= last applied) is acked without being applied again,
 * an older session's message is refused (it could undo a newer removal).
 */
export interface RecordMessage {
  v: typeof replicaWireVersion;
  epoch: number;
  /** The sender's site name (for the at-risk report and logs). */
  from: string;
  session: number;
  msgId: number;
  add: LocationEntry[];
  remove: number[];
}

/** Sent by S only after R is durable ("Ack means durable", invariant 3). */
export interface RecordAck {
  v: typeof replicaWireVersion;
  msgId: number;
  /** True when the message had already been applied (a retry). */
  duplicate: boolean;
  /** |R| after applying, for status. */
  recordSize: number;
}

/** Answer to opening a session: S's durable record, to rebuild R' from. */
export interface SessionInfo {
  v: typeof replicaWireVersion;
  epoch: number;
  session: number;
  lastMsgId: number;
  entries: LocationEntry[];
  /** Copies S accepts in one batch request; absent from older secondaries
   * (replicaBatchObjectsLegacyMax then). */
  batchObjectsMax?: number;
}

/** An object copy (claims 3, 23): the body travels beside it, streamed. */
export interface ObjectCopy {
  epoch: number;
  meta: ObjectMeta;
}

/** A delete copy: S keeps a tombstone at `seq` so a late copy cannot resurrect. */
export interface DeleteCopy {
  epoch: number;
  bucket: string;
  key: string;
  seq: number;
}

/** Bucket existence copy (bucket create/delete replicate too). */
export interface BucketCopy {
  epoch: number;
  bucket: string;
  exists: boolean;
  region: string;
  /** Seq of the primary's latest bucket change: copies of keys in this
   * bucket older than it are stale (a late copy must not recreate a
   * deleted bucket). */
  seq: number;
}

export interface PeerHealth {
  role: 'primary' | 'secondary' | 'fenced';
  epoch: number;
  recordSize: number;
}

export class ReplicaProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplicaProtocolError';
  }
}

function fail(message: string): never {
  throw new ReplicaProtocolError(message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function uint(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    fail(`${what}: expected an integer in [0, ${max}]`);
  }
  return value;
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') fail(`${what}: expected a string`);
  return value;
}

function entries(value: unknown, what: string, max: number): LocationEntry[] {
  if (!Array.isArray(value) || value.length > max) fail(`${what}: expected at most ${max} entries`);
  return value.map((item, i) => {
    if (!isRecord(item)) fail(`${what}[${i}]: expected {id, name}`);
    const name = str(item.name, `${what}[${i}].name`);
    if (parseLocationName(name) === undefined) fail(`${what}[${i}].name: not a location name`);
    return { id: uint(item.id, `${what}[${i}].id`, 0xffffffff), name };
  });
}

export function decodeRecordMessage(json: unknown): RecordMessage {
  if (!isRecord(json) || json.v !== replicaWireVersion) fail('record message: bad version');
  const remove = json.remove;
  if (!Array.isArray(remove) || remove.length > recordMessageEntriesMax) fail('remove: too many ids');
  return {
    v: replicaWireVersion,
    epoch: uint(json.epoch, 'epoch'),
    from: str(json.from, 'from'),
    session: uint(json.session, 'session'),
    msgId: uint(json.msgId, 'msgId'),
    add: entries(json.add, 'add', recordMessageEntriesMax),
    remove: remove.map((id, i) => uint(id, `remove[${i}]`, 0xffffffff)),
  };
}

export function decodeRecordAck(json: unknown): RecordAck {
  if (!isRecord(json) || json.v !== replicaWireVersion) fail('record ack: bad version');
  if (typeof json.duplicate !== 'boolean') fail('duplicate: expected a boolean');
  return {
    v: replicaWireVersion,
    msgId: uint(json.msgId, 'msgId'),
    duplicate: json.duplicate,
    recordSize: uint(json.recordSize, 'recordSize'),
  };
}

export function decodeSessionInfo(json: unknown): SessionInfo {
  if (!isRecord(json) || json.v !== replicaWireVersion) fail('session info: bad version');
  return {
    v: replicaWireVersion,
    epoch: uint(json.epoch, 'epoch'),
    session: uint(json.session, 'session'),
    lastMsgId: uint(json.lastMsgId, 'lastMsgId'),
    // R holds at most recordEntriesMax entries (invariant 4).
    entries: entries(json.entries, 'entries', recordEntriesMax),
    ...(json.batchObjectsMax === undefined ? {} : { batchObjectsMax: uint(json.batchObjectsMax, 'batchObjectsMax') }),
  };
}

export function decodePeerHealth(json: unknown): PeerHealth {
  if (!isRecord(json)) fail('health: expected an object');
  const role = json.role;
  if (role !== 'primary' && role !== 'secondary' && role !== 'fenced') fail('health: bad role');
  return { role, epoch: uint(json.epoch, 'epoch'), recordSize: uint(json.recordSize, 'recordSize') };
}

/** ObjectMeta travels base64url(JSON) in one header: small (user metadata
 * is at most 2 KB), and the body stays a plain stream. */
export function encodeMetaHeader(meta: ObjectMeta): string {
  return Buffer.from(JSON.stringify(meta), 'utf8').toString('base64url');
}

export function decodeMetaHeader(header: string | undefined): ObjectMeta {
  if (header === undefined) fail('missing object meta header');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  } catch {
    fail('object meta header: not base64url JSON');
  }
  return checkMeta(json);
}

/** An object meta already parsed from JSON (a batch head carries them as
 * objects): the same checks as the header's. */
export function checkMeta(json: unknown): ObjectMeta {
  if (!isRecord(json) || json.v !== objectMetaVersion) fail('object meta: bad version');
  str(json.bucket, 'meta.bucket');
  if (str(json.key, 'meta.key').length === 0) fail('meta.key: empty');
  uint(json.size, 'meta.size');
  str(json.etag, 'meta.etag');
  uint(json.lastModified, 'meta.lastModified');
  uint(json.seq, 'meta.seq');
  for (const field of ['headers', 'userMeta', 'tags'] as const) {
    if (!isRecord(json[field])) fail(`meta.${field}: expected an object`);
  }
  if (!Array.isArray(json.blobs)) fail('meta.blobs: expected an array');
  return json as unknown as ObjectMeta;
}
