// `npx tsx bench/s3-target.ts [--messages N] [--copies N] [--servers moto,s3rver]`
//
// What a plain S3 secondary costs the primary (issue 5): the record message
// (one delta PUT, the latency a miss waits for), an object copy (HEAD for
// the seq + PUT; off the client's path), and opening a session (reading
// the snapshot and the deltas back). Against moto_server (child process)
// and s3rver (in process), both on 127.0.0.1: loopback numbers, i.e. the
// servers' own cost per request; add the network round trip for a remote
// target. Prints a markdown table.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { ObjectMeta } from '../src/objects/types.ts';
import { replicaWireVersion } from '../src/replica/messages.ts';
import { S3Target } from '../src/replica/s3/target.ts';
import type { S3Server } from '../test/replica/s3/servers.ts';
import { startMoto, startS3rver } from '../test/replica/s3/servers.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '300' },
    copies: { type: 'string', default: '100' },
    servers: { type: 'string', default: 'moto,s3rver' },
  },
});
const messages = Number(values.messages);
const copies = Number(values.copies);

interface Row {
  server: string;
  what: string;
  n: number;
  p50: number;
  p99: number;
  mean: number;
}

function summarize(server: string, what: string, samples: number[]): Row {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return { server, what, n: samples.length, p50: at(0.5), p99: at(0.99), mean };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function meta(key: string, body: Buffer, seq: number): ObjectMeta {
  return {
    v: 1,
    bucket: 'bench',
    key,
    size: body.length,
    etag: createHash('md5').update(body).digest('hex'),
    lastModified: Date.now(),
    seq,
    headers: { contentType: 'application/octet-stream' },
    userMeta: { bench: 'yes' },
    tags: {},
    blobs: [],
  };
}

async function benchServer(server: S3Server): Promise<Row[]> {
  const rows: Row[] = [];
  const url = `s3://bench-target/run-${Date.now()}/@${server.endpoint}`;
  const tagging = server.name === 's3rver' ? 'separate' : 'on-put';
  const target = new S3Target({ url, credentials: server.credentials, tagging });
  const info = await target.openSession('bench', 1);

  // Record messages: a typical miss adds the key and a few predictions and
  // carries a few removals (~10 entries, ~500 bytes of JSON).
  const record: number[] = [];
  for (let i = 1; i <= messages; i++) {
    const add = Array.from({ length: 8 }, (_, j) => ({ id: i * 8 + j, name: `k/bench/logs/2026/11/30/part-${i * 8 + j}` }));
    const remove = i > 4 ? [(i - 4) * 8, (i - 4) * 8 + 1] : [];
    const m = { v: replicaWireVersion, epoch: 1, from: 'bench', session: info.session, msgId: info.lastMsgId + i, add, remove } as const;
    record.push(await timed(() => target.applyRecord(m)));
  }
  rows.push(summarize(server.name, 'record message (delta PUT)', record));

  for (const size of [1024, 1024 * 1024]) {
    const body = Buffer.alloc(size, 7);
    const samples: number[] = [];
    for (let i = 1; i <= copies; i++) {
      const m = meta(`obj-${size}-${i % 10}`, body, i);
      samples.push(await timed(() => target.putObject({ epoch: 1, meta: m }, Readable.from([body]))));
    }
    rows.push(summarize(server.name, `object copy ${size === 1024 ? '1 KiB' : '1 MiB'} (HEAD + PUT)`, samples));
  }
  await target.close();

  // Restart: a new instance opens a session, folding snapshot + deltas.
  const opens: number[] = [];
  for (let i = 0; i < 5; i++) {
    const again = new S3Target({ url, credentials: server.credentials, tagging });
    opens.push(await timed(() => again.openSession('bench', 1)));
    await again.close();
  }
  rows.push(summarize(server.name, `openSession (record of ${messages * 8 - (messages - 4) * 2} entries)`, opens));
  return rows;
}

function table(rows: Row[]): string {
  const lines = ['| server | operation | n | p50 ms | p99 ms | mean ms |', '|---|---|---:|---:|---:|---:|'];
  for (const r of rows) lines.push(`| ${r.server} | ${r.what} | ${r.n} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.mean.toFixed(2)} |`);
  return lines.join('\n');
}

const rows: Row[] = [];
for (const name of values.servers.split(',').map((s) => s.trim())) {
  const server = name === 'moto' ? await startMoto() : name === 's3rver' ? await startS3rver() : undefined;
  if (server === undefined) throw new Error(`unknown server ${name} (moto, s3rver)`);
  try {
    process.stderr.write(`bench: ${name} at ${server.endpoint}\n`);
    rows.push(...(await benchServer(server)));
  } finally {
    await server.stop();
  }
}
process.stdout.write(`${table(rows)}\n`);
