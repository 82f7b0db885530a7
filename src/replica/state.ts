// Durable state of each side, behind small interfaces so the simulation runs
// the real protocol code over in-memory state that survives a simulated
// crash (and refuses writes from the crashed incarnation).
//
// Primary: Q (locations written on P and not yet confirmed on S), the dirty
// set (keys admitted while S was unreachable, degraded mode), R' and the
// epoch. Secondary: R with its id -> name dictionary, the epoch, the session
// and the last applied message.

import type { Database, RootDatabase } from 'lmdb';
import type { ChangeKind } from '../core/changes.ts';
import { assert } from '../core/assert.ts';
import type { LocationEntry, LocationName } from '../predict/types.ts';
import { LmdbLocationIds, MemoryLocationIds } from '../predict/locations.ts';
import { GenerationalRecord, LmdbRecordStore, MemoryRecordStore } from '../predict/record.ts';
import type { RecordStore } from '../predict/record.ts';

/** Format version byte of every value stored below (habit 8). */
export const replicaStateVersion = 1;

/** What the primary needs from its location dictionary (both predict
 * implementations fit). */
export interface ReplicaIds {
  idsOf(names: readonly LocationName[]): Promise<number[]>;
  peek(name: LocationName): number | undefined;
  nameOf(id: number): LocationName | undefined;
  bind(entries: readonly LocationEntry[]): Promise<void>;
  release(ids: readonly number[]): Promise<void>;
}

/** The secondary's id -> name dictionary, written inside R's transaction. */
export interface ReplicaNames {
  nameOf(id: number): LocationName | undefined;
  bindSync(entries: readonly LocationEntry[]): void;
  releaseSync(ids: readonly number[]): void;
}

const changeKinds: readonly ChangeKind[] = [
  'put', 'delete', 'tagging', 'mpu-create', 'mpu-part', 'mpu-abort', 'bucket-create', 'bucket-delete',
];

/** One entry of Q: the latest committed change of a location. */
export interface QEntry {
  seq: number;
  kind: ChangeKind;
  /** When it was first queued and not yet synced (ms), for the lag. */
  at: number;
  /** Record ids that covered the key when it committed: they stay in the
   * record (pinned) while this entry is queued, across restarts. Upload
   * groups are not derivable from the key, so they are stored. */
  cover: number[];
}

/** A Q entry its copy removed: the seq it had and the ids it pinned. */
export interface Dequeued {
  seq: number;
  cover: readonly number[];
}

export interface PrimaryMeta {
  epoch: number;
  /** Set when a peer showed a higher epoch: this site refuses writes. */
  fencedBy?: { epoch: number; primary?: string };
}

export interface SecondaryMeta {
  epoch: number;
  session: number;
  lastMsgId: number;
  /** Where clients should write (named in NotPrimaryError). */
  primary?: string;
}

export interface PrimaryDurable {
  readonly record: RecordStore;
  readonly ids: ReplicaIds;
  /** Inside the store's commit transaction (ChangeHooks.committed).
   * `existed`: whether the caller just read an entry for the key. */
  qPutSync(qkey: string, entry: QEntry, existed?: boolean): void;
  dirtyAddSync(qkey: string): void;
  /** In its own durable transaction. */
  dirtyAdd(qkeys: readonly string[]): Promise<void>;
  qGet(qkey: string): QEntry | undefined;
  /** The entry's seq alone (the copier's batch reads only that). */
  qSeq(qkey: string): number | undefined;
  /** Removes the entry only if its seq is still `seq` (not written again),
   * and the key from the dirty set with it; returns the removed entry's
   * cover (read in the removing transaction), or undefined. */
  qDeleteIfSeq(qkey: string, seq: number): Promise<readonly number[] | undefined>;
  /** qDeleteIfSeq for many entries in one durable transaction; returns the
   * keys removed, each with its entry's cover. */
  qDeleteIfSeqMany(entries: ReadonlyArray<readonly [string, number]>): Promise<Map<string, readonly number[]>>;
  /** Resolves once the writes made so far (those of a transaction running
   * now included) are committed and visible to reads: a Q entry written in
   * `committed` cannot be read back before its commit. */
  committed(): Promise<void>;
  /** Entries in key order after `after`, at most `limit`. */
  qScan(after: string | undefined, limit: number): Array<[string, QEntry]>;
  qCount(): number;
  dirtyHas(qkey: string): boolean;
  dirtyScan(limit: number): string[];
  dirtyDelete(qkeys: readonly string[]): Promise<void>;
  dirtyCount(): number;
  meta(): PrimaryMeta;
  setMeta(meta: PrimaryMeta): Promise<void>;
}

