// The primary's CPU per replicated 4 KiB PUT against a single site, in one
// run (process CPU from /proc, not ops/s, so a busy machine blurs it less):
//
//   single  a site without replication: server CPU over the PUT run
//   held    the primary while the secondary is stopped (SIGSTOP) during the
//           run: admission + Q entry only (the copier has at most
//           replicaBatchInFlightMax batches out, waiting); then the
//           secondary resumes and the copier drains Q: its CPU per object
//           over that drain is the copier's part
//   on      the primary with the secondary running: run + drain, per PUT
//
// Data directories live under $TMPDIR (use /dev/shm to leave fsync out).
//
//   flock /tmp/bench.lock env TMPDIR=/dev/shm npx tsx bench/primary-cpu.ts [--seconds 4] [--rounds 3]

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { S3Http } from './s3http.ts';
import { runWorkload, median, type WorkloadResult } from './loadgen.ts';
import { processCpuMicros, startLookahead, testAccessKey, testSecretKey, type ChildServer } from './servers.ts';

const bucket = 'bench';
const secret = 'lookahead-bench-replication-secret';
const drainWaitMs = 60_000;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function clientFor(server: ChildServer): S3Http {
  return new S3Http({ url: server.url, accessKey: testAccessKey, secretKey: testSecretKey, region: 'us-east-1' });
}

/** From /_lookahead/status (the Prometheus text costs the server far more
 * to render, which would count as the copier's CPU). */
async function queueDepth(client: S3Http): Promise<number> {
  const res = await client.request('GET', '/_lookahead/status', { keepBody: true, timeoutMs: 5_000 });
  const status = JSON.parse(res.body?.toString('utf8') ?? '{}') as { replication?: { queueDepth?: number }; queueDepth?: number };
  return findQueueDepth(status) ?? NaN;
}

function findQueueDepth(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record.queueDepth === 'number') return record.queueDepth;
  for (const v of Object.values(record)) {
    const found = findQueueDepth(v);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Waits (bounded) for Q to empty; returns the seconds it took. */
async function drain(client: S3Http): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < drainWaitMs) {
    const depth = await queueDepth(client);
    if (depth === 0 || Number.isNaN(depth)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return (performance.now() - t0) / 1000;
}

function put(client: S3Http, prefix: string, seconds: number, serverPid: number): Promise<WorkloadResult> {
  return runWorkload(client, bucket, { op: 'put', objectBytes: 4096, concurrency: 16, seconds, maxOps: 200_000, prefix, serverPid });
}

/** held: the prefix's miss first (acked), then S stops for the run; the
 * copier's part is the primary's CPU over the drain once S resumes. */
async function heldRun(
  pc: S3Http, primary: ChildServer, secondary: ChildServer, prefix: string, seconds: number, rows: Record<string, number[]>,
): Promise<WorkloadResult> {
  await pc.ok('PUT', `/${bucket}/${prefix}/obj-first`, { body: Buffer.alloc(4096) });
  await drain(pc);
  process.kill(secondary.pid, 'SIGSTOP');
  let held: WorkloadResult;
  try {
    held = await put(pc, prefix, seconds, primary.pid);
  } finally {
    process.kill(secondary.pid, 'SIGCONT');
  }
  const c0 = processCpuMicros(primary.pid);
  const drained = await drain(pc);
  console.log(`  held: ${held.ops} PUTs, Q drained ${drained.toFixed(2)} s after S resumed`);
  rows.held!.push(held.serverCpuUsPerOp);
  rows.copier!.push((processCpuMicros(primary.pid) - c0) / held.ops);
  return held;
}

/** on: both sites running; the primary's and the secondary's CPU over the
 * run and the drain after it, per PUT. */
async function onRun(
  pc: S3Http, primary: ChildServer, secondary: ChildServer, prefix: string, seconds: number, rows: Record<string, number[]>,
): Promise<WorkloadResult> {
  const p0 = processCpuMicros(primary.pid);
  const s0 = processCpuMicros(secondary.pid);
  const on = await put(pc, prefix, seconds, primary.pid);
  const drained = await drain(pc);
  rows.on!.push((processCpuMicros(primary.pid) - p0) / on.ops);
  rows.secondary!.push((processCpuMicros(secondary.pid) - s0) / on.ops);
  console.log(`  on: ${on.ops} PUTs, ${on.opsPerSec.toFixed(0)} ops/s, drained ${drained.toFixed(2)} s after`);
  return on;
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 4);
  const rounds = arg('rounds', 3);
  // --phases single,held,on (default all): a profile of one phase alone.
  const phasesAt = process.argv.indexOf('--phases');
  const phases = new Set((phasesAt >= 0 ? process.argv[phasesAt + 1]! : 'single,held,on').split(','));
  const root = mkdtempSync(path.join(os.tmpdir(), 'primary-cpu-'));
  const servers: ChildServer[] = [];
  const start = async (name: string, extraArgs: string[]): Promise<ChildServer> => {
    const s = await startLookahead({ dataDir: mkdtempSync(path.join(root, `${name}-`)), extraArgs });
    servers.push(s);
    return s;
  };
  try {
    const single = await start('single', []);
    const secondary = await start('secondary', ['--role', 'secondary', '--replication-secret', secret]);
    const primary = await start('primary', ['--role', 'primary', '--secondary', secondary.url, '--replication-secret', secret]);
    const sc = clientFor(single);
    const pc = clientFor(primary);
    await sc.ensureBucket(bucket);
    await pc.ensureBucket(bucket);
    // Warm-up: JIT, lmdb growth, sockets.
    const warm = [(await put(sc, 'warm', 2, single.pid)).ops, (await put(pc, 'warm', 2, primary.pid)).ops];
    await drain(pc);
    console.log(`warm-up PUTs single/primary ${warm.join('/')}`);
    const rows: Record<string, number[]> = { single: [], held: [], copier: [], on: [], secondary: [] };
    const none = { ops: 0, serverCpuUsPerOp: NaN } as WorkloadResult;
    for (let r = 0; r < rounds; r++) {
      const one = phases.has('single') ? await put(sc, `single-${r}`, seconds, single.pid) : none;
      rows.single!.push(one.serverCpuUsPerOp);
      const held = phases.has('held') ? await heldRun(pc, primary, secondary, `held-${r}`, seconds, rows) : none;
      const on = phases.has('on') ? await onRun(pc, primary, secondary, `on-${r}`, seconds, rows) : none;
      console.log(
        `round ${r + 1}: single ${one.serverCpuUsPerOp.toFixed(0)} µs/PUT; held ${held.serverCpuUsPerOp.toFixed(0)} ` +
          `+ copier ${(rows.copier!.at(-1) ?? NaN).toFixed(0)}; on ${(rows.on!.at(-1) ?? NaN).toFixed(0)}, ` +
          `secondary ${(rows.secondary!.at(-1) ?? NaN).toFixed(0)}; PUTs single/held/on ${one.ops}/${held.ops}/${on.ops}`,
      );
    }
    const m = (k: string): number => median(rows[k]!);
    console.log(
      `median µs CPU per 4 KiB PUT: single ${m('single').toFixed(0)}, primary held (admission) ${m('held').toFixed(0)} ` +
        `(+${(m('held') - m('single')).toFixed(0)}), copier ${m('copier').toFixed(0)}, primary on ${m('on').toFixed(0)} ` +
        `(+${(m('on') - m('single')).toFixed(0)}), secondary ${m('secondary').toFixed(0)}`,
    );
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
