// Where the CPU goes, by Linux `perf` (native code, V8's builtins and GC,
// lmdb and the kernel included, which `--cpu-prof` cannot see), per
// operation, on the gateways' own processes:
//
//   burst  a single site and a primary (its secondary running), each
//          sampled during a 4 KiB PUT c16 run, in alternating rounds; the
//          first round of each is a warm-up and is not counted (it is
//          where V8 compiles the hot code)
//   drain  a primary and its secondary, sampled while the copy queue a
//          burst left drains: µs per copied object
//
//   flock /tmp/bench.lock npx tsx bench/perf-profile.ts [--mode burst|drain]
//     [--rounds 3] [--seconds 4] [--top 30] [--match REGEX] [--syscalls]
//
// --syscalls attaches `strace -f -c` instead of perf and prints system calls
// per operation by name (strace slows the servers: counts, not times).
//
// Needs `perf` with kernel.perf_event_paranoid <= 2 for the caller's own
// processes (root here). The servers run with --perf-basic-prof-only-functions
// so JIT frames carry names (/tmp/perf-PID.map, removed at the end).
// Prints, per process: µs per operation on the main thread and on the other
// threads, by kind of code (JIT; V8's garbage collector; its optimizing
// compilers; the rest of the node binary = V8 builtins + runtime + libuv +
// OpenSSL; lmdb's addon; libc; kernel), then the JS functions by inclusive
// time.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { S3Http } from './s3http.ts';
import { queueDepth, waitDrained } from './queue.ts';
import { runWorkload } from './loadgen.ts';
import { benchReplicationSecret, startLookahead, testAccessKey, testSecretKey, type ChildServer } from './servers.ts';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'burst' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    top: { type: 'string', default: '30' },
    match: { type: 'string', default: '' },
    syscalls: { type: 'boolean', default: false },
  },
});
const bucket = 'bench';
/** How often a bench asks whether Q has drained. */
const drainPollMs = 20;
/** Samples per second per thread: ~0.5 ms each. */
const sampleHz = 1999;
/** Time perf takes to attach to a running process, here. */
const perfAttachMs = 200;

/** Per-process sample tallies, summed over the rounds that count. */
interface Tally {
  samples: { main: number; other: number };
  kinds: Map<string, number>;
  inclusive: Map<string, number>;
  /** The sampled frame itself, any kind (native hashing, memcpy, GC...). */
  leaves: Map<string, number>;
  /** --syscalls: calls by name. */
  syscalls: Map<string, number>;
}

function newTally(): Tally {
  return { samples: { main: 0, other: 0 }, kinds: new Map(), inclusive: new Map(), leaves: new Map(), syscalls: new Map() };
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** V8's collector in the node binary: scavenges, marking, sweeping. */
const gcSymbol = /Heap|Scaveng|Mark|Sweep|Evacuat|Compactor|SemiSpace|NewSpace|GC/;

/** V8's optimizing compilers (TurboFan, Maglev), mostly on helper threads. */
const compilerSymbol = /compiler::|maglev::|Turbofan|OptimizedCompilationJob|Pipeline/;

/** Kind of code from a frame's object file (and, in node, its symbol). */
function kindOf(dso: string, sym: string): string {
  if (dso.startsWith('/tmp/perf-')) return 'jit';
  if (dso.includes('kernel')) return 'kernel';
  if (dso.endsWith('/node')) return gcSymbol.test(sym) ? 'gc' : compilerSymbol.test(sym) ? 'compiler' : 'node';
  if (dso.includes('lmdb') || dso.endsWith('.glibc.node')) return 'lmdb';
  if (dso.includes('libc.so')) return 'libc';
  return 'other';
}

/** Folds `perf script` output (one block per sample, leaf frame first) into `t`. */
function fold(data: string, t: Tally): void {
  const out = spawnSync('perf', ['script', '-i', data, '-F', 'pid,tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 }).stdout;
  for (const block of out.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length < 2) continue;
    const [pid, tid] = lines[0]!.trim().split(/\s+/)[0]!.split('/');
    const main = pid === tid;
    const frames = lines.slice(1).map((l) => /^\s*[0-9a-f]+\s+(.*)\s+\((.*)\)$/.exec(l)).filter((m) => m !== null);
    if (frames.length === 0) continue;
    if (main) t.samples.main++;
    else t.samples.other++;
    bump(t.kinds, `${main ? 'main' : 'other'} ${kindOf(frames[0]![2]!, frames[0]![1]!)}`);
    bump(t.leaves, frameName(frames[0]![1]!));
    const seen = new Set<string>();
    for (const m of frames) {
      if (!m[1]!.includes('JS:')) continue;
      const name = frameName(m[1]!);
      if (seen.has(name)) continue;
      seen.add(name);
      bump(t.inclusive, name);
    }
  }
}

/** A JS frame as `function file`, a native one as its symbol. */
function frameName(sym: string): string {
  const js = /JS:[*^~]?(\S*) (\S+)/.exec(sym);
  if (js) return `${js[1] || '(anonymous)'} ${js[2]!.split('/').slice(-2).join('/')}`;
  return sym.replace(/\+0x[0-9a-f]+$/, '').slice(0, 100);
}

/** strace -c's table: `% time  seconds  usecs/call  calls  [errors]  syscall`. */
function foldSyscalls(file: string, t: Tally): void {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line);
    if (m && m[2] !== 'total') t.syscalls.set(m[2]!, (t.syscalls.get(m[2]!) ?? 0) + Number(m[1]));
  }
}

