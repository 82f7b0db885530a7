// How long the copier's lag rescan of Q holds the event loop, with a large
// real (lmdb) Q while copies are held for clients: the longest gap between
// two turns of a timer chain (setTimeout 0, ~1 ms apart when the loop is
// free) over one lag rescan, and the rescan's pages. No network: the target
// is never called (copies stay held).
//
//   flock /tmp/bench.lock env TMPDIR=/dev/shm npx tsx bench/rescan-stall.ts [--entries 90000] [--checkout DIR]
//
// --checkout DIR measures another checkout's copier and state modules (an A/B).
// Entries stay below copyDeferQueueEntriesMax (100,000): from there the
// pacer stops holding copies, and this harness has no target to send them to
// (its fake copies would fail without I/O, in a loop of microtasks that a
// real target's network I/O never makes).

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '90000' },
    checkout: { type: 'string', default: path.join(import.meta.dirname, '..') },
  },
});
const load = (file: string) => import(path.join(path.resolve(values.checkout!), 'src', file));
const { Copier } = await load('replica/copier.ts');
const { CopyPacer } = await load('replica/pacing.ts');
const { LmdbPrimaryDurable } = await load('replica/state.ts');
const { openMetaDb } = await load('objects/meta-db.ts');
const { systemClock, seededRandom } = await load('core/clock.ts');

/** The copier's lag rescan runs every 6th round of its rescan period. */
const rescanMs = 100;
const lagRescanEvery = 6;
const entries = Number(values.entries);
const { copyDeferQueueEntriesMax } = await load('core/limits.ts');
if (!(entries < copyDeferQueueEntriesMax)) throw new Error(`--entries must stay below copyDeferQueueEntriesMax (${copyDeferQueueEntriesMax})`);

const root = mkdtempSync(path.join(os.tmpdir(), 'rescan-stall-'));
const db = openMetaDb(root);
try {
  const durable = new LmdbPrimaryDurable(db);
  const writeBatch = 10_000;
  for (let i = 0; i < entries; i += writeBatch) {
    await db.childTransaction(() => {
      for (let j = i; j < Math.min(entries, i + writeBatch); j++) {
        durable.qPutSync(`k/bench/obj-${String(j).padStart(8, '0')}`, { seq: j + 1, kind: 'put', at: Date.now(), cover: [1] });
      }
    });
  }
  const clients = { inFlight: 1 }; // copies held for the whole run
  const pacer = new CopyPacer({
    config: { priority: 'background', lagMaxMs: 3_600_000 },
    clock: systemClock,
    load: { inFlight: () => clients.inFlight, arrivals: () => 0 },
  });
  let pages = 0;
  const scan = durable.qScan.bind(durable);
  durable.qScan = (after: string | undefined, limit: number) => {
    pages++;
    return scan(after, limit);
  };
  const copier = new Copier({
    durable, target: {}, clock: systemClock, random: seededRandom(1), concurrency: 2, epoch: () => 1, store: () => undefined,
    onSynced: () => {}, onFenced: () => {}, rescanMs, pacer,
  });
  const t0 = performance.now();
  copier.start(); // its first scan fills the window and runs to the end (before serving)
  const startMs = performance.now() - t0;
  const pagesAtStart = pages;
  // Stands for the clients' requests: how long each waited for a turn.
  let probing = true;
  let last = performance.now();
  let longestGapMs = 0;
  const tick = (): void => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
    if (probing) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  await new Promise((r) => setTimeout(r, rescanMs * (lagRescanEvery + 2)));
  probing = false;
  copier.stop();
  // The lag rescan's period is the copier's own (rescanLagEvery rounds):
  // a run that saw none measured nothing.
  if (pages === pagesAtStart) throw new Error('no lag rescan ran in the window: the copier\'s rescan period changed?');
  console.log(
    `${entries} Q entries: start scan ${startMs.toFixed(0)} ms (${pagesAtStart} pages); ` +
      `over one lag rescan (${pages - pagesAtStart} pages): longest wait for a turn ${longestGapMs.toFixed(1)} ms`,
  );
} finally {
  await db.close();
  rmSync(root, { recursive: true, force: true });
}
