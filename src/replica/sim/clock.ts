// Virtual time for the deterministic simulation: sleep() registers a timer,
// the harness moves time forward and fires timers in order.

import type { Clock } from '../../core/clock.ts';

interface Timer {
  at: number;
  order: number;
  fire: () => void;
}

/** Timers fired per advance at most (every loop bounded). */
const firesPerAdvanceMax = 100_000;

export class VirtualClock implements Clock {
  private t: number;
  private order = 0;
  private timers: Timer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timers.push({ at: this.t + Math.max(0, ms), order: this.order++, fire: resolve });
    });
  }

  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting
   * the code they wake run (`drain`) before the next one. */
  async advance(ms: number, drain: () => Promise<void>): Promise<void> {
    const end = this.t + ms;
    for (let i = 0; i < firesPerAdvanceMax; i++) {
      const next = this.earliest();
      if (next === undefined || next.at > end) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.t = Math.max(this.t, next.at);
      next.fire();
      await drain();
    }
    this.t = end;
    await drain();
  }

  private earliest(): Timer | undefined {
    let best: Timer | undefined;
    for (const x of this.timers) {
      if (best === undefined || x.at < best.at || (x.at === best.at && x.order < best.order)) best = x;
    }
    return best;
  }
}