/** The tracer needs a moment to attach: it counts after the returned wait. */
async function record(pid: number, file: string): Promise<ChildProcess> {
  const args = values.syscalls
    ? ['strace', ['-f', '-c', '-p', String(pid), '-o', file]] as const
    : ['perf', ['record', '-e', 'cpu-clock', '-F', String(sampleHz), '-g', '-p', String(pid), '-o', file]] as const;
  const p = spawn(args[0], [...args[1]], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, perfAttachMs));
  return p;
}

async function stopRecording(p: ChildProcess): Promise<void> {
  const done = new Promise((resolve) => p.once('exit', resolve));
  p.kill('SIGINT');
  await done;
}

/** Counts from a stopped recording into `t`. */
function foldRecording(file: string, t: Tally): void {
  if (values.syscalls) foldSyscalls(file, t);
  else fold(file, t);
}

function report(label: string, t: Tally, ops: number, unit: string): void {
  if (values.syscalls) {
    const rows = [...t.syscalls].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
    console.log(`\n== ${label}: system calls per ${unit} over ${ops}`);
    for (const [k, n] of rows) console.log(`  ${(n / ops).toFixed(3).padStart(8)}  ${k}`);
    return;
  }
  const us = (n: number): string => ((n * 1e6) / sampleHz / ops).toFixed(2);
  console.log(`\n== ${label}: µs per ${unit} over ${ops} (main thread ${us(t.samples.main)}, other threads ${us(t.samples.other)})`);
  const kinds = [...t.kinds].sort((a, b) => b[1] - a[1]);
  console.log('  by kind: ' + kinds.map(([k, n]) => `${k} ${us(n)}`).join(', '));
  const match = values.match ? new RegExp(values.match) : undefined;
  const rows = [...t.inclusive].filter(([k]) => match === undefined || match.test(k)).sort((a, b) => b[1] - a[1]);
  for (const [k, n] of rows.slice(0, Number(values.top))) console.log(`  ${us(n).padStart(7)}  ${k}`);
  const leaves = [...t.leaves].sort((a, b) => b[1] - a[1]).slice(0, Math.ceil(Number(values.top) / 2));
  console.log('  sampled frames (self time):');
  for (const [k, n] of leaves) console.log(`  ${us(n).padStart(7)}  ${k}`);
}


function put(client: S3Http, prefix: string, seconds: number) {
  return runWorkload(client, bucket, { op: 'put', objectBytes: 4096, concurrency: 16, seconds, maxOps: 200_000, prefix });
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const root = mkdtempSync(path.join(os.tmpdir(), 'perf-profile-'));
  const servers: ChildServer[] = [];
  const start = async (name: string, args: string[]): Promise<ChildServer> => {
    const s = await startLookahead({ dataDir: mkdtempSync(path.join(root, `${name}-`)), extraArgs: args, nodeArgs: ['--perf-basic-prof-only-functions'] });
    servers.push(s);
    return s;
  };
  const client = (s: ChildServer) => new S3Http({ url: s.url, accessKey: testAccessKey, secretKey: testSecretKey, region: 'us-east-1' });
  try {
    const secondary = await start('secondary', ['--role', 'secondary', '--replication-secret', benchReplicationSecret]);
    const primary = await start('primary', ['--role', 'primary', '--secondary', secondary.url, '--replication-secret', benchReplicationSecret]);
    const pc = client(primary);
    await pc.ensureBucket(bucket);
    if (values.mode === 'drain') {
      const tallies = { primary: newTally(), secondary: newTally() };
      let copied = 0;
      for (let r = 0; r <= rounds; r++) {
        const run = await put(pc, `drain-${r}`, seconds);
        const queued = await queueDepth(pc);
        const counted = r > 0; // round 0 warms up
        const files = [path.join(root, `p-${r}.data`), path.join(root, `s-${r}.data`)];
        const recs = counted ? await Promise.all([record(primary.pid, files[0]!), record(secondary.pid, files[1]!)]) : [];
        const t0 = performance.now();
        await waitDrained(pc, drainPollMs);
        const drainSeconds = (performance.now() - t0) / 1000;
        for (const p of recs) await stopRecording(p);
        if (counted) {
          foldRecording(files[0]!, tallies.primary);
          foldRecording(files[1]!, tallies.secondary);
          copied += queued;
        }
        console.log(`round ${r}${counted ? '' : ' (warm-up)'}: ${run.ops} PUTs, ${queued} queued at the end, drained in ${drainSeconds.toFixed(2)} s (sampled)`);
      }
      report('primary, draining', tallies.primary, copied, 'copied object');
      report('secondary, applying', tallies.secondary, copied, 'copied object');
      return;
    }
    const single = await start('single', []);
    const sc = client(single);
    await sc.ensureBucket(bucket);
    const sites = [
      { name: 'single site', server: single, c: sc, tally: newTally(), ops: 0 },
      { name: 'primary', server: primary, c: pc, tally: newTally(), ops: 0 },
    ];
    for (let r = 0; r <= rounds; r++) {
      for (const site of r % 2 === 0 ? sites : [...sites].reverse()) {
        if (site.server === primary) await waitDrained(pc, drainPollMs); // the last run's copies are not this run's
        const file = path.join(root, `${site.server.pid}-${r}.data`);
        const counted = r > 0; // round 0 warms up
        const rec = counted ? await record(site.server.pid, file) : undefined;
        const run = await put(site.c, `r${r}`, seconds);
        if (rec) {
          await stopRecording(rec);
          foldRecording(file, site.tally);
          site.ops += run.ops;
        }
        console.log(`round ${r}${counted ? '' : ' (warm-up)'} ${site.name}: ${run.ops} PUTs, ${run.opsPerSec.toFixed(0)} ops/s`);
      }
    }
    for (const site of sites) report(site.name, site.tally, site.ops, '4 KiB PUT');
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    for (const s of servers) rmSync(`/tmp/perf-${s.pid}.map`, { force: true });
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
