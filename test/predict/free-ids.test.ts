import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/clock.ts';
import { FreeIds } from '../../src/predict/free-ids.ts';
import { LmdbLocationIds } from '../../src/predict/locations.ts';

describe('FreeIds', () => {
  it('behaves as a set under random adds, deletes and takes', () => {
    const random = seededRandom(7);
    const free = new FreeIds();
    const model = new Set<number>();
    const wrong: string[] = [];
    for (let i = 0; i < 50_000; i++) {
      const r = random.next();
      const id = Math.floor(random.next() * 300);
      if (r < 0.45) {
        free.add(id);
        model.add(id);
      } else if (r < 0.7) {
        free.delete(id);
        model.delete(id);
      } else {
        const taken = free.take();
        const wasFree = taken === undefined ? model.size === 0 : model.delete(taken);
        if (!wasFree) wrong.push(`step ${i}: took ${taken}`);
      }
      if (free.size !== model.size) wrong.push(`step ${i}: size ${free.size}, free ${model.size}`);
    }
    expect(wrong).toEqual([]);
    for (const id of model) expect(free.has(id)).toBe(true);
  });

  it('takes the most recently freed id', () => {
    const free = new FreeIds();
    for (const id of [5, 9, 2]) free.add(id);
    free.delete(2);
    free.add(7);
    expect([free.take(), free.take(), free.take(), free.take()]).toEqual([7, 9, 5, undefined]);
  });

  it('keeps its stack within twice its members under many takes, adds and deletes', () => {
    // Speed is measured in the microbenchmark (commit message), not here:
    // this checks the structure stays bounded while ids come and go.
    const free = new FreeIds();
    for (let id = 0; id < 100_000; id++) free.add(id);
    let members = 100_000;
    for (let i = 0; i < 200_000; i++) {
      if (free.take() !== undefined) members--;
      free.add(100_000 + i);
      members++;
      if (i % 3 === 0 && free.has(100_000 + i - 1)) {
        free.delete(100_000 + i - 1);
        members--;
      }
      if (i % 1000 === 0) expect(free.held).toBeLessThanOrEqual(2 * free.size + 1);
    }
    expect(free.size).toBe(members);
  });
});

describe('LmdbLocationIds free ids', () => {
  const dirs: string[] = [];
  const roots: RootDatabase[] = [];
  afterEach(async () => {
    for (const root of roots.splice(0)) await root.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('reuses each released id once, never one bound again since', async () => {
    const path = mkdtempSync(join(tmpdir(), 'freeids-'));
    dirs.push(path);
    const root = open({ path, noSync: true });
    roots.push(root);
    const ids = new LmdbLocationIds(root);
    const first = await ids.idsOf(Array.from({ length: 50 }, (_, i) => `k/b/first/${i}`));
    const released = first.slice(0, 40);
    await ids.release(released);
    // The other site bound ten of them meanwhile: no longer free.
    await ids.bind(released.slice(0, 10).map((id) => ({ id, name: `k/b/bound/${id}` })));
    const again = await ids.idsOf(Array.from({ length: 40 }, (_, i) => `k/b/again/${i}`));
    expect(new Set(again).size).toBe(40);
    expect(again.filter((id) => id < 50).sort((a, b) => a - b)).toEqual(released.slice(10).sort((a, b) => a - b));
    expect(again.filter((id) => id >= 50)).toHaveLength(10);
  });
});
