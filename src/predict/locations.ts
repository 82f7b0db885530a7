// Location names and ids (PROTOCOL.md "Sites, locations, record").
//
// "Each location has a stable 32-bit id (an lmdb dictionary maps names to
// ids) so the record is a roaring bitmap (claims 9, 29: "bitmap record";
// claims 20, 40: "object-based storage technique")."

import type { Database, RootDatabase } from 'lmdb';
import type { ChangeIntent } from '../core/changes.ts';
import { assert, assertNever } from '../core/assert.ts';
import { FreeIds } from './free-ids.ts';
import type { Location, LocationEntry, LocationIds, LocationName } from './types.ts';

/** Format version byte of stored dictionary values (habit 8). */
export const locationIdsFormatVersion = 1;

export function keyLocation(bucket: string, key: string): Location {
  return { kind: 'key', bucket, key };
}

export function prefixLocation(bucket: string, prefix: string): Location {
  return { kind: 'prefix', bucket, prefix };
}

export function uploadLocation(bucket: string, key: string, uploadId: string): Location {
  return { kind: 'upload', bucket, key, uploadId };
}

export function bucketLocation(bucket: string): Location {
  return { kind: 'bucket', bucket };
}

/** The canonical name of a location (see types.ts for the grammar). */
export function locationName(loc: Location): LocationName {
  switch (loc.kind) {
    case 'key':
      return `k/${loc.bucket}/${loc.key}`;
    case 'prefix':
      return `p/${loc.bucket}/${loc.prefix}`;
    case 'upload':
      return `u/${loc.bucket}/${escapeUploadId(loc.uploadId)}/${loc.key}`;
    case 'bucket':
      return `b/${loc.bucket}`;
    default:
      return assertNever(loc, 'location');
  }
}

/** Whether the name is an object key's own (not a group's). */
export function isKeyLocationName(name: LocationName): boolean {
  return name.startsWith('k/');
}

/**
 * Parses a canonical name. Returns undefined for anything malformed: names
 * arrive from the other site, so a bad one is input, not our bug.
 */
export function parseLocationName(name: LocationName): Location | undefined {
  const kind = name.slice(0, 2);
  const rest = name.slice(2);
  if (kind === 'b/') return rest.length > 0 && !rest.includes('/') ? bucketLocation(rest) : undefined;
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const bucket = rest.slice(0, slash);
  const tail = rest.slice(slash + 1);
  if (kind === 'k/') return tail.length > 0 ? keyLocation(bucket, tail) : undefined;
  if (kind === 'p/') return tail === '' || tail.endsWith('/') ? prefixLocation(bucket, tail) : undefined;
  if (kind !== 'u/') return undefined;
  const idEnd = tail.indexOf('/');
  if (idEnd <= 0 || idEnd === tail.length - 1) return undefined;
  const uploadId = unescapeUploadId(tail.slice(0, idEnd));
  return uploadId === undefined ? undefined : uploadLocation(bucket, tail.slice(idEnd + 1), uploadId);
}

/** Upload ids come from clients: escape only "%" and "/" (never throws, unlike
 * encodeURIComponent on a lone surrogate). */
function escapeUploadId(uploadId: string): string {
  return uploadId.replace(/%/g, '%25').replace(/\//g, '%2F');
}

function unescapeUploadId(escaped: string): string | undefined {
  if (/%(?!25|2F)/.test(escaped)) return undefined;
  return escaped.replace(/%2F/g, '/').replace(/%25/g, '%');
}

/**
 * Every prefix group that contains the key, shortest first: "" (the whole
 * bucket), then each prefix ending with "/" ("a/", "a/b/"). A key ending in
 * "/" is itself such a prefix and is included, as listing with that prefix
 * returns it.
 */
export function ancestorPrefixes(key: string): string[] {
  const prefixes = [''];
  for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) {
    prefixes.push(key.slice(0, i + 1));
  }
  return prefixes;
}

/** The parent prefix of a key: "a/b/" for "a/b/c", "" for "c". */
export function parentPrefix(key: string): string {
  const trimmed = key.endsWith('/') ? key.slice(0, -1) : key;
  return trimmed.slice(0, trimmed.lastIndexOf('/') + 1);
}

/**
 * The narrowest location a change itself names, always added on its miss:
 * the key for object writes (and for mpu-create: the final key; the
 * multipart predictor adds the upload group), the upload group for parts and
 * aborts, the bucket for bucket changes.
 */
