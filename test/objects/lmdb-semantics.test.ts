// The lmdb-js 3.5 behaviour the store and the replication code rely on
// (documented in src/objects/meta-db.ts). If an lmdb upgrade changes it, this fails.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { RootDatabase } from 'lmdb';
import { openMetaDb } from '../../src/objects/store.ts';

let dir: string;
let root: RootDatabase;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lmdb-sem-'));
  root = openMetaDb(dir);
});
afterEach(async () => {
  await root.close();
  await rm(dir, { recursive: true, force: true });
});

it('writes to any sub-db inside childTransaction join it and roll back on throw', async () => {
  const a = root.openDB<number, Buffer>({ name: 'a', keyEncoding: 'binary' });
  const q = root.openDB<number, string>({ name: 'q' });
  await expect(
    a.childTransaction(() => {
      a.put(Buffer.from('k'), 1);
      q.put('k', 1);
      expect(a.get(Buffer.from('k'))).toBe(1); // readable inside at once
      throw new Error('abort');
    }),
  ).rejects.toThrow('abort');
  expect(a.get(Buffer.from('k'))).toBeUndefined();
  expect(q.get('k')).toBeUndefined();
  await a.childTransaction(() => {
    a.put(Buffer.from('k'), 2);
    q.put('k', 2);
  });
  expect(a.get(Buffer.from('k'))).toBe(2);
  expect(q.get('k')).toBe(2);
});

it('plain transaction() keeps writes made before a throw (why the store avoids it)', async () => {
  const a = root.openDB<number, string>({ name: 'a2' });
  await expect(
    a.transaction(() => {
      a.put('k', 1);
      throw new Error('abort');
    }),
  ).rejects.toThrow('abort');
  expect(a.get('k')).toBe(1);
});

it('concurrent child transactions share batched commits', async () => {
  const a = root.openDB<number, string>({ name: 'a3' });
  const txnIds = new Set<number>();
  await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      a.childTransaction(() => {
        a.put(`k${i}`, i);
        txnIds.add(a.getWriteTxnId());
      }),
    ),
  );
  expect(txnIds.size).toBeLessThan(64);
});
