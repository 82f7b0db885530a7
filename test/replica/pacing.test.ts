// Copy priority (src/replica/pacing.ts) on a virtual clock: the pacer's
// decisions alone, then a primary over an in-process secondary whose
// copies the test counts while a fake client load is on or off.

import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/clock.ts';
import { copyDeferPollMs, copyDeferQueueEntriesMax, copyQuietMs } from '../../src/core/limits.ts';
import type { PutObjectInput } from '../../src/objects/types.ts';
import type { BucketCopy, DeleteCopy, ObjectCopy, RecordAck, RecordMessage, SessionInfo } from '../../src/replica/messages.ts';
import { CopyPacer, type CopyPriority, type ForegroundLoad } from '../../src/replica/pacing.ts';
import { PrimaryReplicator } from '../../src/replica/primary.ts';
import type { PrimaryConfig } from '../../src/replica/primary.ts';
import { SecondaryService } from '../../src/replica/secondary.ts';
import { VirtualClock } from '../../src/replica/sim/clock.ts';
import { SimObjectStore, newSimDisk } from '../../src/replica/sim/store.ts';
import { MemPrimaryDurable, MemSecondaryDurable } from '../../src/replica/state.ts';
import type { ReplicaTarget } from '../../src/replica/target.ts';

const lagMaxMs = 2_000;

/** A client load the test switches: busy means one request in flight. */
class FakeLoad implements ForegroundLoad {
  busy = false;
  private arrived = 0;
  inFlight(): number {
    return this.busy ? 1 : 0;
  }
  arrivals(): number {
    return this.arrived;
  }
  /** A short request that came and went (between two looks). */
  arrive(): void {
    this.arrived++;
  }
}

/** `load` null: the pacer knows no client load. */
function pacer(priority: CopyPriority, load: ForegroundLoad | null, urgent = () => false) {
  const clock = new VirtualClock();
  const p = new CopyPacer({ config: { priority, lagMaxMs }, clock, ...(load ? { load } : {}), urgent });
  return { clock, p };
}

const noTimers = async () => {};

describe('CopyPacer', () => {
  it('holds copies while clients are busy, looking again within the poll period', () => {
    const load = new FakeLoad();
    load.busy = true;
    const { clock, p } = pacer('background', load);
    p.held();
    const at = p.deferUntil(10);
    expect(at).toBe(clock.now() + copyDeferPollMs);
    expect(p.status()).toMatchObject({ state: 'deferring', priority: 'background', lagMaxMs });
    expect(p.deferring).toBe(true);
  });

  it('never holds past the lag bound, and runs at full speed until caught up', async () => {
    const load = new FakeLoad();
    load.busy = true;
    const { clock, p } = pacer('background', load);
    p.held();
    const start = clock.now();
    let looks = 0;
    // Follow the pacer's own wake-up times while the clients stay busy.
    for (let at = p.deferUntil(10); at !== undefined && looks < 1000; at = p.deferUntil(10), looks++) {
      expect(at).toBeLessThanOrEqual(start + lagMaxMs);
      await clock.advance(at - clock.now(), noTimers);
    }
    expect(clock.now() - start).toBe(lagMaxMs);
    expect(p.status()).toMatchObject({ state: 'lag-bound', lagBoundReached: 1 });
    // Newer copies arriving do not restart the wait: full speed until none waits.
    p.held();
    await clock.advance(500, noTimers);
    expect(p.deferUntil(10)).toBeUndefined();
    p.caughtUp();
    p.held();
    expect(p.deferUntil(10)).toBeDefined();
    expect(p.status().lagBoundReached).toBe(1);
  });

  it('a Q entry older than the wait so far moves the bound closer', () => {
    const load = new FakeLoad();
    load.busy = true;
    const { clock, p } = pacer('background', load);
    p.held();
    p.held(clock.now() - lagMaxMs); // found by a rescan: already that old
    expect(p.deferUntil(10)).toBeUndefined();
    expect(p.status().state).toBe('lag-bound');
  });

  it('does not hold once Q reaches the depth threshold (far below the SlowDown limit)', () => {
    const load = new FakeLoad();
    load.busy = true;
    const { p } = pacer('background', load);
    p.held();
    expect(p.deferUntil(copyDeferQueueEntriesMax - 1)).toBeDefined();
    expect(p.deferUntil(copyDeferQueueEntriesMax)).toBeUndefined();
    expect(p.status().state).toBe('queue-depth');
  });

  it('copies at once when clients were quiet for copyQuietMs, not before', async () => {
    const load = new FakeLoad();
    const { clock, p } = pacer('background', load);
    p.held();
    load.arrive();
    expect(p.deferUntil(10)).toBeDefined(); // a request arrived since the last look
    await clock.advance(copyQuietMs - 1, noTimers);
    expect(p.deferUntil(10)).toBeDefined();
    await clock.advance(1, noTimers);
    expect(p.deferUntil(10)).toBeUndefined();
    expect(p.status().state).toBe('clients-idle');
  });

  it('eager, no known load, nothing waiting, or a drain: never holds', () => {
    const busy = new FakeLoad();
    busy.busy = true;
    const eager = pacer('eager', busy).p;
    eager.held();
    expect(eager.deferUntil(10)).toBeUndefined();
    expect(eager.status().state).toBe('eager');
    const blind = pacer('background', null).p;
    blind.held();
    expect(blind.deferUntil(10)).toBeUndefined();
    expect(pacer('background', busy).p.deferUntil(10)).toBeUndefined();
    const draining = pacer('background', busy, () => true).p;
    draining.held();
    expect(draining.deferUntil(10)).toBeUndefined();
    expect(draining.status().state).toBe('urgent');
  });
});

