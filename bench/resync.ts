// `npx tsx bench/resync.ts [--sizes 10000,100000] [--burst 200] [--overwrite-every 10]`: resync
// after a primary crash, record-based (issue 4's rejoin) against a full
// namespace compare (list both sides, compare ETags), measured in the same
// run on the same two sites. Prints a markdown table on stdout.
//
// Per size N: both sites start with the same N objects (written into the
// primary's store and installed on the secondary as replicas, as if
// replicated long ago). Then, live, with the sites running: a burst of
// writes on the primary over a slow link, the primary stops without
// draining its queue (a crash: what was not copied stays behind), the
// secondary is promoted, takes a few writes, and the old primary rejoins.
// The full compare runs first (it only reads), then the resync.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { noReplication } from '../src/core/changes.ts';
import { defaultPredictorConfig, startSite, type RunningSite, type SiteConfig } from '../src/cli/site.ts';
import { DiskObjectStore } from '../src/objects/store.ts';
import { openMetaDb } from '../src/objects/meta-db.ts';
import { verifySites } from '../src/replica/failover/verify.ts';
import { ChaosProxy, prng } from '../test/hardening/chaos-proxy.ts';

const keys = { accessKeyId: 'RESYNCBENCHACCESS001', secretAccessKey: 'resync-bench-secret-0123456789abcdefghij' };
const bucket = 'resync-bench';
const log = (m: string) => process.stderr.write(`${m}\n`);

interface Row {
  objects: number;
  method: string;
  examined: number;
  copied: number;
  seconds: number;
}

/** N objects in both stores, identical (the secondary holds replicas). */
async function seed(pDir: string, sDir: string, n: number): Promise<void> {
  const pDb = openMetaDb(pDir);
  const sDb = openMetaDb(sDir);
  const p = await DiskObjectStore.open({ dataDir: pDir, db: pDb, hooks: noReplication });
  const s = await DiskObjectStore.open({ dataDir: sDir, db: sDb, hooks: noReplication });
  await p.createBucket(bucket, 'us-east-1');
  await s.createBucket(bucket, 'us-east-1');
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const body = randomBytes(256);
      const meta = await p.putObject({
        bucket,
        key: `data/${String(i % 100).padStart(2, '0')}/obj-${i}`,
        body: Readable.from([body]),
        algorithms: [],
        sha256: false,
        verify: () => {},
        headers: {},
        userMeta: {},
        tags: {},
      });
      await s.applyReplica(meta, Readable.from([body]));
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  await p.close();
  await s.close();
  await pDb.close();
  await sDb.close();
}

function common(dataDir: string): Omit<SiteConfig, 'role'> {
  return {
    dataDir,
    host: '127.0.0.1',
    port: 0,
    region: 'us-east-1',
    anonymousReadBuckets: [],
    logLevel: 'silent',
    env: { LOOKAHEAD_ACCESS_KEY: keys.accessKeyId, LOOKAHEAD_SECRET_KEY: keys.secretAccessKey },
  };
}

const replication = { secret: 'resync-bench-replication-secret-0123', onSecondaryDown: 'degraded' as const, predictors: defaultPredictorConfig };

function s3(site: RunningSite): S3Client {
  return new S3Client({ endpoint: site.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: keys });
}

