// `npx tsx bench/s3-secondary.ts [--puts N] [--seconds N] [--servers moto,s3rver]`
//
// Hit and miss PUT latency through a lookahead primary whose secondary is a
// plain S3 server (issue 5), against moto_server and s3rver, with a single
// site (replication off) as the baseline in the same run. Every server is a
// child process on 127.0.0.1; 4 KiB PUTs at concurrency 1, the modes
// interleaved in chunks so they share the machine's noise.
//
//   off   a single site, no replication
//   hit   a primary with the default predictors writing log keys under one
//         prefix: after a warm-up the record already covers the next keys,
//         so the PUT is acked without waiting for the target
//   miss  a primary with `--predictors ,` writing each key under a fresh
//         prefix: every PUT waits for one record message (a small PUT to the
//         target) before it is acked
//
// Each timed PUT is classified by the primary's hit/miss counters read right
// after it (outside the timing), so the hit row holds only hits and the miss
// row only misses. Prints a markdown table on stdout.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { S3Http } from './s3http.ts';
import { startLookahead, startS3rver, testAccessKey, testSecretKey, type ChildServer } from './servers.ts';
import { readCounters } from './replication.ts';
import { percentile } from './loadgen.ts';
import { fmt, table, log } from './report.ts';
import { startMoto } from '../test/replica/s3/servers.ts';

const bucket = 'bench';
const region = 'us-east-1';
const targetBucket = 'lookahead-bench-target';
/** PUTs that teach the hit primary's predictors the log sequence, untimed. */
const warmPuts = 100;
/** PUTs per mode before the modes take turns again. */
const chunk = 25;

interface Plain {
  name: string;
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop: () => Promise<void>;
}

interface Site {
  server: ChildServer;
  client: S3Http;
}

type Kind = 'hit' | 'miss' | 'off';

interface Mode {
  name: string;
  site: Site;
  /** Which PUTs count: a primary's PUT is kept only if it was this kind. */
  want: Kind;
  keyOf: (i: number) => string;
  next: number;
  latencies: number[];
  /** Timed PUTs that turned out the other kind (not in the latencies). */
  other: number;
  errors: number;
}

async function startPlain(name: string, root: string): Promise<Plain> {
  if (name === 'moto') return startMoto();
  if (name === 's3rver') {
    const child = await startS3rver(mkdtempSync(path.join(root, 's3rver-')));
    return { name, endpoint: child.url, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, stop: () => child.stop() };
  }
  throw new Error(`unknown server ${name} (moto, s3rver)`);
}

async function startSite(root: string, name: string, extraArgs: string[], env?: Record<string, string>): Promise<Site> {
  const server = await startLookahead({ dataDir: mkdtempSync(path.join(root, `${name}-`)), extraArgs, env });
  const client = new S3Http({ url: server.url, accessKey: testAccessKey, secretKey: testSecretKey, region });
  await client.ensureBucket(bucket);
  return { server, client };
}

async function stopSite(site: Site): Promise<void> {
  site.client.close();
  await site.server.stop();
}

/** One PUT, timed; a primary's PUT is classified by its counters' delta. */
async function timedPut(m: Mode, body: Buffer): Promise<void> {
  const before = m.want === 'off' ? undefined : await readCounters(m.site.client);
  const start = performance.now();
  const res = await m.site.client.request('PUT', `/${bucket}/${m.keyOf(m.next++)}`, { body }).catch(() => undefined);
  const ms = performance.now() - start;
  if (!res || res.status >= 300) {
    m.errors++;
    return;
  }
  if (before) {
    const after = await readCounters(m.site.client);
    const kind: Kind | undefined = after.misses > before.misses ? 'miss' : after.hits > before.hits ? 'hit' : undefined;
    if (kind !== m.want) {
      m.other++;
      return;
    }
  }
  m.latencies.push(ms);
}

async function measure(modes: Mode[], puts: number, seconds: number): Promise<void> {
  const body = randomBytes(4096);
  for (const m of modes) {
    for (let i = 0; i < warmPuts; i++) await m.site.client.ok('PUT', `/${bucket}/${m.keyOf(m.next++)}`, { body });
  }
  const deadline = performance.now() + seconds * 1000;
  const attempts = (m: Mode): number => m.latencies.length + m.other + m.errors;
  while (modes.some((m) => attempts(m) < puts) && performance.now() < deadline) {
    for (const m of modes) {
      for (let i = 0; i < chunk && attempts(m) < puts; i++) await timedPut(m, body);
    }
  }
}