export interface SecondaryDurable {
  readonly record: RecordStore;
  readonly names: ReplicaNames;
  /** Seq of the last bucket create/delete applied (0 if none). */
  bucketFloor(bucket: string): number;
  setBucketFloor(bucket: string, seq: number): Promise<void>;
  meta(): SecondaryMeta;
  /** Inside RecordStore.save's transaction (alsoWrite). */
  setMetaSync(meta: SecondaryMeta): void;
  setMeta(meta: SecondaryMeta): Promise<void>;
}

// ------------------------------------------------------------ encodings

/** [version][kind u8][seq f64][at f64][cover u32...] */
function encodeQEntry(entry: QEntry): Buffer {
  const buf = Buffer.allocUnsafe(18 + 4 * entry.cover.length); // every byte written below
  buf[0] = replicaStateVersion;
  buf[1] = changeKinds.indexOf(entry.kind);
  buf.writeDoubleBE(entry.seq, 2);
  buf.writeDoubleBE(entry.at, 10);
  entry.cover.forEach((id, i) => buf.writeUInt32BE(id, 18 + 4 * i));
  return buf;
}

function decodeQEntry(buf: Uint8Array): QEntry {
  // `length`, not byteLength: lmdb's shared buffer (getBinaryFast) is a
  // larger array whose overridden `length` is the value's.
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  assert(b.length >= 18 && (b.length - 18) % 4 === 0 && b[0] === replicaStateVersion, 'Q entry: unknown format');
  const kind = changeKinds[b[1] as number];
  assert(kind !== undefined, 'Q entry: unknown kind');
  const cover: number[] = [];
  for (let off = 18; off < b.length; off += 4) cover.push(b.readUInt32BE(off));
  return { kind, seq: b.readDoubleBE(2), at: b.readDoubleBE(10), cover };
}

/** An entry's seq without decoding the rest (the copier's removal checks it
 * per copy). A Buffer (what lmdb returns) is read in place: no DataView. */
function qEntrySeq(buf: Uint8Array): number {
  assert(buf.length >= 18 && buf[0] === replicaStateVersion, 'Q entry: unknown format');
  if (Buffer.isBuffer(buf)) return buf.readDoubleBE(2);
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getFloat64(2);
}

function encodeJson(value: unknown): Buffer {
  return Buffer.concat([Buffer.from([replicaStateVersion]), Buffer.from(JSON.stringify(value), 'utf8')]);
}

function decodeJson<T>(buf: Uint8Array | undefined): T | undefined {
  if (buf === undefined) return undefined;
  assert(buf[0] === replicaStateVersion, 'replica meta: unknown format');
  return JSON.parse(Buffer.from(buf.subarray(1)).toString('utf8')) as T;
}

// ------------------------------------------------------------ lmdb

/** Primary state in sub-dbs of the shared root, so Q entries written in
 * `committed` commit in the object's own transaction (write path step 4). */
export class LmdbPrimaryDurable implements PrimaryDurable {
  readonly record: RecordStore;
  readonly ids: LmdbLocationIds;
  private readonly q: Database<Buffer, string>;
  private readonly dirty: Database<Buffer, string>;
  private readonly metaDb: Database<Buffer, string>;
  private approxQ: number;
  private approxDirty: number;

  constructor(private readonly root: RootDatabase, inRecord?: (id: number) => boolean) {
    this.record = new LmdbRecordStore(root, { dbPrefix: 'replica.p.' });
    this.ids = new LmdbLocationIds(root, { dbPrefix: 'replica.p.', inRecord });
    this.q = root.openDB<Buffer, string>({ name: 'replica.p.queue', encoding: 'binary' });
    this.dirty = root.openDB<Buffer, string>({ name: 'replica.p.dirty', encoding: 'binary' });
    this.metaDb = root.openDB<Buffer, string>({ name: 'replica.p.meta', encoding: 'binary' });
    this.approxQ = this.q.getKeysCount();
    this.approxDirty = this.dirty.getKeysCount();
  }

  qPutSync(qkey: string, entry: QEntry, existed?: boolean): void {
    if (!(existed ?? this.q.get(qkey) !== undefined)) this.approxQ++;
    this.q.putSync(qkey, encodeQEntry(entry));
  }

