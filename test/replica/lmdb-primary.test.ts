// The primary's Q over the real store and lmdb: the Q entry commits in the
// object's own transaction, and a commit the record no longer covers rolls
// the object back (PROTOCOL.md write path steps 3-4).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { RootDatabase } from 'lmdb';
import type { ChangeHooks } from '../../src/core/changes.ts';
import { systemClock } from '../../src/core/clock.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import { LmdbPrimaryDurable } from '../../src/replica/state.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openStore(hooks: ChangeHooks): Promise<{ store: DiskObjectStore; root: RootDatabase; durable: LmdbPrimaryDurable }> {
  const dir = await mkdtemp(join(tmpdir(), 'lookahead-q-'));
  const root = openMetaDb(dir);
  const durable = new LmdbPrimaryDurable(root);
  const store = await DiskObjectStore.open({ dataDir: dir, db: root, hooks });
  cleanups.push(async () => {
    await store.close();
    await root.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { store, root, durable };
}

const put = (store: DiskObjectStore, key: string, body: string) =>
  store.putObject({ bucket: 'b', key, body: Readable.from([Buffer.from(body)]), headers: {}, userMeta: {}, tags: {}, algorithms: [], sha256: false, verify: () => {} });

describe('Q in the store transaction', () => {
  it('the Q entry commits with the object and carries its seq', async () => {
    let durable: LmdbPrimaryDurable | undefined;
    const hooks: ChangeHooks = {
      admit: async () => ({ hit: true }),
      committed: (change) => {
        if (change.kind === 'put') durable!.qPutSync(`k/${change.bucket}/${change.key}`, { seq: change.seq, kind: change.kind, at: systemClock.now(), cover: [7] });
      },
    };
    const opened = await openStore(hooks);
    durable = opened.durable;
    await opened.store.createBucket('b', 'us-east-1');
    const meta = await put(opened.store, 'x', 'hello');
    expect(durable.qGet('k/b/x')).toMatchObject({ seq: meta.seq, kind: 'put', cover: [7] });
    expect(await durable.qDeleteIfSeq('k/b/x', meta.seq - 1)).toBe(false);
    expect(await durable.qDeleteIfSeq('k/b/x', meta.seq)).toBe(true);
    expect(durable.qGet('k/b/x')).toBeUndefined();
  });

  it('a throwing committed() rolls back the object and the Q entry', async () => {
    let durable: LmdbPrimaryDurable | undefined;
    const hooks: ChangeHooks = {
      admit: async () => ({ hit: true }),
      committed: (change) => {
        if (change.kind !== 'put') return;
        durable!.qPutSync(`k/${change.bucket}/${change.key}`, { seq: change.seq, kind: change.kind, at: 0, cover: [] });
        throw new Error('record no longer covers this write');
      },
    };
    const opened = await openStore(hooks);
    durable = opened.durable;
    await opened.store.createBucket('b', 'us-east-1');
    await expect(put(opened.store, 'x', 'hello')).rejects.toThrow(/no longer covers/);
    await expect(opened.store.headObject('b', 'x')).rejects.toMatchObject({ code: 'NoSuchKey' });
    expect(durable.qGet('k/b/x')).toBeUndefined();
  });
});

describe('storeKeysUnderPrefix', () => {
  it('counts keys under a prefix in the store, capped', async () => {
    const { storeKeysUnderPrefix } = await import('../../src/replica/predict.ts');
    const opened = await openStore({ admit: async () => ({ hit: true }), committed: () => {} });
    await opened.store.createBucket('b', 'us-east-1');
    for (const key of ['logs/a', 'logs/b', 'logs/c/d', 'logsx', 'other/e']) await put(opened.store, key, 'x');
    const count = storeKeysUnderPrefix(opened.root);
    expect(count('b', 'logs/')).toBe(3);
    expect(count('b', 'logs/c/')).toBe(1);
    expect(count('b', '')).toBe(5);
    expect(count('b', 'none/')).toBe(0);
    expect(count('other-bucket', '')).toBe(0);
  });
});
