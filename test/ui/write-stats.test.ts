// WriteStats: counts hits and misses, times PUTs from admission to commit,
// keeps a bounded per-second history, and never counts what did not commit.

import { describe, expect, it } from 'vitest';
import type { Admission, ChangeHooks, ChangeIntent } from '../../src/core/changes.ts';
import type { Clock } from '../../src/core/clock.ts';
import { admissionLeaseMs, consoleHistorySeconds } from '../../src/core/limits.ts';
import { S3Error } from '../../src/core/errors.ts';
import { WriteStats } from '../../src/gateway/ui/write-stats.ts';

class ManualClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.t += ms;
  }
}

/** Inner hooks answering hit/miss by key, refusing keys named "refuse". */
function inner(delayMs: number, clock: ManualClock, throwOnCommit = false): ChangeHooks {
  return {
    async admit(change: ChangeIntent): Promise<Admission> {
      if (change.key === 'refuse') throw new S3Error('SlowDown', 'full');
      clock.t += delayMs;
      return { hit: change.key.startsWith('hit') };
    },
    committed() {
      if (throwOnCommit) throw new S3Error('ServiceUnavailable', 'roll back');
    },
  };
}

const put = (key: string): ChangeIntent => ({ kind: 'put', bucket: 'b', key });

describe('WriteStats', () => {
  it('counts hits, misses and refusals, and times PUTs from admission to commit', async () => {
    const clock = new ManualClock(1_000_000);
    const stats = new WriteStats(clock);
    const hooks = stats.wrap(inner(40, clock));
    await hooks.admit(put('miss-1'));
    clock.t += 10; // the data write
    hooks.committed({ ...put('miss-1'), seq: 1 });
    await hooks.admit(put('hit-1'));
    hooks.committed({ ...put('hit-1'), seq: 2 });
    await hooks.admit({ kind: 'delete', bucket: 'b', key: 'hit-2' });
    hooks.committed({ kind: 'delete', bucket: 'b', key: 'hit-2', seq: 3 });
    await expect(hooks.admit(put('refuse'))).rejects.toThrow(S3Error);

    const snap = stats.snapshot();
    expect(snap.totals).toEqual({ writes: 3, hits: 2, misses: 1, refused: 1, committed: 3, puts: 2 });
    expect(snap.now).toBe(clock.t);
    const puts = snap.samples.reduce((n, s) => n + s.puts, 0);
    const sum = snap.samples.reduce((n, s) => n + s.putMsSum, 0);
    const max = Math.max(...snap.samples.map((s) => s.putMsMax));
    expect(puts).toBe(2);
    expect(sum).toBe(50 + 40);
    expect(max).toBe(50);
    expect(snap.samples.reduce((n, s) => n + s.misses, 0)).toBe(1);
  });

  it('does not count a commit the inner hooks rolled back', async () => {
    const clock = new ManualClock(5_000);
    const stats = new WriteStats(clock);
    const hooks = stats.wrap(inner(1, clock, true));
    await hooks.admit(put('miss'));
    expect(() => hooks.committed({ ...put('miss'), seq: 1 })).toThrow(S3Error);
    expect(stats.snapshot().totals.committed).toBe(0);
    expect(stats.snapshot().totals.puts).toBe(0);
  });

  it('keeps only the last window of seconds, oldest first', async () => {
    const clock = new ManualClock(10_000_000);
    const stats = new WriteStats(clock);
    const hooks = stats.wrap(inner(0, clock));
    const seconds = consoleHistorySeconds + 50;
    for (let i = 0; i < seconds; i++) {
      await hooks.admit(put(`miss-${i}`));
      hooks.committed({ ...put(`miss-${i}`), seq: i });
      clock.t += 1000;
    }
    clock.t -= 1000;
    const snap = stats.snapshot();
    expect(snap.samples).toHaveLength(consoleHistorySeconds);
    const ts = snap.samples.map((s) => s.t);
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
    expect(ts[ts.length - 1]).toBe(Math.floor(clock.t / 1000) * 1000);
    expect(ts[0]).toBe(ts[ts.length - 1]! - (consoleHistorySeconds - 1) * 1000);
    expect(snap.totals.writes).toBe(seconds);
  });

  it('does not let a PUT that never committed skew a later one past its lease', async () => {
    const clock = new ManualClock(0);
    const stats = new WriteStats(clock);
    const hooks = stats.wrap(inner(0, clock));
    await hooks.admit(put('miss-x')); // its data write fails: no commit
    clock.t += admissionLeaseMs + 1;
    await hooks.admit(put('miss-x'));
    clock.t += 7;
    hooks.committed({ ...put('miss-x'), seq: 1 });
    const snap = stats.snapshot();
    expect(snap.samples.reduce((n, s) => n + s.putMsSum, 0)).toBe(7);
  });
});
