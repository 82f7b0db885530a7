// The copier (PROTOCOL.md write path step 6; claims 3, 23): drains Q
// asynchronously. "Reads the current version of K, sends it (or a delete) to
// S, and on S's durable ack removes K from Q, unless K was written again
// meanwhile. Each write carries a per-key sequence number so S drops a stale
// copy that arrives late."

import type { Clock, Random } from '../core/clock.ts';
import {
  copyQueueEntriesMax,
  copyReadyKeysMax,
  copyRetryBaseMs,
  copyRetryMaxMs,
  replicaBatchBytesMax,
  replicaBatchGapMs,
  replicaBatchInFlightMax,
  replicaBatchObjectBytesMax,
  replicaBatchObjectsLegacyMax,
} from '../core/limits.ts';
import type { ObjectStore, ReplicaBody } from '../objects/types.ts';
import { parseLocationName } from '../predict/locations.ts';
import type { BatchResult, ReplicaCopy } from './batch.ts';
import type { ReplicaMetrics } from './metrics.ts';
import type { Dequeued, PrimaryDurable, QEntry } from './state.ts';
import { copyCurrentVersion } from './copy-one.ts';
import type { CopyPacer, PacingStatus } from './pacing.ts';
import type { ReplicaTarget } from './target.ts';
import { FencedError } from './target.ts';

export interface CopierOptions {
  durable: PrimaryDurable;
  target: ReplicaTarget;
  clock: Clock;
  random: Random;
  concurrency: number;
  epoch: () => number;
  store: () => ObjectStore | undefined;
  /** The entry left Q (in sync): its seq and cover; without them, none
   * was found (never committed, or already gone). */
  onSynced: (qkey: string, removed?: Dequeued) => void;
  onFenced: (err: FencedError) => void;
  /** The version committed with `seq` when it is still in memory: sent
   * without reading the store (a small PUT's meta and body). */
  heldCopy?: (qkey: string, seq: number) => ReplicaBody | undefined;
  metrics?: ReplicaMetrics;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Full rescans of Q (entries whose notify raced their commit). */
  rescanMs?: number;
  /** The ready window's size (copyReadyKeysMax; smaller in tests). */
  readyKeysMax?: number;
  /** Copy priority (pacing.ts): holds copies back while clients are busy,
   * within its bounds. Without it every copy goes as soon as it can. */
  pacer?: CopyPacer;
}

interface Retry {
  attempts: number;
}

/** An entry missing from Q this many times in a row was rolled back. */
const phantomChecksMax = 5;
/** Every this many rescan periods, a full scan refreshes the lag. */
const rescanLagEvery = 6;
/** Q keys read per rescan page. */
const scanPage = 1000;
/** Pages of Q one refill of the ready window reads at most before the
 * loop yields (keys all tracked already, such as backing off, are skipped). */
const fillPagesMax = 8;
/** Q keys of buckets (locationName of a bucket location, predict/locations.ts). */
const bucketQueueKeyPrefix = 'b/';

/** Bodies read back from the store are copied into slabs of this size
 * (below malloc's mmap threshold): one allocation per slab, not per copy. */
const bodySlabBytes = 64 * 1024;

/**
 * Copies of a batch's bodies, packed into shared slabs. A 4 KiB body in a
 * buffer of its own costs an allocation (and an external ArrayBuffer for the
 * GC) per copy; here the store's view is copied once, into the slab. A slab
 * lives as long as any body in it: at most one batch.
 */
export class BodySlabs {
  private slab: Buffer | undefined;
  private used = 0;

  /** `view` may be reused by its owner after this call: it is copied now. */
  copy(view: Buffer): Buffer {
    const size = view.length;
    if (this.slab === undefined || this.used + size > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(bodySlabBytes, size));
      this.used = 0;
    }
    const at = this.used;
    // Through subarray: lmdb's shared buffer reports the value's length in
    // an overridden `length` over a larger array, which Buffer.copy (it
    // sets the whole array when the end is `length`) would overrun.
    this.slab.set(view.subarray(0, size), at);
    this.used += size;
    return this.slab.subarray(at, at + size);
  }
}