  dirtyAddSync(qkey: string): void {
    if (this.dirty.get(qkey) !== undefined) return;
    this.approxDirty++;
    this.dirty.putSync(qkey, Buffer.from([replicaStateVersion]));
  }

  async dirtyAdd(qkeys: readonly string[]): Promise<void> {
    await this.root.transaction(() => {
      for (const k of qkeys) this.dirtyAddSync(k);
    });
  }

  qGet(qkey: string): QEntry | undefined {
    // lmdb's shared buffer, decoded at once (no copy): every commit of a
    // queued key reads its entry.
    const raw = this.q.getBinaryFast(qkey);
    return raw === undefined ? undefined : decodeQEntry(raw);
  }

  qSeq(qkey: string): number | undefined {
    // lmdb's shared buffer, read at once: no copy, no decode of the cover.
    const raw = this.q.getBinaryFast(qkey);
    return raw === undefined ? undefined : qEntrySeq(raw);
  }

  async qDeleteIfSeq(qkey: string, seq: number): Promise<readonly number[] | undefined> {
    return (await this.qDeleteIfSeqMany([[qkey, seq]])).get(qkey);
  }

  async qDeleteIfSeqMany(entries: ReadonlyArray<readonly [string, number]>): Promise<Map<string, readonly number[]>> {
    const removed = new Map<string, readonly number[]>();
    let undirtied = 0;
    await this.root.transaction(() => {
      for (const [qkey, seq] of entries) {
        // The shared buffer, read at once (nothing else reads in between).
        const raw = this.q.getBinaryFast(qkey);
        if (raw === undefined || qEntrySeq(raw) !== seq) continue;
        removed.set(qkey, decodeQEntry(raw).cover); // its pins go with it
        this.q.removeSync(qkey);
        // The count only ever over-counts (a rolled-back add): at 0 the
        // dirty set is empty, and the copier's removals skip the read.
        if (this.approxDirty > 0 && this.dirty.get(qkey) !== undefined) {
          this.dirty.removeSync(qkey);
          undirtied++;
        }
      }
    });
    this.approxQ = Math.max(0, this.approxQ - removed.size);
    this.approxDirty = Math.max(0, this.approxDirty - undirtied);
    return removed;
  }

  committed(): Promise<void> {
    // lmdb-js binds `committed` to the write pending when then() is called:
    // inside a transaction's callback, that is the batch holding it.
    return new Promise<void>((resolve) => {
      void this.root.committed.then(() => resolve(), () => resolve());
    });
  }

  qScan(after: string | undefined, limit: number): Array<[string, QEntry]> {
    const out: Array<[string, QEntry]> = [];
    for (const { key, value } of this.q.getRange({ start: after, limit: limit + 1 })) {
      if (key === after) continue;
      out.push([key, decodeQEntry(value)]);
      if (out.length >= limit) break;
    }
    return out;
  }

  qCount(): number {
    return this.approxQ;
  }

  dirtyHas(qkey: string): boolean {
    return this.dirty.get(qkey) !== undefined;
  }

  dirtyScan(limit: number): string[] {
    return Array.from(this.dirty.getKeys({ limit }));
  }

  async dirtyDelete(qkeys: readonly string[]): Promise<void> {
    let count = 0;
    await this.root.transaction(() => {
      for (const k of qkeys) {
        if (this.dirty.get(k) === undefined) continue;
        this.dirty.removeSync(k);
        count++;
      }
    });
    this.approxDirty = Math.max(0, this.approxDirty - count);
  }

  dirtyCount(): number {
    return this.approxDirty;
  }

  meta(): PrimaryMeta {
    return decodeJson<PrimaryMeta>(this.metaDb.get('meta')) ?? { epoch: 1 };
  }

  async setMeta(meta: PrimaryMeta): Promise<void> {
    await this.metaDb.put('meta', encodeJson(meta));
  }
}

export class LmdbSecondaryDurable implements SecondaryDurable {
  readonly record: RecordStore;
  readonly names: LmdbLocationIds;
  private readonly metaDb: Database<Buffer, string>;
  private readonly floors: Database<Buffer, string>;