export function ownLocation(change: ChangeIntent): Location {
  switch (change.kind) {
    case 'put':
    case 'delete':
    case 'tagging':
    case 'mpu-create':
      return keyLocation(change.bucket, change.key);
    case 'mpu-part':
    case 'mpu-abort':
      assert(change.uploadId !== undefined, `${change.kind} without uploadId`);
      return uploadLocation(change.bucket, change.key, change.uploadId);
    case 'bucket-create':
    case 'bucket-delete':
      return bucketLocation(change.bucket);
    default:
      return assertNever(change.kind, 'change kind');
  }
}

/**
 * Every location whose presence in the record covers this change
 * (PROTOCOL.md write path step 1: "Look K up in R' (covered by the key
 * itself or by a group entry)"): the key, every ancestor prefix group, the
 * upload group when uploadId is set; the bucket location for bucket changes.
 */
export function coveringNames(change: ChangeIntent): LocationName[] {
  if (change.kind === 'bucket-create' || change.kind === 'bucket-delete') {
    return [locationName(bucketLocation(change.bucket))];
  }
  // The names built directly (locationName's grammar): this runs twice on
  // every write, hit or miss.
  const { bucket, key } = change;
  const names = [`k/${bucket}/${key}`, `p/${bucket}/`];
  for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) names.push(`p/${bucket}/${key.slice(0, i + 1)}`);
  if (change.uploadId !== undefined) {
    names.push(locationName(uploadLocation(change.bucket, change.key, change.uploadId)));
  }
  return names;
}

/** Ids (already assigned) of the locations covering a change. */
export function coveringIds(change: ChangeIntent, ids: LocationIds): number[] {
  const found: number[] = [];
  for (const name of coveringNames(change)) {
    const id = ids.peek(name);
    if (id !== undefined) found.push(id);
  }
  return found;
}

/** Whether any location covering the change is in the record. */
export function isCovered(change: ChangeIntent, ids: LocationIds, record: { has(id: number): boolean }): boolean {
  return coveringIds(change, ids).some((id) => record.has(id));
}

export interface LocationIdsOptions {
  /** Guard for `release`: an id still in R / R' must never be freed. */
  inRecord?: (id: number) => boolean;
}

/** In-memory dictionary for simulations and tests; same contract as lmdb's. */
export class MemoryLocationIds implements LocationIds {
  private readonly byName = new Map<LocationName, number>();
  private readonly byId = new Map<number, LocationName>();
  private readonly free: number[] = [];
  private nextId = 0;

  constructor(private readonly options: LocationIdsOptions = {}) {}

  get size(): number {
    return this.byName.size;
  }

  async idOf(name: LocationName): Promise<number> {
    return this.assign(name);
  }

  async idsOf(names: readonly LocationName[]): Promise<number[]> {
    return names.map((name) => this.assign(name));
  }

  /** Synchronous assign, for simulations (no durability to wait for). */
  assign(name: LocationName): number {
    const known = this.byName.get(name);
    if (known !== undefined) return known;
    const id = this.free.pop() ?? this.nextId++;
    assert(id <= 0xffffffff, 'location ids exhausted');
    this.byName.set(name, id);
    this.byId.set(id, name);
    return id;
  }

  peek(name: LocationName): number | undefined {
    return this.byName.get(name);
  }

  nameOf(id: number): LocationName | undefined {
    return this.byId.get(id);
  }

  async bind(entries: readonly LocationEntry[]): Promise<void> {
    this.bindSync(entries);
  }

  bindSync(entries: readonly LocationEntry[]): void {
    for (const { id, name } of entries) {
      checkBinding(name, id, this.byName.get(name), this.byId.get(id));
      this.byName.set(name, id);
      this.byId.set(id, name);
      if (id >= this.nextId) this.nextId = id + 1;
    }
  }

  async release(ids: readonly number[]): Promise<void> {
    this.releaseSync(ids);
  }

  releaseSync(ids: readonly number[]): void {
    for (const id of ids) {
      assert(!this.options.inRecord?.(id), `release of id ${id} still in the record`);
      const name = this.byId.get(id);
      if (name === undefined) continue; // released twice: idempotent
      this.byId.delete(id);
      this.byName.delete(name);
      this.free.push(id);
    }
  }
}