/** A small object's copy, read with its Q entry's seq. */
interface Pending {
  qkey: string;
  seq: number;
  item: ReplicaCopy;
}

/**
 * Small objects (bodies inline in P's metadata store) travel in batches
 * (batch.ts): their Q entries and bodies are read synchronously in one
 * slice, sent in one request, applied on S in one transaction, and their Q
 * entries removed in one transaction here. The rest (large bodies, deletes,
 * buckets, or a target or store without batches) go one copy per request,
 * `concurrency` at a time. Profiles of the 4 KiB c16 benchmark found the
 * per-copy costs (streams, promises, one request and two transactions each)
 * dominating both sites' CPU, on the cores the client writes need.
 */
export class Copier {
  /** Keys to look at: with singles, a window of at most readyKeysMax keys
   * onto Q (buckets' copies aside). A key is in at most one of ready,
   * singles and inFlight. */
  private readonly ready = new Set<string>();
  /** Q may hold keys no set here tracks: a key that came past the full
   * window was dropped, and a scan of Q from `cursor` finds it (fill). */
  private untracked = false;
  /** A key was dropped since the current pass over Q began. */
  private droppedThisPass = false;
  /** Where the next refill reads Q from; undefined: a new pass. */
  private cursor: string | undefined;
  private filling = false;
  /** Ready keys that go one copy per request. */
  private readonly singles = new Set<string>();
  private readonly inFlight = new Set<string>();
  /** Keys written again while their copy was in flight. */
  private readonly again = new Set<string>();
  /** Failed attempts per key (for the backoff), until a success. */
  private readonly retries = new Map<string, Retry>();
  /** Keys waiting out their backoff, with the time they may go again. */
  private readonly delayed = new Map<string, number>();
  private readonly phantoms = new Map<string, number>();
  /** Batch reads that threw (each such copy went alone instead). */
  private batchReadFailures = 0;
  /** Notified keys whose commit has not resolved yet: in Q already, not yet
   * ready (the rescan check counts them as tracked). */
  private notifying = 0;
  private singlesInFlight = 0;
  private batchesInFlight = 0;
  private lastBatchAt = -Infinity;
  private running = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private bytes = 0;
  private objects = 0;
  private oldestAt: number | undefined;

  /** Keys tracked at most in ready and singles (the window onto Q). */
  private readonly windowMax: number;