// ------------------------------------------------------------ through a primary

/** Calls the secondary directly and counts what reaches it. */
class CountingTarget implements ReplicaTarget {
  records = 0;
  copies = 0;
  constructor(private readonly s: SecondaryService) {}
  async openSession(from: string, epoch: number): Promise<SessionInfo> {
    return this.s.openSession(from, epoch);
  }
  async applyRecord(message: RecordMessage): Promise<RecordAck> {
    this.records++;
    return this.s.applyRecord(structuredClone(message));
  }
  async putObject(copy: ObjectCopy, body: Readable): Promise<boolean> {
    this.copies++;
    return this.s.putObject(copy, body);
  }
  async deleteObject(copy: DeleteCopy): Promise<boolean> {
    this.copies++;
    return this.s.deleteObject(copy);
  }
  async putBucket(copy: BucketCopy): Promise<void> {
    return this.s.putBucket(copy);
  }
  async health() {
    return this.s.health();
  }
  async close(): Promise<void> {}
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
};

async function pair(overrides: Partial<PrimaryConfig> = {}) {
  const clock = new VirtualClock();
  const diskS = newSimDisk();
  const diskP = newSimDisk();
  for (const d of [diskS, diskP]) d.buckets.set('b', { name: 'b', created: 0, region: 'us-east-1' });
  const storeS = new SimObjectStore(diskS, { admit: async () => ({ hit: true }), committed: () => {} }, clock);
  const secondary = new SecondaryService({ durable: new MemSecondaryDurable(), store: storeS, clock, primaryUrl: 'http://p' });
  storeS.setHooks(secondary.hooks());
  await secondary.start();
  const target = new CountingTarget(secondary);
  const durP = new MemPrimaryDurable();
  const load = new FakeLoad();
  const config: PrimaryConfig = {
    site: 'p',
    recordEntriesMax: 100,
    removal: { targetEntries: 50, hotMs: 0, idleMs: 1_000_000, removalsMax: 100 },
    onSecondaryDown: 'degraded',
    trimIdleMs: 1_000_000,
    probeIntervalMs: 1000,
    sendRetryMs: 10,
    copyConcurrency: 2,
    copyPriority: 'background',
    copyLagMaxMs: lagMaxMs,
    ...overrides,
  };
  const primary = new PrimaryReplicator({ durable: durP, target, clock, random: seededRandom(1), config, foreground: load });
  const storeP = new SimObjectStore(diskP, primary, clock);
  await primary.start(storeP);
  const put = (key: string) =>
    storeP.putObject({ bucket: 'b', key, body: Readable.from([Buffer.from(key)]), headers: {}, userMeta: {}, tags: {}, algorithms: [], sha256: false, verify: () => {} } as PutObjectInput);
  const advance = (ms: number) => clock.advance(ms, flush);
  const createBucket = (name: string) => storeP.createBucket(name, 'us-east-1');
  return { clock, primary, target, durP, diskS, load, put, advance, createBucket };
}

