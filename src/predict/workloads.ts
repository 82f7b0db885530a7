// Workload generators and an in-memory simulation of the look-ahead record
// (PROTOCOL.md "Numbers that matter": "Miss rate per workload ... Record
// size"). No network, no disk: R and R' are the same GenerationalRecord (a
// record message is acked at once), the copier acks each write `lagMs`
// after its last write. Used by the unit tests and by the benchmark.

import type { ChangeIntent } from '../core/changes.ts';
import { assert } from '../core/assert.ts';
import { type Random, seededRandom } from '../core/clock.ts';
import { ancestorPrefixes, coveringIds, locationName, MemoryLocationIds, ownLocation } from './locations.ts';
import { defaultPredictorConfig, Predictions, type PredictorConfig } from './predictions.ts';
import { RecentWrites } from './recent.ts';
import { GenerationalRecord } from './record.ts';
import { chooseRemovals, LastActive, narrowingFor, pinnedIds, type RemovalPolicy } from './removal.ts';
import type { Location, PredictContext } from './types.ts';

/** One committed write at simulated time `t` (ms, non-decreasing). */
export interface WorkloadEvent {
  t: number;
  change: ChangeIntent;
}

export interface Workload {
  name: string;
  /** Keys stored before the first event (they count under prefixes). */
  existing: ReadonlyArray<{ bucket: string; key: string }>;
  events: readonly WorkloadEvent[];
}

// ---------------------------------------------------------------- generators

const pad = (n: number, width: number): string => String(n).padStart(width, '0');
const hex = (random: Random, chars: number): string => {
  let out = '';
  for (let i = 0; i < chars; i++) out += Math.floor(random.next() * 16).toString(16);
  return out;
};
const between = (random: Random, min: number, max: number): number => min + Math.floor(random.next() * (max - min + 1));

/**
 * Sequential log keys, Hive-style hourly partitions, several services each
 * writing one file every `intervalMs` (with jitter):
 * logs/<service>/dt=2026-11-29/hour=14/<host>-000123.json.gz
 */
export function logWorkload(options: { writes?: number; services?: number; intervalMs?: number; seed?: number } = {}): Workload {
  const { writes = 20_000, services = 4, intervalMs = 1_000, seed = 1 } = options;
  const random = seededRandom(seed);
  const start = Date.UTC(2026, 10, 29, 21, 30);
  const events: WorkloadEvent[] = [];
  const seq = new Array<number>(services).fill(0);
  for (let i = 0; i < writes; i++) {
    const service = i % services;
    const t = Math.floor(i / services) * intervalMs + Math.floor(random.next() * intervalMs * 0.5);
    const when = new Date(start + t);
    const day = `dt=${when.getUTCFullYear()}-${pad(when.getUTCMonth() + 1, 2)}-${pad(when.getUTCDate(), 2)}`;
    const key = `logs/svc-${service}/${day}/hour=${pad(when.getUTCHours(), 2)}/host-${service}-${pad(seq[service]!++, 6)}.json.gz`;
    events.push({ t, change: { kind: 'put', bucket: 'logs', key } });
  }
  events.sort((a, b) => a.t - b.t);
  return { name: 'log', existing: [], events };
}

/** A directory tree as a user's disk holds it: nested, uneven file counts. */
function makeTree(random: Random, root: string, filesTarget: number): string[] {
  const files: string[] = [];
  const dirNames = ['src', 'lib', 'docs', 'img', 'assets', 'test', 'data', 'build', 'photos', 'notes', 'vendor', 'pkg'];
  const exts = ['.js', '.ts', '.md', '.json', '.png', '.jpg', '.txt', '.css'];
  // Explicit stack (bounded by filesTarget), not recursion.
  const stack: Array<{ path: string; depth: number }> = [{ path: root, depth: 0 }];
  for (let guard = 0; stack.length > 0 && files.length < filesTarget && guard < filesTarget * 10; guard++) {
    const { path, depth } = stack.pop()!;
    // Most directories hold a few files, some hold hundreds (photos, builds).
    const heavy = random.next() < 0.08;
    const count = heavy ? between(random, 50, 400) : between(random, 0, 12);
    for (let f = 0; f < count && files.length < filesTarget; f++) {
      files.push(`${path}file-${hex(random, 4)}${exts[between(random, 0, exts.length - 1)]}`);
    }
    const subdirs = depth >= 6 ? 0 : between(random, depth === 0 ? 4 : 0, depth < 2 ? 6 : 3);
    for (let d = 0; d < subdirs; d++) {
      const name = `${dirNames[between(random, 0, dirNames.length - 1)]}-${hex(random, 3)}`;
      stack.push({ path: `${path}${name}/`, depth: depth + 1 });
    }
  }
  return files;
}

