// The replication section of `npm run bench` (issue 3):
//   replication     4 KiB PUT c16, replication off vs on (no delay), >= 0.9x
//   repl-workloads  log / tree / multipart / zipf / random keys through a
//                   primary: miss rate, peak record size, PUT p50/p99
//   repl-delay      an injected inter-site delay (bench/delay-proxy.ts, 20 ms
//                   each way): hit-path PUT latency vs replication off vs
//                   every write synchronous
// Skipped, with a message, while `serve --help` has no `--role`.

import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { S3Http } from './s3http.ts';
import { runWorkload, percentile, median, rng, type WorkloadResult } from './loadgen.ts';
import { startLookahead, serveHelp, testAccessKey, testSecretKey, type ChildServer } from './servers.ts';
import { startDelayProxy, type DelayProxy } from './delay-proxy.ts';
import { selected, fmt, table, log, type BenchOptions, type Report } from './report.ts';

const bucket = 'bench';
const region = 'us-east-1';
const replicationSecret = 'lookahead-bench-replication-secret';
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
  const writes = /write/i;
  return {
    hits: promSum(text, writes, /"hit"/i),
    misses: promSum(text, writes, /"miss"/i),
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

/** Key sequences of the replication workloads. */
export function workloadKeys(kind: string, count: number, seed: number): string[] {
  const random = rng(seed);
  switch (kind) {
    case 'log':
      return Array.from({ length: count }, (_, i) => `logs/2026-11-30/app-${String(i).padStart(6, '0')}.log`);
    case 'tree': {
      // What `aws s3 sync` of a tree sends: sorted paths, files by directory.
      const keys: string[] = [];
      for (let d = 0; keys.length < count; d++)
        for (let s = 0; s < 8 && keys.length < count; s++)
          for (let f = 0; f < 16 && keys.length < count; f++)
            keys.push(`site/dir-${String(d).padStart(3, '0')}/sub-${s}/file-${String(f).padStart(2, '0')}.html`);
      return keys.sort();
    }
    case 'zipf': {
      // Overwrites of a hot set of 500 keys, Zipf s = 1.1.
      const n = 500;
      const weights = Array.from({ length: n }, (_, i) => 1 / Math.pow(i + 1, 1.1));
      const total = weights.reduce((a, b) => a + b, 0);
      const cdf: number[] = [];
      let acc = 0;
      for (const w of weights) cdf.push((acc += w / total));
      return Array.from({ length: count }, () => {
        const r = random();
        let lo = 0;
        let hi = n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (cdf[mid]! < r) lo = mid + 1;
          else hi = mid;
        }
        return `hot/key-${String(lo).padStart(4, '0')}`;
      });
    }
    case 'random':
      return Array.from({ length: count }, () => `rand/${Math.floor(random() * 2 ** 48).toString(16).padStart(12, '0')}`);
    default:
      throw new Error(`unknown key workload ${kind}`);
  }
}

