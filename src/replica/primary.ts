// The primary side of the look-ahead record protocol (PROTOCOL.md "Write
// path on P"). PrimaryReplicator is the store's ChangeHooks: `admit` decides
// hit or miss against R' and, on a miss, gets the record message acked by S
// before the store may commit; `committed` queues the key in Q inside the
// store's transaction. The copier (copier.ts) drains Q.

import type { ChangeHooks, ChangeIntent, CommittedChange, Admission } from '../core/changes.ts';
import type { Clock, Random } from '../core/clock.ts';
import { NotPrimaryError, S3Error, SecondaryUnavailableError } from '../core/errors.ts';
import {
  admissionLeaseMs,
  copyDeferLagMsDefault,
  copyQueueEntriesMax,
  coverIdsCachedNamesMax,
  heldCopiesBytesMax,
  pendingMissesMax,
  recordMessageEntriesMax,
  recordSendAttempts,
} from '../core/limits.ts';
import type { ObjectMeta, ObjectStore, ReplicaBody } from '../objects/types.ts';
import { coveringNames, isKeyLocationName, locationName, ownLocation, parseLocationName } from '../predict/locations.ts';
import { GenerationalRecord } from '../predict/record.ts';
import { LastActive, chooseRemovals } from '../predict/removal.ts';
import type { RemovalPolicy } from '../predict/removal.ts';
import type { LocationEntry, LocationName } from '../predict/types.ts';
import { Copier } from './copier.ts';
import { CopyPacer } from './pacing.ts';
import type { CopyPriority, ForegroundLoad, PacingStatus } from './pacing.ts';
import { SyncCopier } from './sync-copy.ts';
import type { SyncCopyCounts, SyncCopyOutcome } from './sync-copy.ts';
import type { RecordMessage, SessionInfo } from './messages.ts';
import { replicaWireVersion } from './messages.ts';
import type { ReplicaMetrics } from './metrics.ts';
import type { Dequeued, PrimaryDurable, QEntry } from './state.ts';
import type { ReplicaTarget } from './target.ts';
import { FencedError, StaleSessionError } from './target.ts';

/** Which locations join the record on a miss of `change` (own first). */
export type Predict = (change: ChangeIntent, now: number) => LocationName[];

/** Prediction off: a miss adds only the change's own location. */
export const ownLocationOnly: Predict = (change) => [locationName(ownLocation(change))];

export type OnSecondaryDown = 'degraded' | 'refuse';
export type PeerState = 'ok' | 'degraded' | 'unreachable';

export interface PrimaryConfig {
  /** This site's name, sent as `from`. */
  site: string;
  /** Invariant 4: |R| never exceeds this. */
  recordEntriesMax: number;
  removal: RemovalPolicy;
  /** Default 'degraded': keep serving, track written keys (issue 4). */
  onSecondaryDown: OnSecondaryDown;
  /** A standalone trim goes out once no miss came for this long. */
  trimIdleMs: number;
  /** How often an unreachable secondary is probed. */
  probeIntervalMs: number;
  /** Backoff between attempts of one record message. */
  sendRetryMs: number;
  /** Copies in flight at once. */
  copyConcurrency: number;
  /** Claim 2: a miss is acked only once its data (or delete) is durable on
   * S too (sync-copy.ts). Hits stay asynchronous. */
  syncCopyOnMiss?: boolean;
  /** 'background': the copier holds copies back while clients are busy, up
   * to copyLagMaxMs (pacing.ts); 'eager': copies go as soon as they can. */
  copyPriority?: CopyPriority;
  /** The oldest held copy's age past which the copier runs at full speed. */
  copyLagMaxMs?: number;
}

export const defaultPrimaryConfig: Omit<PrimaryConfig, 'site'> = {
  recordEntriesMax: 1_000_000,
  removal: { targetEntries: 100_000, hotMs: 60_000, idleMs: 5 * 60_000, removalsMax: 10_000 },
  onSecondaryDown: 'degraded',
  trimIdleMs: 5_000,
  probeIntervalMs: 2_000,
  sendRetryMs: 200,
  copyConcurrency: 16,
  syncCopyOnMiss: false,
  copyPriority: 'background',
  copyLagMaxMs: copyDeferLagMsDefault,
};

export interface PrimaryOptions {
  durable: PrimaryDurable;
  target: ReplicaTarget;
  clock: Clock;
  random: Random;
  config: PrimaryConfig;
  predict?: Predict;
  /** Told of every committed change (RecentWrites.note). */
  onCommitted?: (change: ChangeIntent, now: number) => void;
  metrics?: ReplicaMetrics;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Told what became of each miss's synchronous copy (syncCopyOnMiss). */
  onSyncCopy?: (change: CommittedChange, outcome: SyncCopyOutcome) => void;
  /** Client requests on this site (the gateway's count), for copy priority;
   * without it copies are never held back. */
  foreground?: ForegroundLoad;
  /** The copier's ready window (copyReadyKeysMax; the simulation's is tiny,
   * so its refills from Q run in every other schedule). */
  copierReadyKeysMax?: number;
}

export interface ReplicaStatus {
  role: 'primary' | 'fenced';
  peer: PeerState;
  epoch: number;
  recordSize: number;
  queueDepth: number;
  oldestQueuedAgeMs: number;
  misses: number;
  hits: number;
  missRate: number;
  bytesReplicated: number;
  objectsReplicated: number;
  dirtyCount: number;
  pendingMisses: number;
  pendingRemovals: number;
  /** Writes admitted and not yet committed or aborted (in flight). */
  admissions: number;
  /** Record entries pinned (by Q entries or in-flight admissions): these
   * may not leave the record. */
  pinnedEntries: number;
  /** Claim 2 mode (--sync-copy-on-miss) and what its copies became. */
  syncCopyOnMiss: boolean;
  syncCopies: Omit<SyncCopyCounts, 'bytes' | 'objects'>;
  /** Copy priority, whether copies are held back now and for how long. */
  copyPacing?: PacingStatus;
}

interface Waiter {
  change: ChangeIntent;
  names: LocationName[];
  resolve: (admission: Admission) => void;
  reject: (err: unknown) => void;
  /** A dirty key being put back under the record (no client waits). */
  resync?: string;
}

interface Admitted {
  ids: number[];
  /** PrimaryReplicator.idReleases when admitted. */
  releases: number;
  dirty: boolean;
  /** Covered by R' when admitted (no round trip). */
  hit: boolean;
  expires: number;
}