function newMode(name: string, site: Site, want: Kind, keyOf: (i: number) => string): Mode {
  return { name, site, want, keyOf, next: 0, latencies: [], other: 0, errors: 0 };
}

async function benchServer(name: string, root: string, off: Site, puts: number, seconds: number): Promise<string[][]> {
  const plain = await startPlain(name, root);
  const sites: Site[] = [];
  try {
    log(`${name} at ${plain.endpoint}`);
    const admin = new S3Http({ url: plain.endpoint, accessKey: plain.credentials.accessKeyId, secretKey: plain.credentials.secretAccessKey, region });
    await admin.ensureBucket(targetBucket);
    admin.close();
    const env = { AWS_ACCESS_KEY_ID: plain.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: plain.credentials.secretAccessKey };
    const secondary = (prefix: string): string[] => ['--role', 'primary', '--secondary', `s3://${targetBucket}/${prefix}@${plain.endpoint}`];
    const hitSite = await startSite(root, `${name}-hit`, secondary('hit'), env);
    sites.push(hitSite);
    const missSite = await startSite(root, `${name}-miss`, [...secondary('miss'), '--predictors', ','], env);
    sites.push(missSite);
    const run = Date.now().toString(36);
    const modes = [
      newMode('off (single site)', off, 'off', (i) => `off-${name}-${run}/log-${String(i).padStart(6, '0')}.log`),
      newMode(`hit (covered prefix)`, hitSite, 'hit', (i) => `logs/2026/11/30/log-${String(i).padStart(6, '0')}.log`),
      newMode(`miss (fresh prefix, predictors off)`, missSite, 'miss', (i) => `fresh-${i}/obj-${i}.bin`),
    ];
    log(`${name}: ${warmPuts} warm-up PUTs per mode, then up to ${puts} timed per mode (<= ${seconds} s)`);
    await measure(modes, puts, seconds);
    return modes.map((m) => {
      const sorted = [...m.latencies].sort((a, b) => a - b);
      return [name, m.name, String(sorted.length), String(m.other), String(m.errors), fmt(percentile(sorted, 50), 2), fmt(percentile(sorted, 99), 2)];
    });
  } finally {
    for (const s of sites) await stopSite(s).catch(() => undefined);
    await plain.stop().catch(() => undefined);
  }
}

/** Runs the bench; returns the markdown section (also used by bench/run.ts). */
export async function runS3SecondaryBench(servers: string[], puts: number, seconds: number): Promise<string> {
  const root = mkdtempSync(path.join(tmpdir(), 'lookahead-bench-s3sec-'));
  let off: Site | undefined;
  const rows: string[][] = [];
  try {
    off = await startSite(root, 'off', []);
    for (const name of servers) rows.push(...(await benchServer(name, root, off, puts, seconds)));
  } finally {
    if (off) await stopSite(off).catch(() => undefined);
    rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  }
  return [
    '## PUT latency through a primary with a plain S3 secondary (4 KiB, concurrency 1, modes interleaved)',
    '',
    table(['S3 server', 'mode', 'PUTs', 'other kind', 'errors', 'p50 ms', 'p99 ms'], rows),
    '',
    `Hit: log keys under a prefix the record already covers (default predictors, ${warmPuts} warm-up PUTs). ` +
      'Miss: a fresh prefix per key with `--predictors ,`, so each PUT waits for one record message on the target. ' +
      '"other kind" counts timed PUTs the primary classified the other way (left out of the row). ' +
      'All servers on 127.0.0.1: loopback figures.',
    '',
  ].join('\n');
}

if (process.argv[1]?.endsWith('bench/s3-secondary.ts')) {
  const { values } = parseArgs({
    options: {
      puts: { type: 'string', default: '300' },
      seconds: { type: 'string', default: '120' },
      servers: { type: 'string', default: 'moto,s3rver' },
    },
  });
  const servers = values.servers.split(',').map((s) => s.trim()).filter(Boolean);
  runS3SecondaryBench(servers, Number(values.puts), Number(values.seconds)).then(
    (md) => process.stdout.write(`${md}\n`),
    (err) => {
      process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