/** Small multipart uploads (2 parts of 5 MiB): each is one "PUT". */
async function multipartUploads(client: S3Http, count: number, seconds: number): Promise<PutRun> {
  const part = randomBytes(5 * 1024 * 1024);
  const latencies: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const p = `/${bucket}/uploads/batch/object-${String(i).padStart(4, '0')}.bin`;
    const start = performance.now();
    try {
      const created = await client.ok('POST', p, { query: { uploads: '' }, keepBody: true });
      const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.body!.toString())![1]!;
      const etags: string[] = [];
      for (let n = 1; n <= 2; n++) {
        const res = await client.ok('PUT', p, { query: { partNumber: String(n), uploadId }, body: part });
        etags.push(String(res.headers.etag));
      }
      const xml =
        '<CompleteMultipartUpload>' +
        etags.map((e, k) => `<Part><PartNumber>${k + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('') +
        '</CompleteMultipartUpload>';
      await client.ok('POST', p, { query: { uploadId }, body: Buffer.from(xml) });
      latencies.push(performance.now() - start);
    } catch {
      errors++;
    }
  }
  latencies.sort((a, b) => a - b);
  return {
    count: latencies.length,
    errors,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    opsPerSec: latencies.length / ((performance.now() - t0) / 1000),
  };
}

// ------------------------------------------------------------ sections

async function offVsOn(opts: BenchOptions, off: Site, primary: Site, report: Report): Promise<void> {
  const rounds = opts.quick ? 1 : 2;
  const offRuns: WorkloadResult[] = [];
  const onRuns: WorkloadResult[] = [];
  const before = await readCounters(primary.client).catch(() => undefined);
  for (let r = 0; r < rounds; r++) {
    for (const [name, site, runs] of [
      ['off', off, offRuns],
      ['on', primary, onRuns],
    ] as const) {
      log(`replication ${name}: 4 KiB PUT c16 round ${r + 1}/${rounds}`);
      const res = await runWorkload(site.client, bucket, {
        op: 'put',
        objectBytes: 4096,
        concurrency: 16,
        seconds: opts.seconds,
        maxOps: opts.maxOps,
        prefix: `repl-${name}-r${r}`,
      });
      if (res.errors) log(`  ${res.errors} errors, first: ${res.firstError}`);
      runs.push(res);
    }
  }
  const after = await readCounters(primary.client).catch(() => undefined);
  const offOps = median(offRuns.map((x) => x.opsPerSec));
  const onOps = median(onRuns.map((x) => x.opsPerSec));
  const ratio = onOps / offOps;
  const row = (name: string, runs: WorkloadResult[]): string[] => [
    name,
    fmt(median(runs.map((x) => x.opsPerSec))),
    fmt(median(runs.map((x) => x.p50Ms)), 2),
    fmt(median(runs.map((x) => x.p99Ms)), 2),
    String(runs.reduce((a, x) => a + x.errors, 0)),
  ];
  report.lines.push(
    '## Replication off vs on (no delay), 4 KiB PUT, concurrency 16',
    '',
    table(['replication', 'ops/s', 'p50 ms', 'p99 ms', 'errors'], [row('off (single site)', offRuns), row('on (primary + secondary)', onRuns)]),
    '',
    `On/off throughput: **${ratio.toFixed(2)}x** (target >= 0.9x: ${ratio >= 0.9 ? 'met' : 'NOT met'}); ` +
      `miss rate with replication on: ${before && after ? pct(missRate(before, after)) : 'n/a'}.`,
    '',
  );
  report.json.replicationOffOn = { offRuns, onRuns, ratio };
}

async function keyWorkloads(opts: BenchOptions, primary: Site, report: Report): Promise<void> {
  const count = opts.quick ? 1000 : 3000;
  const body = randomBytes(4096);
  const rows: string[][] = [];
  const json: Record<string, unknown> = {};
  for (const kind of ['log', 'tree', 'multipart', 'zipf', 'random']) {
    log(`replication workload ${kind}`);
    const before = await readCounters(primary.client).catch(() => undefined);
    const { result, peak } = await withRecordPeak(primary.client, () =>
      kind === 'multipart'
        ? multipartUploads(primary.client, opts.quick ? 10 : 30, opts.seconds * 4)
        : putKeys(primary.client, workloadKeys(kind, count, 7), body, 4, opts.seconds * 4),
    );
    const after = await readCounters(primary.client).catch(() => undefined);
    const rate = before && after ? missRate(before, after) : NaN;
    rows.push([kind, String(result.count), String(result.errors), pct(rate), Number.isFinite(peak) ? String(peak) : 'n/a', fmt(result.p50Ms, 2), fmt(result.p99Ms, 2)]);
    json[kind] = { ...result, missRate: rate, peakRecordEntries: peak };
  }
  report.lines.push(
    '## Replication workloads through the primary (4 KiB PUTs, concurrency 4; multipart: 2 x 5 MiB parts, one at a time)',
    '',
    table(['workload', 'writes', 'errors', 'miss rate', 'peak record entries', 'PUT p50 ms', 'PUT p99 ms'], rows),
    '',
    'Miss rate target <= 1% on log, tree and multipart; random new keys are the worst case by design.',
    '',
  );
  report.json.replicationWorkloads = json;
}

/** Hit-path latency: warm the record with the log prefix, then measure. */
async function hitPathLatency(site: Site, tag: string, opts: BenchOptions): Promise<PutRun & { missRate: number }> {
  const body = randomBytes(4096);
  const warm = opts.quick ? 50 : 100;
  const count = opts.quick ? 300 : 1000;
  const keys = Array.from({ length: warm + count }, (_, i) => `delay-${tag}/log-${String(i).padStart(6, '0')}.log`);
  await putKeys(site.client, keys.slice(0, warm), body, 1, 60);
  const before = await readCounters(site.client).catch(() => undefined);
  const run = await putKeys(site.client, keys.slice(warm), body, 1, opts.seconds * 3);
  const after = await readCounters(site.client).catch(() => undefined);
  return { ...run, missRate: before && after ? missRate(before, after) : NaN };
}

async function delaySection(opts: BenchOptions, root: string, off: Site, help: string, report: Report): Promise<void> {
  const sync = syncFlags(help);
  const secondary = await startSite(root, 'delay-secondary', ['--role', 'secondary', '--replication-secret', replicationSecret]);
  let proxy: DelayProxy | undefined;
  let primary: Site | undefined;
  let syncPrimary: Site | undefined;
  let syncSecondary: Site | undefined;
  let syncProxy: DelayProxy | undefined;
  try {
    proxy = await startDelayProxy(Number(new URL(secondary.server.url).port), opts.delayMs);
    primary = await startSite(root, 'delay-primary', ['--role', 'primary', '--secondary', proxy.url, '--replication-secret', replicationSecret]);
    await primary.client.ensureBucket(bucket);
    log(`delay ${opts.delayMs} ms each way: replication off`);
    const offRun = await hitPathLatency(off, 'off', opts);
    log(`delay ${opts.delayMs} ms each way: look-ahead record (hit path)`);
    const onRun = await hitPathLatency(primary, 'on', opts);
    const rows = [
      ['off (single site)', String(offRun.count), fmt(offRun.p50Ms, 2), fmt(offRun.p99Ms, 2), '-'],
      ['look-ahead record', String(onRun.count), fmt(onRun.p50Ms, 2), fmt(onRun.p99Ms, 2), pct(onRun.missRate)],
    ];
    let syncRun: (PutRun & { missRate: number }) | undefined;
    if (sync) {
      syncSecondary = await startSite(root, 'sync-secondary', ['--role', 'secondary', '--replication-secret', replicationSecret]);
      syncProxy = await startDelayProxy(Number(new URL(syncSecondary.server.url).port), opts.delayMs);
      syncPrimary = await startSite(root, 'sync-primary', [
        '--role', 'primary', '--secondary', syncProxy.url, '--replication-secret', replicationSecret, ...sync,
      ]);
      await syncPrimary.client.ensureBucket(bucket);
      log(`delay ${opts.delayMs} ms each way: every write synchronous (${sync.join(' ')})`);
      syncRun = await hitPathLatency(syncPrimary, 'sync', opts);
      rows.push(['every write synchronous', String(syncRun.count), fmt(syncRun.p50Ms, 2), fmt(syncRun.p99Ms, 2), pct(syncRun.missRate)]);
    }
    report.lines.push(
      `## Injected inter-site delay (${opts.delayMs} ms each way), 4 KiB log-key PUTs, concurrency 1`,
      '',
      table(['mode', 'PUTs', 'p50 ms', 'p99 ms', 'miss rate'], rows),
      '',
      `Hit-path p50 vs replication off: ${((onRun.p50Ms / offRun.p50Ms - 1) * 100).toFixed(1)}% ` +
        `(target within 10%).` +
        (sync ? '' : ' Every-write-synchronous row skipped: `serve --help` shows no flag for it.'),
      '',
    );
    report.json.replicationDelay = { off: offRun, on: onRun, sync: syncRun, delayMs: opts.delayMs };
  } finally {
    await stopSite(syncPrimary);
    await syncProxy?.close();
    await stopSite(syncSecondary);
    await stopSite(primary);
    await proxy?.close();
    await stopSite(secondary);
  }
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
  try {
    off = await startSite(root, 'repl-off', []);
    await off.client.ensureBucket(bucket);
    if (wanted.includes('replication') || wanted.includes('repl-workloads')) {
      secondary = await startSite(root, 'secondary', ['--role', 'secondary', '--replication-secret', replicationSecret]);
      primary = await startSite(root, 'primary', [
        '--role', 'primary', '--secondary', secondary.server.url, '--replication-secret', replicationSecret,
      ]);
      await primary.client.ensureBucket(bucket);
      if (wanted.includes('replication')) await offVsOn(opts, off, primary, report);
      if (wanted.includes('repl-workloads')) await keyWorkloads(opts, primary, report);
      await stopSite(primary);
      await stopSite(secondary);
      primary = secondary = undefined;
    }
    if (wanted.includes('repl-delay')) await delaySection(opts, root, off, help, report);
  } finally {
    await stopSite(primary);
    await stopSite(secondary);
    await stopSite(off);
  }
}
