// Deterministic simulation of a primary and its secondary (issue 3,
// "Proof"): seeded random schedules of writes, deletes, tagging, multipart
// uploads and bucket changes, with message loss, delay, reordering,
// partitions and crashes of either site at any step (in-flight work lost,
// durable state kept). After every step it checks:
//   - coverage (invariant 1): every key (or bucket) on which the two sites'
//     committed states differ is covered by S's durable R (or, in degraded
//     mode, is in P's durable dirty set);
//   - R' ⊆ R (invariant 2), for P's live and P's durable copy;
//   - |R| <= recordEntriesMax (invariant 4);
// and at the end, once faults stop, that both sites converge. With
// syncCopyOnMiss (claim 2), at the ack of every write that missed the
// record: S holds that version or a newer one, unless the copy was left to
// the copier because S was unreachable or the copy failed (counted).

import { Readable } from 'node:stream';
import type { ChangeHooks, CommittedChange, WriteToken } from '../../core/changes.ts';
import type { Random } from '../../core/clock.ts';
import { seededRandom } from '../../core/clock.ts';
import { coveringNames, parseLocationName } from '../../predict/locations.ts';
import { Predictions, defaultPredictorConfig } from '../../predict/predictions.ts';
import { RecentWrites } from '../../predict/recent.ts';
import { PrimaryReplicator } from '../primary.ts';
import type { OnSecondaryDown } from '../primary.ts';
import type { SyncCopyOutcome } from '../sync-copy.ts';
import { predictWith } from '../predict.ts';
import { SecondaryService } from '../secondary.ts';
import { MemPrimaryDurable, MemSecondaryDurable } from '../state.ts';
import { VirtualClock } from './clock.ts';
import { SimNetwork, SimTarget } from './network.ts';
import { SimObjectStore, newSimDisk, objectId } from './store.ts';
import type { SimDisk } from './store.ts';

export interface SimOptions {
  seed: number;
  steps: number;
  mode: OnSecondaryDown;
  recordEntriesMax: number;
  /** Use src/predict's predictors (else own location only). */
  predictors: boolean;
  /** Claim 2: misses acked only once S holds their data. */
  syncCopyOnMiss?: boolean;
}

export interface SimResult {
  ok: boolean;
  seed: number;
  failure?: string;
  step?: number;
  stats: {
    ops: number;
    opErrors: number;
    crashesP: number;
    crashesS: number;
    delivered: number;
    dropped: number;
    hits: number;
    misses: number;
    /** Keys (or buckets) seen differing between the sites, summed over
     * steps: the coverage check had something to check. */
    differing: number;
    /** syncCopyOnMiss: key writes acked after a miss; of them, checked on
     * S at the ack, and left to the copier (S down or the copy failed). */
    syncAcked: number;
    syncCopied: number;
    syncLeft: number;
  };
}

const dirs = ['logs/2026/11/29/', 'logs/2026/11/30/', 'img/', '', 'a/b/c/'];
const files = ['f0', 'f1', 'part-0001', 'part-0002'];
const buckets = ['b1', 'b2'];
const requestTimeoutMs = 500;
/** Steps of the final fault-free phase at most. */
const settleStepsMax = 4000;

class InvariantError extends Error {}