/**
 * `aws s3 sync` of a directory tree into a bucket that already holds other
 * data: keys in sorted order, `concurrency` uploads in flight (so completions
 * arrive slightly out of order), one completion every `intervalMs`.
 */
export function treeWorkload(options: { files?: number; concurrency?: number; intervalMs?: number; seed?: number } = {}): Workload {
  const { files = 6_000, concurrency = 10, intervalMs = 5, seed = 2 } = options;
  const random = seededRandom(seed);
  const keys = makeTree(random, 'backup/host-7/home/', files).sort();
  shuffleWindows(keys, concurrency, random);
  const existing = makeTree(seededRandom(seed + 1), 'archive/2025/', 20_000).map((key) => ({ bucket: 'data', key }));
  const events = keys.map((key, i) => ({ t: i * intervalMs, change: { kind: 'put' as const, bucket: 'data', key } }));
  return { name: 'tree', existing, events };
}

/** Multipart uploads, `concurrency` at a time, parts interleaved. */
export function multipartWorkload(options: { uploads?: number; concurrency?: number; intervalMs?: number; seed?: number } = {}): Workload {
  const { uploads = 300, concurrency = 4, intervalMs = 50, seed = 3 } = options;
  const random = seededRandom(seed);
  const events: WorkloadEvent[] = [];
  const active: Array<{ key: string; uploadId: string; partsLeft: number }> = [];
  let started = 0;
  let t = 0;
  for (let guard = 0; (started < uploads || active.length > 0) && guard < uploads * 200; guard++) {
    while (active.length < concurrency && started < uploads) {
      const key = `media/2026/11/clip-${pad(started++, 5)}.mp4`;
      const uploadId = hex(random, 24);
      active.push({ key, uploadId, partsLeft: between(random, 2, 40) });
      events.push({ t: (t += intervalMs), change: { kind: 'mpu-create', bucket: 'media', key, uploadId } });
    }
    const at = between(random, 0, active.length - 1);
    const upload = active[at]!;
    const { key, uploadId } = upload;
    if (upload.partsLeft-- > 0) {
      events.push({ t: (t += intervalMs), change: { kind: 'mpu-part', bucket: 'media', key, uploadId } });
    } else {
      events.push({ t: (t += intervalMs), change: { kind: 'put', bucket: 'media', key, uploadId } });
      active.splice(at, 1);
    }
  }
  return { name: 'multipart', existing: [], events };
}

/** Overwrites of a hot set: Zipf(s) over `keys` existing per-user objects. */
export function zipfWorkload(options: { keys?: number; writes?: number; s?: number; intervalMs?: number; seed?: number } = {}): Workload {
  const { keys = 20_000, writes = 20_000, s = 1.1, intervalMs = 10, seed = 4 } = options;
  const random = seededRandom(seed);
  const keyOf = (i: number) => `users/u${pad(i, 6)}/state.json`;
  const cdf: number[] = [];
  let total = 0;
  for (let i = 1; i <= keys; i++) cdf.push((total += 1 / i ** s));
  // Rank r is a random user, so hot keys are scattered across the namespace.
  const users = Array.from({ length: keys }, (_, i) => i);
  shuffleWindows(users, keys, random);
  const events: WorkloadEvent[] = [];
  for (let i = 0; i < writes; i++) {
    const rank = lowerBound(cdf, random.next() * total);
    events.push({ t: i * intervalMs, change: { kind: 'put', bucket: 'app', key: keyOf(users[rank]!) } });
  }
  const existing = users.map((i) => ({ bucket: 'app', key: keyOf(i) }));
  return { name: 'zipf', existing, events };
}

