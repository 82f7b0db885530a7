// `npm run bench`: starts lookahead and s3rver as child processes on
// 127.0.0.1 port 0 in temp dirs, runs the warp-like workloads against each in
// the same run, then the 1 GiB multipart upload (server RSS), 64 MiB GET
// against a raw loopback baseline, and the replication section. Prints a
// markdown report on stdout; progress goes to stderr.
//
//   npm run bench                          everything (~5 s per workload)
//   npm run bench -- --quick               shorter runs, 256 MiB multipart
//   npm run bench -- --only put4k --seconds 3
//   npm run bench -- --targets lookahead --only multipart,get64m
//   npm run bench -- --targets lookahead --only get64m --verify-reads size
//
// --only takes comma-separated names or prefixes of: put4k-c1 put4k-c16
// get4k-c1 ... mixed1m-c16 multipart get64m replication repl-delay
// repl-workloads repl-s3 resync.

import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { S3Http, patternStream } from './s3http.ts';
import { runWorkload, runMultipart, compareLargeGet, warmUp, type WorkloadOp, type WorkloadResult } from './loadgen.ts';
import {
  startLookahead,
  startS3rver,
  startRawServer,
  repoRoot,
  testAccessKey,
  testSecretKey,
  type ChildServer,
} from './servers.ts';
import { runReplicationSection } from './replication.ts';
import { runResyncBench } from './resync.ts';
import { runS3SecondaryBench } from './s3-secondary.ts';
import { selected, fmt, table, log, type BenchOptions, type Report } from './report.ts';

