// Unit tests of the primary's protocol logic over an in-process secondary
// (SecondaryService + in-memory store) and a target whose answers the test
// controls.

import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ChangeIntent } from '../../src/core/changes.ts';
import { seededRandom } from '../../src/core/clock.ts';
import { NotPrimaryError, S3Error, SecondaryUnavailableError } from '../../src/core/errors.ts';
import type { PutObjectInput } from '../../src/objects/types.ts';
import type { BucketCopy, DeleteCopy, ObjectCopy, RecordAck, RecordMessage, SessionInfo } from '../../src/replica/messages.ts';
import { Registry } from 'prom-client';
import { ReplicaMetrics } from '../../src/replica/metrics.ts';
import { PrimaryReplicator } from '../../src/replica/primary.ts';
import type { Predict, PrimaryConfig } from '../../src/replica/primary.ts';
import { SecondaryService } from '../../src/replica/secondary.ts';
import { VirtualClock } from '../../src/replica/sim/clock.ts';
import { SimObjectStore, newSimDisk } from '../../src/replica/sim/store.ts';
import { MemPrimaryDurable, MemSecondaryDurable } from '../../src/replica/state.ts';
import type { ReplicaTarget } from '../../src/replica/target.ts';
import { FencedError, TargetUnavailableError } from '../../src/replica/target.ts';

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

/** Calls the secondary directly; the test can hold record acks or fail. */
class ControlledTarget implements ReplicaTarget {
  records: RecordMessage[] = [];
  copies = 0;
  hold = false;
  down = false;
  /** Object and delete copies wait for releaseCopies(), or fail. */
  holdCopies = false;
  failCopies = false;
  private held: Array<() => void> = [];
  private heldCopies: Array<() => void> = [];

  releaseCopies(): void {
    const held = this.heldCopies;
    this.heldCopies = [];
    for (const go of held) go();
  }

  private async copyGate(): Promise<void> {
    if (this.down) throw new TargetUnavailableError('down');
    if (this.failCopies) throw new TargetUnavailableError('copy refused');
    if (this.holdCopies) await new Promise<void>((resolve) => this.heldCopies.push(resolve));
  }

  constructor(private readonly s: SecondaryService) {}

  release(): void {
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }

  private gate(): Promise<void> {
    if (this.down) return Promise.reject(new TargetUnavailableError('down'));
    if (!this.hold) return Promise.resolve();
    return new Promise((resolve) => this.held.push(resolve));
  }

  async openSession(from: string, epoch: number): Promise<SessionInfo> {
    if (this.down) throw new TargetUnavailableError('down');
    return this.s.openSession(from, epoch);
  }
  async applyRecord(message: RecordMessage): Promise<RecordAck> {
    this.records.push(message);
    await this.gate();
    return this.s.applyRecord(structuredClone(message));
  }
  async putObject(copy: ObjectCopy, body: Readable): Promise<boolean> {
    await this.copyGate();
    this.copies++;
    return this.s.putObject(copy, body);
  }
  async deleteObject(copy: DeleteCopy): Promise<boolean> {
    await this.copyGate();
    this.copies++;
    return this.s.deleteObject(copy);
  }
  async putBucket(copy: BucketCopy): Promise<void> {
    if (this.down) throw new TargetUnavailableError('down');
    return this.s.putBucket(copy);
  }
  async health() {
    return this.s.health();
  }
  async close(): Promise<void> {}
}

function config(overrides: Partial<PrimaryConfig> = {}): PrimaryConfig {
  return {
    site: 'p',
    recordEntriesMax: 100,
    removal: { targetEntries: 50, hotMs: 0, idleMs: 1_000_000, removalsMax: 100 },
    onSecondaryDown: 'degraded',
    trimIdleMs: 10_000,
    probeIntervalMs: 1000,
    sendRetryMs: 10,
    copyConcurrency: 2,
    ...overrides,
  };
}

