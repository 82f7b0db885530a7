// A same-run A/B of node flags for every gateway: a single site and a
// primary + secondary pair started with default flags, and the same three
// started with FLAGS, measured with 4 KiB PUT c16 in alternating rounds (the
// order reversed every other round; each primary's copy queue drained after
// its run). Prints each site's median ops/s, on/off for both flag sets, and
// what the flags did to each.
//
//   flock /tmp/bench.lock npx tsx bench/node-flags-ab.ts "--single-threaded-gc" [rounds=6] [seconds=4]
//
// Data under $TMPDIR (/dev/shm leaves fsync out).

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median, runWorkload } from './loadgen.ts';
import { S3Http } from './s3http.ts';
import { waitDrained } from './queue.ts';
import { benchReplicationSecret as secret, startLookahead, testAccessKey, testSecretKey, type ChildServer } from './servers.ts';

const bucket = 'bench';
/** How often a bench asks whether Q has drained. */
const drainPollMs = 50;

interface Site {
  name: string;
  client: S3Http;
  pid: number;
  replicated: boolean;
}


async function main(): Promise<void> {
  const flags = (process.argv[2] ?? '').split(/\s+/).filter(Boolean);
  const rounds = Number(process.argv[3] ?? 6);
  const seconds = Number(process.argv[4] ?? 4);
  const root = mkdtempSync(path.join(os.tmpdir(), 'node-flags-ab-'));
  const servers: ChildServer[] = [];
  const serve = async (name: string, nodeArgs: string[], extraArgs: string[]): Promise<ChildServer> => {
    const server = await startLookahead({ dataDir: mkdtempSync(path.join(root, `${name}-`)), nodeArgs, extraArgs });
    servers.push(server);
    return server;
  };
  const clientOf = (s: ChildServer) => new S3Http({ url: s.url, accessKey: testAccessKey, secretKey: testSecretKey, region: 'us-east-1' });
  try {
    const sites: Site[] = [];
    for (const [tag, nodeArgs] of [['default', []], ['flags', flags]] as Array<[string, string[]]>) {
      const single = await serve(`single-${tag}`, nodeArgs, []);
      const secondary = await serve(`secondary-${tag}`, nodeArgs, ['--role', 'secondary', '--replication-secret', secret]);
      const primary = await serve(`primary-${tag}`, nodeArgs, ['--role', 'primary', '--secondary', secondary.url, '--replication-secret', secret]);
      sites.push({ name: `off ${tag}`, client: clientOf(single), pid: single.pid, replicated: false });
      sites.push({ name: `on ${tag}`, client: clientOf(primary), pid: primary.pid, replicated: true });
    }
    for (const s of sites) {
      await s.client.ensureBucket(bucket);
      await runWorkload(s.client, bucket, { op: 'put', objectBytes: 4096, concurrency: 16, seconds: 2, maxOps: 200_000, prefix: 'warm' });
      if (s.replicated) await waitDrained(s.client, drainPollMs);
    }
    const ops = new Map<string, number[]>(sites.map((s) => [s.name, []]));
    for (let r = 0; r < rounds; r++) {
      for (const s of r % 2 === 0 ? sites : [...sites].reverse()) {
        const run = await runWorkload(s.client, bucket, { op: 'put', objectBytes: 4096, concurrency: 16, seconds, maxOps: 200_000, prefix: `r${r}`, serverPid: s.pid });
        if (s.replicated) await waitDrained(s.client, drainPollMs);
        ops.get(s.name)!.push(run.opsPerSec);
      }
      console.log(`round ${r + 1}: ${sites.map((s) => `${s.name} ${ops.get(s.name)!.at(-1)!.toFixed(0)}`).join(', ')} ops/s`);
    }
    const m = (name: string): number => median(ops.get(name)!);
    console.log(`medians: ${sites.map((s) => `${s.name} ${m(s.name).toFixed(0)}`).join(', ')} ops/s`);
    console.log(
      `on/off: default ${(m('on default') / m('off default')).toFixed(2)}x, with ${flags.join(' ')} ${(m('on flags') / m('off flags')).toFixed(2)}x; ` +
        `the flags: off ${(m('off flags') / m('off default')).toFixed(2)}x, on ${(m('on flags') / m('on default')).toFixed(2)}x`,
    );
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
