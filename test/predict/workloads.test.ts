import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parentPrefix } from '../../src/predict/locations.ts';
import { allPredictorNames, defaultPredictorConfig, type PredictorConfig } from '../../src/predict/predictions.ts';
import type { PredictorName } from '../../src/predict/types.ts';
import {
  defaultSimConfig,
  formatResults,
  logWorkload,
  multipartWorkload,
  simulateMissRate,
  treeWorkload,
  uniformWorkload,
  zipfWorkload,
  type SimResult,
  type Workload,
} from '../../src/predict/workloads.ts';

const log = logWorkload();
const tree = treeWorkload();
const multipart = multipartWorkload();
const targets = [log, tree, multipart];

function withPredictors(enabled: PredictorName[]): { predictors: PredictorConfig } {
  return { predictors: { ...defaultPredictorConfig, enabled } };
}

describe('workload generators', () => {
  it('tree: nested directories with uneven file counts, in sync order', () => {
    const keys = tree.events.map((e) => e.change.key);
    const perDir = new Map<string, number>();
    for (const key of keys) perDir.set(parentPrefix(key), (perDir.get(parentPrefix(key)) ?? 0) + 1);
    const counts = [...perDir.values()];
    expect(perDir.size).toBeGreaterThan(100);
    expect(Math.max(...counts)).toBeGreaterThanOrEqual(50);
    expect(Math.min(...counts)).toBeLessThanOrEqual(3);
    expect(Math.max(...keys.map((k) => k.split('/').length))).toBeGreaterThanOrEqual(7);
    // Sorted within a few places: concurrency reorders only nearby keys.
    const sorted = [...keys].sort();
    keys.forEach((key, i) => expect(Math.abs(sorted.indexOf(key) - i)).toBeLessThan(10));
  });

  it('multipart: every upload is create, parts, complete, in that order', () => {
    const state = new Map<string, 'open' | 'done'>();
    for (const { change } of multipart.events) {
      const id = change.uploadId!;
      if (change.kind === 'mpu-create') {
        expect(state.has(id)).toBe(false);
        state.set(id, 'open');
      } else {
        expect(state.get(id)).toBe('open');
        if (change.kind === 'put') state.set(id, 'done');
      }
    }
    expect([...state.values()].every((s) => s === 'done')).toBe(true);
    expect(state.size).toBe(300);
  });

  it('zipf: a few keys take most writes', () => {
    const w = zipfWorkload({ writes: 5_000 });
    const freq = new Map<string, number>();
    for (const { change } of w.events) freq.set(change.key, (freq.get(change.key) ?? 0) + 1);
    const top = [...freq.values()].sort((a, b) => b - a).slice(0, 20).reduce((a, b) => a + b, 0);
    expect(top / w.events.length).toBeGreaterThan(0.25);
  });

  it('events are in time order and the same seed gives the same workload', () => {
    for (const w of [...targets, uniformWorkload({ writes: 500, existing: 10 })]) {
      for (let i = 1; i < w.events.length; i++) expect(w.events[i]!.t).toBeGreaterThanOrEqual(w.events[i - 1]!.t);
    }
    expect(logWorkload({ writes: 50 })).toEqual(logWorkload({ writes: 50 }));
    expect(treeWorkload({ files: 50, seed: 9 })).not.toEqual(treeWorkload({ files: 50, seed: 8 }));
  });
});

describe('simulateMissRate: the targets of the issue', () => {
  const results: SimResult[] = targets.map((w) => simulateMissRate(w, { checkInvariants: true }));

  it.each(results)('$workload: miss rate <= 1% with a bounded record', (r) => {
    expect(r.writes).toBeGreaterThan(5_000);
    expect(r.missRate).toBeLessThanOrEqual(0.01);
    expect(r.peakEntries).toBeLessThanOrEqual(100);
    expect(r.peakCoveredKeys).toBeLessThanOrEqual(2 * defaultPredictorConfig.groupKeysMax);
    expect(r.stalls).toBe(0);
  });

  it('prints the table, the uniform random worst case included', () => {
    const worst = [zipfWorkload(), uniformWorkload()].map((w) => simulateMissRate(w));
    console.log(`\n${formatResults([...results, ...worst], 'default')}`);
    const uniform = worst[1]!;
    // The worst case really is worse: new random keys defeat prediction.
    expect(uniform.missRate).toBeGreaterThan(0.2);
    expect(uniform.peakEntries).toBeLessThanOrEqual(defaultSimConfig.entriesMax);
  });
});