/** Pins a queued key holds beyond its Q entry's cover (pinExtra), and the
 * seq of the entry they were taken for (onSynced). */
interface ExtraPins {
  seq: number;
  ids: number[];
}

/** A small committed version kept for the copier, with its change's seq. */
interface HeldCopy extends ReplicaBody {
  seq: number;
}

interface Batch {
  message: RecordMessage;
  waiters: Waiter[];
  addIds: number[];
}

/** Rounds of one pump before it yields (every loop bounded). */
const pumpRoundsMax = 64;
/** Dirty keys put back under the record per message. */
const resyncBatchMax = 1024;
/** Admitted writes not yet committed, at most (in-flight writes; more
 * means writes fail after admit, and the oldest stop pinning). */
const admissionsMax = 100_000;
/** Admissions are swept for expired leases at most this often (ms). */
const leaseSweepMs = 1000;

export class PrimaryReplicator implements ChangeHooks {
  readonly copier: Copier;
  private readonly syncCopier: SyncCopier;
  private rPrime = new GenerationalRecord();
  private readonly lastActive = new LastActive();
  /** Pins: ids covering a queued or admitted-not-committed key. Only ids
   * without pins may leave (claims 14-15: "only locations not in Q"). */
  private readonly pins = new Map<number, number>();
  /** A queued key pins its Q entry's cover: from the commit that put an
   * id in it (queue) until the copy that removed the entry hands the cover
   * back (onSynced). Nothing per queued key is kept in memory for it: a
   * burst queues tens of thousands of keys (heap retained per queued key in
   * a held burst, bench/heap-per-key.ts: 205 bytes with a Map of
   * {seq, ids} per key, 66 without).
   * Only the rare pins taken after the commit (a restart's, a rebuilt R''s,
   * a resync's) are kept here, per key. */
  private readonly extraPins = new Map<string, ExtraPins>();
  /** The last committed version of queued keys, when small (heldCopy). */
  private readonly held = new Map<string, HeldCopy>();
  private heldBytes = 0;
  /** By write token (one each), or by name for callers without one. */
  private readonly admitted = new Map<string | symbol, Admitted[]>();
  private admittedCount = 0;
  /** Location ids released so far: while it stays the same, every id
   * still names what it named (ids are reused only after a release). */
  private idReleases = 0;
  /** Ids of covering names found in R' (coverIds), valid while idReleases
   * stays the same: only a release lets an id name something else.
   * Bounded: cleared when full. */
  private readonly idCache = new Map<LocationName, number>();
  private idCacheReleases = 0;
  /** Group names (prefix, bucket, upload) with no id in R', valid while
   * R' gains no id: a write under a prefix that only its parent's group
   * covers looks up the bucket's name on every write otherwise. Key names
   * are not kept: nearly every write's own is new. Bounded: cleared when
   * full. */
  private readonly notInRecord = new Set<LocationName>();
  private notInRecordOf: { record: GenerationalRecord; adds: number } | undefined;
  private waiters: Waiter[] = [];
  /** Removed from R' (durably), not yet acked by S: "Removals leave R'
   * first, then S". Also ids a lost message may have added on S. */
  private readonly pendingRemovals = new Set<number>();
  /** Removals S acked; their ids are freed before the next message. */
  private readonly toRelease = new Set<number>();
  private session: { id: number; nextMsgId: number } | undefined;
  private peer: 'unknown' | 'ok' | 'unreachable' = 'unknown';
  private epoch = 1;
  private fencedBy: { epoch: number; primary?: string } | undefined;
  private sending = false;
  private kickAgain = false;
  private saving: Promise<void> = Promise.resolve();
  private probing = false;
  private trimWanted = false;
  private stopped = false;
  private lastMissAt = 0;
  private lastSweep = 0;
  private resyncing = new Set<string>();
  private readonly ready: Promise<void>;
  private markReady!: () => void;
  private isReady = false;
  private store: ObjectStore | undefined;
  private counts = { hits: 0, misses: 0 };
  private readonly predict: Predict;
  /** Planned drains in progress (switchover): copies are not held back. */
  private draining = 0;