async function setup(overrides: Partial<PrimaryConfig> = {}, metrics?: ReplicaMetrics, predict?: Predict) {
  const clock = new VirtualClock();
  const diskS = newSimDisk();
  const diskP = newSimDisk();
  for (const d of [diskS, diskP]) d.buckets.set('b', { name: 'b', created: 0, region: 'us-east-1' });
  const storeS = new SimObjectStore(diskS, { admit: async () => ({ hit: true }), committed: () => {} }, clock);
  const durS = new MemSecondaryDurable();
  const secondary = new SecondaryService({ durable: durS, store: storeS, clock, primaryUrl: 'http://p' });
  storeS.setHooks(secondary.hooks());
  await secondary.start();
  const target = new ControlledTarget(secondary);
  const durP = new MemPrimaryDurable();
  const primary = new PrimaryReplicator({ durable: durP, target, clock, random: seededRandom(1), config: config(overrides), ...(metrics ? { metrics } : {}), ...(predict ? { predict } : {}), ...(process.env.REPL_DEBUG ? { log: (m: string, f?: unknown) => console.log(m, f) } : {}) });
  const storeP = new SimObjectStore(diskP, primary, clock);
  await primary.start(storeP);
  const put = (key: string, data: string | Readable = 'x', verify: PutObjectInput['verify'] = () => {}) =>
    storeP.putObject({ bucket: 'b', key, body: typeof data === 'string' ? Readable.from([Buffer.from(data)]) : data, headers: {}, userMeta: {}, tags: {}, algorithms: [], sha256: false, verify } as PutObjectInput);
  return { clock, primary, secondary, target, durP, durS, diskP, diskS, storeP, put };
}

const intent = (key: string): ChangeIntent => ({ kind: 'put', bucket: 'b', key });

