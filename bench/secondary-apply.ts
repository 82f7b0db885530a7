// The secondary's CPU per applied small copy, alone: a real secondary
// (src/main.ts serve --role secondary, a child process) gets batches of
// small copies exactly as the primary's copier sends them
// (GatewayTarget.putObjects: batch.ts's encoding, signed), and we read the
// child's CPU from /proc before and after. In `npm run bench -- --only
// replication` S shares the cores with P and the client, so every
// microsecond here is taken from the primary's writes.
//
//   npx tsx bench/secondary-apply.ts [--batches 400] [--size 4096] [--per-batch 256]
//        [--in-flight 2] [--dir /dev/shm] [--rounds 3] [--warm-up 300]
//
// --dir /dev/shm (the default) leaves fsync out: what remains is CPU. Each
// round starts a fresh secondary; the output is every round's figure and the
// median. Main thread and other threads (lmdb's writer, GC) are shown apart,
// and the bytes S wrote per copy (lmdb's pages: a 4 KiB body needs two).
// LOOKAHEAD_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles S.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../src/core/clock.ts';
import { objectMetaVersion, type ObjectMeta } from '../src/objects/types.ts';
import type { ReplicaCopy } from '../src/replica/batch.ts';
import { GatewayTarget } from '../src/replica/http-target.ts';
import { processCpuMicros, startLookahead } from './servers.ts';

const { values } = parseArgs({
  options: {
    batches: { type: 'string', default: '400' },
    size: { type: 'string', default: '4096' },
    'per-batch': { type: 'string', default: '256' },
    'in-flight': { type: 'string', default: '2' },
    dir: { type: 'string', default: '/dev/shm' },
    rounds: { type: 'string', default: '3' },
    'warm-up': { type: 'string', default: '300' },
  },
});
const batches = Number(values.batches);
const size = Number(values.size);
const perBatch = Number(values['per-batch']);
const inFlight = Number(values['in-flight']);
const rounds = Number(values.rounds);
/** Batches before measuring: the JIT warms up (with 40, a fifth of S's CPU
 * in a 3 s run was TurboFan compiling on other threads) and lmdb's map takes shape. */
const warmUpBatches = Number(values['warm-up']);
/** Distinct bodies cycled through (their MD5s computed once, here). */
const bodyCount = 256;
const secret = 'bench-secondary-apply-secret';
const bucket = 'bench';
const clockTicksMicros = 10_000; // USER_HZ 100

interface Round {
  cpuPerCopy: number;
  mainPerCopy: number;
  othersPerCopy: number;
  writtenPerCopy: number;
}

/** CPU (us) of the main thread and of all the others, from /proc/PID/task. */
function threadCpu(pid: number): { main: number; others: number } {
  let main = 0;
  let others = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const us = (Number(f[11]) + Number(f[12])) * clockTicksMicros;
      if (tid === String(pid)) main += us;
      else others += us;
    } catch {
      // a thread that ended between readdir and read
    }
  }
  return { main, others };
}

function bytesWritten(pid: number): number {
  return Number(/wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

async function round(): Promise<Round> {
  const dataDir = mkdtempSync(path.join(values.dir!, 'secondary-apply-'));
  const server = await startLookahead({ dataDir, extraArgs: ['--role', 'secondary', '--replication-secret', secret] });
  const target = new GatewayTarget({ url: server.url, secret, clock: systemClock });
  const bodies = Array.from({ length: bodyCount }, () => randomBytes(size));
  const etags = bodies.map((b) => createHash('md5').update(b).digest('hex'));
  let n = 0;
  let seq = 10;
  const batch = (epoch: number): ReplicaCopy[] =>
    Array.from({ length: perBatch }, () => {
      const i = n++;
      const meta: ObjectMeta = {
        v: objectMetaVersion,
        bucket,
        // Keys in write order, as the bench's PUTs make them.
        key: `obj/${i.toString(36).padStart(8, '0')}`,
        size,
        etag: etags[i % bodyCount]!,
        lastModified: Date.now(),
        seq: seq++,
        headers: { contentType: 'application/octet-stream' },
        userMeta: {},
        tags: {},
        blobs: [{ id: `i${randomBytes(16).toString('hex').slice(1)}`, size }],
      };
      return { copy: { epoch, meta }, body: bodies[i % bodyCount]! };
    });
  const send = async (epoch: number, count: number): Promise<void> => {
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < count) {
        started++;
        for (const r of await target.putObjects(batch(epoch))) {
          if (!('applied' in r) || !r.applied) throw new Error(`copy not applied: ${JSON.stringify(r)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
  };
  try {
    const { epoch } = await target.openSession('bench', 1);
    await target.putBucket({ epoch, bucket, exists: true, region: 'us-east-1', seq: 1 });
    await send(epoch, warmUpBatches);
    const cpu0 = processCpuMicros(server.pid);
    const threads0 = threadCpu(server.pid);
    const written0 = bytesWritten(server.pid);
    await send(epoch, batches);
    const copies = batches * perBatch;
    const threads1 = threadCpu(server.pid);
    return {
      cpuPerCopy: (processCpuMicros(server.pid) - cpu0) / copies,
      mainPerCopy: (threads1.main - threads0.main) / copies,
      othersPerCopy: (threads1.others - threads0.others) / copies,
      writtenPerCopy: (bytesWritten(server.pid) - written0) / copies,
    };
  } finally {
    await target.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const results: Round[] = [];
for (let r = 0; r < rounds; r++) {
  const res = await round();
  results.push(res);
  console.log(
    `round ${r + 1}: S CPU ${res.cpuPerCopy.toFixed(1)} us/copy (main ${res.mainPerCopy.toFixed(1)}, other threads ` +
      `${res.othersPerCopy.toFixed(1)}), wrote ${(res.writtenPerCopy / 1024).toFixed(1)} KiB/copy`,
  );
}
const sorted = results.map((r) => r.cpuPerCopy).sort((a, b) => a - b);
console.log(
  `secondary apply: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} us CPU per ${size} B copy ` +
    `(${rounds} rounds x ${batches} batches x ${perBatch}, ${inFlight} in flight, data in ${values.dir})`,
);