const bucket = 'bench';
const region = 'us-east-1';

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      seconds: { type: 'string' },
      'max-ops': { type: 'string' },
      targets: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'multipart-mib': { type: 'string' },
      'delay-ms': { type: 'string' },
      json: { type: 'string' },
      'verify-reads': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench -- [--quick] [--only NAMES] [--seconds N] [--max-ops N]\n' +
        '         [--targets lookahead,s3rver] [--multipart-mib N] [--delay-ms N] [--json FILE]\n' +
        '         [--verify-reads full|size]   (lookahead serve flag; default full)\n',
    );
    process.exit(0);
  }
  const quick = values.quick === true;
  const num = (v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${v}`);
    return n;
  };
  return {
    only: values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : null,
    seconds: num(values.seconds, quick ? 2 : 5),
    maxOps: num(values['max-ops'], 200_000),
    targets: (values.targets ?? 'lookahead,s3rver').split(',').map((s) => s.trim()),
    quick,
    multipartBytes: num(values['multipart-mib'], quick ? 256 : 1024) * 1024 ** 2,
    largeGetBytes: 64 * 1024 ** 2,
    largeGetRounds: quick ? 5 : 15,
    delayMs: num(values['delay-ms'], 20),
    json: values.json,
    ...(values['verify-reads'] ? { verifyReads: values['verify-reads'] } : {}),
  };
}

interface Target {
  name: string;
  server: ChildServer;
  client: S3Http;
}

async function startTarget(name: string, root: string, opts: BenchOptions): Promise<Target> {
  const dir = mkdtempSync(path.join(root, `${name}-`));
  if (name === 'lookahead') {
    const extraArgs = opts.verifyReads ? ['--verify-reads', opts.verifyReads] : [];
    const server = await startLookahead({ dataDir: dir, extraArgs });
    const client = new S3Http({ url: server.url, accessKey: testAccessKey, secretKey: testSecretKey, region });
    return { name, server, client };
  }
  if (name === 's3rver') {
    const server = await startS3rver(dir);
    const client = new S3Http({ url: server.url, accessKey: 'S3RVER', secretKey: 'S3RVER', region });
    return { name, server, client };
  }
  throw new Error(`unknown target ${name}`);
}

const sizes = [
  { label: '4k', bytes: 4 * 1024 },
  { label: '1m', bytes: 1024 * 1024 },
];
const ops: WorkloadOp[] = ['put', 'get', 'mixed'];
const concurrencies = [1, 16];

async function standardWorkloads(targets: Target[], opts: BenchOptions, report: Report): Promise<void> {
  const names: { name: string; op: WorkloadOp; bytes: number; c: number }[] = [];
  for (const size of sizes)
    for (const op of ops)
      for (const c of concurrencies) names.push({ name: `${op}${size.label}-c${c}`, op, bytes: size.bytes, c });
  const chosen = names.filter((w) => selected(opts, w.name));
  if (chosen.length === 0) return;
  const results: Record<string, Record<string, WorkloadResult>> = {};
  for (const w of chosen) {
    results[w.name] = {};
    for (const t of targets) {
      log(`${w.name} on ${t.name} (${opts.seconds} s)`);
      const r = await runWorkload(t.client, bucket, {
        op: w.op,
        objectBytes: w.bytes,
        concurrency: w.c,
        seconds: opts.seconds,
        maxOps: opts.maxOps,
        prefix: w.name,
        serverPid: t.server.pid,
      });
      if (r.errors > 0) log(`  ${r.errors} errors, first: ${r.firstError}`);
      results[w.name]![t.name] = r;
    }
  }
  const head = ['workload'];
  for (const t of targets) head.push(`${t.name} ops/s`, `${t.name} MB/s`, `${t.name} p50 ms`, `${t.name} p99 ms`, `${t.name} server CPU µs/op`, `${t.name} bench CPU µs/op`);
  const ratio = targets.length === 2 ? `${targets[0]!.name} / ${targets[1]!.name}` : undefined;
  if (ratio) head.push(ratio);
  const rows = chosen.map((w) => {
    const row = [w.name];
    for (const t of targets) {
      const r = results[w.name]![t.name]!;
      const err = r.errors > 0 ? ` (${r.errors} err)` : '';
      row.push(fmt(r.opsPerSec) + err, fmt(r.mbPerSec), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), fmt(r.serverCpuUsPerOp), fmt(r.clientCpuUsPerOp));
    }
    if (ratio) {
      const a = results[w.name]![targets[0]!.name]!.opsPerSec;
      const b = results[w.name]![targets[1]!.name]!.opsPerSec;
      row.push(`${(a / b).toFixed(2)}x`);
    }
    return row;
  });
  report.lines.push('## Workloads (warp-like, 1 bucket)', '', table(head, rows), '');
  const put = results['put4k-c16'];
  if (put?.lookahead && put.s3rver) {
    const x = put.lookahead.opsPerSec / put.s3rver.opsPerSec;
    report.lines.push(`4 KiB PUT c16, lookahead vs s3rver: **${x.toFixed(2)}x** (target >= 2x: ${x >= 2 ? 'met' : 'NOT met'})`, '');
  }
  report.json.workloads = results;
}

/**
 * The big upload runs on a fresh lookahead process of its own, so the RSS it
 * reports is what the upload costs, not heap left over from earlier runs.
 */
async function multipartSection(targets: Target[], opts: BenchOptions, root: string, report: Report): Promise<void> {
  if (!targets.some((x) => x.name === 'lookahead') || !selected(opts, 'multipart')) return;
  const mib = opts.multipartBytes / 1024 ** 2;
  log(`multipart ${mib} MiB upload on a fresh lookahead (parts of 16 MiB, 4 at once)`);
  const t = await startTarget('lookahead', root, opts);
  let r: Awaited<ReturnType<typeof runMultipart>>;
  try {
    await t.client.ensureBucket(bucket);
    r = await runMultipart(t.client, bucket, {
      key: 'multipart/big.bin',
      totalBytes: opts.multipartBytes,
      partBytes: 16 * 1024 ** 2,
      parallel: 4,
      serverPid: t.server.pid,
    });
  } finally {
    t.client.close();
    await t.server.stop();
  }
  if (r.size !== opts.multipartBytes) throw new Error(`multipart object has ${r.size} bytes, wanted ${opts.multipartBytes}`);
  if (r.etag !== r.expectedEtag) throw new Error(`multipart ETag ${r.etag}, expected ${r.expectedEtag}`);
  const peakMb = r.peakRssBytes / 1e6;
  report.lines.push(
    `## Multipart upload (${mib} MiB, 16 MiB parts, 4 in flight)`,
    '',
    table(
      ['server', 'MB/s', 'parts', 'server RSS before (MB)', 'server RSS peak (MB)', 'ETag (checked)'],
      [['lookahead', fmt(r.mbPerSec), String(r.parts), fmt(r.baselineRssBytes / 1e6), fmt(peakMb), r.etag]],
    ),
    '',
    `Peak server RSS ${fmt(peakMb)} MB (target < 200 MB: ${peakMb < 200 ? 'met' : 'NOT met'})`,
    '',
  );
  report.json.multipart = r;
}