async function runSize(n: number, burst: number, overwriteEvery: number): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'lookahead-resync-bench-'));
  const pDir = join(dir, 'p');
  const sDir = join(dir, 's');
  try {
    let t = Date.now();
    await seed(pDir, sDir, n);
    log(`  seeded ${n} objects on both sites in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    let sSite = await startSite({ ...common(sDir), role: 'secondary', replication });
    const proxy = new ChaosProxy(sSite.port, prng(3));
    await proxy.listen();
    const pSite = await startSite({ ...common(pDir), role: 'primary', replication: { ...replication, secondaryUrl: `http://127.0.0.1:${proxy.port}` } });
    // The burst: new keys under a few hot prefixes (ingest) and one write
    // in ten overwriting an old object anywhere; copies lag over a slow link.
    proxy.settings = { delayMsMax: 20, resetChance: 0, stallChance: 0, stallMs: 0 };
    const pc = s3(pSite);
    for (let i = 0; i < burst; i++) {
      const old = (i * 7919) % n;
      const key = overwriteEvery > 0 && i % overwriteEvery === 0 ? `data/${String(old % 100).padStart(2, '0')}/obj-${old}` : `incoming/${i % 4}/f-${i}`;
      await pc.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: randomBytes(300) }));
    }
    // The crash: the primary stops with its queue as it is.
    proxy.partition();
    await pSite.close();
    await proxy.close();
    const promoted = await sSite.roles.promote({});
    if (process.env.RESYNC_BENCH_DEBUG) log(`  at risk: ${promoted.atRisk.names.join(" ")}`);
    const sc = s3(sSite);
    for (let i = 0; i < 20; i++) await sc.send(new PutObjectCommand({ Bucket: bucket, Key: `after/${i}`, Body: `after ${i}` }));
    const old = await startSite({ ...common(pDir), role: 'secondary', replication, failover: { rejoinFrom: sSite.endpoint } });

    // Full namespace compare: list both sides, compare ETags.
    t = Date.now();
    const full = await verifySites({ primary: sc, secondary: s3(old), record: [] });
    const fullRow: Row = { objects: n, method: 'full compare (list both, ETags)', examined: full.keysPrimary + full.keysSecondary, copied: full.differences.length, seconds: (Date.now() - t) / 1000 };

    // Record-based resync.
    t = Date.now();
    await sSite.roles.attachSecondary({ url: old.endpoint });
    await sSite.roles.resyncSettled();
    const r = sSite.roles.resyncStatus();
    const resyncRow: Row = { objects: n, method: 'record-based resync', examined: r.examined, copied: r.copied + r.deleted, seconds: (Date.now() - t) / 1000 };
    log(`  resync: ${JSON.stringify(r)}`);

    // Both agree afterwards (drained queue, then compare).
    for (let i = 0; i < 300 && (sSite.roles.status().replication as { queueDepth?: number } | undefined)?.queueDepth !== 0; i++) await new Promise((res) => setTimeout(res, 100));
    const after = await verifySites({ primary: sc, secondary: s3(old), record: [] });
    if (after.differences.length !== 0) throw new Error(`sites differ after the resync: ${JSON.stringify(after.differences.slice(0, 5))}`);
    await old.close();
    await sSite.close();
    sSite = undefined as unknown as RunningSite;
    return [fullRow, resyncRow];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runResyncBench(sizes: number[], burst: number, overwriteEvery = 0): Promise<string> {
  const rows: Row[] = [];
  for (const n of sizes) {
    log(`resync bench: ${n} objects`);
    rows.push(...(await runSize(n, burst, overwriteEvery)));
  }
  const lines = [
    '## Resync after a primary crash',
    '',
    `Burst of ${burst} writes over a slow link before the crash (new keys under 4 hot prefixes${overwriteEvery > 0 ? `, one in ${overwriteEvery} overwriting an old object in one of 100 directories` : ''}), 20 writes on the promoted site; default predictors. Examined: listing entries on either side plus keys looked up; copied: copies and deletes sent.`,
    '',
    '| objects | method | objects examined | objects copied | seconds |',
    '|---:|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.objects} | ${r.method} | ${r.examined} | ${r.copied} | ${r.seconds.toFixed(2)} |`),
  ];
  for (const n of sizes) {
    const [full, rec] = rows.filter((r) => r.objects === n);
    if (full && rec) lines.push('', `${n} objects: ${(full.examined / Math.max(1, rec.examined)).toFixed(0)}x fewer objects examined by the record-based resync.`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '10000,100000' },
      burst: { type: 'string', default: '200' },
      'overwrite-every': { type: 'string', default: '0' },
    },
  });
  const sizes = values.sizes.split(',').map(Number);
  console.log(await runResyncBench(sizes, Number(values.burst), Number(values['overwrite-every'])));
}