  constructor(private readonly options: CopierOptions) {
    this.windowMax = options.readyKeysMax ?? copyReadyKeysMax;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // Without yields this runs to its end before returning (no await is reached).
    void this.rescan(false);
    void this.loop();
    void this.rescanLoop();
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** A change to `qkey` committed (or is committing). */
  notify(qkey: string): void {
    this.retries.delete(qkey);
    this.delayed.delete(qkey);
    if (this.windowFull() && this.deferring && !this.inFlight.has(qkey) && !qkey.startsWith(bucketQueueKeyPrefix)) {
      // Copies held for clients and the window full: the key is in Q (this
      // runs in its commit's transaction), and a refill finds it when copies
      // go. No promise or set entry per client write meanwhile.
      this.dropped();
      this.options.pacer?.held();
      return;
    }
    // Called inside the transaction that writes the Q entry: a read before
    // its commit would find no entry (and back off as for a phantom).
    this.notifying++;
    void this.options.durable.committed().then(() => {
      this.notifying--;
      this.enqueue(qkey);
    });
  }

  private enqueue(qkey: string): void {
    if (this.stopped) return;
    if (this.inFlight.has(qkey)) this.again.add(qkey);
    else if (!this.singles.has(qkey)) this.addReady(qkey);
    const pacer = this.options.pacer;
    pacer?.held();
    // Copies held back for clients: a new one changes nothing until the
    // pacer's next look (a wake per client write would cost their CPU).
    if (pacer?.deferring !== true) this.wake?.();
  }

  stats(): { bytes: number; objects: number } {
    return { bytes: this.bytes, objects: this.objects };
  }

  /** Keys tracked in the ready window now, and whether Q holds others. */
  window(): { tracked: number; untracked: boolean } {
    return { tracked: this.ready.size + this.singles.size, untracked: this.untracked };
  }

  /** Age of the oldest queued entry (replication lag), from the last scan. */
  oldestAgeMs(): number {
    if (this.options.durable.qCount() === 0) return 0;
    return this.oldestAt === undefined ? 0 : Math.max(0, this.options.clock.now() - this.oldestAt);
  }

  /** A bucket's copy (create or delete) goes on the single path and is
   * never held for clients: it is rare and cheap, and every copy of an
   * object in it (and every write after a failover) needs it on S. */
  private addReady(qkey: string): void {
    if (qkey.startsWith(bucketQueueKeyPrefix)) this.singles.add(qkey);
    else if (!this.windowFull() || this.ready.has(qkey)) this.ready.add(qkey);
    else this.dropped();
  }

  /** Singles count too: without batches, every ready key becomes one. */
  private windowFull(): boolean {
    return this.ready.size + this.singles.size >= this.windowMax;
  }

  /** A queued key left untracked: a refill pass must find it. */
  private dropped(): void {
    this.untracked = true;
    this.droppedThisPass = true;
  }

  private tracks(qkey: string): boolean {
    return this.ready.has(qkey) || this.singles.has(qkey) || this.inFlight.has(qkey) || this.delayed.has(qkey);
  }

  /**
   * Refills the ready window from Q when it is half empty and Q holds keys
   * it does not track, reading on from where the last refill stopped. A
   * pass that reaches Q's end with no key dropped since it began has seen
   * every key: a pass begins only once the commits of the keys dropped
   * before it are visible (durable.committed), so none can hide behind the
   * cursor. Returns true when it stopped at its page budget with room left
   * (the loop comes back at once).
   */
  private async fill(): Promise<boolean> {
    if (!this.untracked || this.filling || this.ready.size + this.singles.size > this.windowMax / 2) return false;
    this.filling = true;
    try {
      if (this.cursor === undefined) {
        this.droppedThisPass = false;
        await this.options.durable.committed();
      }
      for (let page = 0; page < fillPagesMax; page++) {
        if (this.stopped || this.windowFull()) return false;
        const entries = this.options.durable.qScan(this.cursor, scanPage);
        if (entries.length === 0) {
          this.cursor = undefined;
          if (!this.droppedThisPass) this.untracked = false;
          return this.untracked; // a new pass, next turn
        }
        for (const [qkey] of entries) if (!this.tracks(qkey)) this.addReady(qkey);
        this.cursor = entries[entries.length - 1]?.[0];
      }
      return !this.windowFull();
    } finally {
      this.filling = false;
    }
  }

  /** True while copies are held back for clients (background priority). */
  get deferring(): boolean {
    return this.options.pacer?.deferring === true;
  }

  /** Copy priority and how far behind the copier is (pacing.ts). */
  pacing(): PacingStatus | undefined {
    return this.options.pacer?.status();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.promoteRetries();
      const until = this.deferUntil();
      if (until !== undefined) {
        // Held: object copies. Buckets' copies (addReady) still go.
        this.startSingles();
        await this.idle(until);
        continue;
      }
      const refill = await this.fill();
      // One batch per turn at most: client requests get the loop in between.
      const more = this.dispatch() || refill;
      this.noteBacklog();
      if (more) await new Promise<void>((resolve) => setImmediate(resolve));
      else await this.idle();
    }
  }

  /** When to look again if copies are held back for clients; undefined: copy now. */
  private deferUntil(): number | undefined {
    const pacer = this.options.pacer;
    if (pacer === undefined || !this.noteBacklog()) return undefined;
    return pacer.deferUntil(this.options.durable.qCount());
  }

  /** Tells the pacer whether copies wait to be sent; true when some do. */
  private noteBacklog(): boolean {
    const waiting = this.ready.size + this.singles.size > 0 || this.untracked;
    if (!waiting) this.options.pacer?.caughtUp();
    return waiting;
  }

  /** Starts what the limits allow; true when another batch could start now. */
  private dispatch(): boolean {
    const batching = this.batching();
    if (!batching) {
      for (const qkey of this.ready) this.singles.add(qkey);
      this.ready.clear();
    } else if (this.batchWanted()) this.startBatch();
    this.startSingles();
    return batching && this.batchWanted();
  }