describe('a primary with copy priority background', () => {
  it('acks writes while their copies are held for busy clients; misses still send their record message', async () => {
    const t = await pair();
    t.load.busy = true;
    for (const k of ['a', 'b', 'c']) await t.put(k);
    await t.advance(lagMaxMs / 2);
    expect(t.target.records).toBeGreaterThan(0); // the misses' record messages went
    expect(t.target.copies).toBe(0);
    expect(t.durP.qCount()).toBe(3);
    expect(t.primary.status().copyPacing).toMatchObject({ state: 'deferring', priority: 'background' });
    expect(t.primary.status().copyPacing!.heldMs).toBeGreaterThanOrEqual(lagMaxMs / 2);
  });

  it('copies everything once the clients go quiet', async () => {
    const t = await pair();
    t.load.busy = true;
    for (const k of ['a', 'b', 'c']) await t.put(k);
    await t.advance(200);
    expect(t.target.copies).toBe(0);
    t.load.busy = false;
    await t.advance(copyQuietMs + copyDeferPollMs * 2);
    expect(t.durP.qCount()).toBe(0);
    expect([...t.diskS.objects.keys()].length).toBeGreaterThanOrEqual(3);
    expect(t.primary.status().copyPacing!.state).toBe('caught-up');
  });

  it('copies at the lag bound although the clients stay busy', async () => {
    const t = await pair();
    t.load.busy = true;
    for (const k of ['a', 'b', 'c']) await t.put(k);
    await t.advance(lagMaxMs - copyDeferPollMs);
    expect(t.durP.qCount()).toBe(3);
    await t.advance(copyDeferPollMs * 2);
    expect(t.durP.qCount()).toBe(0);
    expect(t.target.copies).toBe(3);
    expect(t.primary.status().copyPacing!.lagBoundReached).toBe(1);
  });

  it('a planned drain (switchover) does not wait for the lag bound', async () => {
    const t = await pair();
    t.load.busy = true;
    for (const k of ['a', 'b']) await t.put(k);
    const drained = t.primary.drain(lagMaxMs / 4, 50);
    await t.advance(lagMaxMs / 4);
    expect(await drained).toBe(true);
    expect(t.target.copies).toBe(2);
  });

  it('--sync-copy-on-miss copies a miss before its ack even while hits are held', async () => {
    const t = await pair({ syncCopyOnMiss: true });
    t.load.busy = true;
    await t.put('a'); // a miss: record message, then its copy, before the ack
    expect(t.target.copies).toBe(1);
    await t.put('a'); // a hit: held
    await t.advance(200);
    expect(t.target.copies).toBe(1);
    expect(t.durP.qCount()).toBe(1);
  });

  it('misses waiting for room in a full record are not held up by held copies', async () => {
    const t = await pair({ recordEntriesMax: 2 });
    t.load.busy = true;
    await t.put('a');
    await t.put('b');
    let done = false;
    const third = t.put('c').then(() => (done = true));
    await t.advance(copyDeferPollMs * 4);
    expect(done).toBe(true); // room came from a and b, copied early
    await third;
    expect(t.primary.status().copyPacing!.lagBoundReached).toBe(0);
  });

  it("a bucket's copy is never held: a failover must find the bucket", async () => {
    const t = await pair();
    t.load.busy = true;
    await t.createBucket('nb');
    await t.put('a');
    await t.advance(200);
    expect(t.diskS.buckets.has('nb')).toBe(true);
    expect(t.durP.qCount()).toBe(1); // the object's copy is held
  });

  it('eager copies at once under the same load', async () => {
    const t = await pair({ copyPriority: 'eager' });
    t.load.busy = true;
    for (const k of ['a', 'b', 'c']) await t.put(k);
    await t.advance(100);
    expect(t.durP.qCount()).toBe(0);
    expect(t.primary.status().copyPacing).toMatchObject({ priority: 'eager', state: 'eager' });
  });
});
