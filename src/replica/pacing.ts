// Copy priority: client writes first, copies with a bounded lag.
//
// Both sites and their clients may share cores (they do on our benchmark
// machine): copies flowing during a burst of client writes take CPU those
// writes need. With priority 'background' the copier holds copies back
// while clients are busy and sends them when the clients pause, or when the
// oldest held copy reaches the lag bound, whichever comes first. Precedent:
// Ceph gives client I/O priority over recovery and backfill
// (osd_recovery_sleep, the mClock "high_client_ops" profile), Garage paces
// its background resync with a "tranquility" factor, MinIO has a replication
// priority setting.
//
// Safety does not depend on any of this: PROTOCOL.md invariant 1, "every key
// whose versions may differ between P and S is covered by R", and a key in Q
// stays covered (its entries are pinned) until its copy is acked, however late
// that is. What deferral costs is recovery point, not coverage: a held hit
// exists on the primary only for up to the lag bound. So deferral is bounded
// three ways: by age (lagMaxMs), by Q's depth (copyDeferQueueEntriesMax,
// far below the copyQueueEntriesMax that makes admissions SlowDown), and by
// `urgent` (a planned switchover's drain). Record messages (misses) and the
// copies of --sync-copy-on-miss never pass through here.

import type { Clock } from '../core/clock.ts';
import { copyDeferPollMs, copyDeferQueueEntriesMax, copyQuietMs } from '../core/limits.ts';

export type CopyPriority = 'background' | 'eager';
export const copyPriorities: readonly CopyPriority[] = ['background', 'eager'];

/**
 * Client (S3) requests on this site, as the gateway counts them; passed in
 * by the composition root (src/cli/site.ts), so the replica layer never
 * imports the gateway. Counts, not times: every pacing decision is taken on
 * the copier's injected clock.
 */
export interface ForegroundLoad {
  /** S3 requests being served now. */
  inFlight(): number;
  /** S3 requests that arrived since the start (only ever grows). */
  arrivals(): number;
}

export interface PacingConfig {
  priority: CopyPriority;
  /** The oldest held copy's age past which the copier runs at full speed. */
  lagMaxMs: number;
}

/** Why the copier is (or is not) holding copies back right now. */
export type PacingState =
  | 'eager' // priority eager: copies go as soon as they can
  | 'caught-up' // nothing waiting
  | 'clients-idle' // clients paused: copying at full speed
  | 'deferring' // clients busy: copies held
  | 'lag-bound' // held long enough: full speed until caught up
  | 'queue-depth' // Q too deep to hold any longer
  | 'urgent'; // a drain (switchover) asked for everything now

export interface PacingStatus {
  priority: CopyPriority;
  lagMaxMs: number;
  state: PacingState;
  /** Age of the oldest copy waiting to be sent (0 when none waits). */
  heldMs: number;
  /** Times the lag bound ended a deferral (sustained load longer than it). */
  lagBoundReached: number;
}

export interface PacerOptions {
  config: PacingConfig;
  clock: Clock;
  /** Without it no client load is known, and nothing is deferred. */
  load?: ForegroundLoad;
  /** True while every copy is wanted at once (a planned drain). */
  urgent?: () => boolean;
}

export class CopyPacer {
  /** Since when copies have been waiting (undefined: none waits). */
  private heldSince: number | undefined;
  private lastBusyAt = -Infinity;
  private lastArrivals = -1;
  private state: PacingState;
  private lagBoundReached = 0;

  constructor(private readonly options: PacerOptions) {
    this.state = options.config.priority === 'eager' ? 'eager' : 'caught-up';
  }

  /** True while copies are held: a new one need not wake the copier. */
  get deferring(): boolean {
    return this.state === 'deferring';
  }

  /** A copy is waiting (from now, or since `at`, a Q entry's time). */
  held(at?: number): void {
    const since = at ?? (this.heldSince === undefined ? this.options.clock.now() : this.heldSince);
    this.heldSince = this.heldSince === undefined ? since : Math.min(this.heldSince, since);
  }

  /** Nothing waits any more (every held copy was sent). */
  caughtUp(): void {
    this.heldSince = undefined;
    if (this.state !== 'eager') this.state = 'caught-up';
  }

  /**
   * Undefined: copy now. Otherwise hold copies and look again at the time
   * returned (the next load check, or the lag bound if sooner).
   */
  deferUntil(queueDepth: number): number | undefined {
    const { config, load, urgent } = this.options;
    if (config.priority === 'eager' || load === undefined || this.heldSince === undefined) return undefined;
    const now = this.options.clock.now();
    const busy = this.clientsBusy(load, now);
    const lagAt = this.heldSince + config.lagMaxMs;
    if (urgent?.() === true) return this.copyNow('urgent');
    if (queueDepth >= copyDeferQueueEntriesMax) return this.copyNow('queue-depth');
    // Once the bound is reached, full speed until caught up (heldSince is
    // cleared only then), not just until the oldest copy left.
    if (now >= lagAt) return this.copyNow('lag-bound');
    if (!busy) return this.copyNow('clients-idle');
    this.state = 'deferring';
    return Math.min(now + copyDeferPollMs, lagAt);
  }

  status(): PacingStatus {
    const { config, clock } = this.options;
    return {
      priority: config.priority,
      lagMaxMs: config.lagMaxMs,
      state: this.state,
      heldMs: this.heldSince === undefined ? 0 : Math.max(0, clock.now() - this.heldSince),
      lagBoundReached: this.lagBoundReached,
    };
  }

  private copyNow(state: PacingState): undefined {
    if (state === 'lag-bound' && this.state !== 'lag-bound') this.lagBoundReached++;
    this.state = state;
    return undefined;
  }

  /** Busy: a request in flight or one arrived since the last look, within
   * the last copyQuietMs (of the copier's clock). */
  private clientsBusy(load: ForegroundLoad, now: number): boolean {
    const arrivals = load.arrivals();
    if (load.inFlight() > 0 || arrivals !== this.lastArrivals) this.lastBusyAt = now;
    this.lastArrivals = arrivals;
    return now - this.lastBusyAt < copyQuietMs;
  }
}
