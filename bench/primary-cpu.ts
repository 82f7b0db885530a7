// The primary's CPU per replicated 4 KiB PUT against a single site, in one
// run (process CPU from /proc, not ops/s, so a busy machine blurs it less):
//
//   single  a site without replication: server CPU over the PUT run
//   held    the primary while the secondary is stopped (SIGSTOP) during the
//           run: admission + Q entry only (the copier has at most
//           replicaBatchInFlightMax batches out, waiting); then the
//           secondary resumes and the copier drains Q: its CPU per object
//           over that drain is the copier's part
//   on      the primary with the secondary running: run + drain, per PUT;
//           and during the run alone (with the default copy priority the
//           copier holds copies while clients write: admission only)
//
// "busy" is the share of one core the main thread spent during the run. At
// 90-95% for both the single site and the primary (as measured here), the
// event loop bounds the throughput of both, so on/off ops/s is the ratio of
// their main-thread µs per PUT: the primary's replication work on its main
// thread is what the throughput ratio pays for, whatever the other threads do.
//
// Data directories live under $TMPDIR (use /dev/shm to leave fsync out).
//
//   flock /tmp/bench.lock env TMPDIR=/dev/shm npx tsx bench/primary-cpu.ts [--seconds 4] [--rounds 3]
//     [--phases single,held,on] [--compare OTHER_CHECKOUT] [--primary-args "--copy-priority eager"]
//     [--compare-primary-args "..."]
//
// --compare starts a second primary (with its own secondary, this
// checkout's) from another checkout's src/main.ts and measures it in the same
// rounds, alternating: an A/B in one run on a busy machine.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { S3Http } from './s3http.ts';
import { waitDrained } from './queue.ts';
import { runWorkload, median, type WorkloadResult } from './loadgen.ts';
import { benchReplicationSecret, mainThreadCpuMicros, processCpuMicros, spawnServer, testAccessKey, testSecretKey, waitHealthy, type ChildServer } from './servers.ts';

const bucket = 'bench';
const secret = benchReplicationSecret;
/** How often the drain wait asks for Q's depth. */
const drainPollMs = 50;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function clientFor(server: ChildServer): S3Http {
  return new S3Http({ url: server.url, accessKey: testAccessKey, secretKey: testSecretKey, region: 'us-east-1' });
}

/** Waits (bounded) for Q to empty; returns the seconds it took. */
function drain(client: S3Http): Promise<number> {
  return waitDrained(client, drainPollMs);
}

function put(client: S3Http, prefix: string, seconds: number, serverPid: number): Promise<WorkloadResult> {
  return runWorkload(client, bucket, { op: 'put', objectBytes: 4096, concurrency: 16, seconds, maxOps: 200_000, prefix, serverPid });
}

/** A primary and its secondary; `main` is the primary's entry file. */
interface Pair {
  name: string;
  primary: ChildServer;
  secondary: ChildServer;
  client: S3Http;
  rows: Record<string, number[]>;
}

/** held: the prefix's miss first (acked), then S stops for the run; the
 * copier's part is the primary's CPU over the drain once S resumes. */
async function heldRun(p: Pair, prefix: string, seconds: number): Promise<WorkloadResult> {
  await p.client.ok('PUT', `/${bucket}/${prefix}/obj-first`, { body: Buffer.alloc(4096) });
  await drain(p.client);
  process.kill(p.secondary.pid, 'SIGSTOP');
  let held: WorkloadResult;
  try {
    held = await put(p.client, prefix, seconds, p.primary.pid);
  } finally {
    process.kill(p.secondary.pid, 'SIGCONT');
  }
  const c0 = processCpuMicros(p.primary.pid);
  const drained = await drain(p.client);
  push(p.rows, 'held', held.serverCpuUsPerOp);
  push(p.rows, 'copier', (processCpuMicros(p.primary.pid) - c0) / held.ops);
  console.log(`  ${p.name} held: ${held.ops} PUTs, ${held.serverCpuUsPerOp.toFixed(0)} µs/PUT; Q drained ${drained.toFixed(2)} s after S resumed, copier ${p.rows.copier!.at(-1)!.toFixed(0)} µs/PUT`);
  return held;
}

