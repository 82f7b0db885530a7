import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GenerationalRecord, LmdbRecordStore, MemoryRecordStore, recordFormatVersion } from '../../src/predict/record.ts';

function gensOf(record: GenerationalRecord): Array<[number, number[]]> {
  return record.generations().map((g) => [g.generation, g.ids.toArray()]);
}

describe('GenerationalRecord', () => {
  it('groups ids by generation, oldest first, and moves re-added ids', () => {
    const r = new GenerationalRecord();
    expect(r.add([1, 2, 3], 1)).toEqual([1, 2, 3]);
    expect(r.add([3, 4], 2)).toEqual([4]);
    expect(gensOf(r)).toEqual([
      [1, [1, 2]],
      [2, [3, 4]],
    ]);
    expect(r.generationOf(3)).toBe(2);
    expect(r.size).toBe(4);
    expect(r.remove([1, 2, 9])).toEqual([1, 2]);
    expect(gensOf(r)).toEqual([[2, [3, 4]]]);
    expect(r.has(1)).toBe(false);
    expect(r.has(4)).toBe(true);
    expect(r.toBitmap().toArray()).toEqual([3, 4]);
  });

  it('refuses generations that go backwards (a caller bug)', () => {
    const r = new GenerationalRecord();
    r.add([1], 5);
    expect(() => r.add([2], 4)).toThrow(/older/);
  });

  it('reports room against a limit and never below zero', () => {
    const r = new GenerationalRecord();
    r.add([1, 2, 3], 1);
    expect(r.room(10)).toBe(7);
    expect(r.room(2)).toBe(0);
  });

  it('serializes with a version byte and round-trips (property)', () => {
    const ops = fc.array(
      fc.oneof(
        fc.record({ add: fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 30 }) }),
        fc.record({ remove: fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 30 }) }),
      ),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(ops, (list) => {
        const r = new GenerationalRecord();
        let gen = 0;
        const model = new Map<number, number>();
        for (const op of list) {
          if ('add' in op) {
            gen++;
            r.add(op.add, gen);
            for (const id of op.add) model.set(id, gen);
          } else {
            r.remove(op.remove);
            for (const id of op.remove) model.delete(id);
          }
        }
        const bytes = r.serialize();
        expect(bytes[0]).toBe(recordFormatVersion);
        const back = GenerationalRecord.deserialize(bytes);
        expect(gensOf(back)).toEqual(gensOf(r));
        expect(back.size).toBe(model.size);
        for (const [id, g] of model) expect(back.generationOf(id)).toBe(g);
      }),
    );
  });

  it('compresses runs before serializing', () => {
    const r = new GenerationalRecord();
    r.add(Array.from({ length: 100_000 }, (_, i) => i), 1);
    expect(r.serialize().length).toBeLessThan(100);
  });

  it('rejects unknown versions and truncation', () => {
    const r = new GenerationalRecord();
    r.add([1, 2], 1);
    const bytes = r.serialize();
    const wrong = Buffer.from(bytes);
    wrong[0] = 99;
    expect(() => GenerationalRecord.deserialize(wrong)).toThrow(/version/);
    expect(() => GenerationalRecord.deserialize(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated/);
    expect(() => GenerationalRecord.deserialize(Buffer.concat([bytes, Buffer.of(0)]))).toThrow(/trailing/);
  });
});

describe('record stores', () => {
  const dirs: string[] = [];
  const roots: RootDatabase[] = [];
  afterEach(async () => {
    for (const root of roots.splice(0)) await root.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('lmdb: saves deltas and loads the same record after reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'record-'));
    dirs.push(dir);
    let root = open({ path: dir });
    const store = new LmdbRecordStore(root);
    const meta = root.openDB<number, string>({ name: 'test-meta' });
    const r = await store.load();
    expect(r.size).toBe(0);
    r.add([1, 2, 3], 1);
    r.add([10, 11], 2);
    await store.save(r, () => meta.putSync('applied', 7));
    r.remove([1, 2, 3]); // generation 1 empties: deleted from lmdb
    r.add([2, 12], 3);
    await store.save(r);
    await root.close();

    root = open({ path: dir });
    roots.push(root);
    const back = await new LmdbRecordStore(root).load();
    expect(gensOf(back)).toEqual(gensOf(r));
    expect(gensOf(back)).toEqual([
      [2, [10, 11]],
      [3, [2, 12]],
    ]);
    expect(root.openDB<number, string>({ name: 'test-meta' }).get('applied')).toBe(7);
  });

  it('memory: load returns what was saved, not later changes', async () => {
    const store = new MemoryRecordStore();
    const r = await store.load();
    r.add([5], 1);
    await store.save(r);
    r.add([6], 2);
    expect((await store.load()).toBitmap().toArray()).toEqual([5]);
  });
});