describe('simulateMissRate: each predictor earns its place', () => {
  const base = defaultPredictorConfig.enabled;
  const without = (name: PredictorName) => withPredictors(base.filter((n) => n !== name));

  it('no predictor at all misses on every new key', () => {
    const r = simulateMissRate(log, withPredictors([]));
    expect(r.missRate).toBe(1);
  });

  it('same-prefix turns sequential logs into hits', () => {
    expect(simulateMissRate(log, without('same-prefix')).missRate).toBeGreaterThan(0.3);
  });

  it('ancestor-fresh cuts tree-upload misses (one per directory without it)', () => {
    const on = simulateMissRate(tree);
    const off = simulateMissRate(tree, without('ancestor-fresh'));
    expect(off.misses).toBeGreaterThan(2 * on.misses);
  });

  it('recency keeps the hot set of overwrites in the record', () => {
    const w = zipfWorkload({ writes: 8_000 });
    expect(simulateMissRate(w).misses).toBeLessThan(simulateMissRate(w, without('recency')).misses);
  });

  it('name-sequence does not pay (so it is off by default): no fewer misses, more entries', () => {
    for (const w of targets) {
      const on = simulateMissRate(w, withPredictors([...base, 'name-sequence']));
      const off = simulateMissRate(w);
      expect(on.misses).toBeGreaterThanOrEqual(off.misses);
      if (w !== multipart) expect(on.added).toBeGreaterThan(off.added);
    }
  });
});

describe('simulateMissRate: bounded risk under pressure (invariant 4)', () => {
  it('never exceeds entriesMax, keeps every queued key covered, and stalls instead', () => {
    const w: Workload = uniformWorkload({ writes: 800, existing: 2_000 });
    const r = simulateMissRate(w, {
      entriesMax: 300,
      removal: { targetEntries: 200, idleMs: 60_000, removalsMax: 1_000 },
      lagMs: 5_000, // 500 writes in flight: more than R may hold
      checkInvariants: true,
    });
    expect(r.peakEntries).toBeLessThanOrEqual(300);
    expect(r.peakEntries).toBeGreaterThan(200);
    expect(r.stalls).toBeGreaterThan(0);
  });
});

describe('simulateMissRate: invariant 1 under random settings (property)', () => {
  it('every queued key stays covered and |R| stays within its limit', () => {
    const workloads = [
      logWorkload({ writes: 300, intervalMs: 50 }),
      treeWorkload({ files: 300 }),
      multipartWorkload({ uploads: 15 }),
      zipfWorkload({ keys: 300, writes: 300 }),
      uniformWorkload({ writes: 300, existing: 300 }),
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: workloads.length - 1 }),
        fc.integer({ min: 8, max: 400 }),
        fc.integer({ min: 0, max: 3_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.integer({ min: 1, max: 50 }),
        fc.subarray([...allPredictorNames]),
        (which, entriesMax, lagMs, hotMs, groupKeysMax, enabled) => {
          const r = simulateMissRate(workloads[which]!, {
            entriesMax,
            lagMs,
            removal: { targetEntries: Math.floor(entriesMax / 2), idleMs: 1_000, removalsMax: 100 },
            predictors: { ...defaultPredictorConfig, enabled, hotMs, groupKeysMax },
            checkInvariants: true,
          });
          expect(r.peakEntries).toBeLessThanOrEqual(entriesMax);
          expect(r.misses).toBeGreaterThan(0);
        },
      ),
      { numRuns: 40 },
    );
  });
});
