import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GenerationalRecord } from '../../src/predict/record.ts';
import { MemoryLocationIds } from '../../src/predict/locations.ts';
import {
  chooseRemovals,
  LastActive,
  narrowingFor,
  pinnedIds,
  type RemovalInput,
  type RemovalPolicy,
} from '../../src/predict/removal.ts';

const policy: RemovalPolicy = { targetEntries: 100, hotMs: 1_000, idleMs: 10_000, removalsMax: 1_000 };

function recordOf(gens: number[][]): GenerationalRecord {
  const r = new GenerationalRecord();
  gens.forEach((ids, i) => r.add(ids, i + 1));
  return r;
}

function input(record: GenerationalRecord, last: Record<number, number>, extra: Partial<RemovalInput> = {}): RemovalInput {
  return {
    record,
    unsynced: new Set<number>(),
    lastActive: (id) => last[id],
    now: 100_000,
    policy,
    ...extra,
  };
}

describe('chooseRemovals', () => {
  it('removes idle, in-sync generations whole, oldest first', () => {
    const r = recordOf([[1, 2], [3], [4, 5]]);
    const last = { 1: 0, 2: 0, 3: 0, 4: 0, 5: 99_999 }; // 5 is hot
    const choice = chooseRemovals(input(r, last));
    expect(choice.wholeGenerations).toEqual([1, 2]);
    // 4 is idle too and leaves alone: hot 5 must not hold it in the record.
    expect(choice.ids.sort()).toEqual([1, 2, 3, 4]);
  });

  it('keeps a generation while any entry is out of sync (claims 14-15)', () => {
    const r = recordOf([[1, 2], [3]]);
    const choice = chooseRemovals(input(r, {}, { unsynced: new Set([2]) }));
    expect(choice.wholeGenerations).toEqual([2]);
    expect(choice.ids.sort()).toEqual([1, 3]); // 1 alone; 2 stays
  });

  it('keeps recently active entries below the target', () => {
    const r = recordOf([[1], [2]]);
    const choice = chooseRemovals(input(r, { 1: 95_000, 2: 99_500 })); // warm, hot
    expect(choice.ids).toEqual([]);
  });

  it('above the target, trims cold entries least recently active first, keeping hot ones', () => {
    const r = recordOf([[1, 2, 3, 4, 5]]);
    const last = { 1: 99_000 - 5, 2: 99_000 - 1, 3: 99_000 - 3, 4: 99_900, 5: 99_000 - 4 };
    const choice = chooseRemovals(input(r, last, { policy: { ...policy, targetEntries: 2 } }));
    // 4 is hot and stays; generation 1 is not removed whole because of it.
    expect(choice.wholeGenerations).toEqual([]);
    expect(choice.ids).toEqual([1, 5, 3]);
  });

  it('frees `need` entries using hot ones when it must, but never unsynced ones', () => {
    const r = recordOf([[1, 2, 3]]);
    const last = { 1: 99_990, 2: 99_999, 3: 99_995 };
    const choice = chooseRemovals(input(r, last, { need: 5, unsynced: new Set([3]) }));
    expect(choice.ids).toEqual([1, 2]); // LRU among hot, 3 never
  });

  it('respects the per-message budget and skips generations that do not fit', () => {
    const r = recordOf([[1, 2, 3], [4], [5, 6]]);
    const choice = chooseRemovals(input(r, {}, { policy: { ...policy, removalsMax: 2 } }));
    expect(choice.wholeGenerations).toEqual([2]);
    expect(choice.ids.length).toBeLessThanOrEqual(2);
  });

  it('drops oversized groups once in sync even when hot', () => {
    const r = recordOf([[1, 2]]);
    const choice = chooseRemovals(input(r, { 1: 99_999, 2: 99_999 }, { oversized: [2, 77] }));
    expect(choice.ids).toEqual([2]);
  });

  it('never chooses an unsynced id nor one outside the record (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 20 }), { maxLength: 15 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 50 }),
        fc.dictionary(fc.integer({ min: 0, max: 200 }).map(String), fc.integer({ min: 0, max: 100_000 })),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 50 }),
        (gens, unsyncedList, lastRaw, target, need) => {
          const r = recordOf(gens);
          const unsynced = new Set(unsyncedList);
          const last: Record<number, number> = {};
          for (const [k, v] of Object.entries(lastRaw)) last[Number(k)] = v;
          const choice = chooseRemovals(input(r, last, { unsynced, need, policy: { ...policy, targetEntries: target } }));
          expect(new Set(choice.ids).size).toBe(choice.ids.length);
          for (const id of choice.ids) {
            expect(r.has(id)).toBe(true);
            expect(unsynced.has(id)).toBe(false);
          }
          const syncedCount = r.toBitmap().toArray().filter((id) => !unsynced.has(id)).length;
          expect(choice.ids.length).toBeGreaterThanOrEqual(Math.min(need, syncedCount));
          for (const g of choice.wholeGenerations) {
            const ids = r.generations().find((x) => x.generation === g)?.ids.toArray() ?? [];
            for (const id of ids) expect(choice.ids).toContain(id);
          }
        },
      ),
    );
  });
});

describe('pinnedIds / narrowingFor', () => {
  const ids = new MemoryLocationIds();
  const key = ids.assign('k/bk/a/b/c');
  const parent = ids.assign('p/bk/a/b/');
  const root = ids.assign('p/bk/');
  const upload = ids.assign('u/bk/U1/a/b/c');
  const queued = { kind: 'put' as const, bucket: 'bk', key: 'a/b/c' };

  it('pins the narrowest covering entry in the record, so wider groups may leave', () => {
    expect([...pinnedIds([queued], ids, new Set([key, parent, root]))]).toEqual([key]);
    expect([...pinnedIds([queued], ids, new Set([parent, root]))]).toEqual([parent]);
    expect([...pinnedIds([queued], ids, new Set([root]))]).toEqual([root]);
    const part = { kind: 'mpu-part' as const, bucket: 'bk', key: 'a/b/c', uploadId: 'U1' };
    expect([...pinnedIds([part], ids, new Set([upload, root]))]).toEqual([upload]);
    expect([...pinnedIds([queued], ids, new Set<number>())]).toEqual([]);
  });

  it('removing every unpinned entry keeps each queued change covered (property)', () => {
    fc.assert(
      fc.property(fc.subarray([key, parent, root, upload], { minLength: 1 }), (present) => {
        const record = recordOf([present]);
        const choice = chooseRemovals(input(record, {}, { unsynced: pinnedIds([queued], ids, record), need: 10 }));
        record.remove(choice.ids);
        const covered = [key, parent, root].some((id) => record.has(id));
        expect(covered).toBe(present.some((id) => id !== upload));
      }),
    );
  });

  it('narrows an oversized pin to the queued key itself', () => {
    expect(narrowingFor([queued], ids, new Set([root]), new Set([root]))).toEqual([
      { kind: 'key', bucket: 'bk', key: 'a/b/c' },
    ]);
    expect(narrowingFor([queued], ids, new Set([root, parent]), new Set([root]))).toEqual([]);
  });
});

describe('LastActive', () => {
  it('tracks and forgets', () => {
    const la = new LastActive();
    la.touch([1, 2], 5);
    la.touch([2], 9);
    expect(la.get(1)).toBe(5);
    expect(la.get(2)).toBe(9);
    la.forget([1]);
    expect(la.get(1)).toBeUndefined();
    expect(la.size).toBe(1);
  });
});