/** on: both sites running; the primary's and the secondary's CPU over the
 * run and the drain after it, per PUT. */
async function onRun(p: Pair, prefix: string, seconds: number): Promise<WorkloadResult> {
  const p0 = processCpuMicros(p.primary.pid);
  const s0 = processCpuMicros(p.secondary.pid);
  const m0 = mainThreadCpuMicros(p.primary.pid);
  const on = await put(p.client, prefix, seconds, p.primary.pid);
  push(p.rows, 'onRunMain', (mainThreadCpuMicros(p.primary.pid) - m0) / on.ops);
  push(p.rows, 'onRunMainBusy', busyPercent(on.opsPerSec, p.rows.onRunMain!.at(-1)!));
  push(p.rows, 'secondaryRun', (processCpuMicros(p.secondary.pid) - s0) / on.ops);
  const drained = await drain(p.client);
  push(p.rows, 'on', (processCpuMicros(p.primary.pid) - p0) / on.ops);
  push(p.rows, 'onRun', on.serverCpuUsPerOp);
  push(p.rows, 'secondary', (processCpuMicros(p.secondary.pid) - s0) / on.ops);
  console.log(
    `  ${p.name} on: ${on.ops} PUTs, ${on.opsPerSec.toFixed(0)} ops/s, primary ${p.rows.on!.at(-1)!.toFixed(0)} µs/PUT ` +
      `(${on.serverCpuUsPerOp.toFixed(0)} during the run, main thread ${p.rows.onRunMain!.at(-1)!.toFixed(0)}, ` +
      `busy ${p.rows.onRunMainBusy!.at(-1)!.toFixed(0)}%), ` +
      `secondary ${p.rows.secondary!.at(-1)!.toFixed(0)} (${p.rows.secondaryRun!.at(-1)!.toFixed(0)} during the run); drained ${drained.toFixed(2)} s after`,
  );
  return on;
}

/** Share of one core the main thread spent during the run: near 100%, the
 * event loop is what bounds the throughput, and the ratio of two sites'
 * ops/s is the inverse ratio of their main-thread µs per PUT. */
function busyPercent(opsPerSec: number, mainMicrosPerOp: number): number {
  return (opsPerSec * mainMicrosPerOp) / 1e4;
}

function push(rows: Record<string, number[]>, key: string, value: number): void {
  (rows[key] ??= []).push(value);
}

