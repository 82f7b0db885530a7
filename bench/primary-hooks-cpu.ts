// In-process CPU per 4 KiB PUT of the primary's own code (admission, Q, the
// copier's reading, encoding and removal), without HTTP: the object store on
// lmdb with the replication hooks and a target that encodes and hashes each
// batch as the HTTP target does, then answers at once. Compared against the
// same store without replication, in one process and in alternating rounds,
// so a busy machine blurs the comparison less than process-level figures.
//
//   flock /tmp/bench.lock env TMPDIR=/dev/shm npx tsx bench/primary-hooks-cpu.ts [--puts 20000] [--rounds 5]
//     [--modes held,on,drain] [--compare OTHER_CHECKOUT]
//
// --compare loads another checkout's modules into the same process: both
// share one heap (and its GCs), so separate runs alternated are the fairer
// A/B when memory held differs.
//
// Modes: single (no replication), held (the target never answers copies:
// admission and the Q entry only), on (copies answered at once), drain (the
// target holds copies back during the PUTs, then answers: the CPU of the
// drain alone, per object, as the copier spends it on a backlog read back
// from lmdb; reported on its own, not as an increment over single).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { PerformanceObserver } from 'node:perf_hooks';

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

type Mode = 'single' | 'held' | 'on' | 'drain';

/** Drain mode: copies wait while closed. */
interface Gate {
  open: boolean;
  waiting: Array<() => void>;
}

/** One checkout's modules (this one, or --compare's). */
async function load(dir: string) {
  const m = async (p: string) => import(path.join(dir, 'src', p));
  return {
    store: await m('objects/store.ts'),
    changes: await m('core/changes.ts'),
    clock: await m('core/clock.ts'),
    replica: await m('replica/index.ts'),
    batch: await m('replica/batch.ts'),
    auth: await m('replica/auth.ts'),
    messages: await m('replica/messages.ts'),
  };
}

type Mods = Awaited<ReturnType<typeof load>>;

/** A target whose copies cost what the HTTP target's do in JS (encode,
 * body hash, signature), answered at once; or never ('held'). */
function target(mods: Mods, mode: Mode, gate: Gate) {
  const v = mods.messages.replicaWireVersion;
  let msg = 0;
  return {
    openSession: async () => ({ v, epoch: 1, session: 1, lastMsgId: 0, entries: [] }),
    applyRecord: async (m: { msgId: number; add: unknown[] }) => ({ v, msgId: (msg = m.msgId), duplicate: false, recordSize: m.add.length }),
    putObject: async () => true,
    putObjects: async (items: unknown[]) => {
      if (mode === 'held') return new Promise(() => {});
      if (!gate.open) await new Promise<void>((resolve) => gate.waiting.push(resolve));
      // As the checkout's GatewayTarget does: in parts where it has them.
      const parts: Buffer[] = mods.batch.encodeBatchParts?.(items) ?? [mods.batch.encodeBatch(items)];
      const contentSha256 = mods.auth.sha256HexOfParts?.(parts) ?? mods.auth.sha256Hex(parts[0]);
      const sign = { method: 'POST', url: '/_lookahead/replica/objects', date: Date.now(), contentSha256, meta: '', epoch: '' };
      mods.auth.signHeaders('secret', sign);
      return items.map(() => ({ applied: true }));
    },
    deleteObject: async () => true,
    putBucket: async () => {},
    health: async () => ({ v, role: 'secondary', epoch: 1, recordSize: msg }),
    close: async () => {},
  };
}

async function open(mods: Mods, mode: Mode, root: string) {
  const gate: Gate = { open: mode !== 'drain', waiting: [] };
  const dir = mkdtempSync(path.join(root, `${mode}-`));
  const db = mods.store.openMetaDb(dir);
  let repl: { start(s: unknown): Promise<void>; stop(): Promise<void>; hooks: unknown; status(): { queueDepth: number } } | undefined;
  if (mode !== 'single') {
    repl = mods.replica.createPrimaryReplication({
      root: db, target: target(mods, mode, gate), clock: mods.clock.systemClock, random: mods.clock.systemRandom, config: { site: 'p' },
    });
  }
  const store = await mods.store.DiskObjectStore.open({ dataDir: dir, db, hooks: repl?.hooks ?? mods.changes.noReplication });
  if (repl) await repl.start(store);
  await store.createBucket('b', 'us-east-1');
  return {
    store,
    queueDepth: () => repl?.status().queueDepth ?? 0,
    gate,
    close: async () => {
      await repl?.stop();
      await store.close();
      await db.close();
    },
  };
}

/** This (the main) thread's CPU time in µs, from Linux's schedstat (ns):
 * without lmdb's writer and the GC's helper threads. NaN elsewhere. */