  private batching(): boolean {
    return this.options.target.putObjects !== undefined && this.options.store()?.readInlineObject !== undefined;
  }

  /** A full batch goes at once (up to replicaBatchInFlightMax); a partial
   * one when none is in flight and replicaBatchGapMs passed since the last:
   * under load, fewer and fuller requests. */
  private batchWanted(): boolean {
    if (this.ready.size === 0 || this.batchesInFlight >= replicaBatchInFlightMax) return false;
    if (this.ready.size >= this.batchItemsMax()) return true;
    return this.batchesInFlight === 0 && this.options.clock.now() >= this.partialBatchAt();
  }

  /** Copies per batch request: what S accepts (older secondaries: 64). */
  private batchItemsMax(): number {
    return this.options.target.batchObjectsMax?.() ?? replicaBatchObjectsLegacyMax;
  }

  private partialBatchAt(): number {
    return this.lastBatchAt + replicaBatchGapMs;
  }

  private startSingles(): void {
    while (this.singlesInFlight < this.options.concurrency && this.singles.size > 0) {
      const qkey = this.singles.values().next().value as string;
      this.singles.delete(qkey);
      this.inFlight.add(qkey);
      this.singlesInFlight++;
      void this.copyOne(qkey).finally(() => {
        this.singlesInFlight--;
        this.settle(qkey);
        this.wake?.();
      });
    }
  }

  private settle(qkey: string): void {
    this.inFlight.delete(qkey);
    if (this.again.delete(qkey)) this.ready.add(qkey);
  }

  /** Reads up to a batch of ready small objects (Q entry first, then the
   * object: a newer object than the entry only means another round) and
   * sends them; other keys go to the single-copy path. */
  private startBatch(): void {
    const store = this.options.store();
    if (store?.readInlineObject === undefined) return;
    const batch: Pending[] = [];
    const slabs = new BodySlabs();
    const copyBody = (view: Buffer) => slabs.copy(view);
    let bytes = 0;
    let looked = 0;
    const itemsMax = this.batchItemsMax();
    for (const qkey of this.ready) {
      if (batch.length >= itemsMax || looked >= itemsMax * 2) break;
      looked++;
      this.ready.delete(qkey);
      const pending = this.readSmall(store, qkey, copyBody);
      if (pending === undefined) continue;
      // Bodies fill half a batch at most: the other half is for the metas.
      if (batch.length > 0 && bytes + pending.item.body.length > replicaBatchBytesMax / 2) {
        this.ready.add(qkey); // the next batch
        break;
      }
      bytes += pending.item.body.length;
      batch.push(pending);
      this.inFlight.add(qkey);
    }
    if (batch.length === 0) return;
    this.lastBatchAt = this.options.clock.now();
    this.batchesInFlight++;
    void this.copyBatch(batch).finally(() => {
      this.batchesInFlight--;
      for (const p of batch) this.settle(p.qkey);
      this.wake?.();
    });
  }

  /** The key's copy if it can go in a batch; else it is routed elsewhere. */
  private readSmall(store: ObjectStore, qkey: string, copyBody: (view: Buffer) => Buffer): Pending | undefined {
    const seq = this.options.durable.qSeq(qkey);
    if (seq === undefined) {
      this.missingEntry(qkey);
      return undefined;
    }
    this.phantoms.delete(qkey);
    let found: ReplicaBody | null | undefined = this.options.heldCopy?.(qkey, seq);
    try {
      const loc = found === undefined ? parseLocationName(qkey) : undefined;
      if (loc?.kind === 'key') found = store.readInlineObject?.(loc.bucket, loc.key, copyBody);
    } catch (err) {
      // The copy goes alone, by the stream path, which reports a damaged
      // object itself; but a fault of the batch read alone (our bug) would
      // only show as a slowdown, so it is logged (the first, then 1 in 1000).
      if (this.batchReadFailures++ % 1000 === 0) {
        this.options.log?.('reading a small copy for a batch failed; it goes alone', { qkey, failures: this.batchReadFailures, err: String(err) });
      }
      found = undefined;
    }
    if (!found || found.body.length > replicaBatchObjectBytesMax) {
      this.singles.add(qkey);
      return undefined;
    }
    return { qkey, seq, item: { copy: { epoch: this.options.epoch(), meta: found.meta }, body: found.body } };
  }

