// The copier's batch path over the real store and lmdb: a batch of copies
// applies in one transaction with each item judged alone (newer seq wins,
// tombstones hold, a body that fails its ETag fails only itself); the
// primary reads small objects synchronously, removes many Q entries in one
// transaction only where the seq is unchanged, and a Q entry written inside
// a commit is readable once durable.committed() resolves.

import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeHooks } from '../../src/core/changes.ts';
import { S3Error } from '../../src/core/errors.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import { objectMetaVersion, type ObjectMeta } from '../../src/objects/types.ts';
import { BodySlabs } from '../../src/replica/copier.ts';
import { LmdbPrimaryDurable, type QEntry } from '../../src/replica/state.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const noHooks: ChangeHooks = { admit: async () => ({ hit: true }), committed: () => {} };

async function openStore(hooks: ChangeHooks = noHooks, inlineMaxBytes?: number) {
  const dir = await mkdtemp(join(tmpdir(), 'lookahead-batch-'));
  const root = openMetaDb(dir);
  const store = await DiskObjectStore.open({ dataDir: dir, db: root, hooks, ...(inlineMaxBytes === undefined ? {} : { inlineMaxBytes }) });
  cleanups.push(async () => {
    await store.close();
    await root.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { store, root };
}

function meta(key: string, body: Buffer, seq: number, etag?: string): ObjectMeta {
  return {
    v: objectMetaVersion,
    bucket: 'b',
    key,
    size: body.length,
    etag: etag ?? createHash('md5').update(body).digest('hex'),
    lastModified: 1,
    seq,
    headers: { contentType: 'text/plain' },
    userMeta: { n: String(seq) },
    tags: {},
    blobs: [],
  };
}

async function text(store: DiskObjectStore, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of (await store.openObject('b', key)).stream()) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('DiskObjectStore.applyReplicaBatch', () => {
  it('applies each item as applyReplica would: newer wins, stale and tombstoned drop, a bad body fails alone', async () => {
    const { store } = await openStore();
    const held = Buffer.from('held v5');
    expect(await store.applyReplica(meta('held', held, 5), Readable.from([held]))).toBe(true);
    expect(await store.applyReplicaDelete('b', 'gone', 7)).toBe(true);
    const items = [
      { key: 'new', body: Buffer.from('new v3'), seq: 3 },
      { key: 'held', body: Buffer.from('held v4'), seq: 4 }, // older than v5
      { key: 'gone', body: Buffer.from('gone v6'), seq: 6 }, // older than the tombstone
      { key: 'bad', body: Buffer.from('bad v8'), seq: 8, etag: 'f'.repeat(32) },
      { key: 'twice', body: Buffer.from('twice v9'), seq: 9 },
      { key: 'twice', body: Buffer.from('twice v2'), seq: 2 }, // same batch, older
    ].map((i) => ({ meta: meta(i.key, i.body, i.seq, i.etag), body: i.body }));
    const out = await store.applyReplicaBatch(items);
    expect(out.slice(0, 3)).toEqual([true, false, false]);
    expect(out[3]).toBeInstanceOf(S3Error);
    expect((out[3] as S3Error).code).toBe('BadDigest');
    expect(out.slice(4)).toEqual([true, false]);
    expect(await text(store, 'new')).toBe('new v3');
    expect(await text(store, 'held')).toBe('held v5');
    expect(await text(store, 'twice')).toBe('twice v9');
    await expect(store.headObject('b', 'gone')).rejects.toThrow();
    await expect(store.headObject('b', 'bad')).rejects.toThrow();
    expect((await store.headObject('b', 'new')).userMeta).toEqual({ n: '3' });
    expect(store.currentSeq()).toBe(9);
  });

  it('a batch spanning buckets the store lacks creates each of them, once', async () => {
    const { store } = await openStore();
    const items = ['b', 'c', 'b', 'c'].map((bucket, n) => {
      const body = Buffer.from(`${bucket}${n}`);
      return { meta: { ...meta(`k${n}`, body, n + 1), bucket }, body };
    });
    expect(await store.applyReplicaBatch(items)).toEqual([true, true, true, true]);
    expect((await store.listBuckets()).map((b) => b.name).sort()).toEqual(['b', 'c']);
    const chunks: Buffer[] = [];
    for await (const c of (await store.openObject('c', 'k3')).stream()) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('c3');
  });

  it('bodies above the inline limit take the single path and still apply', async () => {
    const { store } = await openStore(noHooks, 4);
    const body = Buffer.from('longer than four bytes');
    expect(await store.applyReplicaBatch([{ meta: meta('file', body, 1), body }])).toEqual([true]);
    expect(await text(store, 'file')).toBe(body.toString());
    expect(store.readInlineObject('b', 'file')).toBeUndefined(); // a file: the copier streams it
  });

  it('readInlineObject: the version and its body; null for a missing key or bucket', async () => {
    const { store } = await openStore();
    const body = Buffer.from('small');
    await store.applyReplicaBatch([{ meta: meta('k', body, 4), body }]);
    const got = store.readInlineObject('b', 'k');
    expect(got?.meta.seq).toBe(4);
    expect(got?.body.toString()).toBe('small');
    expect(store.readInlineObject('b', 'missing')).toBeNull();
    expect(store.readInlineObject('nobucket', 'k')).toBeNull();
  });

  it('readInlineObject with copyBody: each body packed into the copier\'s slabs, intact after later reads', async () => {
    const { store } = await openStore();
    // Sizes that fill and overflow a 64 KiB slab, with distinct bytes each.
    const bodies = [1000, 40_000, 30_000, 5, 64 * 1024].map((n, i) => Buffer.alloc(n, 97 + i));
    await store.applyReplicaBatch(bodies.map((body, i) => ({ meta: meta(`k${i}`, body, i + 1), body })));
    const slabs = new BodySlabs();
    const got = bodies.map((_, i) => store.readInlineObject('b', `k${i}`, (view) => slabs.copy(view)));
    // Every read reuses lmdb's view: a body not copied out at once would
    // now show the last one's bytes.
    got.forEach((g, i) => {
      expect(g?.meta.seq).toBe(i + 1);
      expect(g?.body.equals(bodies[i]!)).toBe(true);
    });
    expect(got[0]!.body.buffer).toBe(got[1]!.body.buffer); // one slab for the first two
  });
});

describe('BodySlabs', () => {
  it('copies a view whose length is less than its array\'s (as lmdb\'s shared buffer reports it)', () => {
    // Its array is larger than a slab (lmdb's is 16 MiB).
    const shared = Buffer.alloc(128 * 1024, 120);
    Object.defineProperty(shared, 'length', { value: 3, writable: true, configurable: true });
    const slabs = new BodySlabs();
    const first = slabs.copy(Buffer.from('abc'));
    const copied = slabs.copy(shared);
    expect(copied.toString()).toBe('xxx');
    expect(first.toString()).toBe('abc');
  });
});

describe('LmdbPrimaryDurable reads from lmdb\'s shared buffer', () => {
  it('qGet and qSeq decode whole entries (covers of any length), each apart from the next read', async () => {
    const { root } = await openStore();
    const durable = new LmdbPrimaryDurable(root);
    const a: QEntry = { seq: 7, kind: 'put', at: 11, cover: [1, 2, 3] };
    const b: QEntry = { seq: 9, kind: 'delete', at: 12, cover: [] };
    await root.transaction(() => {
      durable.qPutSync('k/b/a', a);
      durable.qPutSync('k/b/b', b);
    });
    const gotA = durable.qGet('k/b/a');
    const gotB = durable.qGet('k/b/b');
    expect([gotA, gotB]).toEqual([a, b]);
    expect([durable.qSeq('k/b/a'), durable.qSeq('k/b/b'), durable.qSeq('k/b/none')]).toEqual([7, 9, undefined]);
  });
});

describe('LmdbPrimaryDurable batch removal', () => {
  it('removes only entries whose seq is unchanged, dirty marks with them, in one call', async () => {
    const { root } = await openStore();
    const durable = new LmdbPrimaryDurable(root);
    const entry = (seq: number): QEntry => ({ seq, kind: 'put', at: 1, cover: [seq, 100] });
    await root.transaction(() => {
      durable.qPutSync('k/b/a', entry(1));
      durable.qPutSync('k/b/b', entry(5)); // rewritten after its copy was read at seq 2
      durable.qPutSync('k/b/c', entry(3));
      durable.dirtyAddSync('k/b/a');
    });
    const removed = await durable.qDeleteIfSeqMany([['k/b/a', 1], ['k/b/b', 2], ['k/b/c', 3], ['k/b/none', 1]]);
    // Each removed key with its entry's cover (its pins go with it).
    expect([...removed].sort()).toEqual([['k/b/a', [1, 100]], ['k/b/c', [3, 100]]]);
    expect(durable.qGet('k/b/b')?.seq).toBe(5);
    expect(durable.qGet('k/b/a')).toBeUndefined();
    expect(durable.dirtyHas('k/b/a')).toBe(false);
    expect(durable.qCount()).toBe(1);
  });

  it('committed(): a Q entry written in a commit is readable once it resolves', async () => {
    let durable: LmdbPrimaryDurable | undefined;
    const early: boolean[] = [];
    const late: boolean[] = [];
    const waits: Promise<void>[] = [];
    const hooks: ChangeHooks = {
      admit: async () => ({ hit: true }),
      committed: (change) => {
        const qkey = `k/${change.bucket}/${change.key}`;
        durable!.qPutSync(qkey, { seq: change.seq, kind: 'put', at: 1, cover: [] });
        queueMicrotask(() => void early.push(durable!.qGet(qkey) !== undefined));
        waits.push(durable!.committed().then(() => void late.push(durable!.qGet(qkey) !== undefined)));
      },
    };
    const { store, root } = await openStore(hooks);
    durable = new LmdbPrimaryDurable(root);
    await store.createBucket('b', 'us-east-1');
    const body = () => Readable.from([Buffer.from('x')]);
    const put = (key: string) => store.putObject({ bucket: 'b', key, body: body(), headers: {}, userMeta: {}, tags: {}, algorithms: [], sha256: false, verify: () => {} });
    await Promise.all(['a', 'b', 'c'].map(put));
    await Promise.all(waits);
    // bucket-create + 3 puts: a read after committed() finds the entry. A
    // read right after the write usually misses it (why the copier waits),
    // but not always: the write thread may commit before that microtask runs,
    // so only the guarantee is asserted (the other failed ~1 run in 6).
    expect(early).toHaveLength(4);
    expect(late).toEqual([true, true, true, true]);
  });
});