function checkBinding(name: string, id: number, idOfName: number | undefined, nameOfId: string | undefined): void {
  if ((idOfName !== undefined && idOfName !== id) || (nameOfId !== undefined && nameOfId !== name)) {
    throw new Error(`location binding conflict: ${name} -> ${id} (had ${idOfName}, ${nameOfId})`);
  }
}

/**
 * Durable dictionary in lmdb. Sub-databases (opened on the RootDatabase the
 * caller passes, so their writes can join the caller's transactions):
 *   `${prefix}loc-names`  name -> [version, id u32 BE]
 *   `${prefix}loc-ids`    id (uint32 key) -> [version, utf8 name]
 *   `${prefix}loc-free`   id (uint32 key) -> [version]   released, reusable
 *   `${prefix}loc-meta`   "next" -> [version, next fresh id u32 BE]
 *
 * Assignments resolve only once committed, so an id sent to the secondary
 * is never one that a crash could forget and hand to another name.
 */
export class LmdbLocationIds implements LocationIds {
  private readonly root: RootDatabase;
  private readonly names: Database<Buffer, string>;
  private readonly ids: Database<Buffer, number>;
  private readonly freeDb: Database<Buffer, number>;
  private readonly meta: Database<Buffer, string>;
  private readonly options: LocationIdsOptions;
  /** Free ids (released and durable), in memory so allocation is sync. */
  private readonly free = new FreeIds();
  /** Names being assigned, with the commit that makes them durable. */
  private readonly pending = new Map<LocationName, { id: number; durable: Promise<void> }>();
  private readonly pendingIds = new Map<number, LocationName>();
  private nextId: number;
  private count: number;

  constructor(root: RootDatabase, options: LocationIdsOptions & { dbPrefix?: string } = {}) {
    const prefix = options.dbPrefix ?? '';
    this.root = root;
    this.options = options;
    this.names = root.openDB<Buffer, string>({ name: `${prefix}loc-names`, encoding: 'binary' });
    this.ids = root.openDB<Buffer, number>({ name: `${prefix}loc-ids`, keyEncoding: 'uint32', encoding: 'binary' });
    this.freeDb = root.openDB<Buffer, number>({ name: `${prefix}loc-free`, keyEncoding: 'uint32', encoding: 'binary' });
    this.meta = root.openDB<Buffer, string>({ name: `${prefix}loc-meta`, encoding: 'binary' });
    for (const id of this.freeDb.getKeys()) this.free.add(id);
    const next = this.meta.get('next');
    this.nextId = next === undefined ? 0 : decodeU32(next, 'next id');
    this.count = this.names.getKeysCount();
  }

  get size(): number {
    return this.count;
  }

  async idOf(name: LocationName): Promise<number> {
    const [id] = await this.idsOf([name]);
    return id as number;
  }

  async idsOf(names: readonly LocationName[]): Promise<number[]> {
    const waits: Promise<void>[] = [];
    const fresh: LocationEntry[] = [];
    const result = names.map((name) => {
      const pending = this.pending.get(name);
      if (pending !== undefined) {
        waits.push(pending.durable);
        return pending.id;
      }
      const known = this.committedId(name);
      if (known !== undefined) return known;
      const id = this.allocate();
      fresh.push({ id, name });
      this.pendingIds.set(id, name);
      this.pending.set(name, { id, durable: Promise.resolve() });
      return id;
    });
    if (fresh.length > 0) waits.push(this.commitFresh(fresh));
    await Promise.all(waits);
    return result;
  }

  peek(name: LocationName): number | undefined {
    return this.pending.get(name)?.id ?? this.committedId(name);
  }

  nameOf(id: number): LocationName | undefined {
    const pending = this.pendingIds.get(id);
    if (pending !== undefined) return pending;
    const stored = this.ids.get(id);
    return stored === undefined ? undefined : decodeName(stored);
  }

  async bind(entries: readonly LocationEntry[]): Promise<void> {
    await this.root.transaction(() => this.bindSync(entries));
  }

  /** Same as bind, for use inside a caller's lmdb transaction callback. */
  bindSync(entries: readonly LocationEntry[]): void {
    for (const { id, name } of entries) {
      assert(Number.isInteger(id) && id >= 0 && id <= 0xffffffff, `location id ${id} is not a u32`);
      checkBinding(name, id, this.peek(name), this.nameOf(id));
      if (this.committedId(name) === id) continue;
      this.writeBinding(id, name);
      this.count++;
      if (id >= this.nextId) {
        this.nextId = id + 1;
        this.meta.putSync('next', encodeU32(this.nextId));
      }
    }
  }