  private async copyBatch(batch: Pending[]): Promise<void> {
    const { durable, target } = this.options;
    let results: BatchResult[];
    try {
      results = await target.putObjects!(batch.map((p) => p.item));
      if (results.length !== batch.length) throw new Error('batch answer has the wrong number of results');
    } catch (err) {
      if (err instanceof FencedError) return this.options.onFenced(err);
      this.options.log?.('batch copy failed; will retry', { objects: batch.length, err: String(err) });
      for (const p of batch) this.scheduleRetry(p.qkey);
      return;
    }
    if (this.stopped) return;
    const sent: Array<[string, number]> = [];
    let bytes = 0;
    batch.forEach((p, i) => {
      const r = results[i]!;
      if ('applied' in r) {
        sent.push([p.qkey, p.seq]);
        bytes += p.item.copy.meta.size;
        return;
      }
      this.options.log?.('copy failed; will retry', { qkey: p.qkey, err: `${r.status} ${r.code}: ${r.message}` });
      this.scheduleRetry(p.qkey);
    });
    this.bytes += bytes;
    this.objects += sent.length;
    this.options.metrics?.bytesReplicated.inc(bytes);
    if (sent.length > 0) this.options.metrics?.objectsReplicated.inc({ op: 'put' }, sent.length);
    // "on S's durable ack removes K from Q, unless K was written again
    // meanwhile" (write path step 6): one transaction for the batch.
    let removed: Map<string, readonly number[]>;
    try {
      removed = await durable.qDeleteIfSeqMany(sent);
    } catch {
      for (const [qkey] of sent) this.scheduleRetry(qkey);
      return;
    }
    for (const [qkey, seq] of sent) {
      this.retries.delete(qkey);
      const cover = removed.get(qkey);
      if (cover !== undefined) this.options.onSynced(qkey, { seq, cover });
      else this.ready.add(qkey);
    }
  }

