// The primary's Q over the real store and lmdb: the Q entry commits in the
// object's own transaction, and a commit the record no longer covers rolls
// the object back (PROTOCOL.md write path steps 3-4).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { RootDatabase } from 'lmdb';
import type { ChangeHooks, CommittedChange } from '../../src/core/changes.ts';
import { seededRandom, systemClock } from '../../src/core/clock.ts';
import { copyDeferPollMs, copyQuietMs, inlineBodyBytesMax, replicaBatchObjectsLegacyMax } from '../../src/core/limits.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import type { ObjectMeta } from '../../src/objects/types.ts';
import type { ReplicaCopy } from '../../src/replica/batch.ts';
import { replicaWireVersion } from '../../src/replica/messages.ts';
import { Copier } from '../../src/replica/copier.ts';
import { PrimaryReplicator, defaultPrimaryConfig } from '../../src/replica/primary.ts';
import type { CopyPriority } from '../../src/replica/pacing.ts';
import { VirtualClock } from '../../src/replica/sim/clock.ts';
import { LmdbPrimaryDurable } from '../../src/replica/state.ts';
import type { ReplicaTarget } from '../../src/replica/target.ts';
import { TargetUnavailableError } from '../../src/replica/target.ts';

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

/** A secondary that acks every record message at once; copies as given. */
function fakeTarget(copies: Partial<ReplicaTarget>): ReplicaTarget {
  return {
    openSession: async () => ({ v: replicaWireVersion, epoch: 1, session: 1, lastMsgId: 0, entries: [] }),
    applyRecord: async (m) => ({ v: replicaWireVersion, msgId: m.msgId, duplicate: false, recordSize: m.add.length }),
    putObject: async () => true,
    putObjects: async (items) => items.map(() => ({ applied: true })),
    deleteObject: async () => true,
    putBucket: async () => {},
    health: async () => ({ v: replicaWireVersion, role: 'secondary', epoch: 1 }) as never,
    close: async () => {},
    ...copies,
  };
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
    expect(await durable.qDeleteIfSeq('k/b/x', meta.seq - 1)).toBeUndefined();
    // The removed entry's cover comes back: its pins go with it.
    expect(await durable.qDeleteIfSeq('k/b/x', meta.seq)).toEqual([7]);
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

describe('a commit of a key already in Q', () => {
  it('merges with the entry (first queue time kept), even one written behind the replicator\'s back', { timeout: 8000 }, async () => {
    const target = fakeTarget({
      putObject: async () => { throw new TargetUnavailableError('copies wait in this test'); },
      putObjects: async () => { throw new TargetUnavailableError('copies wait in this test'); },
    });
    let primary: PrimaryReplicator | undefined;
    const opened = await openStore({ admit: (c) => primary!.admit(c), committed: (c) => primary!.committed(c), aborted: (c) => primary!.aborted(c) });
    primary = new PrimaryReplicator({ durable: opened.durable, target, clock: new VirtualClock(), random: seededRandom(1), config: { ...defaultPrimaryConfig, site: 'p' } });
    await primary.start(opened.store);
    try {
      await opened.store.createBucket('b', 'us-east-1');
      await opened.root.childTransaction(() => opened.durable.qPutSync('k/b/x', { seq: 1, kind: 'put', at: 42, cover: [] }));
      const meta = await put(opened.store, 'x', 'hello');
      expect(opened.durable.qGet('k/b/x')).toMatchObject({ seq: meta.seq, at: 42 });
      expect(opened.durable.qGet('k/b/x')!.cover.length).toBeGreaterThan(0);
    } finally {
      primary.stop();
    }
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

describe('held copies (the committed version handed to the copier)', () => {
  it('a small PUT hands its committed meta and body to the hooks, as stored; a large one does not', async () => {
    const { encodeMetaHeader } = await import('../../src/replica/messages.ts');
    const seen: CommittedChange[] = [];
    const opened = await openStore({ admit: async () => ({ hit: true }), committed: (change) => void seen.push(change) });
    await opened.store.createBucket('b', 'us-east-1');
    await opened.store.putObject({
      bucket: 'b', key: 'small', body: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
      headers: { contentType: 'text/plain', cacheControl: 'no-cache' }, userMeta: { who: 'me' }, tags: { t: '1' },
      algorithms: [], sha256: false, verify: () => {}, checksumAlgorithm: 'CRC32',
    });
    await put(opened.store, 'large', 'x'.repeat(inlineBodyBytesMax + 1));
    const small = seen.find((c) => c.key === 'small')?.version;
    const stored = opened.store.readInlineObject('b', 'small');
    expect(stored).toBeTruthy();
    expect(small?.body.toString()).toBe('hello world');
    // What the copier sends from memory is what it would read back.
    expect(encodeMetaHeader(small?.meta as ObjectMeta)).toBe(encodeMetaHeader(stored!.meta));
    expect(seen.find((c) => c.key === 'large')?.version).toBeUndefined();
  });

  it('a version whose commit rolled back is never copied: Q keeps the older seq, and its version is sent', { timeout: 8000 }, async () => {
    const clock = new VirtualClock();
    const sent: ReplicaCopy[] = [];
    let failCopies = true;
    const target = fakeTarget({
      putObjects: async (items) => {
        if (failCopies) throw new TargetUnavailableError('down for now');
        sent.push(...items);
        return items.map(() => ({ applied: true }));
      },
    });
    let rollback = false;
    let primary: PrimaryReplicator | undefined;
    const hooks: ChangeHooks = {
      admit: (c) => primary!.admit(c),
      committed: (c) => {
        primary!.committed(c);
        // The transaction fails after the replicator saw the change.
        if (rollback) throw new Error('commit failed');
      },
      aborted: (c) => primary!.aborted(c),
    };
    const opened = await openStore(hooks);
    primary = new PrimaryReplicator({ durable: opened.durable, target, clock, random: seededRandom(1), config: { ...defaultPrimaryConfig, site: 'p' } });
    await primary.start(opened.store);
    await opened.store.createBucket('b', 'us-east-1');
    const one = await put(opened.store, 'k', 'one');
    const flushAll = async () => {
      for (let i = 0; i < 5; i++) {
        await opened.durable.committed();
        await new Promise<void>((r) => setImmediate(r));
      }
    };
    await flushAll(); // the first copy fails: 'one' waits for its retry
    rollback = true;
    await expect(put(opened.store, 'k', 'two')).rejects.toThrow(/commit failed/);
    rollback = false;
    expect(opened.durable.qGet('k/b/k')?.seq).toBe(one.seq);
    failCopies = false;
    for (let i = 0; i < 100 && opened.durable.qCount() > 0; i++) await clock.advance(1000, flushAll);
    primary.stop();
    expect(opened.durable.qCount()).toBe(0);
    expect(sent.map((c) => [c.body.toString(), c.copy.meta.seq])).toEqual([['one', one.seq]]);
  });
});

describe('held copies and copy priority', () => {
  /** A primary over the real store, batching copies, with clients busy while
   * `b`, `c`, `d` are written after `a`; then the clients go quiet. Returns
   * the keys the copier read back from the store instead of using the
   * version kept at commit. */
  async function readsBack(copyPriority: CopyPriority): Promise<{ reads: string[]; sent: string[] }> {
    const clock = new VirtualClock();
    const sent: string[] = [];
    const target = fakeTarget({
      putObjects: async (items) => {
        sent.push(...items.map((c) => `${c.copy.meta.key}=${c.body.toString()}`));
        return items.map(() => ({ applied: true }));
      },
    });
    const load = { busy: true, inFlight: () => (load.busy ? 1 : 0), arrivals: () => 0 };
    let primary: PrimaryReplicator | undefined;
    const opened = await openStore({ admit: (c) => primary!.admit(c), committed: (c) => primary!.committed(c), aborted: (c) => primary!.aborted(c) });
    const config = { ...defaultPrimaryConfig, site: 'p', copyPriority };
    primary = new PrimaryReplicator({ durable: opened.durable, target, clock, random: seededRandom(1), config, foreground: load });
    await primary.start(opened.store);
    await opened.store.createBucket('b', 'us-east-1');
    const flushAll = async () => {
      for (let i = 0; i < 5; i++) {
        await opened.durable.committed();
        await new Promise<void>((r) => setImmediate(r));
      }
    };
    await put(opened.store, 'a', 'a');
    await clock.advance(copyDeferPollMs, flushAll); // the copier has looked at the load
    const reads: string[] = [];
    const read = opened.store.readInlineObject.bind(opened.store);
    opened.store.readInlineObject = (bucket, key, copyBody) => {
      reads.push(key);
      return read(bucket, key, copyBody);
    };
    for (const k of ['b', 'c', 'd']) await put(opened.store, k, k);
    await flushAll();
    load.busy = false;
    for (let i = 0; i < 20 && opened.durable.qCount() > 0; i++) await clock.advance(copyQuietMs, flushAll);
    primary.stop();
    expect(opened.durable.qCount()).toBe(0);
    return { reads, sent };
  }

  it('background: a copy deferred for busy clients is not kept in memory; it is read back from the store when sent', async () => {
    const { reads, sent } = await readsBack('background');
    expect(reads).toEqual(expect.arrayContaining(['b', 'c', 'd']));
    expect(sent).toEqual(expect.arrayContaining(['b=b', 'c=c', 'd=d']));
  });

  it('eager: the committed version kept in memory is sent, not read back', async () => {
    const { reads, sent } = await readsBack('eager');
    expect(reads.filter((k) => k !== 'a')).toEqual([]);
    expect(sent).toEqual(expect.arrayContaining(['b=b', 'c=c', 'd=d']));
  });
});

describe('batch size', () => {
  /** A primary over the real store whose target holds every batch until
   * all writes are in: the ready copies pile up behind the first batches. */
  async function backlog(writes: number, limit: number | undefined) {
    const clock = new VirtualClock();
    const sizes: number[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const target = fakeTarget({
      putObjects: async (items) => {
        sizes.push(items.length);
        await gate;
        return items.map(() => ({ applied: true }));
      },
      ...(limit === undefined ? {} : { batchObjectsMax: () => limit }),
    });
    let primary: PrimaryReplicator | undefined;
    const opened = await openStore({ admit: (c) => primary!.admit(c), committed: (c) => primary!.committed(c), aborted: (c) => primary!.aborted(c) });
    const config = { ...defaultPrimaryConfig, site: 'p', copyPriority: 'eager' as const };
    primary = new PrimaryReplicator({ durable: opened.durable, target, clock, random: seededRandom(1), config });
    await primary.start(opened.store);
    await opened.store.createBucket('b', 'us-east-1');
    for (let i = 0; i < writes; i++) await put(opened.store, `d/k${i}`, `body ${i}`);
    const flushAll = async () => {
      for (let i = 0; i < 5; i++) {
        await opened.durable.committed();
        await new Promise<void>((r) => setImmediate(r));
      }
    };
    open();
    for (let i = 0; i < 200 && opened.durable.qCount() > 0; i++) await clock.advance(1000, flushAll);
    primary.stop();
    expect(opened.durable.qCount()).toBe(0);
    return sizes;
  }

  it('a batch carries at most what the secondary said it accepts', { timeout: 15_000 }, async () => {
    const sizes = await backlog(10, 3);
    expect(Math.max(...sizes)).toBe(3);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(10);
  });

  it('a secondary that does not say (an older version) gets at most 64 a batch', { timeout: 15_000 }, async () => {
    const sizes = await backlog(replicaBatchObjectsLegacyMax + 6, undefined);
    expect(Math.max(...sizes)).toBe(replicaBatchObjectsLegacyMax);
  });
});

describe('copier: a batch read that throws', () => {
  it('sends the copy alone and logs the failure, not in silence', { timeout: 10_000 }, async () => {
    const opened = await openStore({ admit: async () => ({ hit: true }), committed: () => {} });
    await opened.store.createBucket('b', 'us-east-1');
    const meta = await put(opened.store, 'k', 'hello');
    opened.durable.qPutSync('k/b/k', { seq: meta.seq, kind: 'put', at: 0, cover: [] });
    await opened.durable.committed();
    // The store as the copier sees it, with the batch read broken.
    const broken = new Proxy(opened.store, {
      get: (store, name, receiver) =>
        name === 'readInlineObject'
          ? () => {
              throw new Error('batch read broke');
            }
          : Reflect.get(store, name, receiver),
    });
    const singles: string[] = [];
    const batched: string[] = [];
    const logs: Array<[string, Record<string, unknown> | undefined]> = [];
    const target = {
      putObject: async (copy: { meta: ObjectMeta }, body: Readable) => {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        singles.push(`${copy.meta.key}=${Buffer.concat(chunks).toString()}`);
        return true;
      },
      putObjects: async (items: ReplicaCopy[]) => {
        batched.push(...items.map((i) => i.copy.meta.key));
        return items.map(() => ({ applied: true }));
      },
    } as unknown as ReplicaTarget;
    const clock = new VirtualClock();
    const copier = new Copier({
      durable: opened.durable, target, clock, random: seededRandom(1), concurrency: 2, epoch: () => 1,
      store: () => broken as DiskObjectStore, onSynced: () => {}, onFenced: () => {},
      log: (message, fields) => void logs.push([message, fields]),
    });
    copier.start();
    copier.notify('k/b/k');
    for (let i = 0; i < 50 && opened.durable.qCount() > 0; i++) {
      await clock.advance(100, async () => {
        await opened.durable.committed();
        await new Promise<void>((r) => setImmediate(r));
      });
    }
    copier.stop();
    expect(singles).toEqual(['k=hello']);
    expect(batched).toEqual([]);
    expect(logs.filter(([m]) => /batch failed|for a batch failed/.test(m)).map(([, f]) => f?.err)).toEqual(['Error: batch read broke']);
  });
});
