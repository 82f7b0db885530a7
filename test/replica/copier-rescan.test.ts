// The copier's rescan of Q: a full scan (O(|Q|)) only when Q holds keys the
// copier does not track, such as an entry whose notify was lost, and not
// because writes are committing while it looks. And its ready window: at
// most readyKeysMax keys in memory, the rest found by scanning Q.

import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/clock.ts';
import { S3Error } from '../../src/core/errors.ts';
import type { ObjectStore } from '../../src/objects/types.ts';
import { Copier } from '../../src/replica/copier.ts';
import type { DeleteCopy } from '../../src/replica/messages.ts';
import { CopyPacer } from '../../src/replica/pacing.ts';
import { VirtualClock } from '../../src/replica/sim/clock.ts';
import { MemPrimaryDurable } from '../../src/replica/state.ts';
import type { QEntry } from '../../src/replica/state.ts';
import type { ReplicaTarget } from '../../src/replica/target.ts';

const rescanMs = 100;

/** Counts full scans; `committed()` waits for the gate (commits in flight). */
class GatedDurable extends MemPrimaryDurable {
  scans = 0;
  /** Pages read, first or not. */
  pages = 0;
  commitWaits = 0;
  gate: Promise<void> | undefined;
  override qScan(after: string | undefined, limit: number): Array<[string, QEntry]> {
    if (after === undefined) this.scans++;
    this.pages++;
    return super.qScan(after, limit);
  }
  override async committed(): Promise<void> {
    this.commitWaits++;
    await this.gate;
  }
}

interface SetupOptions {
  readyKeysMax?: number;
  /** Client requests in flight (copies are held while there are some). */
  clients?: { inFlight: number };
}

function setup(opts: SetupOptions = {}) {
  const clock = new VirtualClock();
  const durable = new GatedDurable();
  const deleted: string[] = [];
  const copies = { gate: undefined as Promise<void> | undefined };
  const target = {
    deleteObject: async (copy: DeleteCopy) => {
      await copies.gate;
      deleted.push(copy.key);
      return true;
    },
  } as unknown as ReplicaTarget;
  // Every key is gone on the primary: each copy is a delete, no body to read.
  const store = {
    openObject: async () => {
      throw new S3Error('NoSuchKey', 'gone');
    },
  } as unknown as ObjectStore;
  const copier = new Copier({
    durable, target, clock, random: seededRandom(1), concurrency: 2, epoch: () => 1, store: () => store,
    onSynced: () => {}, onFenced: () => {}, rescanMs,
    ...(opts.readyKeysMax !== undefined ? { readyKeysMax: opts.readyKeysMax } : {}),
    ...(opts.clients ? { pacer: pacerFor(clock, opts.clients) } : {}),
  });
  const flush = async () => {
    for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
  };
  const queue = (key: string, seq: number) => durable.qPutSync(`k/b/${key}`, { seq, kind: 'delete', at: clock.now(), cover: [] });
  return { clock, durable, copier, deleted, flush, queue, copies };
}

function pacerFor(clock: VirtualClock, clients: { inFlight: number }): CopyPacer {
  return new CopyPacer({
    config: { priority: 'background', lagMaxMs: 60_000 },
    clock,
    load: { inFlight: () => clients.inFlight, arrivals: () => 0 },
  });
}