async function drain(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class Simulation {
  readonly clock = new VirtualClock();
  readonly random: Random;
  readonly net = new SimNetwork();
  readonly diskP: SimDisk = newSimDisk();
  readonly diskS: SimDisk = newSimDisk();
  private durP: MemPrimaryDurable;
  private durS: MemSecondaryDurable;
  private storeP: SimObjectStore;
  private storeS: SimObjectStore;
  private primary!: PrimaryReplicator;
  private target!: SimTarget;
  private secondary: SecondaryService | undefined;
  private sDownSteps = 0;
  private readonly recent = new RecentWrites({ windowMs: 60_000 });
  /** Writes admitted as misses, and what their synchronous copy became. */
  private readonly missTokens = new Set<WriteToken>();
  private readonly syncOutcomes = new Map<WriteToken, SyncCopyOutcome>();
  /** A check that failed inside a client operation (whose errors the
   * workload swallows): check() raises it. */
  private syncFailure: string | undefined;
  readonly stats: SimResult['stats'] = {
    ops: 0, opErrors: 0, crashesP: 0, crashesS: 0, delivered: 0, dropped: 0, hits: 0, misses: 0, differing: 0,
    syncAcked: 0, syncCopied: 0, syncLeft: 0,
  };

  constructor(private readonly options: SimOptions) {
    this.random = seededRandom(options.seed);
    // Record commits take virtual time, like an fsync: crashes land between
    // a change in memory and its durable commit.
    const commitDelay = () => this.clock.sleep(Math.floor(this.random.next() * 3));
    this.durP = new MemPrimaryDurable(undefined, commitDelay);
    this.durS = new MemSecondaryDurable(undefined, commitDelay);
    for (const disk of [this.diskP, this.diskS]) {
      disk.buckets.set('b1', { name: 'b1', created: 0, region: 'us-east-1' });
    }
    this.storeS = new SimObjectStore(this.diskS, { admit: async () => ({ hit: true }), committed: () => {} }, this.clock);
    this.storeP = new SimObjectStore(this.diskP, { admit: async () => ({ hit: true }), committed: () => {} }, this.clock);
  }

  async start(): Promise<void> {
    await this.startSecondary();
    this.startPrimary();
    await drain();
  }

  private async startSecondary(): Promise<void> {
    const service = new SecondaryService({ durable: this.durS, store: this.storeS, clock: this.clock, primaryUrl: 'http://p' });
    this.storeS.setHooks(service.hooks());
    await service.start();
    if (process.env.SIM_TRACE) this.traceSecondary(service);
    this.secondary = service;
  }

  private startPrimary(): void {
    this.target = new SimTarget(this.net, () => this.secondary, this.clock, requestTimeoutMs);
    const predictions = new Predictions(defaultPredictorConfig);
    const predict = this.options.predictors
      ? predictWith(predictions, this.recent, (bucket, prefix) => this.keysUnder(bucket, prefix))
      : undefined;
    this.primary = new PrimaryReplicator({
      durable: this.durP,
      target: this.target,
      clock: this.clock,
      random: this.random,
      predict,
      onCommitted: (change, now) => {
        this.trace('committed', change);
        this.recent.note(change, now);
      },
      log: (message, fields) => this.trace(message, fields),
      // Every other pair of seeds: a window of 2 keys, so most copies are
      // found by refills from Q rather than by their notify.
      ...(Math.floor(this.options.seed / 2) % 2 === 1 ? { copierReadyKeysMax: 2 } : {}),
      onSyncCopy: (change, outcome) => {
        if (change.token !== undefined) this.syncOutcomes.set(change.token, outcome);
      },
      config: {
        site: 'p',
        recordEntriesMax: this.options.recordEntriesMax,
        removal: { targetEntries: Math.floor(this.options.recordEntriesMax / 2), hotMs: 50, idleMs: 300, removalsMax: 64 },
        onSecondaryDown: this.options.mode,
        trimIdleMs: 400,
        probeIntervalMs: 300,
        sendRetryMs: 50,
        copyConcurrency: 3,
        syncCopyOnMiss: this.options.syncCopyOnMiss === true,
      },
    });
    this.storeP.setHooks(this.watched(this.primary));
    this.trace('primary starts');
    void this.primary.start(this.storeP).catch(() => {});
  }

  /** The primary's hooks, noting misses and checking S at each ack. */
  private watched(primary: PrimaryReplicator): ChangeHooks {
    return {
      admit: async (change) => {
        const admission = await primary.admit(change);
        if (!admission.hit && change.token !== undefined) this.missTokens.add(change.token);
        return admission;
      },
      committed: (change) => primary.committed(change),
      aborted: (change) => {
        if (change.token !== undefined) this.missTokens.delete(change.token);
        primary.aborted(change);
      },
      settled: async (change) => {
        await primary.settled(change);
        this.checkAckedMiss(change);
      },
    };
  }

  /** Claim 2 at the ack of a miss: S holds this version or a newer one,
   * or the copy was left to the copier (S down, or the copy failed). */
  private checkAckedMiss(change: CommittedChange): void {
    const token = change.token;
    if (token === undefined) return;
    const miss = this.missTokens.delete(token);
    const outcome = this.syncOutcomes.get(token);
    this.syncOutcomes.delete(token);
    const keyWrite = change.kind === 'put' || change.kind === 'delete' || change.kind === 'tagging';
    if (this.options.syncCopyOnMiss !== true || !miss || !keyWrite) return;
    this.stats.syncAcked++;
    const what = `${change.kind} ${change.bucket}/${change.key} seq ${change.seq}`;
    if (outcome === undefined) this.syncFailure ??= `a miss was acked without a synchronous copy: ${what}`;
    else if (outcome !== 'copied') this.stats.syncLeft++;
    else {
      this.stats.syncCopied++;
      const id = objectId(change.bucket, change.key);
      const onS = Math.max(this.diskS.objects.get(id)?.meta.seq ?? 0, this.diskS.tombstones.get(id) ?? 0);
      if (onS < change.seq) this.syncFailure ??= `acked miss not on S: ${what}, S holds seq ${onS}`;
    }
  }

  private trace(message: string, fields?: unknown): void {
    if (process.env.SIM_TRACE) console.log(`[${this.clock.now() - 1_700_000_000_000}] ${message} ${fields === undefined ? '' : JSON.stringify(fields)}`);
  }

  /** With SIM_TRACE, what the secondary applies. */
  private traceSecondary(service: SecondaryService): void {
    const wrap = <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>, describe: (...args: A) => unknown) =>
      (...args: A): Promise<R> =>
        fn.apply(service, args).then(
          (result) => {
            this.trace(`S ${name}`, { what: describe(...args), result });
            return result;
          },
          (err: unknown) => {
            this.trace(`S ${name} failed`, { what: describe(...args), err: String(err) });
            throw err;
          },
        );
    service.putObject = wrap('putObject', service.putObject, (c) => [c.meta.bucket, c.meta.key, c.meta.seq]);
    service.deleteObject = wrap('deleteObject', service.deleteObject, (c) => [c.bucket, c.key, c.seq]);
    service.putBucket = wrap('putBucket', service.putBucket, (c) => [c.bucket, c.exists, c.seq]);
    service.applyRecord = wrap('applyRecord', service.applyRecord, (m) => ({ session: m.session, msgId: m.msgId, add: m.add.map((e) => e.name), remove: m.remove }));
  }

  private keysUnder(bucket: string, prefix: string): number {
    let n = 0;
    for (const { meta } of this.diskP.objects.values()) if (meta.bucket === bucket && meta.key.startsWith(prefix)) n++;
    return n;
  }

  // ------------------------------------------------------------ faults

  crashPrimary(): void {
    this.trace('primary crashes');
    this.stats.crashesP++;
    this.missTokens.clear();
    this.syncOutcomes.clear();
    this.primary.stop();
    this.target.alive = false;
    this.durP = this.durP.crash();
    this.storeP = this.storeP.crash({ admit: async () => ({ hit: true }), committed: () => {} });
    this.startPrimary();
  }

  crashSecondary(): void {
    this.trace('secondary crashes');
    this.stats.crashesS++;
    this.secondary = undefined;
    this.durS = this.durS.crash();
    this.storeS = this.storeS.crash({ admit: async () => ({ hit: true }), committed: () => {} });
    this.sDownSteps = 1 + Math.floor(this.random.next() * 30);
  }

  // ------------------------------------------------------------ workload

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random.next() * items.length)] as T;
  }

  private key(): string {
    return this.pick(dirs) + this.pick(files);
  }

  private body(): Readable {
    return Readable.from([Buffer.from(`v${Math.floor(this.random.next() * 1e9)}`)]);
  }

  /** Starts one client operation; it completes over later steps, or never
   * (its site crashed). */
  clientOp(): void {
    const store = this.storeP;
    const r = this.random.next();
    const bucket = this.random.next() < 0.85 ? 'b1' : 'b2';
    const key = this.key();
    let op: Promise<unknown>;
    if (r < 0.5) {
      op = store.putObject({
        bucket, key, body: this.body(), headers: {}, userMeta: {}, tags: {}, algorithms: [], sha256: false, verify: () => {},
      });
    } else if (r < 0.7) op = store.deleteObject(bucket, key);
    else if (r < 0.77) op = store.setTags(bucket, key, { t: String(Math.floor(this.random.next() * 10)) });
    else if (r < 0.92) op = this.multipart(store, bucket, key);
    else if (r < 0.96) op = store.createBucket('b2', 'us-east-1');
    else op = store.deleteBucket(this.pick(buckets));
    this.stats.ops++;
    this.trace('client op', { r: Math.floor(r * 100), bucket, key });
    op.then(
      () => this.trace('client op done', { bucket, key }),
      (err: unknown) => {
        this.stats.opErrors++;
        this.trace('client op failed', { bucket, key, err: String(err) });
      },
    );
  }

  private async multipart(store: SimObjectStore, bucket: string, key: string): Promise<void> {
    const upload = await store.createMultipartUpload(bucket, key, { headers: {}, userMeta: {}, tags: {} });
    const parts = 1 + Math.floor(this.random.next() * 2);
    for (let n = 1; n <= parts; n++) {
      await store.uploadPart({ bucket, key, uploadId: upload.uploadId, partNumber: n, body: this.body() });
    }
    if (this.random.next() < 0.85) await store.completeMultipartUpload(bucket, key, upload.uploadId);
    else await store.abortMultipartUpload(bucket, key, upload.uploadId);
  }

  // ------------------------------------------------------------ steps

  async step(faults: boolean): Promise<void> {
    const r = this.random.next();
    if (this.secondary === undefined && --this.sDownSteps <= 0) await this.startSecondary();
    if (r < 0.3) this.clientOp();
    else if (r < 0.62) this.net.deliverOne(this.random);
    else if (r < 0.66) {
      if (faults) this.net.dropOne(this.random);
      else this.net.deliverOne(this.random);
    } else if (r < 0.86) await this.clock.advance(1 + Math.floor(this.random.next() * 60), drain);
    else if (r < 0.9) await this.clock.advance(100 + Math.floor(this.random.next() * 1500), drain);
    else if (r < 0.93 && faults) this.net.partitioned = !this.net.partitioned;
    else if (r < 0.955 && faults) this.crashPrimary();
    else if (r < 0.975 && faults && this.secondary !== undefined) this.crashSecondary();
    else this.net.deliverOne(this.random);
    await drain();
  }

  // ------------------------------------------------------------ invariants

  private recordNames(): Set<string> {
    const names = new Set<string>();
    for (const id of this.durS.storage.savedIds) {
      const name = this.durS.storage.names.nameOf(id);
      if (name !== undefined) names.add(name);
    }
    return names;
  }

  private covered(names: Set<string>, bucket: string, key: string): boolean {
    if (coveringNames({ kind: 'put', bucket, key }).some((n) => names.has(n))) return true;
    for (const name of names) {
      const loc = parseLocationName(name);
      if (loc?.kind === 'upload' && loc.bucket === bucket && loc.key === key) return true;
    }
    return false;
  }

  check(): void {
    const savedR = new Set(this.durS.storage.savedIds);
    const fail = (msg: string) => {
      throw new InvariantError(msg);
    };
    if (this.syncFailure !== undefined) fail(this.syncFailure);
    if (savedR.size > this.options.recordEntriesMax) fail(`|R| = ${savedR.size} > ${this.options.recordEntriesMax}`);
    for (const id of this.primary.recordIds()) if (!savedR.has(id)) fail(`R' ⊄ R: live R' holds ${id}`);
    for (const id of this.durP.storage.savedIds ?? []) if (!savedR.has(id)) fail(`R' ⊄ R: durable R' holds ${id}`);
    const names = this.recordNames();
    const dirty = this.durP.storage.dirty;
    if (this.options.mode === 'refuse' && dirty.size > 0) fail('refuse mode admitted an unrecorded write');
    for (const b of new Set([...this.diskP.buckets.keys(), ...this.diskS.buckets.keys()])) {
      if (this.diskP.buckets.has(b) === this.diskS.buckets.has(b)) continue;
      this.stats.differing++;
      if (!names.has(`b/${b}`) && !dirty.has(`b/${b}`)) fail(`bucket ${b} differs and is not covered`);
    }
    for (const id of new Set([...this.diskP.objects.keys(), ...this.diskS.objects.keys()])) {
      const p = this.diskP.objects.get(id)?.meta;
      const s = this.diskS.objects.get(id)?.meta;
      if (p?.seq === s?.seq && p?.etag === s?.etag) continue;
      this.stats.differing++;
      const [bucket, key] = id.split('\0') as [string, string];
      if (this.covered(names, bucket, key) || dirty.has(`k/${bucket}/${key}`)) continue;
      fail(`${bucket}/${key} differs (P seq ${p?.seq}, S seq ${s?.seq}) and is not covered by R`);
    }
  }

  /** Faults stop; the sites must converge. */
  async settle(): Promise<void> {
    this.net.partitioned = false;
    if (this.secondary === undefined) await this.startSecondary();
    for (let i = 0; i < settleStepsMax; i++) {
      while (this.net.inFlight > 0) {
        this.net.deliverOne(this.random);
        await drain();
      }
      if (this.converged() && this.pinsReleased()) return;
      await this.clock.advance(200, drain);
      this.check();
    }
    const st = this.primary.status();
    if (this.converged()) throw new InvariantError(`pins left after convergence: ${st.pinnedEntries} entries pinned with no admission or queued key`);
    throw new InvariantError(`no convergence: queue ${st.queueDepth}, dirty ${st.dirtyCount}, peer ${st.peer}, diff ${this.differences().slice(0, 5).join(', ')}`);
  }

  /** Nothing queued, so only admitted writes may pin (a pin left over
   * would keep its entry in R for good). A copy's removal is in Q before
   * its copier hears of it: this waits for that. */
  private pinsReleased(): boolean {
    const st = this.primary.status();
    return st.admissions > 0 || st.pinnedEntries === 0;
  }

  private differences(): string[] {
    const out: string[] = [];
    for (const b of new Set([...this.diskP.buckets.keys(), ...this.diskS.buckets.keys()])) {
      if (this.diskP.buckets.has(b) !== this.diskS.buckets.has(b)) out.push(`bucket ${b}`);
    }
    for (const id of new Set([...this.diskP.objects.keys(), ...this.diskS.objects.keys()])) {
      const p = this.diskP.objects.get(id);
      const s = this.diskS.objects.get(id);
      if (p?.meta.seq !== s?.meta.seq || p?.meta.etag !== s?.meta.etag || (p && s && !p.body.equals(s.body))) {
        out.push(id.replace('\0', '/'));
      }
    }
    return out;
  }

  private converged(): boolean {
    return this.differences().length === 0 && this.durP.storage.q.size === 0 && this.durP.storage.dirty.size === 0;
  }

  get objectIdOf(): typeof objectId {
    return objectId;
  }

  finish(): void {
    const st = this.primary.status();
    this.stats.hits = st.hits;
    this.stats.misses = st.misses;
    this.stats.delivered = this.net.delivered;
    this.stats.dropped = this.net.dropped;
    this.primary.stop();
  }
}

export async function runSimulation(options: SimOptions): Promise<SimResult> {
  const sim = new Simulation(options);
  let step = 0;
  try {
    await sim.start();
    for (step = 0; step < options.steps; step++) {
      await sim.step(true);
      sim.check();
    }
    step = options.steps;
    await sim.settle();
    sim.finish();
    return { ok: true, seed: options.seed, stats: sim.stats };
  } catch (err) {
    sim.finish();
    return { ok: false, seed: options.seed, step, failure: err instanceof Error ? `${err.message}\n${err.stack}` : String(err), stats: sim.stats };
  }
}