describe('PrimaryReplicator', () => {
  it('a miss commits only after the secondary acked the record message', async () => {
    const t = await setup();
    t.target.hold = true;
    let done = false;
    const write = t.put('k1').then(() => (done = true));
    await flush();
    expect(t.target.records).toHaveLength(1);
    expect(t.target.records[0]?.add.map((e) => e.name)).toContain('k/b/k1');
    expect(done).toBe(false);
    expect(t.diskP.objects.size).toBe(0); // not committed locally yet
    t.target.release();
    await write;
    expect(t.diskP.objects.size).toBe(1);
    expect(t.secondary.recordNames()).toContain('k/b/k1');
    expect(t.primary.status().misses).toBe(1);
  });

  it('concurrent misses share one record message (group commit)', async () => {
    const t = await setup();
    t.target.hold = true;
    const first = t.put('a');
    await flush();
    // While the first message is in flight, five more misses gather.
    const more = ['b', 'c', 'd', 'e', 'f'].map((k) => t.put(k));
    await flush();
    expect(t.target.records).toHaveLength(1);
    t.target.release();
    await flush();
    expect(t.target.records).toHaveLength(2);
    expect(t.target.records[1]?.add.map((e) => e.name).sort()).toEqual(['k/b/b', 'k/b/c', 'k/b/d', 'k/b/e', 'k/b/f']);
    t.target.release();
    await Promise.all([first, ...more]);
    expect(t.primary.status().misses).toBe(6);
  });

  it('a write covered by R\' is a hit: no record message', async () => {
    const t = await setup();
    await t.put('k1');
    const sent = t.target.records.length;
    await t.put('k1', 'again');
    expect(t.target.records.length).toBe(sent);
    expect(t.primary.status().hits).toBe(1);
  });

  it('a hit through a group reads no dictionary entry for the key\'s own name, and pins the group', async () => {
    const predict: Predict = (change) => [`k/${change.bucket}/${change.key}`, `p/${change.bucket}/logs/`];
    const t = await setup({}, undefined, predict);
    await t.put('logs/a'); // a miss: k/b/logs/a and p/b/logs/ join R
    const peek = t.durP.ids.peek.bind(t.durP.ids);
    const group = peek('p/b/logs/');
    expect(group).toBeDefined();
    const peeked: string[] = [];
    t.durP.ids.peek = (name) => {
      peeked.push(name);
      return peek(name);
    };
    await t.put('logs/a', 'again'); // covered by its own entry and the group
    await t.put('logs/b'); // by the group alone
    expect(t.primary.status()).toMatchObject({ hits: 2, misses: 1 });
    expect(peeked.filter((name) => name.startsWith('k/'))).toEqual([]);
    expect(t.durP.storage.q.get('k/b/logs/a')?.cover).toEqual([group]);
    expect(t.durP.storage.q.get('k/b/logs/b')?.cover).toEqual([group]);
  });

  it('a key no group covers is a hit through its own entry', async () => {
    const t = await setup();
    await t.put('solo'); // a miss: its own location joins R
    const own = t.durP.ids.peek('k/b/solo');
    await t.put('solo', 'again');
    expect(t.primary.status()).toMatchObject({ hits: 1, misses: 1 });
    expect(t.durP.storage.q.get('k/b/solo')?.cover).toEqual([own]);
  });

  it('committed queues the key with its seq in the same commit; the copier drains it', async () => {
    const t = await setup();
    t.target.down = false;
    await t.put('k1', 'hello');
    const entry = t.durP.storage.q.get('k/b/k1');
    expect(entry?.seq).toBe(t.diskP.objects.get('b\0k1')?.meta.seq);
    for (let i = 0; i < 10 && t.durP.storage.q.size > 0; i++) await t.clock.advance(100, flush);
    expect(t.durP.storage.q.size).toBe(0);
    expect(t.diskS.objects.get('b\0k1')?.body.toString()).toBe('hello');
  });

  it('a key written again while its copy is in flight stays queued', async () => {
    const t = await setup();
    await t.put('k1', 'one');
    // The copier already sent 'one'; write 'two' before the Q entry is removed.
    const seq1 = t.durP.storage.q.get('k/b/k1')?.seq as number;
    await t.put('k1', 'two');
    expect(await t.durP.qDeleteIfSeq('k/b/k1', seq1)).toBeUndefined();
    for (let i = 0; i < 20 && t.durP.storage.q.size > 0; i++) await t.clock.advance(200, flush);
    expect(t.diskS.objects.get('b\0k1')?.body.toString()).toBe('two');
  });

  it('a key committed again while its synced entry is being removed keeps its pins: the new entry is in Q', async () => {
    const t = await setup();
    await t.put('k1', 'one');
    let raced = false;
    const remove = t.durP.qDeleteIfSeq.bind(t.durP);
    // The removal of 'one' and the commit of 'two' in one lmdb batch: the
    // copier hears of the removal only after 'two' is queued.
    t.durP.qDeleteIfSeq = async (qkey, seq) => {
      const removed = await remove(qkey, seq);
      if (removed && !raced) {
        raced = true;
        await t.put('k1', 'two');
        t.target.holdCopies = true; // 'two' stays queued while we look
      }
      return removed;
    };
    for (let i = 0; i < 20 && !raced; i++) await t.clock.advance(100, flush);
    await flush();
    expect(raced).toBe(true);
    expect(t.durP.storage.q.has('k/b/k1')).toBe(true);
    // What covers the queued 'two' may not leave the record before its copy.
    expect(t.primary.status().pinnedEntries).toBeGreaterThan(0);
    t.target.holdCopies = false;
    t.target.releaseCopies();
    for (let i = 0; i < 50 && t.durP.storage.q.size > 0; i++) await t.clock.advance(200, flush);
    expect(t.durP.storage.q.size).toBe(0);
    expect(t.diskS.objects.get('b\0k1')?.body.toString()).toBe('two');
    expect(t.primary.status().pinnedEntries).toBe(0);
  });

  it('drain waits until every write reached the secondary', async () => {
    const t = await setup();
    await t.put('d/1', 'one');
    await t.put('d/2', 'two');
    const drained = t.primary.drain(5000);
    for (let i = 0; i < 20; i++) await t.clock.advance(100, flush);
    expect(await drained).toBe(true);
    expect(t.diskS.objects.size).toBe(2);
    t.target.down = true;
    await t.put('d/1', 'again'); // a hit: committed, but S cannot get it
    const stuck = t.primary.drain(1000);
    for (let i = 0; i < 20; i++) await t.clock.advance(100, flush);
    expect(await stuck).toBe(false);
  });

  it('committed refuses a write no longer covered (rolls it back)', async () => {
    const t = await setup();
    expect(() => t.primary.committed({ ...intent('never-admitted'), seq: 5 })).toThrow(/no longer covers/);
    expect(t.durP.storage.q.size).toBe(0);
  });

  it('backpressure: a full record makes misses wait until removals free room', async () => {
    const t = await setup({ recordEntriesMax: 2, removal: { targetEntries: 2, hotMs: 0, idleMs: 1_000_000, removalsMax: 10 } });
    t.target.down = false;
    // Block the copier so Q pins the entries.
    const copies = t.target.putObject.bind(t.target);
    let copyGate: (() => void) | undefined;
    const gate = new Promise<void>((r) => (copyGate = r));
    t.target.putObject = async (c, b) => {
      await gate;
      return copies(c, b);
    };
    await t.put('a');
    await t.put('b');
    let third = false;
    const w = t.put('c').then(() => (third = true));
    await t.clock.advance(500, flush);
    expect(third).toBe(false); // R' full of pinned entries: the miss waits
    expect(t.secondary.recordSize).toBeLessThanOrEqual(2);
    copyGate?.();
    for (let i = 0; i < 50 && !third; i++) await t.clock.advance(200, flush);
    await w;
    expect(third).toBe(true);
    expect(t.secondary.recordSize).toBeLessThanOrEqual(2);
    expect(t.secondary.recordNames()).toContain('k/b/c');
  });

  it('an id released and bound again to another name no longer covers its old name (coverIds forgets cached ids)', async () => {
    const t = await setup({ recordEntriesMax: 1, removal: { targetEntries: 1, hotMs: 0, idleMs: 1_000_000, removalsMax: 10 } });
    const drainCopies = async () => {
      for (let i = 0; i < 20 && t.durP.storage.q.size > 0; i++) await t.clock.advance(200, flush);
      expect(t.durP.storage.q.size).toBe(0);
    };
    await t.put('a'); // miss: a's id joins R'
    await t.put('a'); // hit: the lookup of a's name is cached
    expect(t.primary.status().hits).toBe(1);
    const idOfA = t.durP.ids.peek('k/b/a');
    await drainCopies();
    await t.put('b'); // miss: a (in sync) leaves R to make room
    await drainCopies();
    await t.put('c'); // miss: a's id, released once S acked, goes to c; b leaves
    await drainCopies();
    expect(t.durP.ids.peek('k/b/c')).toBe(idOfA);
    expect(t.primary.recordIds()).toEqual([idOfA]);
    // A cached "a -> id" would find that id in R' and call this a hit.
    const sent = t.target.records.length;
    await t.put('a', 'again');
    expect(t.target.records.length).toBe(sent + 1);
    expect(t.target.records.at(-1)?.add.map((e) => e.name)).toContain('k/b/a');
    expect(t.primary.status().hits).toBe(1);
  });

  it('a group name found outside R\' is looked up again once R\' gains ids (coverIds forgets "not in the record")', async () => {
    let predicted = ['k/b/dir/a', 'p/b/dir/'];
    const t = await setup({}, undefined, () => predicted);
    await t.put('dir/a'); // miss: dir/ joins R'
    await t.put('dir/b'); // hit: on the way, 'p/b/' is found outside R'
    expect(t.primary.status()).toMatchObject({ hits: 1, misses: 1 });
    predicted = ['k/b/other/x', 'p/b/'];
    await t.put('other/x'); // miss: the bucket's root group joins R'
    const sent = t.target.records.length;
    await t.put('elsewhere/y'); // covered by the root group alone
    expect(t.target.records.length).toBe(sent);
    expect(t.primary.status()).toMatchObject({ hits: 2, misses: 2 });
  });

  it('degraded mode: S down, the write is admitted and tracked dirty, then resynced', async () => {
    const t = await setup({ onSecondaryDown: 'degraded' });
    t.target.down = true;
    const w = t.put('k1');
    for (let i = 0; i < 10; i++) await t.clock.advance(50, flush);
    await w;
    expect(t.durP.storage.dirty.has('k/b/k1')).toBe(true);
    expect(t.primary.status().peer).toBe('degraded');
    expect(t.primary.status().dirtyCount).toBe(1);
    t.target.down = false;
    for (let i = 0; i < 40 && (t.durP.storage.dirty.size > 0 || t.durP.storage.q.size > 0); i++) await t.clock.advance(500, flush);
    expect(t.durP.storage.dirty.size).toBe(0);
    expect(t.diskS.objects.has('b\0k1')).toBe(true);
    expect(t.primary.status().peer).toBe('ok');
  });

  it('refuse mode: S down, a miss fails with SecondaryUnavailableError and nothing commits', async () => {
    const t = await setup({ onSecondaryDown: 'refuse' });
    t.target.down = true;
    const w = t.put('k1').catch((e: unknown) => e);
    for (let i = 0; i < 10; i++) await t.clock.advance(50, flush);
    expect(await w).toBeInstanceOf(SecondaryUnavailableError);
    expect(t.diskP.objects.size).toBe(0);
    expect(t.primary.status().peer).toBe('unreachable');
  });

  it('a higher epoch fences the primary: writes get NotPrimaryError', async () => {
    const t = await setup();
    t.target.applyRecord = async () => {
      throw new FencedError(7, 'http://new-primary');
    };
    const err = await t.put('k1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotPrimaryError);
    const again = await t.put('k2').catch((e: unknown) => e);
    expect(again).toBeInstanceOf(NotPrimaryError);
    expect((again as NotPrimaryError).headers['x-amz-lookahead-primary']).toBe('http://new-primary');
    expect(t.durP.storage.meta.fencedBy?.epoch).toBe(7);
  });

  it('a secondary that lost its record: R\' shrinks to R and queued keys go dirty, then back under R', async () => {
    const t = await setup();
    await t.put('lost/1');
    t.target.down = true; // the copy cannot go out: the key stays queued
    await t.put('lost/1', 'again');
    expect(t.durP.storage.q.has('k/b/lost/1')).toBe(true);
    // S is replaced by an empty one; P restarts against it.
    t.primary.stop();
    const fresh = new SecondaryService({ durable: new MemSecondaryDurable(), store: new SimObjectStore(t.diskS, { admit: async () => ({ hit: true }), committed: () => {} }, t.clock), clock: t.clock });
    await fresh.start();
    const target = new ControlledTarget(fresh);
    target.hold = true; // hold the resync message to look at the state before it
    const again = new PrimaryReplicator({ durable: t.durP.crash(), target, clock: t.clock, random: seededRandom(3), config: config() });
    await again.start(new SimObjectStore(t.diskP, again, t.clock));
    expect(again.recordIds()).toEqual([]); // R' ⊆ R, and R is empty
    expect(t.durP.storage.dirty.has('k/b/lost/1')).toBe(true);
    expect(again.status().peer).toBe('degraded');
    target.hold = false;
    target.release();
    for (let i = 0; i < 20 && t.durP.storage.dirty.size > 0; i++) await t.clock.advance(200, flush);
    expect(fresh.recordNames()).toContain('k/b/lost/1');
    expect(t.durP.storage.dirty.size).toBe(0);
    again.stop();
  });

  it('status and prom-client metrics report hits, misses, record size, queue and bytes', async () => {
    const registry = new Registry();
    const metrics = new ReplicaMetrics(registry);
    const t = await setup({}, metrics);
    await t.put('m/1', 'abcd');
    await t.put('m/1', 'efgh');
    for (let i = 0; i < 10 && t.durP.storage.q.size > 0; i++) await t.clock.advance(100, flush);
    const st = t.primary.status();
    expect(st).toMatchObject({ role: 'primary', peer: 'ok', hits: 1, misses: 1, missRate: 0.5, queueDepth: 0, dirtyCount: 0 });
    expect(st.recordSize).toBe(t.primary.recordIds().length);
    expect(st.bytesReplicated).toBeGreaterThanOrEqual(4);
    const text = await registry.metrics();
    expect(text).toMatch(/lookahead_replica_writes_total\{result="hit"\} 1/);
    expect(text).toMatch(/lookahead_replica_writes_total\{result="miss"\} 1/);
    // Counted at scrape time: a second scrape reports the same totals.
    expect(await registry.metrics()).toMatch(/lookahead_replica_writes_total\{result="hit"\} 1\n/);
    expect(text).toMatch(new RegExp(`lookahead_replica_record_entries ${st.recordSize}`));
    expect(text).toMatch(/lookahead_replica_queue_depth 0/);
    expect(text).toMatch(/lookahead_replica_bytes_replicated_total [1-9]/);
  });

  it('on restart R\' is rebuilt from the secondary\'s record', async () => {
    const t = await setup();
    await t.put('x/1');
    await t.put('y/1');
    const before = t.primary.recordIds().sort();
    t.primary.stop();
    const durP = t.durP.crash();
    const again = new PrimaryReplicator({ durable: durP, target: t.target, clock: t.clock, random: seededRandom(2), config: config() });
    await again.start(new SimObjectStore(t.diskP, again, t.clock));
    expect(again.recordIds().sort()).toEqual(before);
    expect(before.length).toBeGreaterThan(0);
    again.stop();
  });
});

const badDigest = () => {
  throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
};

const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (err: unknown) => (err instanceof S3Error ? err.code : String(err)),
  );

