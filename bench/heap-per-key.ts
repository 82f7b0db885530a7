// Heap retained per queued key: a primary whose copies are held back for
// clients (the target never answers them), against the same store without
// replication, in one process. 20,000 PUTs of 4 KiB at concurrency 16 after
// 2,000 warm-up PUTs; V8's used heap after two full GCs, before and after,
// divided by the PUTs. Memory outside the V8 heap (typed arrays, lmdb) is
// not counted.
//
//   flock /tmp/bench.lock env TMPDIR=/dev/shm node --expose-gc --import tsx bench/heap-per-key.ts [OTHER_CHECKOUT]
//
// OTHER_CHECKOUT measures another checkout's modules instead (an A/B).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import v8 from 'node:v8';

const checkout = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, '..'));
const load = (file: string) => import(path.join(checkout, 'src', file));
const store = await load('objects/store.ts');
const changes = await load('core/changes.ts');
const clock = await load('core/clock.ts');
const replica = await load('replica/index.ts');
const messages = await load('replica/messages.ts');

const puts = 20_000;
const warmUpPuts = 2_000;
const concurrency = 16;
const v = messages.replicaWireVersion;
/** Acks record messages; never answers a batch of copies (they stay queued). */
const target = {
  openSession: async () => ({ v, epoch: 1, session: 1, lastMsgId: 0, entries: [] }),
  applyRecord: async (m: { msgId: number; add: unknown[] }) => ({ v, msgId: m.msgId, duplicate: false, recordSize: m.add.length }),
  putObject: async () => true,
  putObjects: () => new Promise(() => {}),
  deleteObject: async () => true,
  putBucket: async () => {},
  health: async () => ({ v, role: 'secondary', epoch: 1 }),
  close: async () => {},
};

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const root = mkdtempSync(path.join(os.tmpdir(), 'heap-per-key-'));
const body = randomBytes(4096);

async function site(mode: 'single' | 'held') {
  const dir = mkdtempSync(path.join(root, `${mode}-`));
  const db = store.openMetaDb(dir);
  const repl =
    mode === 'held'
      ? replica.createPrimaryReplication({
          root: db, target, clock: clock.systemClock, random: clock.systemRandom,
          config: { site: 'p', copyPriority: 'background' },
          foreground: { inFlight: () => 1, arrivals: () => 0 }, // clients always busy: copies held
        })
      : undefined;
  const s = await store.DiskObjectStore.open({ dataDir: dir, db, hooks: repl?.hooks ?? changes.noReplication });
  if (repl) await repl.start(s);
  await s.createBucket('b', 'us-east-1');
  return s;
}

const put = (s: { putObject: (input: unknown) => Promise<unknown> }, key: string) =>
  s.putObject({ bucket: 'b', key, body: Readable.from([body]), headers: {}, userMeta: {}, tags: {}, algorithms: [], sha256: false, verify: () => {} });

try {
  for (const mode of ['single', 'held'] as const) {
    const s = await site(mode);
    for (let i = 0; i < warmUpPuts; i++) await put(s, `${mode}/warm-${i}`);
    gc();
    gc();
    const before = v8.getHeapStatistics().used_heap_size;
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < puts) await put(s, `${mode}/obj-${String(next++).padStart(6, '0')}`);
    }));
    await new Promise((r) => setTimeout(r, 200));
    gc();
    gc();
    const after = v8.getHeapStatistics().used_heap_size;
    console.log(`${mode}: ${((after - before) / puts).toFixed(0)} bytes retained per PUT`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
process.exit(0);