  /** Waits for a notify, a finished copy, the next retry time or `until`
   * (the pacer's next look). */
  private idle(until?: number): Promise<void> {
    const { clock } = this.options;
    let next = until ?? Infinity;
    for (const at of this.delayed.values()) next = Math.min(next, at);
    // Held copies wait for the pacer's look, not for the next partial batch.
    const held = until !== undefined;
    if (!held && this.ready.size > 0 && this.batchesInFlight === 0 && this.batching()) next = Math.min(next, this.partialBatchAt());
    return new Promise<void>((resolve) => {
      const done = () => {
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
      if (next !== Infinity) void clock.sleep(Math.max(0, next - clock.now())).then(() => this.wake === done && done());
    });
  }

  private promoteRetries(): void {
    const now = this.options.clock.now();
    for (const [qkey, at] of this.delayed) {
      if (at > now) continue;
      this.delayed.delete(qkey);
      if (this.inFlight.has(qkey)) this.again.add(qkey);
      else if (!this.singles.has(qkey)) this.addReady(qkey);
    }
  }

  private async rescanLoop(): Promise<void> {
    const every = this.options.rescanMs ?? 5000;
    for (let round = 1; !this.stopped; round++) {
      await this.options.clock.sleep(every);
      if (this.stopped) return;
      // A full scan costs O(|Q|): only when Q holds keys we do not track
      // (a notify that raced its commit), or now and then for the lag.
      // Commits not resolved yet count as tracked: without them, every
      // check under a steady write load found Q ahead of the ready set by
      // the writes in flight and scanned all of Q (~65 ms at 25,000
      // entries, every 5 s of a burst). A key notified twice meanwhile
      // counts twice: at worst a lost notify waits for the lag scan.
      // Keys past the window are the refill's to find (untracked).
      const tracked = this.ready.size + this.singles.size + this.inFlight.size + this.delayed.size + this.notifying;
      if ((!this.untracked && this.options.durable.qCount() > tracked) || round % rescanLagEvery === 0) {
        await this.rescan(true);
        if (this.stopped) return;
        this.wake?.();
      }
    }
  }

  /**
   * Reads Q a page at a time: every entry not in flight or backing off
   * becomes ready, as far as the window goes (the rest is left to fill).
   * With `yieldBetweenPages` client requests get the event loop after each
   * page (~2.5 ms for 1,000 entries): read in one go, the lag scan held it
   * ~65 ms at 25,000 entries and would hold it seconds at Q's bound. Each
   * page is read and applied in one turn, so what it sees is consistent; a
   * key queued behind the cursor meanwhile was notified, one copied
   * meanwhile is gone from the pages still to come. At start it runs to the
   * end without yielding (nothing is served yet, and the loop that starts
   * next must see every queued key).
   */
  private async rescan(yieldBetweenPages: boolean): Promise<void> {
    const { durable } = this.options;
    let after: string | undefined;
    let oldest: number | undefined;
    for (let page = 0; page <= copyQueueEntriesMax / scanPage; page++) {
      if (page > 0 && yieldBetweenPages) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.stopped) return;
      }
      const entries = durable.qScan(after, scanPage);
      if (entries.length === 0) break;
      for (const [qkey, entry] of entries) {
        oldest = oldest === undefined ? entry.at : Math.min(oldest, entry.at);
        if (!this.inFlight.has(qkey) && !this.delayed.has(qkey) && !this.singles.has(qkey)) {
          this.addReady(qkey);
          // Its Q entry tells how long it has waited (a restart, a lost notify).
          this.options.pacer?.held(entry.at);
        }
      }
      if (entries.length < scanPage) break;
      after = entries[entries.length - 1]?.[0];
    }
    this.oldestAt = oldest;
  }

  private async copyOne(qkey: string): Promise<void> {
    const { durable } = this.options;
    const entry = durable.qGet(qkey);
    if (entry === undefined) return this.missingEntry(qkey);
    this.phantoms.delete(qkey);
    try {
      await this.send(qkey, entry);
    } catch (err) {
      if (err instanceof FencedError) return this.options.onFenced(err);
      this.options.log?.('copy failed; will retry', { qkey, err: String(err) });
      return this.scheduleRetry(qkey);
    }
    if (this.stopped) return;
    // "on S's durable ack removes K from Q, unless K was written again
    // meanwhile" (write path step 6).
    let cover: readonly number[] | undefined;
    try {
      cover = await durable.qDeleteIfSeq(qkey, entry.seq);
    } catch {
      return this.scheduleRetry(qkey);
    }
    this.retries.delete(qkey);
    if (cover !== undefined) this.options.onSynced(qkey, { seq: entry.seq, cover });
    else this.ready.add(qkey);
  }

  /** Not in Q: already synced by a racing copy, a commit not yet visible,
   * or a commit that rolled back after `committed` ran. */
  private missingEntry(qkey: string): void {
    const seen = (this.phantoms.get(qkey) ?? 0) + 1;
    if (seen < phantomChecksMax) {
      this.phantoms.set(qkey, seen);
      this.scheduleRetry(qkey);
      return;
    }
    this.phantoms.delete(qkey);
    this.retries.delete(qkey);
    this.delayed.delete(qkey);
    this.options.onSynced(qkey);
  }

  private async send(qkey: string, entry: QEntry): Promise<void> {
    const { target, metrics } = this.options;
    const sent = await copyCurrentVersion({ target, store: this.options.store(), epoch: this.options.epoch(), metrics }, qkey, entry);
    this.bytes += sent.bytes;
    this.objects++;
  }

  /** Exponential backoff with full jitter (injected Random). */
  private scheduleRetry(qkey: string): void {
    const prev = this.retries.get(qkey);
    const attempts = (prev?.attempts ?? 0) + 1;
    const cap = Math.min(copyRetryMaxMs, copyRetryBaseMs * 2 ** Math.min(attempts, 20));
    const delay = cap / 2 + this.options.random.next() * (cap / 2);
    this.retries.set(qkey, { attempts });
    this.delayed.set(qkey, this.options.clock.now() + delay);
  }
}