describe('PrimaryReplicator: a write that fails after admit (aborted)', () => {
  it('releases exactly its own admission at once; a concurrent writer of the key keeps its pins', async () => {
    const t = await setup();
    t.target.hold = true;
    const slowBody = new PassThrough();
    const survivor = t.put('k', slowBody);
    const failing = outcome(t.put('k', 'bad', badDigest));
    await flush();
    // Both misses wait for one record message (group commit).
    expect(t.target.records).toHaveLength(1);
    expect(t.primary.status()).toMatchObject({ admissions: 0, pinnedEntries: 0 });
    t.target.release();
    expect(await failing).toBe('BadDigest');
    await flush();
    // No time passed (the lease is an hour): the failed write's admission is
    // gone, the survivor's admission still pins k's record entry.
    expect(t.primary.status()).toMatchObject({ admissions: 1, pinnedEntries: 1 });
    // A release by name only would have taken the survivor's admission.
    t.primary.aborted(intent('k'));
    expect(t.primary.status()).toMatchObject({ admissions: 1, pinnedEntries: 1 });
    slowBody.end('good');
    const meta = await survivor;
    expect(t.diskP.objects.get('b\0k')?.meta.seq).toBe(meta.seq);
    // Committed: the pin passed from the admission to the Q entry.
    expect(t.primary.status()).toMatchObject({ admissions: 0, pinnedEntries: 1, queueDepth: 1 });
    for (let i = 0; i < 20 && t.primary.status().queueDepth > 0; i++) await t.clock.advance(100, flush);
    expect(t.primary.status()).toMatchObject({ admissions: 0, pinnedEntries: 0, queueDepth: 0 });
    expect(t.diskS.objects.get('b\0k')?.body.toString()).toBe('good');
  });

  it('a hit that fails releases at once too, and the released entry may leave the record', async () => {
    const t = await setup({ removal: { targetEntries: 0, hotMs: 0, idleMs: 0, removalsMax: 10 }, trimIdleMs: 100 });
    await t.put('h');
    for (let i = 0; i < 20 && t.primary.status().queueDepth > 0; i++) await t.clock.advance(50, flush);
    const hold = new PassThrough();
    const failing = outcome(t.put('h', hold, badDigest)); // a hit: R' covers k/b/h
    await flush();
    expect(t.primary.status()).toMatchObject({ hits: 1, admissions: 1, pinnedEntries: 1 });
    // While admitted, trims cannot take the entry.
    for (let i = 0; i < 5; i++) await t.clock.advance(200, flush);
    expect(t.secondary.recordNames()).toContain('k/b/h');
    hold.end('zzz');
    expect(await failing).toBe('BadDigest');
    await flush();
    expect(t.primary.status()).toMatchObject({ admissions: 0, pinnedEntries: 0 });
    for (let i = 0; i < 10 && t.secondary.recordNames().includes('k/b/h'); i++) await t.clock.advance(200, flush);
    expect(t.secondary.recordNames()).not.toContain('k/b/h');
  });

  it('aborted for a committed token, a second time, or without a token changes nothing', async () => {
    const t = await setup();
    t.target.holdCopies = true;
    let seen: ChangeIntent | undefined;
    const admit = t.primary.admit.bind(t.primary);
    t.primary.admit = (c) => ((seen = c), admit(c));
    await t.put('k');
    expect(t.primary.status()).toMatchObject({ admissions: 0, pinnedEntries: 1 });
    t.primary.aborted(seen as ChangeIntent);
    t.primary.aborted(seen as ChangeIntent);
    t.primary.aborted(intent('k'));
    expect(t.primary.status()).toMatchObject({ admissions: 0, pinnedEntries: 1 });
    t.target.releaseCopies();
  });
});

