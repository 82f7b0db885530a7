import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { ChangeIntent } from '../../src/core/changes.ts';
import {
  ancestorPrefixes,
  coveringNames,
  isCovered,
  LmdbLocationIds,
  locationName,
  MemoryLocationIds,
  ownLocation,
  parentPrefix,
  parseLocationName,
} from '../../src/predict/locations.ts';
import { LmdbRecordStore } from '../../src/predict/record.ts';
import type { Location, LocationIds } from '../../src/predict/types.ts';

describe('location names', () => {
  it('round-trips every kind through parse', () => {
    const arbBucket = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{2,20}$/);
    const arbKey = fc.string({ minLength: 1, maxLength: 40 });
    const arbLoc: fc.Arbitrary<Location> = fc.oneof(
      fc.record({ kind: fc.constant('key' as const), bucket: arbBucket, key: arbKey }),
      fc.record({
        kind: fc.constant('prefix' as const),
        bucket: arbBucket,
        prefix: fc.oneof(fc.constant(''), arbKey.map((k) => `${k}/`)),
      }),
      fc.record({ kind: fc.constant('upload' as const), bucket: arbBucket, key: arbKey, uploadId: fc.string({ minLength: 1 }) }),
      fc.record({ kind: fc.constant('bucket' as const), bucket: arbBucket }),
    );
    fc.assert(
      fc.property(arbLoc, (loc) => {
        expect(parseLocationName(locationName(loc))).toEqual(loc);
      }),
    );
  });

  it('rejects malformed names instead of throwing', () => {
    for (const bad of ['', 'x/b/k', 'k/', 'k/b', 'k/b/', 'p/b/no-slash', 'u/b/id', 'u/b//k', 'u/b/%E0/k', 'b/', 'b/a/b']) {
      expect(parseLocationName(bad), bad).toBeUndefined();
    }
  });

  it('lists ancestor prefixes shortest first', () => {
    expect(ancestorPrefixes('a/b/c.txt')).toEqual(['', 'a/', 'a/b/']);
    expect(ancestorPrefixes('top')).toEqual(['']);
    expect(ancestorPrefixes('a/b/')).toEqual(['', 'a/', 'a/b/']);
    expect(parentPrefix('a/b/c')).toBe('a/b/');
    expect(parentPrefix('c')).toBe('');
    expect(parentPrefix('a/b/')).toBe('a/');
  });
});

describe('coveringNames', () => {
  it('names the key, every ancestor group and the upload', () => {
    const change: ChangeIntent = { kind: 'mpu-part', bucket: 'bk', key: 'v/2026/clip.mp4', uploadId: 'U1' };
    expect(coveringNames(change)).toEqual([
      'k/bk/v/2026/clip.mp4',
      'p/bk/',
      'p/bk/v/',
      'p/bk/v/2026/',
      'u/bk/U1/v/2026/clip.mp4',
    ]);
  });

  it('names only the bucket for bucket changes', () => {
    expect(coveringNames({ kind: 'bucket-create', bucket: 'bk', key: '' })).toEqual(['b/bk']);
  });

  it('includes the own location of every change kind', () => {
    const kinds = ['put', 'delete', 'tagging', 'mpu-create', 'mpu-part', 'mpu-abort', 'bucket-create', 'bucket-delete'] as const;
    for (const kind of kinds) {
      const change: ChangeIntent = { kind, bucket: 'bk', key: kind.startsWith('bucket') ? '' : 'a/b', uploadId: 'u-1' };
      expect(coveringNames(change)).toContain(locationName(ownLocation(change)));
    }
  });

  it('a prefix group covers exactly the keys that start with it', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (p, k) => {
        const prefix = p.endsWith('/') || p === '' ? p : `${p}/`;
        const key = k === '' ? 'x' : k;
        const covered = coveringNames({ kind: 'put', bucket: 'bk', key }).includes(`p/bk/${prefix}`);
        expect(covered).toBe(key.startsWith(prefix));
      }),
    );
  });
});

function contractTests(make: () => { ids: LocationIds & { releaseSync?: unknown }; reopen?: () => LocationIds }) {
  it('assigns stable distinct ids and names them back', async () => {
    const { ids } = make();
    const a = await ids.idOf('k/b/a');
    const [b, a2, c] = await ids.idsOf(['k/b/b', 'k/b/a', 'p/b/']);
    expect(a2).toBe(a);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(ids.nameOf(b as number)).toBe('k/b/b');
    expect(ids.peek('p/b/')).toBe(c);
    expect(ids.peek('k/b/none')).toBeUndefined();
    expect(ids.size).toBe(3);
  });

  it('concurrent idOf of one name agree', async () => {
    const { ids } = make();
    const got = await Promise.all([ids.idOf('k/b/x'), ids.idOf('k/b/x'), ids.idsOf(['k/b/x', 'k/b/y'])]);
    expect(got[1]).toBe(got[0]);
    expect(got[2][0]).toBe(got[0]);
    expect(ids.size).toBe(2);
  });

  it('reuses a released id only after release, and never while in the record', async () => {
    const inR = new Set<number>();
    const { ids } = make();
    const a = await ids.idOf('k/b/a');
    inR.add(a);
    const b = await ids.idOf('k/b/b');
    expect(b).not.toBe(a);
    await ids.release([b]);
    expect(ids.peek('k/b/b')).toBeUndefined();
    expect(ids.nameOf(b)).toBeUndefined();
    const c = await ids.idOf('k/b/c');
    expect(c).toBe(b); // recycled
    expect(c).not.toBe(a);
    expect(ids.size).toBe(2);
  });

  it('bind adopts the other site ids and refuses conflicts', async () => {
    const { ids } = make();
    await ids.bind([{ id: 40, name: 'k/b/forty' }]);
    await ids.bind([{ id: 40, name: 'k/b/forty' }]); // idempotent
    expect(ids.peek('k/b/forty')).toBe(40);
    await expect(ids.bind([{ id: 41, name: 'k/b/forty' }])).rejects.toThrow(/conflict/);
    await expect(ids.bind([{ id: 40, name: 'k/b/other' }])).rejects.toThrow(/conflict/);
    const fresh = await ids.idOf('k/b/new');
    expect(fresh).toBeGreaterThan(40); // never collides with bound ids
  });
}