  constructor(root: RootDatabase) {
    this.record = new LmdbRecordStore(root, { dbPrefix: 'replica.s.' });
    this.names = new LmdbLocationIds(root, { dbPrefix: 'replica.s.' });
    this.metaDb = root.openDB<Buffer, string>({ name: 'replica.s.meta', encoding: 'binary' });
    this.floors = root.openDB<Buffer, string>({ name: 'replica.s.bucket-floor', encoding: 'binary' });
  }

  bucketFloor(bucket: string): number {
    return decodeJson<number>(this.floors.get(bucket)) ?? 0;
  }

  async setBucketFloor(bucket: string, seq: number): Promise<void> {
    await this.floors.put(bucket, encodeJson(seq));
  }

  meta(): SecondaryMeta {
    return decodeJson<SecondaryMeta>(this.metaDb.get('meta')) ?? { epoch: 1, session: 0, lastMsgId: 0 };
  }

  setMetaSync(meta: SecondaryMeta): void {
    this.metaDb.putSync('meta', encodeJson(meta));
  }

  async setMeta(meta: SecondaryMeta): Promise<void> {
    await this.metaDb.put('meta', encodeJson(meta));
  }
}

// ------------------------------------------------------------ memory (simulation)

/** Thrown by a crashed incarnation's handle: its in-flight work is lost. */
export class CrashedError extends Error {
  constructor() {
    super('site crashed');
    this.name = 'CrashedError';
  }
}

/** A handle that dies with its incarnation; the storage outlives it. */
class Incarnation {
  alive = true;
  check(): void {
    if (!this.alive) throw new CrashedError();
  }
}

/** Lets the simulation delay a durable commit (as lmdb's fsync takes
 * time), so crashes land between a change in memory and its commit. */
export type CommitDelay = () => Promise<void>;

class GuardedRecordStore implements RecordStore {
  constructor(
    private readonly inner: MemoryRecordStore,
    private readonly life: Incarnation,
    private readonly onSaved?: (ids: number[]) => void,
    private readonly delay?: CommitDelay,
  ) {}
  load() {
    this.life.check();
    return this.inner.load();
  }
  async save(record: GenerationalRecord, alsoWrite?: () => void): Promise<void> {
    this.life.check();
    // What is saved is the record as it is now (lmdb's save takes its
    // delta at the call too); the commit itself may come later.
    const snapshot = GenerationalRecord.deserialize(record.serialize());
    record.takeDelta();
    if (this.delay !== undefined) await this.delay();
    this.life.check();
    // MemoryRecordStore.save runs to completion synchronously: atomic.
    await this.inner.save(snapshot, alsoWrite);
    this.onSaved?.(snapshot.toBitmap().toArray());
  }
}

interface MemPrimaryStorage {
  record: MemoryRecordStore;
  /** Ids of R' as last saved. */
  savedIds?: number[];
  ids: MemoryLocationIds;
  q: Map<string, QEntry>;
  dirty: Set<string>;
  meta: PrimaryMeta;
}

export class MemPrimaryDurable implements PrimaryDurable {
  readonly record: RecordStore;
  readonly ids: ReplicaIds;
  private readonly life = new Incarnation();

  constructor(
    private readonly s: MemPrimaryStorage = newPrimaryStorage(),
    private readonly delay?: CommitDelay,
  ) {
    this.record = new GuardedRecordStore(s.record, this.life, (ids) => (s.savedIds = ids), delay);
    const life = this.life;
    this.ids = {
      idsOf: async (names) => (life.check(), s.ids.idsOf(names)),
      peek: (name) => s.ids.peek(name),
      nameOf: (id) => s.ids.nameOf(id),
      bind: async (entries) => (life.check(), s.ids.bind(entries)),
      release: async (ids) => (life.check(), s.ids.release(ids)),
    };
  }

  /** Kills this incarnation; the returned one sees only durable state. */
  crash(): MemPrimaryDurable {
    this.life.alive = false;
    return new MemPrimaryDurable(this.s, this.delay);
  }

  get storage(): Readonly<MemPrimaryStorage> {
    return this.s;
  }