/** Starts `serve` from `main` (this checkout's src/main.ts, or another's for --compare). */
async function startServe(main: string, dataDir: string, extraArgs: string[]): Promise<ChildServer> {
  const nodeArgs = (process.env.LOOKAHEAD_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const server = await spawnServer({
    label: 'lookahead',
    nodeArgs,
    args: [main, 'serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn', ...extraArgs],
    env: { LOOKAHEAD_ACCESS_KEY: testAccessKey, LOOKAHEAD_SECRET_KEY: testSecretKey },
    ready: /lookahead listening on (http:\/\/127\.0\.0\.1:\d+)/,
  });
  await waitHealthy(server.url, 60_000);
  return server;
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 4);
  const rounds = arg('rounds', 3);
  // --phases single,held,on (default all): a profile of one phase alone.
  const phasesAt = process.argv.indexOf('--phases');
  const phases = new Set((phasesAt >= 0 ? process.argv[phasesAt + 1]! : 'single,held,on').split(','));
  // --compare DIR: a second primary running DIR's code (another checkout),
  // measured in the same rounds (alternating), for a same-run A/B.
  // --primary-args "..." : extra serve flags for every primary (e.g. "--copy-priority eager").
  const flags = (name: string): string[] => {
    const at = process.argv.indexOf(name);
    return at >= 0 ? process.argv[at + 1]!.split(/\s+/).filter(Boolean) : [];
  };
  // --compare-primary-args: the compared primary's own (default: --primary-args);
  // `--compare . --compare-primary-args "--copy-priority eager"` compares two settings.
  const primaryArgs = flags('--primary-args');
  const argsOf = (name: string): string[] =>
    name === 'compare' && process.argv.includes('--compare-primary-args') ? flags('--compare-primary-args') : primaryArgs;
  const compareAt = process.argv.indexOf('--compare');
  const mains: Array<[string, string]> = [['this', 'src/main.ts']];
  if (compareAt >= 0) mains.push(['compare', path.resolve(process.argv[compareAt + 1]!, 'src/main.ts')]);
  const root = mkdtempSync(path.join(os.tmpdir(), 'primary-cpu-'));
  const servers: ChildServer[] = [];
  const start = async (name: string, main: string, extraArgs: string[]): Promise<ChildServer> => {
    const s = await startServe(main, mkdtempSync(path.join(root, `${name}-`)), extraArgs);
    servers.push(s);
    return s;
  };
  try {
    const single = await start('single', 'src/main.ts', []);
    const sc = clientFor(single);
    await sc.ensureBucket(bucket);
    const pairs: Pair[] = [];
    for (const [name, main] of mains) {
      const secondary = await start(`${name}-secondary`, 'src/main.ts', ['--role', 'secondary', '--replication-secret', secret]);
      const primary = await start(`${name}-primary`, main, ['--role', 'primary', '--secondary', secondary.url, '--replication-secret', secret, ...argsOf(name)]);
      const client = clientFor(primary);
      await client.ensureBucket(bucket);
      pairs.push({ name, primary, secondary, client, rows: {} });
    }
    // Warm-up: JIT, lmdb growth, sockets.
    const warm = [(await put(sc, 'warm', 2, single.pid)).ops];
    for (const p of pairs) {
      warm.push((await put(p.client, 'warm', 2, p.primary.pid)).ops);
      await drain(p.client);
    }
    console.log(`warm-up PUTs (single, then each primary): ${warm.join(', ')}`);
    const singles: number[] = [];
    const singlesMain: number[] = [];
    const singlesBusy: number[] = [];
    for (let r = 0; r < rounds; r++) {
      if (phases.has('single')) {
        const m0 = mainThreadCpuMicros(single.pid);
        const one = await put(sc, `single-${r}`, seconds, single.pid);
        singles.push(one.serverCpuUsPerOp);
        singlesMain.push((mainThreadCpuMicros(single.pid) - m0) / one.ops);
        singlesBusy.push(busyPercent(one.opsPerSec, singlesMain.at(-1)!));
        console.log(
          `round ${r + 1}: single ${one.ops} PUTs, ${one.opsPerSec.toFixed(0)} ops/s, ${one.serverCpuUsPerOp.toFixed(0)} µs/PUT ` +
            `(main thread ${singlesMain.at(-1)!.toFixed(0)}, busy ${singlesBusy.at(-1)!.toFixed(0)}%)`,
        );
      }
      // Alternate the order so neither pair always runs right after the single site.
      for (const p of r % 2 === 0 ? pairs : [...pairs].reverse()) {
        if (phases.has('held')) await heldRun(p, `held-${r}`, seconds);
        if (phases.has('on')) await onRun(p, `on-${r}`, seconds);
      }
    }
    const m = (xs: number[] | undefined): string => (xs === undefined ? 'n/a' : median(xs).toFixed(0));
    const base = singles.length > 0 ? median(singles) : NaN;
    const baseMain = singlesMain.length > 0 ? median(singlesMain) : NaN;
    console.log(
      `median µs CPU per 4 KiB PUT over ${rounds} rounds: single site ${m(singles)} (main thread ${m(singlesMain)}, busy ${m(singlesBusy)}%)`,
    );
    for (const p of pairs) {
      const extra = (k: string): string => (p.rows[k] === undefined ? '' : ` (+${(median(p.rows[k]!) - base).toFixed(0)})`);
      const extraMain = (k: string): string => (p.rows[k] === undefined ? '' : ` +${(median(p.rows[k]!) - baseMain).toFixed(0)}`);
      console.log(
        `  ${p.name}: primary, secondary stopped (admission) ${m(p.rows.held)}${extra('held')}; copier drain ${m(p.rows.copier)}; ` +
          `primary on ${m(p.rows.on)}${extra('on')}, during the run ${m(p.rows.onRun)}${extra('onRun')} ` +
          `(main thread ${m(p.rows.onRunMain)}${extraMain('onRunMain')}, busy ${m(p.rows.onRunMainBusy)}%); secondary ${m(p.rows.secondary)}`,
      );
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
