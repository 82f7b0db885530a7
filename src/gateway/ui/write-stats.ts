// Write statistics for the operator console: how many writes hit or missed
// the record and how long PUTs took, per second over the last minutes.
//
// WriteStats wraps the store's ChangeHooks (the seam every mutating request
// passes through) so it sees each admission's hit or miss and times a write
// from admission to commit: that span holds the data write and, on a miss,
// the record round trip to the secondary, which is what an operator watches
// a PUT latency chart for. Wire it in the composition root:
//   store.setChangeHooks(writeStats.wrap(primaryOrNoReplication))

import type { Admission, ChangeHooks, ChangeIntent, CommittedChange } from '../../core/changes.ts';
import type { Clock } from '../../core/clock.ts';
import { admissionLeaseMs, consoleHistorySeconds, consoleTimingsPendingMax } from '../../core/limits.ts';

/** One second of writes. `t` is the second's start (ms since the epoch). */
export interface WriteSample {
  t: number;
  /** Admissions granted (any kind of change). */
  writes: number;
  hits: number;
  misses: number;
  /** Committed PUTs (put, copy, multipart complete) and their durations. */
  puts: number;
  putMsSum: number;
  putMsMax: number;
}

export interface WriteTotals {
  writes: number;
  hits: number;
  misses: number;
  /** Admissions refused (SlowDown, fenced, secondary down). */
  refused: number;
  /** Changes committed. */
  committed: number;
  puts: number;
}

export interface WriteStatsSnapshot {
  /** This site's clock when taken (the page places samples against it). */
  now: number;
  windowSeconds: number;
  totals: WriteTotals;
  /** Seconds that saw writes, oldest first, within the window. */
  samples: WriteSample[];
}

const msPerSecond = 1000;

function emptySample(t: number): WriteSample {
  return { t, writes: 0, hits: 0, misses: 0, puts: 0, putMsSum: 0, putMsMax: 0 };
}

function timingKey(change: ChangeIntent): string {
  return `${change.kind}\0${change.bucket}\0${change.key}\0${change.uploadId ?? ''}`;
}

export class WriteStats {
  /** Ring of per-second samples, slot = second % length. */
  private readonly ring: (WriteSample | undefined)[] = new Array(consoleHistorySeconds).fill(undefined);
  private readonly totals: WriteTotals = { writes: 0, hits: 0, misses: 0, refused: 0, committed: 0, puts: 0 };
  /** Admission start times by change, oldest first, awaiting commit. */
  private readonly pending = new Map<string, number[]>();
  private pendingCount = 0;
  private lastSweep = 0;

  constructor(private readonly clock: Clock) {}

  /** ChangeHooks that count and time every change, then defer to `inner`. */
  wrap(inner: ChangeHooks): ChangeHooks {
    return {
      admit: (change) => this.admit(inner, change),
      committed: (change) => {
        // The inner hook may throw to roll the transaction back: count only
        // what commits.
        inner.committed(change);
        this.committed(change);
      },
      aborted: (change) => inner.aborted?.(change),
      settled: (change) => inner.settled?.(change) ?? Promise.resolve(),
    };
  }

  snapshot(): WriteStatsSnapshot {
    const now = this.clock.now();
    const oldest = this.secondOf(now) - (consoleHistorySeconds - 1) * msPerSecond;
    const samples = this.ring
      .filter((s): s is WriteSample => s !== undefined && s.t >= oldest)
      .sort((a, b) => a.t - b.t)
      .map((s) => ({ ...s }));
    return { now, windowSeconds: consoleHistorySeconds, totals: { ...this.totals }, samples };
  }

  private async admit(inner: ChangeHooks, change: ChangeIntent): Promise<Admission> {
    const started = this.clock.now();
    let admission: Admission;
    try {
      admission = await inner.admit(change);
    } catch (err) {
      this.totals.refused++;
      throw err;
    }
    const sample = this.sampleAt(this.clock.now());
    sample.writes++;
    this.totals.writes++;
    if (admission.hit) {
      sample.hits++;
      this.totals.hits++;
    } else {
      sample.misses++;
      this.totals.misses++;
    }
    if (change.kind === 'put') this.startTiming(change, started);
    return admission;
  }

  private committed(change: CommittedChange): void {
    this.totals.committed++;
    if (change.kind !== 'put') return;
    const started = this.takeTiming(change);
    if (started === undefined) return;
    const now = this.clock.now();
    const ms = Math.max(0, now - started);
    const sample = this.sampleAt(now);
    sample.puts++;
    sample.putMsSum += ms;
    sample.putMsMax = Math.max(sample.putMsMax, ms);
    this.totals.puts++;
  }

  private startTiming(change: ChangeIntent, started: number): void {
    if (this.pendingCount >= consoleTimingsPendingMax) this.sweepTimings(started);
    if (this.pendingCount >= consoleTimingsPendingMax) return;
    const key = timingKey(change);
    const list = this.pending.get(key);
    if (list) list.push(started);
    else this.pending.set(key, [started]);
    this.pendingCount++;
  }

  /** The oldest live start for this change. A write admitted but never
   * committed (its data write failed) leaves a start behind; starts older
   * than an admission lease are dropped so they cannot skew a later write. */
  private takeTiming(change: ChangeIntent): number | undefined {
    const key = timingKey(change);
    const list = this.pending.get(key);
    if (!list) return undefined;
    const expired = this.clock.now() - admissionLeaseMs;
    let started: number | undefined;
    while (list.length > 0 && started === undefined) {
      const t = list.shift() as number;
      this.pendingCount--;
      if (t >= expired) started = t;
    }
    if (list.length === 0) this.pending.delete(key);
    return started;
  }

  /** Drops starts older than a lease (writes that never committed), at
   * most once a second so a full map of live writes costs little. */
  private sweepTimings(now: number): void {
    if (now - this.lastSweep < msPerSecond) return;
    this.lastSweep = now;
    const expired = now - admissionLeaseMs;
    for (const [key, list] of this.pending) {
      const live = list.filter((t) => t >= expired);
      this.pendingCount -= list.length - live.length;
      if (live.length === 0) this.pending.delete(key);
      else this.pending.set(key, live);
    }
  }

  private secondOf(ms: number): number {
    return Math.floor(ms / msPerSecond) * msPerSecond;
  }

  private sampleAt(ms: number): WriteSample {
    const t = this.secondOf(ms);
    const slot = Math.floor(t / msPerSecond) % consoleHistorySeconds;
    const current = this.ring[slot];
    if (current !== undefined && current.t === t) return current;
    const fresh = emptySample(t);
    this.ring[slot] = fresh;
    return fresh;
  }
}