  qPutSync(qkey: string, entry: QEntry): void {
    this.life.check();
    this.s.q.set(qkey, entry);
  }
  dirtyAddSync(qkey: string): void {
    this.life.check();
    this.s.dirty.add(qkey);
  }
  async dirtyAdd(qkeys: readonly string[]): Promise<void> {
    this.life.check();
    for (const k of qkeys) this.s.dirty.add(k);
  }
  qGet(qkey: string): QEntry | undefined {
    return this.s.q.get(qkey);
  }
  qSeq(qkey: string): number | undefined {
    return this.s.q.get(qkey)?.seq;
  }
  async qDeleteIfSeq(qkey: string, seq: number): Promise<readonly number[] | undefined> {
    return (await this.qDeleteIfSeqMany([[qkey, seq]])).get(qkey);
  }
  async qDeleteIfSeqMany(entries: ReadonlyArray<readonly [string, number]>): Promise<Map<string, readonly number[]>> {
    this.life.check();
    const removed = new Map<string, readonly number[]>();
    for (const [qkey, seq] of entries) {
      const entry = this.s.q.get(qkey);
      if (entry?.seq !== seq) continue;
      this.s.q.delete(qkey);
      this.s.dirty.delete(qkey);
      removed.set(qkey, entry.cover.slice());
    }
    // As in lmdb, a removal is visible to the commits after it before its
    // caller hears of it: a key may be committed again in between.
    if (this.delay !== undefined && removed.size > 0) {
      await this.delay();
      this.life.check();
    }
    return removed;
  }
  /** Writes here are visible at once. */
  async committed(): Promise<void> {}
  qScan(after: string | undefined, limit: number): Array<[string, QEntry]> {
    const keys = [...this.s.q.keys()].filter((k) => after === undefined || k > after).sort();
    return keys.slice(0, limit).map((k) => [k, this.s.q.get(k) as QEntry]);
  }
  qCount(): number {
    return this.s.q.size;
  }
  dirtyHas(qkey: string): boolean {
    return this.s.dirty.has(qkey);
  }
  dirtyScan(limit: number): string[] {
    return [...this.s.dirty].sort().slice(0, limit);
  }
  async dirtyDelete(qkeys: readonly string[]): Promise<void> {
    this.life.check();
    for (const k of qkeys) this.s.dirty.delete(k);
  }
  dirtyCount(): number {
    return this.s.dirty.size;
  }
  meta(): PrimaryMeta {
    return structuredClone(this.s.meta);
  }
  async setMeta(meta: PrimaryMeta): Promise<void> {
    this.life.check();
    this.s.meta = structuredClone(meta);
  }
}

function newPrimaryStorage(): MemPrimaryStorage {
  return {
    record: new MemoryRecordStore(),
    ids: new MemoryLocationIds(),
    q: new Map(),
    dirty: new Set(),
    meta: { epoch: 1 },
  };
}

interface MemSecondaryStorage {
  record: MemoryRecordStore;
  names: MemoryLocationIds;
  meta: SecondaryMeta;
  floors: Map<string, number>;
  /** Ids of R as last saved (the simulation checks invariants on it). */
  savedIds: number[];
}

export class MemSecondaryDurable implements SecondaryDurable {
  readonly record: RecordStore;
  readonly names: ReplicaNames;
  private readonly life = new Incarnation();

  constructor(
    private readonly s: MemSecondaryStorage = newSecondaryStorage(),
    private readonly delay?: CommitDelay,
  ) {
    this.record = new GuardedRecordStore(s.record, this.life, (ids) => (s.savedIds = ids), delay);
    const life = this.life;
    this.names = {
      nameOf: (id) => s.names.nameOf(id),
      bindSync: (entries) => (life.check(), s.names.bindSync(entries)),
      releaseSync: (ids) => (life.check(), s.names.releaseSync(ids)),
    };
  }

  crash(): MemSecondaryDurable {
    this.life.alive = false;
    return new MemSecondaryDurable(this.s, this.delay);
  }

  get storage(): Readonly<MemSecondaryStorage> {
    return this.s;
  }

  bucketFloor(bucket: string): number {
    return this.s.floors.get(bucket) ?? 0;
  }
  async setBucketFloor(bucket: string, seq: number): Promise<void> {
    this.life.check();
    this.s.floors.set(bucket, seq);
  }
  meta(): SecondaryMeta {
    return { ...this.s.meta };
  }
  setMetaSync(meta: SecondaryMeta): void {
    this.life.check();
    this.s.meta = { ...meta };
  }
  async setMeta(meta: SecondaryMeta): Promise<void> {
    this.setMetaSync(meta);
  }
}

function newSecondaryStorage(): MemSecondaryStorage {
  return {
    record: new MemoryRecordStore(),
    names: new MemoryLocationIds(),
    meta: { epoch: 1, session: 0, lastMsgId: 0 },
    floors: new Map(),
    savedIds: [],
  };
}