  async release(ids: readonly number[]): Promise<void> {
    const freed: number[] = [];
    await this.root.transaction(() => {
      freed.push(...this.unbind(ids));
    });
    // Reusable only once the release is durable.
    for (const id of freed) this.free.add(id);
  }

  /**
   * Same as release, for use inside a caller's lmdb transaction callback.
   * The ids are not reused before the next open reads them from the free
   * db: the caller's transaction may still roll back, and an id handed out
   * meanwhile would be bound to two names. Its one user, the secondary,
   * never assigns ids.
   */
  releaseSync(ids: readonly number[]): void {
    this.unbind(ids);
  }

  private unbind(ids: readonly number[]): number[] {
    const freed: number[] = [];
    for (const id of ids) {
      // "ids are reused only after the primary learned that the secondary
      // removed them from R": the guard catches a caller that did not wait.
      assert(!this.options.inRecord?.(id), `release of id ${id} still in the record`);
      assert(!this.pendingIds.has(id), `release of id ${id} while it is being assigned`);
      const stored = this.ids.get(id);
      if (stored === undefined) continue; // released twice: idempotent
      this.names.removeSync(decodeName(stored));
      this.ids.removeSync(id);
      this.freeDb.putSync(id, Buffer.of(locationIdsFormatVersion));
      this.count--;
      freed.push(id);
    }
    return freed;
  }

  /** Read into lmdb's shared buffer (no copy): every write looks up the
   * names covering it. */
  private committedId(name: LocationName): number | undefined {
    const stored = this.names.getBinaryFast(name);
    return stored === undefined ? undefined : decodeU32(stored, 'location id');
  }

  private allocate(): number {
    const reused = this.free.take();
    if (reused !== undefined) return reused;
    assert(this.nextId <= 0xffffffff, 'location ids exhausted');
    return this.nextId++;
  }

  private commitFresh(fresh: LocationEntry[]): Promise<void> {
    const next = this.nextId;
    const durable = this.root
      .transaction(() => {
        for (const { id, name } of fresh) this.writeBinding(id, name);
        this.meta.putSync('next', encodeU32(Math.max(next, this.metaNext())));
      })
      .then(
        () => {
          this.count += fresh.length;
          this.settle(fresh);
        },
        (err: unknown) => {
          // Nothing of it is durable: the ids may be handed out again.
          this.settle(fresh);
          for (const { id } of fresh) this.free.add(id);
          throw err;
        },
      );
    for (const { name } of fresh) {
      const pending = this.pending.get(name);
      if (pending !== undefined) pending.durable = durable;
    }
    return durable;
  }

  private settle(fresh: LocationEntry[]): void {
    for (const { id, name } of fresh) {
      this.pending.delete(name);
      this.pendingIds.delete(id);
    }
  }

  private metaNext(): number {
    const stored = this.meta.get('next');
    return stored === undefined ? 0 : decodeU32(stored, 'next id');
  }

  private writeBinding(id: number, name: LocationName): void {
    this.names.putSync(name, encodeU32(id));
    this.ids.putSync(id, Buffer.concat([Buffer.of(locationIdsFormatVersion), Buffer.from(name, 'utf8')]));
    this.freeDb.removeSync(id);
    this.free.delete(id); // a bound id (bind after release) is not free
  }
}

function encodeU32(value: number): Buffer {
  const buf = Buffer.alloc(5);
  buf[0] = locationIdsFormatVersion;
  buf.writeUInt32BE(value, 1);
  return buf;
}

function decodeU32(stored: Uint8Array, what: string): number {
  if (stored.length !== 5 || stored[0] !== locationIdsFormatVersion) {
    throw new Error(`location ids: bad stored ${what} (version ${stored[0]})`);
  }
  return ((stored[1]! << 24) | (stored[2]! << 16) | (stored[3]! << 8) | stored[4]!) >>> 0;
}

function decodeName(stored: Uint8Array): LocationName {
  if (stored.length < 1 || stored[0] !== locationIdsFormatVersion) {
    throw new Error(`location ids: bad stored name (version ${stored[0]})`);
  }
  return Buffer.from(stored.subarray(1)).toString('utf8');
}