function mainThreadCpuUs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1000;
  } catch {
    return NaN;
  }
}

/** GC pause time so far, in µs (every site shares this process's heap:
 * a run's delta is mostly its own garbage, plus what earlier runs left). */
let gcUs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcUs += e.duration * 1000;
}).observe({ entryTypes: ['gc'] });
/** GC µs per PUT of each run, by site label. */
const gcPerPut = new Map<string, number[]>();

/** Main-thread µs per object of the last drain run, by site label. */
const drainMain = new Map<string, number[]>();

async function run(site: Awaited<ReturnType<typeof open>>, prefix: string, puts: number, drain: boolean, label = ''): Promise<number> {
  const body = randomBytes(4096);
  let next = 0;
  // The prefix's first write misses (a record message); the rest are hits.
  await site.store.putObject(input(prefix, 'first', body));
  const gated = !site.gate.open;
  let c0 = process.cpuUsage();
  let m0 = mainThreadCpuUs();
  const g0 = gcUs;
  const worker = async () => {
    while (next < puts) await site.store.putObject(input(prefix, `obj-${String(next++).padStart(8, '0')}`, body));
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  if (gated) {
    // The drain alone: from the moment the copies may go.
    c0 = process.cpuUsage();
    m0 = mainThreadCpuUs();
    site.gate.open = true;
    for (const resolve of site.gate.waiting.splice(0)) resolve();
  }
  for (let i = 0; drain && i < 2000 && site.queueDepth() > 0; i++) await new Promise((r) => setTimeout(r, 5));
  const c = process.cpuUsage(c0);
  if (label !== '') (gcPerPut.get(label) ?? gcPerPut.set(label, []).get(label)!).push((gcUs - g0) / puts);
  if (gated) {
    site.gate.open = false;
    if (label !== '') (drainMain.get(label) ?? drainMain.set(label, []).get(label)!).push((mainThreadCpuUs() - m0) / puts);
  }
  return (c.user + c.system) / puts;
}

function input(prefix: string, name: string, body: Buffer) {
  return { bucket: 'b', key: `${prefix}/${name}`, body: Readable.from([body]), headers: {}, userMeta: {}, tags: {}, algorithms: [], sha256: false, verify: () => {} };
}

async function main(): Promise<void> {
  const puts = Number(arg('puts', '20000'));
  const rounds = Number(arg('rounds', '5'));
  // --modes single,on: fewer modes (single is the baseline, always kept).
  const modes = `single,${arg('modes', 'held,on')}`.split(',');
  const dirs: Array<[string, string]> = [['this', here]];
  const compare = process.argv.indexOf('--compare');
  if (compare >= 0) dirs.push(['compare', path.resolve(process.argv[compare + 1]!)]);
  const root = mkdtempSync(path.join(os.tmpdir(), 'hooks-cpu-'));
  const results = new Map<string, number[]>();
  try {
    const sites: Array<[string, Awaited<ReturnType<typeof open>>]> = [];
    for (const [name, dir] of dirs) {
      const mods = await load(dir);
      for (const mode of ['single', 'held', 'on', 'drain'] as const) {
        if ((name !== 'this' && mode === 'single') || !modes.includes(mode)) continue;
        sites.push([`${name} ${mode}`, await open(mods, mode, root)]);
      }
    }
    for (const [, site] of sites) await run(site, 'warm', 4000, true);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? sites : [...sites].reverse();
      for (const [label, site] of order) {
        const us = await run(site, `r${r}`, puts, label.endsWith('on') || label.endsWith('drain'), label);
        (results.get(label) ?? results.set(label, []).get(label)!).push(us);
      }
      const main = (k: string) => (drainMain.has(k) ? ` (main ${drainMain.get(k)!.at(-1)!.toFixed(1)})` : '');
      console.log(`round ${r + 1}: ${[...results].map(([k, v]) => `${k} ${v.at(-1)!.toFixed(1)}${main(k)}`).join(', ')} µs/PUT`);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const single = med(results.get('this single')!);
    console.log(`median µs CPU per PUT (${puts} PUTs x ${rounds} rounds, c16, 4 KiB): single ${single.toFixed(1)}`);
    for (const [k, v] of results) {
      if (k === 'this single') continue;
      const main = drainMain.get(k);
      const extra = main ? ` (the drain alone; main thread ${med(main).toFixed(1)})` : ` (+${(med(v) - single).toFixed(1)})`;
      console.log(`  ${k}: ${med(v).toFixed(1)}${extra}`);
    }
    for (const [k, v] of gcPerPut) console.log(`  GC pauses, ${k}: ${med(v).toFixed(1)} µs/PUT`);
    for (const [, site] of sites) await site.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