describe('PrimaryReplicator: synchronous copy on a miss (claim 2)', () => {
  it('a miss is acked only once S holds its version; a hit is acked before its copy', async () => {
    const t = await setup({ syncCopyOnMiss: true });
    t.target.holdCopies = true;
    let acked = false;
    const miss = t.put('k', 'one').then((m) => ((acked = true), m));
    for (let i = 0; i < 10 && t.target.records.length === 0; i++) await flush();
    await flush();
    expect(t.diskP.objects.get('b\0k')?.body.toString()).toBe('one'); // committed on P
    expect(acked).toBe(false); // but S does not hold it yet
    expect(t.diskS.objects.has('b\0k')).toBe(false);
    t.target.releaseCopies();
    const meta = await miss;
    expect(t.diskS.objects.get('b\0k')?.meta.seq).toBe(meta.seq);
    // Its Q entry went with the synchronous copy, and its pins with it.
    expect(t.primary.status()).toMatchObject({ queueDepth: 0, pinnedEntries: 0, syncCopyOnMiss: true });
    expect(t.primary.status().syncCopies).toMatchObject({ copied: 1, failed: 0 });
    // A hit (claim 3): acked while its copy is still held.
    const hit = await t.put('k', 'two');
    expect(t.primary.status().hits).toBe(1);
    expect(t.diskS.objects.get('b\0k')?.body.toString()).toBe('one');
    expect(t.primary.status().queueDepth).toBe(1);
    t.target.holdCopies = false;
    t.target.releaseCopies();
    for (let i = 0; i < 20 && t.primary.status().queueDepth > 0; i++) await t.clock.advance(100, flush);
    expect(t.diskS.objects.get('b\0k')?.meta.seq).toBe(hit.seq);
    expect(t.target.copies).toBe(2); // no copy twice
  });

  it('a missed delete is on S (as a tombstone) before its ack', async () => {
    const t = await setup({ syncCopyOnMiss: true });
    await t.put('gone/1');
    await t.storeP.deleteObject('b', 'other/1'); // a miss: k/b/other/1 was not in R'
    expect(t.primary.status().syncCopies.copied).toBe(2);
    expect(t.diskS.tombstones.get('b\0other/1')).toBeGreaterThan(0);
  });

  it('off (the default): a miss is acked before its copy', async () => {
    const t = await setup();
    t.target.holdCopies = true;
    await t.put('k', 'one');
    expect(t.diskS.objects.has('b\0k')).toBe(false);
    expect(t.primary.status()).toMatchObject({ syncCopyOnMiss: false, queueDepth: 1 });
    t.target.releaseCopies();
  });

  it('S fails during the copy: the committed write is acked and the copier delivers it later', async () => {
    const t = await setup({ syncCopyOnMiss: true });
    t.target.failCopies = true;
    const meta = await t.put('k', 'one');
    expect(t.diskS.objects.has('b\0k')).toBe(false);
    expect(t.primary.status().syncCopies).toMatchObject({ copied: 0, failed: 1 });
    // Still covered by R (the miss's record add was acked) and queued.
    expect(t.secondary.recordNames()).toContain('k/b/k');
    expect(t.primary.status().queueDepth).toBe(1);
    t.target.failCopies = false;
    for (let i = 0; i < 40 && t.primary.status().queueDepth > 0; i++) await t.clock.advance(200, flush);
    expect(t.diskS.objects.get('b\0k')?.meta.seq).toBe(meta.seq);
  });

  it('S unreachable (degraded admission): acked without waiting, tracked dirty', async () => {
    const t = await setup({ syncCopyOnMiss: true });
    t.target.down = true;
    const w = t.put('k');
    for (let i = 0; i < 10; i++) await t.clock.advance(50, flush);
    await w;
    expect(t.primary.status().syncCopies).toMatchObject({ copied: 0, 'peer-down': 1 });
    expect(t.durP.storage.dirty.has('k/b/k')).toBe(true);
  });

  it('a key rewritten during its synchronous copy stays queued for the newer version', async () => {
    const t = await setup({ syncCopyOnMiss: true });
    t.target.holdCopies = true;
    const first = t.put('k', 'one');
    for (let i = 0; i < 10 && t.diskP.objects.size === 0; i++) await flush();
    const second = await t.put('k', 'two'); // a hit, committed while the first copy is held
    t.target.releaseCopies();
    const acked = await first;
    expect(second.seq).toBeGreaterThan(acked.seq);
    // S holds the acked version or a newer one; Q keeps the key until the
    // newer version is there.
    expect(t.diskS.objects.get('b\0k')?.meta.seq).toBeGreaterThanOrEqual(acked.seq);
    t.target.holdCopies = false;
    t.target.releaseCopies();
    for (let i = 0; i < 20 && t.primary.status().queueDepth > 0; i++) await t.clock.advance(100, flush);
    expect(t.diskS.objects.get('b\0k')?.body.toString()).toBe('two');
    expect(t.primary.status().pinnedEntries).toBe(0);
  });
});
