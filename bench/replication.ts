// The replication section of `npm run bench` (issue 3):
//   replication     4 KiB PUT c16, replication off vs on (no delay), >= 0.9x:
//                   a burst (--seconds runs) and a sustained run (twice the
//                   default copy lag bound), each with the copies left in Q
//                   at its end, their drain time and the throughput counted
//                   until drained; default copy priority and eager, same run
//   repl-workloads  log / tree / multipart / zipf / random keys through a
//                   primary: miss rate, peak record size, PUT p50/p99
//   repl-delay      an injected inter-site delay (bench/delay-proxy.ts, 20 ms
//                   each way): hit-path PUT latency vs replication off vs
//                   every write synchronous; miss PUT latency with and
//                   without --sync-copy-on-miss (claim 2)
// Skipped, with a message, while `serve --help` has no `--role`.

import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { S3Http, type S3Response } from './s3http.ts';
import {
  logWorkload,
  treeWorkload,
  multipartWorkload,
  zipfWorkload,
  uniformWorkload,
  standardWorkloads,
  simulateMissRate,
  type Workload,
  type WorkloadEvent,
} from '../src/predict/workloads.ts';
import { runWorkload, warmUp, percentile, median, type WorkloadResult } from './loadgen.ts';
import { benchReplicationSecret, startLookahead, serveHelp, processCpuMicros, testAccessKey, testSecretKey, type ChildServer } from './servers.ts';
import { copyDeferLagMsDefault } from '../src/core/limits.ts';
import { spawnDelayProxy, type DelayProxy } from './delay-proxy.ts';
import { selected, fmt, table, log, type BenchOptions, type Report } from './report.ts';

const bucket = 'bench';
const region = 'us-east-1';
const replicationSecret = benchReplicationSecret;
/** Samples of /_lookahead/status per second while a workload runs. */
const statusSampleMs = 200;

interface Site {
  server: ChildServer;
  client: S3Http;
}

function clientFor(server: ChildServer): S3Http {
  return new S3Http({ url: server.url, accessKey: testAccessKey, secretKey: testSecretKey, region });
}

async function startSite(root: string, name: string, extraArgs: string[]): Promise<Site> {
  const server = await startLookahead({ dataDir: mkdtempSync(path.join(root, `${name}-`)), extraArgs });
  return { server, client: clientFor(server) };
}

async function stopSite(site: Site | undefined): Promise<void> {
  if (!site) return;
  site.client.close();
  await site.server.stop();
}

/** The flags that make every write wait for the secondary, if serve has them. */
export function syncFlags(help: string): string[] | null {
  if (/--replication-mode\b/.test(help)) return ['--replication-mode', 'sync'];
  for (const flag of ['--sync-every-write', '--sync-all', '--every-write-sync', '--synchronous', '--sync']) {
    if (new RegExp(`${flag}(?![\\w-])`).test(help)) return [flag];
  }
  return null;
}

// ------------------------------------------------------------ observation

/** A flat view of numbers in the status JSON and the Prometheus text. */
export interface Counters {
  hits: number;
  misses: number;
  recordEntries: number;
}

/** Sums Prometheus samples whose name and labels match. */
export function promSum(text: string, name: RegExp, labels: RegExp = /.*/): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+([-+\dEe.]+|NaN)/.exec(line);
    if (!m || !name.test(m[1]!) || !labels.test(m[2] ?? '')) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) {
      sum += v;
      found = true;
    }
  }
  return found ? sum : NaN;
}

/** Reads hit/miss counters and the record size from the primary's metrics. */
export async function readCounters(client: S3Http): Promise<Counters> {
  const res = await client.request('GET', '/_lookahead/metrics', { keepBody: true, timeoutMs: 5_000 });
  const text = res.body?.toString('utf8') ?? '';
  const writes = /^lookahead_replica_writes_total$/;
  // A labelled counter has no sample until its first increment: 0, not unknown.
  const known = text.includes('lookahead_replica_writes_total');
  const orZero = (v: number): number => (Number.isNaN(v) && known ? 0 : v);
  return {
    hits: orZero(promSum(text, writes, /"hit"/i)),
    misses: orZero(promSum(text, writes, /"miss"/i)),
    recordEntries: promSum(text, /record_entries/i),
  };
}

/** Samples the record size while `run` is going; returns the peak seen. */
async function withRecordPeak<T>(client: S3Http, run: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = NaN;
  let stopped = false;
  const sampler = (async () => {
    while (!stopped) {
      try {
        const c = await readCounters(client);
        if (Number.isFinite(c.recordEntries)) peak = Number.isFinite(peak) ? Math.max(peak, c.recordEntries) : c.recordEntries;
      } catch {
        // A missed sample only lowers the peak's resolution.
      }
      await new Promise((r) => setTimeout(r, statusSampleMs));
    }
  })();
  try {
    const result = await run();
    return { result, peak };
  } finally {
    stopped = true;
    await sampler;
  }
}