/** New keys spread uniformly over a hashed layout: the worst case. */
export function uniformWorkload(options: { writes?: number; existing?: number; intervalMs?: number; seed?: number } = {}): Workload {
  const { writes = 10_000, existing = 50_000, intervalMs = 10, seed = 5 } = options;
  const random = seededRandom(seed);
  const keyOf = () => `objects/${hex(random, 2)}/${hex(random, 2)}/${hex(random, 16)}`;
  const stored = Array.from({ length: existing }, () => ({ bucket: 'blobs', key: keyOf() }));
  const events = Array.from({ length: writes }, (_, i) => ({
    t: i * intervalMs,
    change: { kind: 'put' as const, bucket: 'blobs', key: keyOf() },
  }));
  return { name: 'uniform', existing: stored, events };
}

/** The workloads of the issue, with default sizes. */
export function standardWorkloads(): Workload[] {
  return [logWorkload(), treeWorkload(), multipartWorkload(), zipfWorkload(), uniformWorkload()];
}

/** Shuffles each window of `size` items in place (Fisher-Yates). */
function shuffleWindows<T>(items: T[], size: number, random: Random): void {
  for (let start = 0; start < items.length; start += size) {
    const end = Math.min(items.length, start + size);
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(random.next() * (i - start + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
  }
}

function lowerBound(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---------------------------------------------------------------- simulation

export interface SimConfig {
  predictors: PredictorConfig;
  /** |R| limit (invariant 4). */
  entriesMax: number;
  removal: Omit<RemovalPolicy, 'hotMs'>;
  /** Time from a commit until S acks its copy (the copier's lag). */
  lagMs: number;
  /** A standalone trim message goes out when no miss came for this long. */
  trimEveryMs: number;
  /** RecentWrites window (ancestor freshness). */
  recentWindowMs: number;
  /** Check invariant 1 (every queued key covered) after every event. */
  checkInvariants: boolean;
}

export const defaultSimConfig: SimConfig = Object.freeze({
  predictors: defaultPredictorConfig,
  entriesMax: 20_000,
  removal: { targetEntries: 2_000, idleMs: 30_000, removalsMax: 5_000 },
  lagMs: 200,
  trimEveryMs: 1_000,
  recentWindowMs: 30_000,
  checkInvariants: false,
});

export interface SimResult {
  workload: string;
  writes: number;
  misses: number;
  missRate: number;
  /** Largest |R| (entries). */
  peakEntries: number;
  /** Largest resync cost: keys covered by R (a group counts its keys). */
  peakCoveredKeys: number;
  /** Misses that waited for removals to free room (backpressure). */
  stalls: number;
  /** Entries added in all (own + predicted): record traffic. */
  added: number;
}

/** Keys stored, counted under every ancestor prefix (the group cap's input). */
class PrefixKeyCounts {
  private readonly keys = new Set<string>();
  private readonly counts = new Map<string, number>();

  has(bucket: string, key: string): boolean {
    return this.keys.has(`${bucket}/${key}`);
  }

  count(bucket: string, prefix: string): number {
    return this.countOf(`${bucket}/${prefix}`);
  }

  /** Count by "bucket/prefix", precomputed by callers in a hot loop. */
  countOf(bucketPrefix: string): number {
    return this.counts.get(bucketPrefix) ?? 0;
  }

  /** Applies a committed change; returns +1 (key created), -1 (deleted) or 0. */
  apply(change: ChangeIntent): number {
    const id = `${change.bucket}/${change.key}`;
    const creates = change.kind === 'put';
    if (creates === this.keys.has(id) || (!creates && change.kind !== 'delete')) return 0;
    if (creates) this.keys.add(id);
    else this.keys.delete(id);
    for (const prefix of ancestorPrefixes(change.key)) {
      const name = `${change.bucket}/${prefix}`;
      this.counts.set(name, (this.counts.get(name) ?? 0) + (creates ? 1 : -1));
    }
    return creates ? 1 : -1;
  }
}

/** The primary's side of the protocol, in memory (R' = R: acks are instant). */
class Simulation {
  readonly ids: MemoryLocationIds;
  readonly record = new GenerationalRecord();
  readonly lastActive = new LastActive();
  readonly stored = new PrefixKeyCounts();
  readonly recent: RecentWrites;
  readonly predictions: Predictions;
  /** Q: own location name -> { change, due: when S acks the copy }. */
  readonly queue = new Map<string, { change: ChangeIntent; due: number }>();
  readonly result: SimResult;
  /** Prefix entries in R: id -> "bucket/prefix", and the reverse. */
  private readonly groups = new Map<number, string>();
  private readonly groupIds = new Map<string, number>();
  /** Keys under the groups in R, kept exact as keys come and go. */
  private groupKeys = 0;
  private generation = 0;
  private lastRemoval = 0;

  constructor(
    private readonly config: SimConfig,
    workload: Workload,
  ) {
    this.ids = new MemoryLocationIds({ inRecord: (id) => this.record.has(id) });
    this.recent = new RecentWrites({ windowMs: config.recentWindowMs });
    this.predictions = new Predictions(config.predictors);
    for (const { bucket, key } of workload.existing) this.stored.apply({ kind: 'put', bucket, key });
    this.result = { workload: workload.name, writes: 0, misses: 0, missRate: 0, peakEntries: 0, peakCoveredKeys: 0, stalls: 0, added: 0 };
  }

  step({ t, change }: WorkloadEvent): void {
    this.drain(t);
    if (t - this.lastRemoval >= this.config.trimEveryMs) this.trim(t, 0);
    this.result.writes++;
    // Write path step 1: "Look K up in R' (covered by the key itself or by a group entry)".
    const covered = coveringIds(change, this.ids).some((id) => this.record.has(id));
    if (!covered) this.miss(t, change);
    this.commit(t, change);
    if (this.config.checkInvariants) this.checkCoverage();
  }

  /** Write path step 2: "send S a record message { add: predict(K), remove: pendingRemovals }". */
  private miss(t: number, change: ChangeIntent): void {
    this.result.misses++;
    const context = this.context(t);
    const wanted = this.predictions.predict(change, context).filter((loc) => !this.inRecord(loc));
    // Removals are chosen at most every trimEveryMs (they ride on the next
    // message, claim 17), or at once when this miss needs room.
    const need = Math.max(0, this.record.size + wanted.length - this.config.entriesMax);
    if (need > 0 || t - this.lastRemoval >= this.config.trimEveryMs) this.trim(t, need);
    // Invariant 4: "misses wait (backpressure) until removals free room".
    for (let guard = 0; this.record.room(this.config.entriesMax) < 1 && guard < 1_000; guard++) {
      this.result.stalls++;
      const next = Math.min(...[...this.queue.values()].map((q) => q.due));
      assert(Number.isFinite(next), 'record full of in-sync entries yet nothing removable');
      this.drain(next);
      this.trim(next, 1);
    }
    const room = this.record.room(this.config.entriesMax);
    assert(room >= 1, 'a miss found no room after waiting for every queued copy');
    // Own location first: predictions are dropped when room is short, never K.
    const adding = wanted.slice(0, room);
    const ids = adding.map((loc) => this.ids.assign(locationName(loc)));
    this.record.add(ids, ++this.generation);
    adding.forEach((loc, i) => {
      if (loc.kind === 'prefix') this.addGroup(ids[i]!, `${loc.bucket}/${loc.prefix}`);
    });
    this.lastActive.touch(ids, t);
    this.result.added += ids.length;
    this.result.peakEntries = Math.max(this.result.peakEntries, this.record.size);
    this.result.peakCoveredKeys = Math.max(this.result.peakCoveredKeys, this.coveredKeys());
  }

  /** Write path step 4: commit locally, add K to Q. */
  private commit(t: number, change: ChangeIntent): void {
    const created = this.stored.apply(change);
    if (created !== 0) {
      for (const prefix of ancestorPrefixes(change.key)) {
        if (this.groupIds.has(`${change.bucket}/${prefix}`)) this.groupKeys += created;
      }
    }
    this.recent.note(change, t);
    const covering = coveringIds(change, this.ids).filter((id) => this.record.has(id));
    this.lastActive.touch(covering, t);
    this.result.peakCoveredKeys = Math.max(this.result.peakCoveredKeys, this.coveredKeys());
    // The copier "removes K from Q, unless K was written again meanwhile": due moves.
    this.queue.set(locationName(ownLocation(change)), { change, due: t + this.config.lagMs });
  }

  /** The copier: S acked every copy due by `t`. */
  private drain(t: number): void {
    for (const [name, entry] of this.queue) if (entry.due <= t) this.queue.delete(name);
  }

  /** Removal (claims 13-17): R' first, then S, then the ids are free. */
  private trim(t: number, need: number): void {
    this.lastRemoval = t;
    const queued = [...this.queue.values()].map((q) => q.change);
    const cap = this.config.predictors.groupKeysMax;
    const oversized = new Set([...this.groups].filter(([, g]) => this.stored.countOf(g) > cap).map(([id]) => id));
    if (oversized.size > 0) this.narrow(t, queued, oversized);
    const choice = chooseRemovals({
      record: this.record,
      unsynced: pinnedIds(queued, this.ids, this.record),
      lastActive: (id) => this.lastActive.get(id),
      oversized,
      need,
      now: t,
      policy: { ...this.config.removal, hotMs: this.predictions.hotMs },
    });
    this.record.remove(choice.ids);
    this.lastActive.forget(choice.ids);
    for (const id of choice.ids) this.dropGroup(id);
    this.ids.releaseSync(choice.ids);
  }

  /** Queued keys under an oversized group get their own entries first. */
  private narrow(t: number, queued: ChangeIntent[], oversized: ReadonlySet<number>): void {
    const names = new Set(narrowingFor(queued, this.ids, this.record, oversized).map(locationName));
    if (names.size === 0 || this.record.room(this.config.entriesMax) < names.size) return;
    const ids = [...names].map((name) => this.ids.assign(name));
    this.record.add(ids, ++this.generation);
    this.lastActive.touch(ids, t);
    this.result.added += ids.length;
  }

  private context(t: number): PredictContext {
    return this.recent.context(t, (bucket, prefix) => this.stored.count(bucket, prefix));
  }

  private inRecord(loc: Location): boolean {
    const id = this.ids.peek(locationName(loc));
    return id !== undefined && this.record.has(id);
  }

  private addGroup(id: number, group: string): void {
    this.groups.set(id, group);
    this.groupIds.set(group, id);
    this.groupKeys += this.stored.countOf(group);
  }

  private dropGroup(id: number): void {
    const group = this.groups.get(id);
    if (group === undefined) return;
    this.groups.delete(id);
    this.groupIds.delete(group);
    this.groupKeys -= this.stored.countOf(group);
  }

  /** Resync cost of R: one key per entry, every key under a group. */
  private coveredKeys(): number {
    return this.record.size - this.groups.size + this.groupKeys;
  }

  /** Invariant 1: every key that may differ (in Q) is covered by R. */
  private checkCoverage(): void {
    for (const { change } of this.queue.values()) {
      assert(
        coveringIds(change, this.ids).some((id) => this.record.has(id)),
        `queued ${change.bucket}/${change.key} not covered by the record`,
      );
    }
  }
}

/** Runs the record + predictors + removal over a workload, in memory. */
export function simulateMissRate(workload: Workload, config: Partial<SimConfig> = {}): SimResult {
  const sim = new Simulation({ ...defaultSimConfig, ...config }, workload);
  for (const event of workload.events) sim.step(event);
  const result = sim.result;
  result.missRate = result.writes === 0 ? 0 : result.misses / result.writes;
  return result;
}

/** A fixed-width table of results, for test output and the benchmark. */
export function formatResults(results: readonly SimResult[], label = ''): string {
  const head = `${label.padEnd(14)}${'workload'.padEnd(11)}${'writes'.padStart(8)}${'misses'.padStart(8)}${'miss %'.padStart(9)}${'peak |R|'.padStart(10)}${'peak keys'.padStart(11)}${'added'.padStart(8)}${'stalls'.padStart(8)}`;
  const rows = results.map(
    (r) =>
      `${''.padEnd(14)}${r.workload.padEnd(11)}${String(r.writes).padStart(8)}${String(r.misses).padStart(8)}${(r.missRate * 100).toFixed(2).padStart(9)}${String(r.peakEntries).padStart(10)}${String(r.peakCoveredKeys).padStart(11)}${String(r.added).padStart(8)}${String(r.stalls).padStart(8)}`,
  );
  return [head, ...rows].join('\n');
}