describe('copier rescans of Q', () => {
  it('writes whose commit has not resolved yet do not make it scan Q', async () => {
    const t = setup();
    let open!: () => void;
    t.durable.gate = new Promise<void>((resolve) => (open = resolve));
    t.copier.start();
    const scansAtStart = t.durable.scans;
    for (let i = 0; i < 10; i++) {
      t.queue(`x${i}`, i + 1);
      t.copier.notify(`k/b/x${i}`);
    }
    // Fewer rounds than the lag scan's period (every 6th round).
    for (let round = 0; round < 4; round++) await t.clock.advance(rescanMs, t.flush);
    expect(t.durable.scans).toBe(scansAtStart);
    open();
    for (let i = 0; i < 20 && t.durable.qCount() > 0; i++) await t.clock.advance(rescanMs / 4, t.flush);
    t.copier.stop();
    expect(t.durable.qCount()).toBe(0);
    expect(t.deleted.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `x${i}`).sort());
  });

  it('an entry no notify told of is found by the next rescan and copied', async () => {
    const t = setup();
    t.copier.start();
    await t.flush();
    const scansAtStart = t.durable.scans;
    t.queue('lost', 1); // committed, but its notify never came
    await t.clock.advance(rescanMs, t.flush);
    expect(t.durable.scans).toBe(scansAtStart + 1);
    for (let i = 0; i < 20 && t.durable.qCount() > 0; i++) await t.clock.advance(rescanMs / 4, t.flush);
    t.copier.stop();
    expect(t.deleted).toEqual(['lost']);
  });

  it('tracks at most its window of Q in memory, and copies every key past it', async () => {
    const t = setup({ readyKeysMax: 4 });
    let open!: () => void;
    t.copies.gate = new Promise<void>((resolve) => (open = resolve)); // S slow: copies wait
    t.copier.start();
    for (let i = 0; i < 50; i++) {
      t.queue(`w${i}`, i + 1);
      t.copier.notify(`k/b/w${i}`);
    }
    await t.flush();
    // Two copies in flight (concurrency), at most the window tracked, the
    // rest in Q only.
    expect(t.copier.window().tracked).toBeLessThanOrEqual(4);
    expect(t.copier.window().untracked).toBe(true);
    let trackedMax = 0;
    open();
    for (let i = 0; i < 200 && t.durable.qCount() > 0; i++) {
      await t.clock.advance(rescanMs / 4, t.flush);
      trackedMax = Math.max(trackedMax, t.copier.window().tracked);
    }
    t.copier.stop();
    expect(trackedMax).toBeLessThanOrEqual(4);
    expect(t.durable.qCount()).toBe(0);
    expect(new Set(t.deleted).size).toBe(50);
    expect(t.copier.window()).toEqual({ tracked: 0, untracked: false });
  });

  it('while copies are held for clients, writes past the window cost no commit wait each; all go once clients stop', async () => {
    const clients = { inFlight: 1 };
    const t = setup({ readyKeysMax: 4, clients });
    t.copier.start();
    await t.flush();
    const waitsBefore = t.durable.commitWaits;
    for (let i = 0; i < 40; i++) {
      t.queue(`h${i}`, i + 1);
      t.copier.notify(`k/b/h${i}`);
      await t.flush();
    }
    await t.clock.advance(rescanMs, t.flush);
    expect(t.deleted).toEqual([]); // held: clients are busy
    // The first keys fill the window (one wait for its commit each); the
    // rest are found in Q later.
    expect(t.durable.commitWaits - waitsBefore).toBeLessThanOrEqual(4);
    expect(t.copier.window().tracked).toBe(4);
    clients.inFlight = 0;
    for (let i = 0; i < 200 && t.durable.qCount() > 0; i++) await t.clock.advance(rescanMs, t.flush);
    t.copier.stop();
    expect(t.durable.qCount()).toBe(0);
    expect(new Set(t.deleted).size).toBe(40);
  });

  it('reads a large Q a page at a time, letting client requests run between pages', async () => {
    const t = setup({ clients: { inFlight: 1 } }); // copies held: only the rescan reads Q
    t.copier.start();
    await t.flush();
    // Three pages' worth, committed without a notify: only a rescan finds them.
    const keys = 2500;
    for (let i = 0; i < keys; i++) t.queue(`p${String(i).padStart(5, '0')}`, i + 1);
    const before = t.durable.pages;
    // Stands for the event loop's other work: what page count it sees each turn.
    const seen: number[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        seen.push(t.durable.pages - before);
        await new Promise<void>((r) => setImmediate(r));
      }
    })();
    await t.clock.advance(rescanMs, t.flush);
    probing = false;
    await probe;
    t.copier.stop();
    const pages = t.durable.pages - before;
    expect(pages).toBe(3);
    // Read in one go, the probe would see 0 pages or all of them, nothing between.
    expect(seen.some((n) => n > 0 && n < pages)).toBe(true);
    expect(t.copier.window().tracked).toBe(keys);
  });
});