function missRate(before: Counters, after: Counters): number {
  const h = after.hits - before.hits;
  const m = after.misses - before.misses;
  return h + m > 0 ? m / (h + m) : NaN;
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : 'n/a';
}

// ------------------------------------------------------------ PUT sequences

interface PutRun {
  count: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  opsPerSec: number;
}

/** PUTs the given keys in order, `concurrency` at a time, bounded by time. */
async function putKeys(client: S3Http, keys: string[], body: Buffer, concurrency: number, seconds: number): Promise<PutRun> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (next < keys.length && performance.now() < deadline) {
      const key = keys[next++]!;
      const start = performance.now();
      const res = await client.request('PUT', `/${bucket}/${key}`, { body });
      if (res.status >= 300) errors++;
      else latencies.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    count: latencies.length,
    errors,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    opsPerSec: latencies.length / secs,
  };
}

/**
 * Existing keys stored before a replayed workload. Past prefixGroupKeysMax
 * (10,000) a prefix cannot be covered as a group, which is what makes the
 * uniform workload the worst case; --quick stays below it (and says so).
 */
const replayExistingMax = 12_000;
const replayExistingMaxQuick = 2_000;
/** How long to wait for the copy queue to drain after a preload. */
const drainWaitMsMax = 120_000;
const replayConcurrency = 4;

export interface ReplayResult extends PutRun {
  writesIssued: number;
}

/**
 * Replays a workload of src/predict/workloads.ts (the generators the
 * predictor tests and the simulation use) against a real primary: 'put' is a
 * PUT (or the Complete of its upload), 'mpu-create' / 'mpu-part' are
 * CreateMultipartUpload / UploadPart. Parts are 4 KiB and a Complete lists
 * only the last part (legal: the only part is the last one, so EntityTooSmall
 * does not apply), which keeps the writes, not the bytes, the subject.
 * Events of one upload run in order; others run `replayConcurrency` at a time.
 */
export async function replayWorkload(client: S3Http, workload: Workload, writesMax: number, seconds: number): Promise<ReplayResult> {
  const body = randomBytes(4096);
  const latencies: number[] = [];
  let errors = 0;
  const events = workload.events.slice(0, writesMax);
  const uploads = new Map<string, { id: Promise<string>; last: Promise<unknown>; lastPart: { n: number; etag: string } }>();
  const partNumbers = new Map<string, number>();
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const timed = async (fn: () => Promise<S3Response>): Promise<S3Response> => {
    const start = performance.now();
    const res = await fn();
    if (res.status >= 300) throw new Error(`status ${res.status}`);
    latencies.push(performance.now() - start);
    return res;
  };
  const one = async (change: WorkloadEvent['change']): Promise<void> => {
    const p = `/${change.bucket}/${change.key}`;
    const upload = change.uploadId === undefined ? undefined : uploads.get(change.uploadId);
    if (change.kind === 'mpu-create') {
      const id = timed(() => client.request('POST', p, { query: { uploads: '' }, keepBody: true })).then(
        (res) => /<UploadId>([^<]+)<\/UploadId>/.exec(res.body!.toString())![1]!,
      );
      uploads.set(change.uploadId!, { id, last: id.catch(() => undefined), lastPart: { n: 0, etag: '' } });
      await id;
    } else if (change.kind === 'mpu-part' && upload) {
      const n = (partNumbers.get(change.uploadId!) ?? 0) + 1;
      partNumbers.set(change.uploadId!, n);
      const step = upload.last.then(async () => {
        const res = await timed(async () => client.request('PUT', p, { query: { partNumber: String(n), uploadId: await upload.id }, body }));
        upload.lastPart = { n, etag: String(res.headers.etag) };
      });
      upload.last = step.catch(() => undefined);
      await step;
    } else if (change.kind === 'put' && upload) {
      const step = upload.last.then(async () => {
        const { n, etag } = upload.lastPart;
        const xml = `<CompleteMultipartUpload><Part><PartNumber>${n}</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`;
        await timed(async () => client.request('POST', p, { query: { uploadId: await upload.id }, body: Buffer.from(xml) }));
      });
      upload.last = step.catch(() => undefined);
      await step;
    } else if (change.kind === 'put') {
      await timed(() => client.request('PUT', p, { body }));
    } else if (change.kind === 'delete') {
      await timed(() => client.request('DELETE', p));
    }
  };
  const worker = async (): Promise<void> => {
    while (next < events.length && performance.now() < deadline) {
      const event = events[next++]!;
      await one(event.change).catch(() => void errors++);
    }
  };
  await Promise.all(Array.from({ length: replayConcurrency }, worker));
  // Let every upload's chain settle before the clock stops.
  for (const u of uploads.values()) await u.last;
  const secs = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    writesIssued: next,
    count: latencies.length,
    errors,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    opsPerSec: latencies.length / secs,
  };
}