describe('MemoryLocationIds', () => {
  contractTests(() => ({ ids: new MemoryLocationIds() }));

  it('release asserts the id is not in the record', async () => {
    const ids = new MemoryLocationIds({ inRecord: (id) => id === 0 });
    await ids.idOf('k/b/a');
    await expect(ids.release([0])).rejects.toThrow(/still in the record/);
  });
});

describe('LmdbLocationIds', () => {
  const dirs: string[] = [];
  const roots: RootDatabase[] = [];
  function openRoot(dir?: string): { root: RootDatabase; dir: string } {
    const path = dir ?? mkdtempSync(join(tmpdir(), 'locids-'));
    if (dir === undefined) dirs.push(path);
    const root = open({ path });
    roots.push(root);
    return { root, dir: path };
  }
  afterEach(async () => {
    for (const root of roots.splice(0)) await root.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  contractTests(() => ({ ids: new LmdbLocationIds(openRoot().root) }));

  it('keeps ids, the free list and the counter across reopen', async () => {
    const { root, dir } = openRoot();
    const ids = new LmdbLocationIds(root);
    const [a, b, c] = await ids.idsOf(['k/b/a', 'k/b/b', 'k/b/c']);
    await ids.release([b as number]);
    await root.close();
    roots.splice(roots.indexOf(root), 1);

    const again = new LmdbLocationIds(openRoot(dir).root);
    expect(again.peek('k/b/a')).toBe(a);
    expect(again.nameOf(c as number)).toBe('k/b/c');
    expect(again.size).toBe(2);
    expect(await again.idOf('k/b/d')).toBe(b); // from the durable free list
    const e = await again.idOf('k/b/e');
    expect([a, b, c]).not.toContain(e); // the counter survived
  });

  it('bindSync and releaseSync commit inside a record save, atomically with it', async () => {
    const { root, dir } = openRoot();
    const ids = new LmdbLocationIds(root);
    const store = new LmdbRecordStore(root);
    const record = await store.load();
    await ids.bind([{ id: 3, name: 'k/b/three' }]);
    record.add([3, 9], 1);
    await store.save(record, () => {
      ids.releaseSync([3]);
      ids.bindSync([{ id: 9, name: 'k/b/nine' }]);
    });
    // Bound again after its release: id 3 must not stay on the free list.
    await ids.bind([{ id: 3, name: 'k/b/three-again' }]);
    expect(await ids.idOf('k/b/fresh')).toBe(10);
    await root.close();
    roots.splice(roots.indexOf(root), 1);

    const root2 = openRoot(dir).root;
    const again = new LmdbLocationIds(root2);
    expect(again.peek('k/b/nine')).toBe(9);
    expect(again.peek('k/b/three')).toBeUndefined();
    expect(again.nameOf(3)).toBe('k/b/three-again');
    expect((await new LmdbRecordStore(root2).load()).toBitmap().toArray()).toEqual([3, 9]);
    expect(await again.idOf('k/b/next')).toBe(11);
  });

  it('does not reuse an id whose releaseSync rolled back', async () => {
    const { root } = openRoot();
    const ids = new LmdbLocationIds(root);
    const a = await ids.idOf('k/b/a');
    const rolledBack = root.childTransaction(() => {
      ids.releaseSync([a]);
      throw new Error('roll back');
    });
    await expect(rolledBack).rejects.toThrow('roll back');
    expect(await ids.idOf('k/b/other')).not.toBe(a);
    expect(ids.nameOf(a)).toBe('k/b/a');
  });

  it('release asserts the id is not in the record', async () => {
    const ids = new LmdbLocationIds(openRoot().root, { inRecord: () => true });
    const a = await ids.idOf('k/b/a');
    await expect(ids.release([a])).rejects.toThrow(/still in the record/);
    expect(ids.peek('k/b/a')).toBe(a);
  });
});

describe('isCovered', () => {
  it('is true when any covering id is in the record', async () => {
    const ids = new MemoryLocationIds();
    const group = await ids.idOf('p/bk/logs/');
    const record = new Set([group]);
    expect(isCovered({ kind: 'put', bucket: 'bk', key: 'logs/a' }, ids, record)).toBe(true);
    expect(isCovered({ kind: 'put', bucket: 'bk', key: 'logsx/a' }, ids, record)).toBe(false);
  });
});
