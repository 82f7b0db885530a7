// What a longer key costs one single site: 4 KiB PUT c16 under two key
// prefixes, alternating rounds on the same server. It showed the bias the
// replication bench had while it named each mode's keys after the mode
// (`on, default (--copy-priority background)`, percent-encoded under SigV4).
//
//   flock /tmp/bench.lock npx tsx bench/key-prefix-ab.ts [--rounds 6] [--seconds 4]
//     [--a repl-m1] [--b "repl-on, default (--copy-priority background)"]

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { S3Http } from './s3http.ts';
import { runWorkload, median } from './loadgen.ts';
import { startLookahead, testAccessKey, testSecretKey } from './servers.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '4' },
    a: { type: 'string', default: 'repl-m1' },
    b: { type: 'string', default: 'repl-on, default (--copy-priority background)' },
  },
});
const bucket = 'bench';
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const prefixes = { a: values.a!, b: values.b! };

const root = mkdtempSync(path.join(os.tmpdir(), 'key-prefix-ab-'));
const server = await startLookahead({ dataDir: root, extraArgs: [] });
try {
  const client = new S3Http({ url: server.url, accessKey: testAccessKey, secretKey: testSecretKey, region: 'us-east-1' });
  await client.ensureBucket(bucket);
  await runWorkload(client, bucket, { op: 'put', objectBytes: 4096, concurrency: 16, seconds: 2, maxOps: 100_000, prefix: 'warm' });
  const ops: Record<'a' | 'b', number[]> = { a: [], b: [] };
  const cpu: Record<'a' | 'b', number[]> = { a: [], b: [] };
  for (let r = 0; r < rounds; r++) {
    // Alternate which prefix goes first, so neither always follows the other.
    for (const k of r % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) {
      const run = await runWorkload(client, bucket, {
        op: 'put', objectBytes: 4096, concurrency: 16, seconds, maxOps: 200_000, prefix: `${prefixes[k]}-r${r}`, serverPid: server.pid,
      });
      ops[k].push(run.opsPerSec);
      cpu[k].push(run.serverCpuUsPerOp);
      console.log(`round ${r + 1} ${k}: ${run.opsPerSec.toFixed(0)} ops/s, server ${run.serverCpuUsPerOp.toFixed(0)} µs/PUT`);
    }
  }
  console.log(
    `median over ${rounds} rounds: a ${median(ops.a).toFixed(0)} ops/s (${median(cpu.a).toFixed(0)} µs/PUT), ` +
      `b ${median(ops.b).toFixed(0)} ops/s (${median(cpu.b).toFixed(0)} µs/PUT): b/a ${(median(ops.b) / median(ops.a)).toFixed(3)}x`,
  );
} finally {
  await server.stop();
  rmSync(root, { recursive: true, force: true });
}