/** Creates the workload's buckets and stores (some of) its existing keys. */
async function preloadWorkload(client: S3Http, workload: Workload, existingMax: number): Promise<void> {
  const buckets = new Set([...workload.events.map((e) => e.change.bucket), ...workload.existing.map((e) => e.bucket)]);
  for (const b of buckets) await client.ensureBucket(b);
  const existing = workload.existing.slice(0, existingMax);
  const keys = existing.map((e) => `/${e.bucket}/${e.key}`);
  await putKeysRaw(client, keys, Buffer.from('existing'), 16);
  await waitQueueDrained(client);
}

/** Waits (bounded) until the primary's copy queue is empty. */
async function waitQueueDrained(client: S3Http, pollMs = 250): Promise<void> {
  const deadline = Date.now() + drainWaitMsMax;
  while (Date.now() < deadline) {
    const res = await client.request('GET', '/_lookahead/metrics', { keepBody: true, timeoutMs: 5_000 }).catch(() => undefined);
    const depth = res ? promSum(res.body?.toString('utf8') ?? '', /^lookahead_replica_queue_depth$/) : NaN;
    if (depth === 0 || Number.isNaN(depth)) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  log('  copy queue not drained within the wait; measuring anyway');
}

async function putKeysRaw(client: S3Http, paths: string[], body: Buffer, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) await client.ok('PUT', paths[next++]!, { body });
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

// ------------------------------------------------------------ sections

/** A primary + secondary pair started with the given copy priority. */
interface OnMode {
  name: string;
  primary: Site;
  secondary: Site;
}

/** One measured run and what it left behind. */
interface Phase {
  run: WorkloadResult;
  /** Copies still queued on the primary when the run ended. */
  queueAtEnd: number;
  /** From the end of the run until Q was empty (0 for the single site). */
  drainSeconds: number;
  /** Writes per second over the run and its drain: replicated throughput. */
  untilDrainedOpsPerSec: number;
  /** CPU of the site(s) (primary + secondary) per write, run and drain. */
  cpuUsPerWrite: number;
  /** The same over the run only (what competed with the writes). */
  runCpuUsPerWrite: number;
  /** The primary's copy priority status after the drain (lag-bound count). */
  pacing?: { priority?: string; lagBoundReached?: number };
}

/** The sustained run is twice the default lag bound: long enough that the
 * bound, not the end of the run, ends every deferral. */
const sustainedSeconds = (2 * copyDeferLagMsDefault) / 1000;
/** Resolution of the measured drain time. */
const drainPollMs = 50;

async function queueDepthOf(client: S3Http): Promise<number> {
  const res = await client.request('GET', '/_lookahead/metrics', { keepBody: true, timeoutMs: 5_000 }).catch(() => undefined);
  return res ? promSum(res.body?.toString('utf8') ?? '', /^lookahead_replica_queue_depth$/) : NaN;
}

async function pacingOf(client: S3Http): Promise<Phase['pacing']> {
  const res = await client.request('GET', '/_lookahead/status', { keepBody: true, timeoutMs: 5_000 }).catch(() => undefined);
  if (!res || res.status !== 200) return undefined;
  try {
    return (JSON.parse(res.body!.toString('utf8')) as { replication?: { copyPacing?: Phase['pacing'] } }).replication?.copyPacing;
  } catch {
    return undefined;
  }
}

/** A 4 KiB PUT c16 run on `site`, then (replicated) the wait for Q to drain. */
async function measurePhase(site: Site, pids: number[], seconds: number, opts: BenchOptions, prefix: string, replicated: boolean): Promise<Phase> {
  const cpu = () => pids.reduce((a, pid) => a + processCpuMicros(pid), 0);
  const cpu0 = cpu();
  // Q is read as the run's clock runs out (the load generator starts no
  // PUT after it): read after the last answer, a quiet primary has already
  // begun to drain.
  const atEnd = replicated
    ? new Promise<void>((r) => setTimeout(r, seconds * 1000)).then(async () => ({ cpu: cpu(), depth: await queueDepthOf(site.client), t: performance.now() }))
    : undefined;
  const run = await runWorkload(site.client, bucket, { op: 'put', objectBytes: 4096, concurrency: 16, seconds, maxOps: opts.maxOps, prefix });
  if (run.errors) log(`  ${run.errors} errors, first: ${run.firstError}`);
  const end = await atEnd;
  const queueAtEnd = end?.depth ?? 0;
  // The copier's backlog must not spill into the next run.
  if (replicated) await waitQueueDrained(site.client, drainPollMs);
  const drainSeconds = end ? (performance.now() - end.t) / 1000 : 0;
  const cpuUsPerWrite = (cpu() - cpu0) / Math.max(1, run.ops);
  const runCpuUsPerWrite = end ? (end.cpu - cpu0) / Math.max(1, run.ops) : cpuUsPerWrite;
  const pacing = replicated ? await pacingOf(site.client) : undefined;
  return {
    run, queueAtEnd, drainSeconds, untilDrainedOpsPerSec: run.ops / (run.seconds + drainSeconds), cpuUsPerWrite, runCpuUsPerWrite, ...(pacing ? { pacing } : {}),
  };
}

/** Each round's on/off throughput ratio (the modes ran back to back in it). */
function pairedRatios(off: Phase[], on: Phase[]): number[] {
  return on.map((p, r) => p.run.opsPerSec / off[r]!.run.opsPerSec);
}

async function offVsOn(opts: BenchOptions, off: Site, modes: OnMode[], report: Report): Promise<void> {
  // Eight rounds: on this 2-core machine one 5 s round of a mode varies by
  // +-15% against the next (three runs of four rounds each gave ratios of
  // medians 0.82-0.96x for the same code).
  const rounds = opts.quick ? 1 : 8;
  log('warming up the single site and the primaries');
  await warmUp(off.client, bucket, opts.quick ? 1 : 2);
  for (const m of modes) {
    await warmUp(m.primary.client, bucket, opts.quick ? 1 : 2);
    await waitQueueDrained(m.primary.client);
  }
  const primary = modes[0]!.primary;
  const before = await readCounters(primary.client).catch(() => undefined);
  // Each mode's keys are named `repl-m<index>-...`: the same length and
  // characters for every mode. (The modes' display names, used as prefixes
  // until 2026-11-30, gave the replicated modes keys 25-30 characters longer
  // and full of characters SigV4 percent-encodes, `on, default
  // (--copy-priority background)`: more work per PUT for them alone.)
  const sites = [{ name: 'off', tag: 'm0', site: off, pids: [off.server.pid], replicated: false }, ...modes.map((m, i) => ({
    name: m.name, tag: `m${i + 1}`, site: m.primary, pids: [m.primary.server.pid, m.secondary.server.pid], replicated: true,
  }))];
  // Modes interleaved in every round, so they share the machine's noise,
  // and in reverse order every other round, so none always runs first (or
  // right after another mode's drain).
  const burst = new Map<string, Phase[]>(sites.map((x) => [x.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const x of r % 2 === 0 ? sites : [...sites].reverse()) {
      log(`burst ${opts.seconds} s, ${x.name}: 4 KiB PUT c16 round ${r + 1}/${rounds}`);
      burst.get(x.name)!.push(await measurePhase(x.site, x.pids, opts.seconds, opts, `repl-${x.tag}-r${r}`, x.replicated));
    }
  }
  const sustained = new Map<string, Phase[]>();
  for (const x of sites) {
    log(`sustained ${sustainedSeconds} s, ${x.name}: 4 KiB PUT c16`);
    sustained.set(x.name, [await measurePhase(x.site, x.pids, sustainedSeconds, opts, `repl-${x.tag}-long`, x.replicated)]);
  }
  const after = await readCounters(primary.client).catch(() => undefined);
  const med = (phases: Phase[], f: (p: Phase) => number) => median(phases.map(f));
  const table2 = (phases: Map<string, Phase[]>) => {
    const offRun = med(phases.get('off')!, (p) => p.run.opsPerSec);
    const offDrained = med(phases.get('off')!, (p) => p.untilDrainedOpsPerSec);
    const rows = [...phases].map(([name, ps]) => {
      const ops = med(ps, (p) => p.run.opsPerSec);
      const drained = med(ps, (p) => p.untilDrainedOpsPerSec);
      const replicated = name !== 'off';
      return [
        name === 'off' ? 'off (single site)' : name,
        fmt(ops),
        replicated ? `**${(ops / offRun).toFixed(2)}x**` : '-',
        replicated ? ps.map((p) => String(p.queueAtEnd)).join(', ') : '-',
        replicated ? ps.map((p) => p.drainSeconds.toFixed(1)).join(', ') : '-',
        fmt(drained),
        replicated ? `**${(drained / offDrained).toFixed(2)}x**` : '-',
        fmt(med(ps, (p) => p.runCpuUsPerWrite)),
        fmt(med(ps, (p) => p.cpuUsPerWrite)),
        fmt(med(ps, (p) => p.run.p99Ms), 2),
        replicated ? ps.map((p) => String(p.pacing?.lagBoundReached ?? '-')).join(', ') : '-',
        String(ps.reduce((a, p) => a + p.run.errors, 0)),
      ];
    });
    const ratios = Object.fromEntries(
      [...phases].filter(([n]) => n !== 'off').map(([n, ps]) => [n, {
        duringRun: med(ps, (p) => p.run.opsPerSec) / offRun,
        untilDrained: med(ps, (p) => p.untilDrainedOpsPerSec) / offDrained,
      }]),
    );
    return { rows, ratios };
  };
  const head = [
    'mode', 'ops/s during the run', 'on/off', 'Q at end', 'drain s', 'ops/s until drained', 'on/off',
    'sites\' CPU µs/write: run', 'run + drain', 'p99 ms', 'lag bound hit', 'errors',
  ];
  const b = table2(burst);
  const s2 = table2(sustained);
  const paired = modes.map((m) => pairedRatios(burst.get('off')!, burst.get(m.name)!));
  const main = median(paired[0]!);
  report.lines.push(
    '## Replication off vs on (no delay), 4 KiB PUT, concurrency 16',
    '',
    `Burst: ${opts.seconds} s runs, median of ${rounds} (modes interleaved per round, in reverse order every other round):`,
    '',
    table(head, b.rows),
    '',
    `Sustained: one ${sustainedSeconds} s run per mode (twice the default lag bound):`,
    '',
    table(head, s2.rows),
    '',
    ...modes.map((m, i) =>
      `Burst on/off per round, ${m.name} (each round's run against the single site's in the same round): ` +
        `${paired[i]!.map((x) => x.toFixed(2)).join(', ')}; median **${median(paired[i]!).toFixed(2)}x**, ` +
        `ratio of the medians ${(b.ratios[m.name]?.duringRun ?? NaN).toFixed(2)}x.`,
    ),
    '',
    `Burst on/off (default priority, during the run, median of the rounds' ratios): **${main.toFixed(2)}x** (target >= 0.9x: ${main >= 0.9 ? 'met' : 'NOT met'}). ` +
      'Each round runs the modes back to back, so a ratio within a round shares the machine\'s state; ' +
      'the ratio of the medians also carries the noise between rounds. ' +
      '"During the run" counts writes acknowledged while the clients wrote; copies still queued at its end ' +
      '(Q at end) are sent afterwards (drain s). "Until drained" divides the same writes by run + drain time: ' +
      'the throughput at which writes are also on the secondary. CPU per write: user + system of the site ' +
      'processes (single site; primary + secondary) over the run, and over the run and the drain. ' +
      `Miss rate on the default primary: ${before && after ? pct(missRate(before, after)) : 'n/a'}.`,
    '',
  );
  report.json.replicationOffOn = {
    burst: Object.fromEntries(burst),
    sustained: Object.fromEntries(sustained),
    burstRatios: b.ratios,
    sustainedRatios: s2.ratios,
    burstPairedRatios: Object.fromEntries(modes.map((m, i) => [m.name, paired[i]])),
    ratio: main,
  };
}

async function keyWorkloads(opts: BenchOptions, primary: Site, report: Report): Promise<void> {
  const writesMax = opts.quick ? 800 : 3000;
  const existingMax = opts.quick ? replayExistingMaxQuick : replayExistingMax;
  const seconds = opts.seconds * 6;
  const rows: string[][] = [];
  const json: Record<string, unknown> = {};
  const workloads = [
    logWorkload({ writes: writesMax }),
    treeWorkload({ files: writesMax }),
    multipartWorkload({ uploads: opts.quick ? 30 : 100 }),
    zipfWorkload({ keys: existingMax, writes: writesMax }),
    uniformWorkload({ writes: writesMax, existing: existingMax }),
  ];
  for (const w of workloads) {
    log(`replication workload ${w.name}: preload ${Math.min(w.existing.length, existingMax)} keys, replay <= ${writesMax} writes`);
    await preloadWorkload(primary.client, w, existingMax);
    const before = await readCounters(primary.client).catch(() => undefined);
    const { result, peak } = await withRecordPeak(primary.client, () => replayWorkload(primary.client, w, writesMax, seconds));
    const after = await readCounters(primary.client).catch(() => undefined);
    const rate = before && after ? missRate(before, after) : NaN;
    rows.push([w.name, String(result.count), String(result.errors), pct(rate), Number.isFinite(peak) ? String(peak) : 'n/a', fmt(result.p50Ms, 2), fmt(result.p99Ms, 2)]);
    json[w.name] = { ...result, missRate: rate, peakRecordEntries: peak };
  }
  report.lines.push(
    `## Replication workloads through a real primary (src/predict/workloads.ts generators, <= ${writesMax} writes each, ${replayConcurrency} in flight, 4 KiB bodies)`,
    '',
    table(['workload', 'writes', 'errors', 'miss rate', 'peak record entries', 'write p50 ms', 'write p99 ms'], rows),
    '',
    `Existing keys (tree, zipf, uniform) written through the primary first, at most ${existingMax} per workload, ` +
      'then the copy queue drained; the table counts only the replayed writes. ' +
      'Miss rate target <= 1% on log, tree and multipart; uniform random new keys are the worst case by design.' +
      (opts.quick ? ' --quick: existing keys stay below the prefix-group cap (10,000), so zipf/uniform miss rates are optimistic.' : ''),
    '',
  );
  report.json.replicationWorkloads = json;
  if (!opts.quick) simulatedWorkloads(report);
}

/** The same generators at full size through the in-memory model of the record. */
function simulatedWorkloads(report: Report): void {
  log('replication workloads, in-memory model (simulateMissRate)');
  const rows = standardWorkloads().map((w) => {
    const r = simulateMissRate(w);
    return [r.workload, String(r.writes), String(r.misses), pct(r.missRate), String(r.peakEntries), String(r.peakCoveredKeys)];
  });
  report.lines.push(
    '## Same workloads at full size, in-memory model of record + predictors + removal (no network, no disk)',
    '',
    table(['workload', 'writes', 'misses', 'miss rate', 'peak record entries', 'peak covered keys'], rows),
    '',
  );
}

/** Hit-path delay modes take this many times the others' PUTs (cheap). */
const hitWeight = 3;

/** A way to PUT one key: through one site, or (emulated sync) through two. */
type PutFn = (key: string, body: Buffer) => Promise<number>;

export function putVia(client: S3Http): PutFn {
  return async (key, body) => (await client.request('PUT', `/${bucket}/${key}`, { body })).status;
}

/**
 * Every write synchronous, when the server has no flag for it: the write goes
 * to the local site and, in parallel, to a second site behind the same
 * delaying proxy, and is acknowledged when both are; what any synchronous
 * replication costs per write at this delay.
 */
export function putEverywhere(local: S3Http, remote: S3Http): PutFn {
  return async (key, body) => {
    const [a, b] = await Promise.all([putVia(local)(key, body), putVia(remote)(key, body)]);
    return a >= 300 ? a : b;
  };
}

export interface LatencyMode {
  name: string;
  put: PutFn;
  /** The primary whose metrics give the miss rate, if any. */
  metricsOf?: S3Http;
  latencies: number[];
  errors: number;
  next: number;
  before?: Counters;
  /** PUTs per turn and in all, as a multiple of the others' (hit-path
   * modes are fast: more samples cost little next to the misses' turns). */
  weight?: number;
}

/**
 * Log-key PUTs at concurrency 1, the modes interleaved in short chunks so
 * they share the machine's noise; each mode warms up first (its first keys
 * miss and teach the predictors the sequence).
 */
export async function interleavedLatency(modes: LatencyMode[], opts: BenchOptions): Promise<void> {
  const body = randomBytes(4096);
  const warm = opts.quick ? 50 : 100;
  const perModeBase = opts.quick ? 300 : 1000;
  const chunkBase = 50;
  const perMode = (m: LatencyMode) => perModeBase * (m.weight ?? 1);
  const chunk = (m: LatencyMode) => chunkBase * (m.weight ?? 1);
  // Every mode's keys have the same length (its index, not its name): a
  // longer key costs every PUT more hashing and encoding.
  const keyOf = (m: LatencyMode, i: number) => `delay-m${modes.indexOf(m)}/log-${String(i).padStart(6, '0')}.log`;
  for (const m of modes) {
    for (; m.next < warm; m.next++) await m.put(keyOf(m, m.next), body);
    m.before = m.metricsOf ? await readCounters(m.metricsOf).catch(() => undefined) : undefined;
  }
  const deadline = performance.now() + opts.seconds * 3 * modes.length * 1000;
  while (modes.some((m) => m.next < warm + perMode(m)) && performance.now() < deadline) {
    for (const m of modes) {
      for (let i = 0; i < chunk(m) && m.next < warm + perMode(m); i++, m.next++) {
        const start = performance.now();
        const status = await m.put(keyOf(m, m.next), body).catch(() => 0);
        if (status >= 200 && status < 300) m.latencies.push(performance.now() - start);
        else m.errors++;
      }
    }
  }
}

export async function modeRow(m: LatencyMode): Promise<{ row: string[]; p50: number; json: Record<string, unknown> }> {
  const sorted = [...m.latencies].sort((a, b) => a - b);
  const after = m.metricsOf ? await readCounters(m.metricsOf).catch(() => undefined) : undefined;
  const rate = m.before && after ? missRate(m.before, after) : NaN;
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  return {
    row: [m.name, String(sorted.length), String(m.errors), fmt(p50, 2), fmt(p99, 2), m.metricsOf ? pct(rate) : '-'],
    p50,
    json: { count: sorted.length, errors: m.errors, p50Ms: p50, p99Ms: p99, missRate: rate },
  };
}

async function delaySection(opts: BenchOptions, root: string, help: string, report: Report): Promise<void> {
  const sync = syncFlags(help);
  const closers: (() => Promise<void>)[] = [];
  const site = async (name: string, args: string[]): Promise<Site> => {
    const s2 = await startSite(root, name, args);
    closers.push(() => stopSite(s2));
    await s2.client.ensureBucket(bucket).catch(() => undefined);
    return s2;
  };
  const proxyTo = async (s2: Site): Promise<DelayProxy> => {
    const p2 = await spawnDelayProxy(Number(new URL(s2.server.url).port), opts.delayMs);
    closers.push(() => p2.close());
    return p2;
  };
  try {
    // A fresh single site, warmed up like every other mode's site below: the
    // shared one has served the whole off-vs-on section by then, and a
    // JIT-warm process against a fresh primary measured +41% hit-path p50
    // where equally warm ones measured +16% (same run, same machine).
    const off = await site('delay-off', []);
    const warm: S3Http[] = [off.client];
    const primaries: S3Http[] = [];
    const secondary = await site('delay-secondary', ['--role', 'secondary', '--replication-secret', replicationSecret]);
    const proxy = await proxyTo(secondary);
    const primary = await site('delay-primary', ['--role', 'primary', '--secondary', proxy.url, '--replication-secret', replicationSecret]);
    warm.push(primary.client);
    primaries.push(primary.client);
    const mk = (name: string, put: PutFn, metricsOf?: S3Http, weight?: number): LatencyMode => ({
      name, put, metricsOf, latencies: [], errors: 0, next: 0, ...(weight ? { weight } : {}),
    });
    const modes = [
      mk('off (single site)', putVia(off.client), undefined, hitWeight),
      mk(`look-ahead record, ${priorityName(help)}`, putVia(primary.client), primary.client, hitWeight),
    ];
    if (/--copy-priority\b/.test(help)) {
      const eagerSecondary = await site('delay-eager-secondary', ['--role', 'secondary', '--replication-secret', replicationSecret]);
      const eagerProxy = await proxyTo(eagerSecondary);
      const eager = await site('delay-eager-primary', [
        '--role', 'primary', '--secondary', eagerProxy.url, '--replication-secret', replicationSecret, '--copy-priority', 'eager',
      ]);
      warm.push(eager.client);
      primaries.push(eager.client);
      modes.push(mk('look-ahead record, --copy-priority eager', putVia(eager.client), eager.client, hitWeight));
    }
    // "--predictors ," enables none: every new key misses and waits a round trip.
    const missPrimary = async (name: string, extra: string[]): Promise<Site> => {
      const s2 = await site(`${name}-secondary`, ['--role', 'secondary', '--replication-secret', replicationSecret]);
      const p2 = await proxyTo(s2);
      const primary2 = await site(`${name}-primary`, [
        '--role', 'primary', '--secondary', p2.url, '--replication-secret', replicationSecret, '--predictors', ',', ...extra,
      ]);
      warm.push(primary2.client);
      primaries.push(primary2.client);
      return primary2;
    };
    let missRows: { off: number; on: number } | undefined;
    if (/--predictors\b/.test(help)) {
      const bare = await missPrimary('bare', []);
      modes.push(mk('record, predictors off (every new key misses)', putVia(bare.client), bare.client));
      if (/--sync-copy-on-miss\b/.test(help)) {
        // Claim 2: the same misses, each acked only once S holds the data.
        const syncMiss = await missPrimary('sync-miss', ['--sync-copy-on-miss']);
        modes.push(mk('predictors off, --sync-copy-on-miss', putVia(syncMiss.client), syncMiss.client));
        missRows = { off: modes.length - 2, on: modes.length - 1 };
      }
    }
    let syncNote: string;
    if (sync) {
      const syncSecondary = await site('sync-secondary', ['--role', 'secondary', '--replication-secret', replicationSecret]);
      const syncProxy = await proxyTo(syncSecondary);
      const syncPrimary = await site('sync-primary', [
        '--role', 'primary', '--secondary', syncProxy.url, '--replication-secret', replicationSecret, ...sync,
      ]);
      warm.push(syncPrimary.client);
      primaries.push(syncPrimary.client);
      modes.push(mk(`every write synchronous (${sync.join(' ')})`, putVia(syncPrimary.client), syncPrimary.client));
      syncNote = `Synchronous row: a primary started with \`${sync.join(' ')}\`.`;
    } else {
      const remote = await site('sync-remote', []);
      warm.push(remote.client);
      const remoteProxy = await proxyTo(remote);
      const remoteClient = new S3Http({ ...remote.client.endpoint, url: remoteProxy.url });
      closers.push(async () => remoteClient.close());
      modes.push(mk('every write synchronous (emulated, data included)', putEverywhere(off.client, remoteClient)));
      syncNote =
        'Emulated synchronous row (serve has no flag for it): each PUT goes to the local site and, in parallel, ' +
        'to a second site through the same delaying proxy, acknowledged when both are.';
    }
    log('warming up every site the delay modes write to (c16 PUT + GET), then draining the copy queues');
    for (const c of warm) await warmUp(c, bucket, opts.quick ? 1 : 2);
    for (const c of primaries) await waitQueueDrained(c);
    log(`delay ${opts.delayMs} ms each way: ${modes.map((m) => m.name).join(' / ')}, interleaved`);
    await interleavedLatency(modes, opts);
    const rows = await Promise.all(modes.map(modeRow));
    const offP50 = rows[0]!.p50;
    const onP50 = rows[1]!.p50;
    const eagerRow = modes.findIndex((m) => m.name.includes('--copy-priority eager'));
    const eagerNote = eagerRow < 0 ? '' : ` With \`--copy-priority eager\`: ${((rows[eagerRow]!.p50 / offP50 - 1) * 100).toFixed(1)}%.`;
    report.lines.push(
      `## Injected inter-site delay (${opts.delayMs} ms each way), 4 KiB log-key PUTs, concurrency 1, modes interleaved`,
      '',
      table(['mode', 'PUTs', 'errors', 'p50 ms', 'p99 ms', 'miss rate'], rows.map((r) => r.row)),
      '',
      `Hit-path p50 vs replication off (default priority): ${((onP50 / offP50 - 1) * 100).toFixed(1)}% (target within 10%).${eagerNote} ` +
        'Each mode writes in turns of chunks (hit-path modes 3x larger): between its turns a primary\'s clients are quiet, ' +
        `so a background copier drains then. ${syncNote}`,
      '',
      ...(missRows ? [missCopyNote(rows[missRows.off]!.p50, rows[missRows.on]!.p50, opts.delayMs), ''] : []),
    );
    report.json.replicationDelay = Object.fromEntries(modes.map((m, i) => [m.name, rows[i]!.json]));
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
}

/** Miss PUT p50 with --sync-copy-on-miss on vs off (same run, interleaved). */
function missCopyNote(offP50: number, onP50: number, delayMs: number): string {
  return `Miss p50 with \`--sync-copy-on-miss\` vs without: ${fmt(onP50, 2)} vs ${fmt(offP50, 2)} ms ` +
    `(+${fmt(onP50 - offP50, 2)} ms, ${(onP50 / offP50).toFixed(2)}x; one more round trip is ${2 * delayMs} ms): ` +
    'the record message, then the copy, each a round trip; hits stay asynchronous.';
}

export async function runReplicationSection(opts: BenchOptions, root: string, report: Report): Promise<void> {
  const wanted = ['replication', 'repl-workloads', 'repl-delay'].filter((n) => selected(opts, n));
  if (wanted.length === 0) return;
  const help = await serveHelp();
  if (!/--role\b/.test(help) || !/--secondary\b/.test(help)) {
    report.lines.push('## Replication', '', 'Skipped: `src/main.ts serve --help` has no `--role` / `--secondary` flags yet.', '');
    return;
  }
  let off: Site | undefined;
  let secondary: Site | undefined;
  let primary: Site | undefined;
  let eagerSecondary: Site | undefined;
  let eagerPrimary: Site | undefined;
  try {
    off = await startSite(root, 'repl-off', []);
    await off.client.ensureBucket(bucket);
    if (wanted.includes('replication') || wanted.includes('repl-workloads')) {
      secondary = await startSite(root, 'secondary', ['--role', 'secondary', '--replication-secret', replicationSecret]);
      primary = await startSite(root, 'primary', [
        '--role', 'primary', '--secondary', secondary.server.url, '--replication-secret', replicationSecret,
      ]);
      await primary.client.ensureBucket(bucket);
      if (wanted.includes('replication')) {
        const modes: OnMode[] = [{ name: `on, ${priorityName(help)}`, primary, secondary }];
        if (/--copy-priority\b/.test(help)) {
          // Eager copying beside the default, in the same run.
          eagerSecondary = await startSite(root, 'eager-secondary', ['--role', 'secondary', '--replication-secret', replicationSecret]);
          eagerPrimary = await startSite(root, 'eager-primary', [
            '--role', 'primary', '--secondary', eagerSecondary.server.url, '--replication-secret', replicationSecret, '--copy-priority', 'eager',
          ]);
          await eagerPrimary.client.ensureBucket(bucket);
          modes.push({ name: 'on, --copy-priority eager', primary: eagerPrimary, secondary: eagerSecondary });
        }
        await offVsOn(opts, off, modes, report);
        await stopSite(eagerPrimary);
        await stopSite(eagerSecondary);
        eagerPrimary = eagerSecondary = undefined;
      }
      if (wanted.includes('repl-workloads')) await keyWorkloads(opts, primary, report);
      await stopSite(primary);
      await stopSite(secondary);
      primary = secondary = undefined;
    }
    if (wanted.includes('repl-delay')) await delaySection(opts, root, help, report);
  } finally {
    await stopSite(eagerPrimary);
    await stopSite(eagerSecondary);
    await stopSite(primary);
    await stopSite(secondary);
    await stopSite(off);
  }
}

/** The default copy priority as `serve --help` states it. */
function priorityName(help: string): string {
  const m = /--copy-priority[\s\S]*?default: "(\w+)"/.exec(help);
  return m ? `default (--copy-priority ${m[1]})` : 'default';
}