async function largeGetSection(targets: Target[], opts: BenchOptions, report: Report): Promise<void> {
  if (!selected(opts, 'get64m') || targets.length === 0) return;
  const bytes = opts.largeGetBytes;
  const raw = await startRawServer(bytes);
  try {
    const rows: string[][] = [];
    const json: Record<string, unknown> = {};
    for (const t of targets) {
      const key = `/${bucket}/large/get64m.bin`;
      log(`64 MiB GET on ${t.name} vs raw loopback (${opts.largeGetRounds} rounds each)`);
      const pattern = randomBytes(1024 * 1024);
      await t.client.ok('PUT', key, { body: { length: bytes, stream: () => patternStream(pattern, bytes) } });
      const pids = { s3: t.server.pid, raw: raw.pid };
      const r = await compareLargeGet(t.client, key, `${raw.url}/`, bytes, opts.largeGetRounds, 120, pids);
      const ratio = r.medianPairRatio;
      const cpuMs = (s: { cpuMsPerGet?: number }) => (s.cpuMsPerGet === undefined ? '-' : fmt(s.cpuMsPerGet));
      rows.push([t.name, fmt(r.s3.medianMbPerSec), fmt(r.raw.medianMbPerSec), `${(ratio * 100).toFixed(0)}%`, cpuMs(r.s3), cpuMs(r.raw)]);
      json[t.name] = { ...r, ratio };
      await t.client.request('DELETE', key);
    }
    report.lines.push(
      `## 64 MiB GET vs raw loopback (${opts.largeGetRounds} alternating rounds: median MB/s, ratio = median of paired ratios; lookahead --verify-reads ${opts.verifyReads ?? 'full'})`,
      '',
      table(['server', 'S3 GET MB/s', 'raw loopback MB/s', 'ratio', 'server CPU ms/GET', 'raw server CPU ms/GET'], rows),
      '',
    );
    const la = json.lookahead as { ratio: number } | undefined;
    if (la) report.lines.push(`lookahead 64 MiB GET at ${(la.ratio * 100).toFixed(0)}% of raw loopback (target >= 80%: ${la.ratio >= 0.8 ? 'met' : 'NOT met'})`, '');
    report.json.largeGet = json;
  } finally {
    await raw.stop();
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const root = mkdtempSync(path.join(tmpdir(), 'lookahead-bench-'));
  const report: Report = { lines: [], json: { options: opts } };
  const targets: Target[] = [];
  const started = Date.now();
  report.lines.push(
    `# Lookahead benchmark`,
    '',
    `Command: \`npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}\`, ` +
      `${new Date().toISOString()}, node ${process.version}, ${opts.seconds} s per workload.`,
    '',
  );
  const cleanup = async (): Promise<void> => {
    for (const t of targets) {
      t.client.close();
      await t.server.stop();
    }
    rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    const needsTargets = opts.only === null || opts.only.some((o) => !o.startsWith('repl'));
    for (const name of needsTargets ? opts.targets : []) {
      if (name === 'lookahead' && !existsSync(path.join(repoRoot, 'src/main.ts'))) {
        report.lines.push('lookahead skipped: src/main.ts does not exist yet.', '');
        continue;
      }
      log(`starting ${name}`);
      const t = await startTarget(name, root, opts);
      await t.client.ensureBucket(bucket);
      log(`warming up ${name}`);
      await warmUp(t.client, bucket, opts.quick ? 1 : 2);
      targets.push(t);
    }
    await standardWorkloads(targets, opts, report);
    await multipartSection(targets, opts, root, report);
    await largeGetSection(targets, opts, report);
    // The single-site servers are done: free the two cores for replication.
    for (const t of targets.splice(0)) {
      t.client.close();
      await t.server.stop();
    }
    await runReplicationSection(opts, root, report);
    // Failover resync (issue 4): record-based against a full compare.
    if (selected(opts, 'resync')) report.lines.push(await runResyncBench(opts.quick ? [10_000] : [10_000, 100_000], 200), '');
    // Hit/miss PUT latency with a plain S3 secondary (issue 5); 'repl-' so --only skips the single-site targets.
    if (selected(opts, 'repl-s3')) report.lines.push(await runS3SecondaryBench(['moto', 's3rver'], opts.quick ? 100 : 300, opts.seconds * 24));
  } catch (err) {
    report.lines.push(`**Bench stopped early:** ${(err as Error).message.split('\n')[0]}`, '');
    throw err;
  } finally {
    await cleanup();
    // Whatever was measured is printed, even when a later section failed.
    report.lines.push(`Total bench time ${((Date.now() - started) / 1000).toFixed(0)} s.`);
    process.stdout.write(report.lines.join('\n') + '\n');
    if (opts.json) writeFileSync(opts.json, JSON.stringify(report.json, null, 2));
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('bench/run.ts')) {
  main().catch((err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