  constructor(private readonly options: PrimaryOptions) {
    this.predict = options.predict ?? ownLocationOnly;
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.copier = new Copier({
      durable: options.durable,
      target: options.target,
      clock: options.clock,
      random: options.random,
      concurrency: options.config.copyConcurrency,
      ...(options.copierReadyKeysMax !== undefined ? { readyKeysMax: options.copierReadyKeysMax } : {}),
      epoch: () => this.epoch,
      store: () => this.store,
      onSynced: (qkey, removed) => this.onSynced(qkey, removed),
      onFenced: (err) => void this.fence(err),
      heldCopy: (qkey, seq) => this.heldCopy(qkey, seq),
      metrics: options.metrics,
      log: options.log,
      pacer: new CopyPacer({
        config: {
          priority: options.config.copyPriority ?? defaultPrimaryConfig.copyPriority ?? 'background',
          lagMaxMs: options.config.copyLagMaxMs ?? copyDeferLagMsDefault,
        },
        clock: options.clock,
        ...(options.foreground ? { load: options.foreground } : {}),
        urgent: () => this.draining > 0 || this.recordPressed(),
      }),
    });
    this.syncCopier = new SyncCopier({
      durable: options.durable,
      target: options.target,
      epoch: () => this.epoch,
      store: () => this.store,
      peerUp: () => this.peer === 'ok' && !this.fencedBy,
      onSynced: (qkey, removed) => this.onSynced(qkey, removed),
      toCopier: (qkey) => this.copier.notify(qkey),
      onFenced: (err) => void this.fence(err),
      ...(options.onSyncCopy ? { onOutcome: options.onSyncCopy } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    options.metrics?.bind({
      recordSize: () => this.rPrime.size,
      queueDepth: () => options.durable.qCount(),
      oldestQueuedAgeMs: () => this.copier.oldestAgeMs(),
      dirtyCount: () => options.durable.dirtyCount(),
      peerUp: () => this.peer === 'ok',
      copiesHeld: () => this.copier.pacing()?.state === 'deferring',
      heldAgeMs: () => this.copier.pacing()?.heldMs ?? 0,
      writes: () => this.counts,
    });
  }

  /**
   * Loads R' and Q's pins, then connects to S (rebuilding R' from R when S
   * answers) and starts the copier and the trim loop. Admissions wait for it.
   */
  async start(store: ObjectStore): Promise<void> {
    this.store = store;
    const { durable } = this.options;
    const meta = durable.meta();
    this.epoch = meta.epoch;
    this.fencedBy = meta.fencedBy;
    this.rPrime = await durable.record.load();
    this.loadPins();
    await this.connect();
    this.isReady = true;
    this.markReady();
    if (this.peer !== 'ok') this.startProbe();
    this.copier.start();
    void this.trimLoop();
    this.kick();
  }

  /** Stops background work; in-flight admissions stay pending (a crash). */
  stop(): void {
    this.stopped = true;
    this.copier.stop();
    this.syncCopier.stop();
  }

  // ------------------------------------------------------------ ChangeHooks

  admit(change: ChangeIntent): Promise<Admission> {
    if (!this.isReady) return this.ready.then(() => this.admitNow(change));
    // Not async: a hit, every write's common case, returns one shared
    // settled promise instead of a new one per write.
    try {
      return this.admitNow(change);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private admitNow(change: ChangeIntent): Promise<Admission> {
    this.checkWritable();
    if (this.options.durable.qCount() >= copyQueueEntriesMax) {
      throw new S3Error('SlowDown', 'The replication queue is full; retry later.');
    }
    this.sweepLeases();
    // Write path step 1: "Look K up in R' (covered by the key itself or by
    // a group entry)". Claims 5, 25: on a hit, no round trip.
    const cover = this.coverIds(change);
    if (cover.length > 0) {
      this.countWrite('hit');
      this.pinAdmission(change, cover, false, true);
      return admittedHit;
    }
    this.countWrite('miss');
    this.lastMissAt = this.options.clock.now();
    if (this.peer === 'unreachable') return Promise.resolve(this.admitUnreachable(change));
    if (this.waiters.length >= pendingMissesMax) {
      throw new S3Error('SlowDown', 'Too many writes are waiting for the secondary; retry later.');
    }
    const names = this.predict(change, this.options.clock.now());
    // Write path step 2: "Miss: send S a record message { add: predict(K),
    // remove: pendingRemovals } and wait for S's ack". Concurrent misses
    // share one message (group commit): see pump().
    return new Promise<Admission>((resolve, reject) => {
      this.waiters.push({ change, names, resolve, reject });
      this.kick();
    });
  }

  /**
   * Write path step 4: "Commit locally, add K to Q in the same metadata
   * transaction." Called synchronously inside the store's transaction;
   * throwing rolls the write back.
   */
  committed(change: CommittedChange): void {
    const admission = this.takeAdmission(change);
    const now = this.options.clock.now();
    const cover = this.stillCovering(admission) ?? this.coverIds(change);
    // Invariant 1 at the last moment: a write must not commit outside the
    // record (only a lease that expired can get here uncovered).
    if (cover.length === 0 && admission?.dirty !== true) {
      this.unpin(admission?.ids ?? []);
      throw new S3Error('ServiceUnavailable', 'The replication record no longer covers this write; retry.');
    }
    const qkey = queueKeyOf(change);
    let pinsMoved = false;
    if (qkey !== undefined) {
      pinsMoved = this.queue(qkey, change, cover, now, admission !== undefined && cover === admission.ids);
      if (cover.length === 0) this.options.durable.dirtyAddSync(qkey);
    }
    if (!pinsMoved) this.unpin(admission?.ids ?? []);
    this.lastActive.touch(cover, now);
    this.options.onCommitted?.(change, now);
    if (qkey !== undefined) this.holdCopy(qkey, change);
    if (qkey !== undefined && !this.copiesBeforeAck(change, admission, qkey)) this.copier.notify(qkey);
  }

  /**
   * The Q entry of a commit, in its transaction, and its pins: a queued key
   * keeps its first queue time, and its cover gains the ids of `cover` it
   * lacks, each pinned once here and unpinned once when the entry leaves Q
   * (onSynced). No id leaves a cover while queued: it would be unpinned
   * twice. One outside R' meanwhile (dropLost) pins harmlessly.
   *
   * `moved`: `cover` is the admission's own array, already pinned; returns
   * true when those pins passed to the new entry as they are (the caller
   * then does not unpin the admission).
   *
   * A transaction that rolls back after this ran keeps the pins taken here
   * although its entry does not hold them: safe (pins only keep ids in R'),
   * and gone at the next start (loadPins).
   */
  private queue(qkey: string, change: CommittedChange, cover: number[], now: number, moved: boolean): boolean {
    const { durable } = this.options;
    const prev = durable.qGet(qkey);
    if (prev === undefined) {
      durable.qPutSync(qkey, { seq: change.seq, kind: change.kind, at: now, cover }, false);
      if (moved) return true;
      this.pin(cover);
      return false;
    }
    const union = prev.cover; // decoded for this call: ours to extend
    for (const id of cover) {
      if (union.includes(id)) continue;
      union.push(id);
      this.pinOne(id);
    }
    durable.qPutSync(qkey, { seq: change.seq, kind: change.kind, at: prev.at, cover: union }, true);
    return false;
  }

  /**
   * Keeps a small PUT's committed version for the copier, which then reads
   * only the Q entry. Every commit of the key replaces (or drops) what is
   * held, so the held version is the last `committed` call's: when its
   * transaction rolled back, Q keeps the older seq and heldCopy never
   * returns it.
   */
  private holdCopy(qkey: string, change: CommittedChange): void {
    const prev = this.held.get(qkey);
    if (prev !== undefined) this.dropHeld(qkey, prev);
    const version = change.version;
    if (version === undefined || change.kind !== 'put') return;
    // While the copier defers copies for clients, this one waits up to the
    // lag bound: kept in memory that long it only survives into the old
    // generation and makes GCs dearer for the clients it defers to. It is
    // read back from lmdb when sent. (Same-run A/Bs, bench/primary-cpu.ts
    // --phases on --compare: -12 and -13 µs of primary CPU per 4 KiB PUT
    // during a burst, main thread -8 and -12; one 4-round A/B saw no change.)
    if (this.copier.deferring) return;
    const held: HeldCopy = { seq: change.seq, meta: version.meta as ObjectMeta, body: version.body };
    if (this.heldBytes + heldCost(held) > heldCopiesBytesMax) return;
    this.held.set(qkey, held);
    this.heldBytes += heldCost(held);
  }

  /** The version committed with `seq`, if held: the copier passes the seq
   * its Q entry names, so what it sends is that entry's version, as a read
   * of the store in the same turn would be (write path step 6). */
  private heldCopy(qkey: string, seq: number): ReplicaBody | undefined {
    const held = this.held.get(qkey);
    return held?.seq === seq ? held : undefined;
  }

  private dropHeld(qkey: string, held: HeldCopy): void {
    this.held.delete(qkey);
    this.heldBytes -= heldCost(held);
  }

  /** Claim 2 mode: a miss's copy is made before its ack (settled), not by
   * the copier; claim 3: a hit is copied asynchronously. */
  private copiesBeforeAck(change: CommittedChange, admission: Admitted | undefined, qkey: string): boolean {
    if (this.options.config.syncCopyOnMiss !== true || admission === undefined || admission.hit) return false;
    if (admission.dirty) {
      // Admitted while S was unreachable (degraded): nothing to wait for.
      this.syncCopier.skipped(change);
      return false;
    }
    return this.syncCopier.expect(change, qkey);
  }

  /** After the commit, before the client's ack (claim 2 mode only). */
  settled(change: CommittedChange): Promise<void> {
    return this.syncCopier.settle(change);
  }

  /**
   * A write that failed after admit: its admission's pins go now, not when
   * its lease ends, so removal may take those entries again (claims 14-15:
   * only locations "in sync" leave, and a write that never commits leaves
   * nothing out of sync). By token only: a key-based release could unpin a
   * concurrent writer's admission of the same key.
   */
  aborted(change: ChangeIntent): void {
    if (change.token === undefined) return;
    this.syncCopier.forget(change.token);
    const admission = this.takeAdmission(change);
    if (admission === undefined) return;
    this.unpin(admission.ids);
    // Misses waiting for room may fit now.
    if (this.waiters.length > 0) this.kick();
  }

  // ------------------------------------------------------------ status

  status(): ReplicaStatus {
    const { hits, misses } = this.counts;
    const copies = this.copier.stats();
    const { bytes: syncBytes, objects: syncObjects, ...syncCopies } = this.syncCopier.stats();
    return {
      role: this.fencedBy ? 'fenced' : 'primary',
      peer: this.peerState(),
      epoch: this.epoch,
      recordSize: this.rPrime.size,
      queueDepth: this.options.durable.qCount(),
      oldestQueuedAgeMs: this.copier.oldestAgeMs(),
      misses,
      hits,
      missRate: hits + misses === 0 ? 0 : misses / (hits + misses),
      bytesReplicated: copies.bytes + syncBytes,
      objectsReplicated: copies.objects + syncObjects,
      dirtyCount: this.options.durable.dirtyCount(),
      pendingMisses: this.waiters.length,
      pendingRemovals: this.pendingRemovals.size,
      admissions: this.admittedCount,
      pinnedEntries: this.pins.size,
      syncCopyOnMiss: this.options.config.syncCopyOnMiss === true,
      syncCopies,
      ...(this.copier.pacing() ? { copyPacing: this.copier.pacing() } : {}),
    };
  }

  /**
   * Waits until every committed change reached S (Q and the dirty set
   * empty, no miss waiting): PROTOCOL.md "Planned switchover: drain Q, then
   * swap roles with nothing lost". True when drained within `maxMs`.
   */
  async drain(maxMs: number, pollMs = 50): Promise<boolean> {
    const { clock, durable } = this.options;
    const end = clock.now() + maxMs;
    this.draining++;
    try {
      for (let i = 0; i <= maxMs / pollMs + 1; i++) {
        if (durable.qCount() === 0 && durable.dirtyCount() === 0 && this.waiters.length === 0) return true;
        if (clock.now() >= end) break;
        await clock.sleep(pollMs);
      }
      return false;
    } finally {
      this.draining--;
    }
  }

  /** Misses wait for room in a full record: room comes from entries in
   * sync, so the copies that bring them in sync are not held for clients
   * (the waiting misses are clients too). */
  private recordPressed(): boolean {
    return this.waiters.length > 0 && this.rPrime.size + this.waiters.length > this.options.config.recordEntriesMax;
  }

  /** Whether R' holds the id (guard for releasing ids). */
  inRecord(id: number): boolean {
    return this.rPrime.has(id) || this.pendingRemovals.has(id);
  }

  /** R' ids (for tests and the simulation's R' ⊆ R check). */
  recordIds(): number[] {
    return this.rPrime.toBitmap().toArray();
  }

  private peerState(): PeerState {
    if (this.peer === 'unreachable') return this.options.config.onSecondaryDown === 'degraded' ? 'degraded' : 'unreachable';
    return this.options.durable.dirtyCount() > 0 ? 'degraded' : 'ok';
  }

  // ------------------------------------------------------------ coverage and pins

  /**
   * The admission's ids when they still cover the change: pinned since
   * admit, still in R', and no id released meanwhile (so none was bound to
   * another name). Saves the covering-name lookups a second time per write;
   * undefined sends committed() to a full lookup.
   */
  private stillCovering(admission: Admitted | undefined): number[] | undefined {
    if (admission === undefined || admission.ids.length === 0 || admission.releases !== this.idReleases) return undefined;
    for (const id of admission.ids) if (!this.rPrime.has(id)) return undefined;
    return admission.ids;
  }

  /**
   * The ids in R' of the groups covering the change (prefixes, upload,
   * bucket), and the key's own entry only when no group covers it. A hit
   * through a group then reads no dictionary entry for the key's own name
   * (an lmdb read on every write: nearly every key's own name has no id).
   * A key covered both ways pins and keeps warm (lastActive) its groups,
   * which cover the keys written next too; its own entry may age out of R'
   * while they cover it ("removal: whole generations, LRU among
   * candidates"). One covering id in R is all invariant 1 asks.
   */
  private coverIds(change: ChangeIntent): number[] {
    if (this.idCacheReleases !== this.idReleases) {
      this.idCache.clear();
      this.idCacheReleases = this.idReleases;
    }
    const record = this.rPrime;
    if (this.notInRecordOf?.record !== record || this.notInRecordOf.adds !== record.adds) {
      this.notInRecord.clear();
      this.notInRecordOf = { record, adds: record.adds };
    }
    const ids: number[] = [];
    let own: LocationName | undefined;
    for (const name of coveringNames(change)) {
      if (isKeyLocationName(name)) {
        own = name;
        continue;
      }
      const id = this.idInRecord(name, record);
      if (id !== undefined) ids.push(id);
    }
    if (ids.length === 0 && own !== undefined) {
      const id = this.idInRecord(own, record);
      if (id !== undefined) ids.push(id);
    }
    return ids;
  }

  private idInRecord(name: LocationName, record: GenerationalRecord): number | undefined {
    const id = this.idCache.get(name) ?? (this.notInRecord.has(name) ? undefined : this.peekId(name));
    return id !== undefined && record.has(id) ? id : undefined;
  }

  /**
   * Only ids in R' are remembered: their bindings are durable (an id joins
   * R' after idsOf or bind resolved), so even a read inside a write
   * transaction cannot have seen one that a failed commit takes back, and
   * only a release changes them (releaseIds bumps idReleases before and
   * after).
   */
  private peekId(name: LocationName): number | undefined {
    const id = this.options.durable.ids.peek(name);
    if (id === undefined || !this.rPrime.has(id)) {
      if (!isKeyLocationName(name)) {
        if (this.notInRecord.size >= coverIdsCachedNamesMax) this.notInRecord.clear();
        this.notInRecord.add(name);
      }
      return id;
    }
    if (this.idCache.size >= coverIdsCachedNamesMax) this.idCache.clear();
    this.idCache.set(name, id);
    return id;
  }

  private pin(ids: Iterable<number>): void {
    for (const id of ids) this.pinOne(id);
  }

  private pinOne(id: number): void {
    this.pins.set(id, (this.pins.get(id) ?? 0) + 1);
  }

  private unpin(ids: Iterable<number>): void {
    for (const id of ids) {
      const n = (this.pins.get(id) ?? 0) - 1;
      if (n <= 0) this.pins.delete(id);
      else this.pins.set(id, n);
    }
  }

  /** Pins the covering entries from admission to commit, so removal cannot
   * take them while the write is in flight ("in sync" means not in Q and
   * not about to be). */
  private pinAdmission(change: ChangeIntent, ids: number[], dirty: boolean, hit = false): void {
    if (this.admittedCount >= admissionsMax) this.dropOldestAdmissions();
    this.admittedCount++;
    const key = admissionKey(change);
    const list = this.admitted.get(key) ?? [];
    list.push({ ids, releases: this.idReleases, dirty, hit, expires: this.options.clock.now() + this.leaseMs() });
    this.admitted.set(key, list);
    this.pin(ids);
  }

  private leaseMs(): number {
    return admissionLeaseMs;
  }

  private takeAdmission(change: ChangeIntent): Admitted | undefined {
    const key = admissionKey(change);
    const list = this.admitted.get(key);
    const first = list?.shift();
    if (first !== undefined) this.admittedCount--;
    if (list !== undefined && list.length === 0) this.admitted.delete(key);
    return first;
  }

  /** Bounded like every queue: past the cap, the oldest admissions stop
   * pinning (as if their lease ended; a late commit re-checks coverage). */
  private dropOldestAdmissions(): void {
    for (const [key, list] of this.admitted) {
      if (this.admittedCount < admissionsMax * 0.9) return;
      for (const a of list) this.unpin(a.ids);
      this.admittedCount -= list.length;
      this.admitted.delete(key);
    }
  }

  /** A write that failed after admit releases its pins (aborted); one
   * whose store never says so (no token, hooks swapped meanwhile) holds
   * them until its lease ends. A late commit re-checks coverage. */
  private sweepLeases(): void {
    const now = this.options.clock.now();
    if (now - this.lastSweep < leaseSweepMs) return;
    this.lastSweep = now;
    for (const [key, list] of this.admitted) {
      const live = list.filter((a) => a.expires > now);
      for (const a of list) if (a.expires <= now) this.unpin(a.ids);
      this.admittedCount -= list.length - live.length;
      if (live.length === 0) this.admitted.delete(key);
      else this.admitted.set(key, live);
    }
  }

  /**
   * Pins `ids` for the queued key beyond its entry's `cover`, until the
   * removal of its entry of `seq` or a later one. `seq` only rises: the
   * latest entry's removal releases what they all took.
   */
  private pinExtra(qkey: string, ids: readonly number[], seq: number, cover: readonly number[] = []): void {
    let extra = this.extraPins.get(qkey);
    for (const id of ids) {
      if (cover.includes(id) || extra?.ids.includes(id)) continue;
      if (extra === undefined) {
        extra = { seq, ids: [] };
        this.extraPins.set(qkey, extra);
      }
      extra.ids.push(id);
      this.pinOne(id);
    }
    if (extra !== undefined) extra.seq = Math.max(extra.seq, seq);
  }

  /**
   * The copier removed the Q entry (in sync): its cover's pins go, and the
   * extra ones taken for it or an older entry. Without `removed` it found
   * none (an entry already gone): only the extra pins go, as the cover's
   * went with whatever removed it. A newer entry's are kept: the removal's
   * transaction and a new commit can share one lmdb batch, so the new entry
   * is in Q before this runs, and only locations "not in Q" may leave the
   * record (claims 14-15).
   */
  private onSynced(qkey: string, removed?: Dequeued): void {
    const held = this.held.get(qkey);
    if (held !== undefined && (removed === undefined || held.seq <= removed.seq)) this.dropHeld(qkey, held);
    if (removed !== undefined) this.unpin(removed.cover);
    const extra = this.extraPins.get(qkey);
    if (extra !== undefined && (removed === undefined || extra.seq <= removed.seq)) {
      this.extraPins.delete(qkey);
      this.unpin(extra.ids);
    }
    if (this.waiters.length > 0) this.kick();
  }

  /** At start: every Q entry pins its cover, and what else covers it. */
  private loadPins(): void {
    this.forEachQueued((_qkey, entry) => this.pin(entry.cover));
    this.pinRegained();
  }

  /** Ids of R' that cover a queued key beyond its entry's cover (after a
   * restart, or R' rebuilt from R): pinned as extra pins. */
  private pinRegained(): void {
    this.forEachQueued((qkey, entry) => {
      const change = changeOfQueueKey(qkey);
      if (change !== undefined) this.pinExtra(qkey, this.coverIds(change), entry.seq, entry.cover);
    });
  }

  private forEachQueued(fn: (qkey: string, entry: QEntry) => void): void {
    const { durable } = this.options;
    let after: string | undefined;
    for (let page = 0; page <= copyQueueEntriesMax / 1000; page++) {
      const entries = durable.qScan(after, 1000);
      if (entries.length === 0) break;
      for (const [qkey, entry] of entries) fn(qkey, entry);
      after = entries[entries.length - 1]?.[0];
    }
  }

  /** What covers a queued key: the ids stored with it (an id that left R'
   * meanwhile pins harmlessly) and whatever in R' covers its name now. */
  private queuedCover(qkey: string, entry: QEntry): number[] {
    const ids = new Set(entry.cover);
    const change = changeOfQueueKey(qkey);
    if (change !== undefined) for (const id of this.coverIds(change)) ids.add(id);
    return [...ids];
  }

  // ------------------------------------------------------------ unreachable secondary

  /** Issue 4, "Secondary down": degraded mode admits and tracks the key
   * durably (dirty, resynced when S returns); refuse mode fails the write. */
  private admitUnreachable(change: ChangeIntent): Admission {
    if (this.options.config.onSecondaryDown === 'refuse') {
      throw new SecondaryUnavailableError('The secondary is unreachable and this site refuses writes it cannot record.');
    }
    this.pinAdmission(change, [], true);
    this.options.log?.('admitted while the secondary is unreachable', { change });
    return { hit: false };
  }

  private failWaiters(waiters: Waiter[]): void {
    for (const w of waiters) {
      if (w.resync !== undefined) {
        this.resyncing.delete(w.resync);
        continue;
      }
      if (this.fencedBy) w.reject(this.notPrimary());
      else if (this.options.config.onSecondaryDown === 'refuse') {
        w.reject(new SecondaryUnavailableError('The secondary did not acknowledge the record update.'));
      } else {
        this.pinAdmission(w.change, [], true);
        w.resolve({ hit: false });
      }
    }
  }

  private startProbe(): void {
    if (this.probing || this.stopped) return;
    this.probing = true;
    void (async () => {
      try {
        while (!this.stopped && this.peer !== 'ok' && !this.fencedBy) {
          await this.options.clock.sleep(this.options.config.probeIntervalMs);
          if (this.stopped) return;
          await this.connect();
        }
      } finally {
        this.probing = false;
      }
      if (this.peer === 'ok') this.kick();
    })();
  }

  /**
   * Opens a session: S returns R, and R' becomes exactly R ("On restart R'
   * is rebuilt ... from the secondary"). Sound because R' ⊆ R always holds
   * and no message of an older session can change R afterwards.
   */
  private async connect(): Promise<void> {
    if (this.fencedBy) return;
    try {
      const info = await this.openSession();
      if (this.stopped) return;
      if (info.epoch > this.epoch) return void (await this.fence(new FencedError(info.epoch, undefined)));
      await this.adoptRecord(info.entries);
      this.session = { id: info.session, nextMsgId: info.lastMsgId + 1 };
      this.peer = 'ok';
    } catch (err) {
      if (err instanceof FencedError) return void (await this.fence(err));
      this.session = undefined;
      this.peer = 'unreachable';
      this.options.log?.('secondary unreachable', { err: String(err) });
    }
  }

  /** Two tries: a keep-alive socket the peer just closed fails once. */
  private async openSession(): Promise<SessionInfo> {
    const { target, config } = this.options;
    try {
      return await target.openSession(config.site, this.epoch);
    } catch (err) {
      if (err instanceof FencedError) throw err;
      return target.openSession(config.site, this.epoch);
    }
  }

  private async adoptRecord(entries: LocationEntry[]): Promise<void> {
    const { durable } = this.options;
    await this.dropLost(new Set(entries.map((e) => e.id)));
    const extra = entries.filter((e) => !this.rPrime.has(e.id));
    const consistent: number[] = [];
    for (const e of extra) {
      const known = durable.ids.nameOf(e.id);
      if (known === undefined) await durable.ids.bind([e]);
      if (known === undefined || known === e.name) consistent.push(e.id);
      else this.options.log?.('record entry names differ between sites', { id: e.id, ours: known, theirs: e.name });
    }
    if (consistent.length > 0) this.rPrime.add(consistent, this.rPrime.lastGeneration + 1);
    this.lastActive.touch(consistent, this.options.clock.now());
    // What we meant to remove and S still holds is in R' again: the policy
    // will choose it again when it is still cold. What S does not hold left
    // R for good (an ack we never got): its id may be reused.
    for (const id of this.pendingRemovals) if (!this.rPrime.has(id)) this.toRelease.add(id);
    this.pendingRemovals.clear();
    // Entries R' just regained may cover queued keys: pin them too.
    if (consistent.length > 0) this.pinRegained();
    await this.saveRecord();
  }

  /**
   * R' ⊆ R always holds unless S lost its record (a replaced or restored
   * secondary). Then R' must shrink to R, and queued keys that lose their
   * cover are tracked as dirty, to go back under the record as misses do.
   */
  private async dropLost(inR: Set<number>): Promise<void> {
    const lost = this.rPrime.toBitmap().toArray().filter((id) => !inR.has(id));
    if (lost.length === 0) return;
    this.options.log?.('the secondary lost record entries; they leave R\'', { count: lost.length });
    this.rPrime.remove(lost);
    this.lastActive.forget(lost);
    const uncovered: string[] = [];
    this.forEachQueued((qkey, entry) => {
      if (!this.queuedCover(qkey, entry).some((id) => this.rPrime.has(id))) uncovered.push(qkey);
    });
    if (uncovered.length > 0) await this.options.durable.dirtyAdd(uncovered);
  }

  /** Saves of R' one at a time, in order (each writes its delta). */
  private saveRecord(): Promise<void> {
    const run = this.saving.then(() => this.options.durable.record.save(this.rPrime));
    this.saving = run.catch(() => {});
    return run;
  }

  private async fence(err: FencedError): Promise<void> {
    if (this.fencedBy) return;
    // Issue 4, fencing: "A gateway that learns of a higher epoch stops
    // accepting client writes at once".
    this.fencedBy = { epoch: err.epoch, primary: err.primary };
    this.options.log?.('fenced by a higher epoch', { epoch: err.epoch, primary: err.primary });
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) if (w.resync === undefined) w.reject(this.notPrimary());
    await this.options.durable.setMeta({ epoch: this.epoch, fencedBy: this.fencedBy }).catch(() => {});
  }

  private checkWritable(): void {
    if (this.fencedBy) throw this.notPrimary();
  }

  private notPrimary(): NotPrimaryError {
    const primary = this.fencedBy?.primary;
    return new NotPrimaryError(
      `This site was failed over (epoch ${this.fencedBy?.epoch}) and refuses writes${primary ? `; write to ${primary}` : ''}.`,
      primary,
    );
  }

  // ------------------------------------------------------------ record messages

  /** Starts the sender unless it runs: one message in flight at a time,
   * new misses gather for the next (group commit). */
  private kick(): void {
    if (this.stopped) return;
    if (this.sending) {
      // An event while the sender runs: it may have looked already.
      this.kickAgain = true;
      return;
    }
    this.sending = true;
    this.kickAgain = false;
    void this.pump().then(
      (sent) => {
        this.sending = false;
        // More work after a full pump, or an event it may have missed: go
        // on, letting others run first. No progress (no room yet) and no
        // event: the next event kicks (onSynced, admit, the trim loop), so
        // this never spins.
        const more = sent === pumpRoundsMax && this.waiters.length > 0;
        if ((more || this.kickAgain) && !this.stopped) {
          this.kickAgain = false;
          void Promise.resolve().then(() => this.kick());
        }
      },
      (err) => {
        this.sending = false;
        this.options.log?.('record sender failed', { err: String(err) });
      },
    );
  }

  /** Returns how many messages went out. */
  private async pump(): Promise<number> {
    let sent = 0;
    for (let round = 0; round < pumpRoundsMax && !this.stopped; round++) {
      this.resolveCovered();
      if (this.peer !== 'ok' || this.session === undefined) {
        if (this.waiters.length > 0) this.failWaiters(this.takeAllWaiters());
        return sent;
      }
      this.queueResync();
      await this.releaseIds();
      const batch = await this.compose();
      if (batch === undefined) return sent;
      await this.deliver(batch);
      sent++;
    }
    return sent;
  }

  private takeAllWaiters(): Waiter[] {
    const all = this.waiters;
    this.waiters = [];
    return all;
  }

  /** Waiters whose change became covered meanwhile need no message. */
  private resolveCovered(): void {
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      const cover = w.resync === undefined ? this.coverIds(w.change) : [];
      if (cover.length > 0) {
        this.pinAdmission(w.change, cover, false);
        w.resolve({ hit: false });
      } else still.push(w);
    }
    this.waiters = still;
  }

  /** Degraded mode, S back: put the dirty keys still queued back under the
   * record, as misses would have ("resyncs that set when S returns"). */
  private queueResync(): void {
    const { durable } = this.options;
    if (durable.dirtyCount() === 0 || this.resyncing.size > 0) return;
    for (const qkey of durable.dirtyScan(resyncBatchMax)) {
      const change = changeOfQueueKey(qkey);
      if (change === undefined || durable.qGet(qkey) === undefined) {
        void durable.dirtyDelete([qkey]).catch(() => {});
        continue;
      }
      this.resyncing.add(qkey);
      this.waiters.push({ change, names: [qkey], resolve: () => {}, reject: () => {}, resync: qkey });
    }
  }

  private async compose(): Promise<Batch | undefined> {
    const { config, durable, clock } = this.options;
    const now = clock.now();
    const candidates = this.waiters.slice(0, recordMessageEntriesMax);
    const names = [...new Set(candidates.flatMap((w) => w.names))];
    const ids = await durable.ids.idsOf(names);
    if (this.stopped || this.session === undefined) return undefined;
    const idOf = new Map(names.map((n, i) => [n, ids[i] as number]));
    const wanted = new Set(ids);
    const fresh = new Set(ids.filter((id) => !this.rPrime.has(id)));
    // Invariant 4, "Bounded risk": when the additions would not fit, cold
    // in-sync entries leave first; if still short, misses wait.
    const need = Math.max(0, this.rPrime.size + fresh.size - config.recordEntriesMax);
    const trim = this.trimWanted || need > 0 || candidates.length > 0;
    this.trimWanted = false;
    if (trim && this.chooseAndRemove(need, wanted, now)) {
      // Durable before S hears of it: a crash must not bring back an R'
      // entry that S removed (invariant 2).
      await this.saveRecord();
      if (this.stopped || this.session === undefined) return undefined;
    }
    const { taken, addIds } = this.takeFitting(candidates, idOf);
    const remove = [...this.pendingRemovals].filter((id) => !addIds.includes(id));
    if (addIds.length === 0 && remove.length === 0) return undefined;
    const add = addIds.map((id) => ({ id, name: durable.ids.nameOf(id) as string }));
    const message: RecordMessage = {
      v: replicaWireVersion,
      epoch: this.epoch,
      from: config.site,
      session: this.session.id,
      msgId: this.session.nextMsgId++,
      add,
      remove: remove.slice(0, recordMessageEntriesMax - add.length),
    };
    return { message, waiters: taken, addIds };
  }

  /** "Removals leave R' first, then S" (invariant 2): out of R' now, in the
   * next message; never a pinned id (in Q or admitted) nor one being added. */
  private chooseAndRemove(need: number, wanted: Set<number>, now: number): boolean {
    const { config } = this.options;
    const choice = chooseRemovals({
      record: this.rPrime,
      unsynced: { has: (id) => this.pins.has(id) || wanted.has(id) },
      lastActive: (id) => this.lastActive.get(id),
      need,
      now,
      policy: config.removal,
    });
    if (choice.ids.length === 0) return false;
    this.rPrime.remove(choice.ids);
    this.lastActive.forget(choice.ids);
    for (const id of choice.ids) this.pendingRemovals.add(id);
    return true;
  }

  /** Waiters in arrival order while their new entries fit under the limit. */
  private takeFitting(candidates: Waiter[], idOf: Map<string, number>): { taken: Waiter[]; addIds: number[] } {
    const max = this.options.config.recordEntriesMax;
    const adds = new Set<number>();
    const taken: Waiter[] = [];
    for (const w of candidates) {
      const own = w.names.map((n) => idOf.get(n) as number);
      const extra = own.filter((id) => !this.rPrime.has(id) && !adds.has(id));
      if (this.rPrime.size + adds.size + extra.length > max) {
        // The own location alone may still fit without the predictions.
        const first = own[0] as number;
        const alone = this.rPrime.has(first) || adds.has(first) ? 0 : 1;
        if (this.rPrime.size + adds.size + alone > max) continue;
        if (alone === 1) adds.add(first);
      } else for (const id of extra) adds.add(id);
      taken.push(w);
      // Leave half of the message for removals.
      if (adds.size >= recordMessageEntriesMax / 2) break;
    }
    const takenSet = new Set(taken);
    this.waiters = this.waiters.filter((w) => !takenSet.has(w));
    return { taken, addIds: [...adds] };
  }

  /** Sends with bounded retries; on S's durable ack: "Additions reach S
   * first, then R'" (invariant 2), then the waiting writes may commit
   * (write path step 3). */
  private async deliver(batch: Batch): Promise<void> {
    const { target, clock, config, metrics } = this.options;
    let lastErr: unknown;
    for (let attempt = 0; attempt < recordSendAttempts && !this.stopped; attempt++) {
      if (attempt > 0) await clock.sleep(config.sendRetryMs * 2 ** (attempt - 1));
      try {
        await target.applyRecord(batch.message);
        metrics?.recordMessages.inc({ outcome: 'acked' });
        if (this.stopped) return;
        this.applyAck(batch);
        return;
      } catch (err) {
        lastErr = err;
        if (err instanceof FencedError) {
          await this.fence(err);
          break;
        }
        if (err instanceof StaleSessionError) {
          // Another session superseded ours (never applied): reopen and
          // send the waiters again in the new one.
          if (await this.reopen(batch)) return;
          break;
        }
      }
    }
    metrics?.recordMessages.inc({ outcome: 'failed' });
    if (this.stopped) return;
    this.onSendFailed(batch, lastErr);
  }

  private async reopen(batch: Batch): Promise<boolean> {
    this.session = undefined;
    await this.connect();
    if (this.session === undefined || this.stopped) return false;
    this.waiters.unshift(...batch.waiters);
    return true;
  }

  private applyAck(batch: Batch): void {
    const { clock } = this.options;
    this.options.log?.('record message acked', { msgId: batch.message.msgId, add: batch.message.add.map((e) => e.name), remove: batch.message.remove });
    const acked = batch.message.remove;
    for (const id of acked) this.pendingRemovals.delete(id);
    this.rPrime.add(batch.addIds, this.rPrime.lastGeneration + 1);
    this.lastActive.touch(batch.addIds, clock.now());
    this.peer = 'ok';
    for (const w of batch.waiters) this.settleAcked(w);
    for (const id of acked) this.toRelease.add(id);
    void this.saveRecord().catch((err) => this.options.log?.('saving the record copy failed', { err: String(err) }));
  }

  private settleAcked(w: Waiter): void {
    if (w.resync !== undefined) {
      const qkey = w.resync;
      this.resyncing.delete(qkey);
      const change = changeOfQueueKey(qkey);
      const cover = change === undefined ? [] : this.coverIds(change);
      if (cover.length === 0) return;
      // Pinned while queued. A key whose copy finished while the message
      // was out is in sync: a pin taken for no entry would last until the
      // key's next copy (the simulation's convergence check caught it).
      const seq = this.options.durable.qSeq(qkey);
      if (seq !== undefined) this.pinExtra(qkey, cover, seq);
      void this.options.durable.dirtyDelete([qkey]).catch(() => {});
      return;
    }
    const cover = this.coverIds(w.change);
    if (cover.length === 0) {
      // Only if a racing removal took it; ask again.
      this.waiters.push(w);
      return;
    }
    this.pinAdmission(w.change, cover, false);
    w.resolve({ hit: false });
  }

  /**
   * "Ids are reused only after the primary learned that the secondary
   * removed them from R." Runs in the sender between messages, so no id is
   * freed while a message being composed names it.
   */
  private async releaseIds(): Promise<void> {
    if (this.toRelease.size === 0) return;
    const free = [...this.toRelease].filter((id) => !this.rPrime.has(id) && !this.pendingRemovals.has(id));
    this.toRelease.clear();
    if (free.length === 0) return;
    this.idReleases++;
    try {
      await this.options.durable.ids.release(free);
    } catch (err) {
      this.options.log?.('releasing location ids failed', { err: String(err) });
    } finally {
      // Again once done: a name looked up while the release ran may have
      // been cached with an id that is free now (coverIds' cache).
      this.idReleases++;
    }
  }

  private onSendFailed(batch: Batch, err: unknown): void {
    // The message may have reached S: its additions may be in R. They go
    // out as removals later so |R| stays bounded (invariant 4).
    for (const id of batch.addIds) if (!this.rPrime.has(id)) this.pendingRemovals.add(id);
    this.session = undefined;
    if (!this.fencedBy) this.peer = 'unreachable';
    this.options.log?.('record message failed', { err: String(err) });
    this.failWaiters([...batch.waiters, ...this.takeAllWaiters()]);
    this.startProbe();
  }

  // ------------------------------------------------------------ trim

  /** "or in a standalone trim message when no miss comes for a while". */
  private async trimLoop(): Promise<void> {
    const { clock, config } = this.options;
    while (!this.stopped) {
      await clock.sleep(config.trimIdleMs);
      if (this.stopped) return;
      const idle = clock.now() - this.lastMissAt >= config.trimIdleMs;
      if (idle && this.peer === 'ok' && this.waiters.length === 0) {
        this.trimWanted = true;
        this.kick();
      }
      // Safety net: misses waiting for room are retried at least this often.
      if (this.waiters.length > 0 && this.peer === 'ok') this.kick();
    }
  }

  private countWrite(result: 'hit' | 'miss'): void {
    this.counts[result === 'hit' ? 'hits' : 'misses']++;
  }
}


/** Q is keyed by the location the copier must bring in sync: the object key,
 * or the bucket. Upload parts are not replicated (the final object is). */
export function queueKeyOf(change: ChangeIntent): string | undefined {
  switch (change.kind) {
    case 'put':
    case 'delete':
    case 'tagging':
      return locationName({ kind: 'key', bucket: change.bucket, key: change.key });
    case 'bucket-create':
    case 'bucket-delete':
      return locationName({ kind: 'bucket', bucket: change.bucket });
    default:
      return undefined;
  }
}

/** The change a Q key stands for (coverage checks after a restart). */
export function changeOfQueueKey(qkey: string): ChangeIntent | undefined {
  const loc = parseLocationName(qkey);
  if (loc?.kind === 'key') return { kind: 'put', bucket: loc.bucket, key: loc.key };
  if (loc?.kind === 'bucket') return { kind: 'bucket-create', bucket: loc.bucket, key: '' };
  return undefined;
}

/** Memory a held copy keeps: a small body may be a slice of a shared pool
 * (Buffer.allocUnsafe), which it keeps alive whole; plus the meta. */
function heldCost(held: HeldCopy): number {
  return held.body.buffer.byteLength + heldMetaBytes;
}

/** A rough upper bound of one object meta in memory (keys, headers). */
const heldMetaBytes = 1024;

/** Every hit's admission (callers only read it). */
const admittedHit: Promise<Admission> = Promise.resolve(Object.freeze({ hit: true }));

function admissionKey(change: ChangeIntent): string | symbol {
  return change.token ?? `${change.kind}\0${change.bucket}\0${change.key}\0${change.uploadId ?? ''}`;
}
