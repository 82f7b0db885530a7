// Warp-like workloads over bench/s3http.ts: put / get / mixed at a given
// object size and concurrency, each bounded by an operation count AND a
// duration; a 1 GiB multipart upload while sampling the server's RSS; and
// large-GET throughput against a raw loopback baseline.

import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { seededRandom } from '../src/core/clock.ts';
import { S3Http, patternStream } from './s3http.ts';
import { processCpuMicros } from './servers.ts';

export type WorkloadOp = 'put' | 'get' | 'mixed';

export interface WorkloadSpec {
  op: WorkloadOp;
  objectBytes: number;
  concurrency: number;
  seconds: number;
  /** Hard ceiling on operations, whatever the duration. */
  maxOps: number;
  /** Key prefix, so workloads never collide. */
  prefix: string;
  seed?: number;
  /** Names of new keys (default: `${prefix}/obj-<i>`, zero-padded). */
  keyFor?: (i: number) => string;
  /** Server process whose CPU time per operation is reported. */
  serverPid?: number;
}

export interface WorkloadResult {
  ops: number;
  errors: number;
  firstError?: string;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Object bytes moved (sent or received) per second, in MB/s (1e6). */
  mbPerSec: number;
  /** Server CPU (user + system) per completed operation, in µs; NaN without serverPid. */
  serverCpuUsPerOp: number;
  /** This (load generator) process's CPU per completed operation, in µs. */
  clientCpuUsPerOp: number;
}

/** Objects written before a get or mixed run, so reads find something. */
const prefillObjectsMax = 64;
/** Prefill never needs more than this many bytes on disk. */
const prefillBytesMax = 256 * 1024 ** 2;
const prefillConcurrency = 8;

/** mulberry32: a tiny seeded PRNG so runs are reproducible. */
export function rng(seed: number): () => number {
  const random = seededRandom(seed);
  return () => random.next();
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** Live keys of a mixed run: reads and deletes never race on one key. */
class KeyPool {
  private readonly live: string[] = [];
  private readonly busy = new Map<string, number>();
  private nextId = 0;
  constructor(
    private readonly keyFor: (i: number) => string,
    private readonly random: () => number,
  ) {}

  newKey(): string {
    return this.keyFor(this.nextId++);
  }
  add(key: string): void {
    this.live.push(key);
  }
  size(): number {
    return this.live.length;
  }
  /** A random live key, marked busy until `release`. */
  borrow(): string | undefined {
    if (this.live.length === 0) return undefined;
    const key = this.live[Math.floor(this.random() * this.live.length)]!;
    this.busy.set(key, (this.busy.get(key) ?? 0) + 1);
    return key;
  }
  release(key: string): void {
    const n = (this.busy.get(key) ?? 1) - 1;
    if (n <= 0) this.busy.delete(key);
    else this.busy.set(key, n);
  }
  /** Removes and returns a random live key nobody is reading (a few tries). */
  takeForDelete(): string | undefined {
    for (let attempt = 0; attempt < 8 && this.live.length > 0; attempt++) {
      const i = Math.floor(this.random() * this.live.length);
      const key = this.live[i]!;
      if (this.busy.has(key)) continue;
      this.live[i] = this.live[this.live.length - 1]!;
      this.live.pop();
      return key;
    }
    return undefined;
  }
}

type MixedOp = 'GET' | 'HEAD' | 'PUT' | 'DELETE';

/** warp's mixed distribution: GET 45, HEAD 30, PUT 15, DELETE 10. */
function pickMixed(r: number): MixedOp {
  if (r < 0.45) return 'GET';
  if (r < 0.75) return 'HEAD';
  if (r < 0.9) return 'PUT';
  return 'DELETE';
}

async function prefill(client: S3Http, bucket: string, pool: KeyPool, body: Buffer): Promise<void> {
  const count = Math.max(1, Math.min(prefillObjectsMax, Math.floor(prefillBytesMax / body.length)));
  const keys = Array.from({ length: count }, () => pool.newKey());
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!;
      await client.ok('PUT', `/${bucket}/${key}`, { body });
      pool.add(key);
    }
  };
  await Promise.all(Array.from({ length: prefillConcurrency }, worker));
}

/** Runs one workload; resolves when the count or the duration runs out. */
export async function runWorkload(client: S3Http, bucket: string, spec: WorkloadSpec): Promise<WorkloadResult> {
  const random = rng(spec.seed ?? 1);
  const body = randomBytes(spec.objectBytes);
  const keyFor = spec.keyFor ?? ((i: number) => `${spec.prefix}/obj-${String(i).padStart(8, '0')}`);
  const pool = new KeyPool(keyFor, random);
  if (spec.op !== 'put') await prefill(client, bucket, pool, body);

  const latencies = new Float64Array(spec.maxOps);
  let started = 0;
  let ops = 0;
  let errors = 0;
  let bytesMoved = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const deadline = t0 + spec.seconds * 1000;
  const serverCpu0 = spec.serverPid === undefined ? NaN : processCpuMicros(spec.serverPid);
  const clientCpu0 = process.cpuUsage();

  const one = async (): Promise<void> => {
    const op: MixedOp = spec.op === 'put' ? 'PUT' : spec.op === 'get' ? 'GET' : pickMixed(random());
    let key: string | undefined;
    let borrowed = false;
    let method: MixedOp = op;
    if (op === 'PUT') key = pool.newKey();
    else if (op === 'DELETE') key = pool.takeForDelete();
    if (key === undefined && op !== 'PUT') {
      // GET/HEAD, or a DELETE that found every key busy: read instead.
      key = pool.borrow();
      borrowed = true;
      if (op === 'DELETE') method = 'GET';
    }
    if (key === undefined) {
      key = pool.newKey();
      method = 'PUT';
    }
    const start = performance.now();
    try {
      const res = await client.request(method, `/${bucket}/${key}`, method === 'PUT' ? { body } : {});
      if (res.status >= 300) throw new Error(`${method} -> ${res.status} ${res.body?.toString().slice(0, 200)}`);
      if (method === 'GET') bytesMoved += res.bytes;
      if (method === 'PUT') {
        bytesMoved += body.length;
        if (spec.op === 'mixed') pool.add(key);
      }
      latencies[ops++] = performance.now() - start;
    } catch (err) {
      errors++;
      firstError ??= (err as Error).message;
    } finally {
      if (borrowed) pool.release(key);
    }
  };

  const worker = async (): Promise<void> => {
    while (started < spec.maxOps && performance.now() < deadline) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const serverCpu = spec.serverPid === undefined ? NaN : processCpuMicros(spec.serverPid) - serverCpu0;
  const clientCpu = process.cpuUsage(clientCpu0);
  const sorted = latencies.subarray(0, ops).sort();
  return {
    ops,
    errors,
    firstError,
    seconds,
    opsPerSec: ops / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    mbPerSec: bytesMoved / seconds / 1e6,
    serverCpuUsPerOp: serverCpu / ops,
    clientCpuUsPerOp: (clientCpu.user + clientCpu.system) / ops,
  };
}

/** Warm-up before measuring: JIT, lmdb map growth, connection pool, caches. */
export async function warmUp(client: S3Http, bucket: string, seconds = 2): Promise<void> {
  for (const op of ['put', 'get'] as const) {
    await runWorkload(client, bucket, { op, objectBytes: 4096, concurrency: 16, seconds, maxOps: 2_000, prefix: `warmup-${op}` });
  }
}

// ---------------------------------------------------------------- RSS

/** Resident set size of a process in bytes (VmRSS), or 0 if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples a process's RSS on a timer; `stop` returns the peak in bytes. */
export function sampleRss(pid: number, intervalMs = 50): { stop: () => number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid));
    },
  };
}

// ---------------------------------------------------------------- multipart

export interface MultipartSpec {
  key: string;
  totalBytes: number;
  partBytes: number;
  parallel: number;
  /** Server pid whose RSS is sampled during the upload. */
  serverPid: number;
}

export interface MultipartResult {
  seconds: number;
  mbPerSec: number;
  parts: number;
  peakRssBytes: number;
  baselineRssBytes: number;
  etag: string;
  /** md5-of-md5s-N of the generated parts, computed on the client. */
  expectedEtag: string;
  size: number;
}

/** The multipart ETag the generated parts must produce. */
function expectedMultipartEtag(pattern: Buffer, totalBytes: number, partBytes: number): string {
  const partMd5 = new Map<number, Buffer>();
  const digests: Buffer[] = [];
  const count = Math.ceil(totalBytes / partBytes);
  for (let n = 1; n <= count; n++) {
    const len = Math.min(partBytes, totalBytes - (n - 1) * partBytes);
    let d = partMd5.get(len);
    if (!d) {
      const h = createHash('md5');
      for (let left = len; left > 0; left -= pattern.length) h.update(left >= pattern.length ? pattern : pattern.subarray(0, left));
      d = h.digest();
      partMd5.set(len, d);
    }
    digests.push(d);
  }
  return `"${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${count}"`;
}

function xmlValue(xml: string, tag: string): string {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  if (!m) throw new Error(`no <${tag}> in ${xml.slice(0, 300)}`);
  return m[1]!
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Uploads generated data in parts (streamed, never whole in memory). */
export async function runMultipart(client: S3Http, bucket: string, spec: MultipartSpec): Promise<MultipartResult> {
  const pattern = randomBytes(1024 * 1024);
  const path = `/${bucket}/${spec.key}`;
  const baselineRssBytes = rssBytes(spec.serverPid);
  const sampler = sampleRss(spec.serverPid);
  const t0 = performance.now();
  try {
    const created = await client.ok('POST', path, { query: { uploads: '' }, keepBody: true });
    const uploadId = xmlValue(created.body!.toString('utf8'), 'UploadId');
    const partCount = Math.ceil(spec.totalBytes / spec.partBytes);
    const etags: string[] = [];
    let next = 1;
    const worker = async (): Promise<void> => {
      while (next <= partCount) {
        const n = next++;
        const len = Math.min(spec.partBytes, spec.totalBytes - (n - 1) * spec.partBytes);
        const res = await client.ok('PUT', path, {
          query: { partNumber: String(n), uploadId },
          body: { length: len, stream: () => patternStream(pattern, len) },
        });
        etags[n - 1] = String(res.headers.etag);
      }
    };
    await Promise.all(Array.from({ length: spec.parallel }, worker));
    const xml =
      '<CompleteMultipartUpload>' +
      etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('') +
      '</CompleteMultipartUpload>';
    const done = await client.ok('POST', path, { query: { uploadId }, body: Buffer.from(xml), keepBody: true });
    const etag = xmlValue(done.body!.toString('utf8'), 'ETag');
    const seconds = (performance.now() - t0) / 1000;
    const head = await client.ok('HEAD', path);
    return {
      seconds,
      mbPerSec: spec.totalBytes / seconds / 1e6,
      parts: partCount,
      peakRssBytes: sampler.stop(),
      baselineRssBytes,
      etag,
      expectedEtag: expectedMultipartEtag(pattern, spec.totalBytes, spec.partBytes),
      size: Number(head.headers['content-length']),
    };
  } finally {
    sampler.stop();
  }
}

// ---------------------------------------------------------------- large GET

export interface ThroughputSample {
  mbPerSec: number[];
  medianMbPerSec: number;
  /** Server CPU (user + system) per GET in ms, when the server's pid was given. */
  cpuMsPerGet?: number;
}

/** User + system CPU of a local process in ms (servers.ts reads /proc); undefined where unknown. */
function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  const micros = processCpuMicros(pid);
  return Number.isNaN(micros) ? undefined : micros / 1000;
}

/** Drains one plain (unsigned) GET and returns the bytes received. */
function rawGet(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`GET ${url} -> ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Alternates GETs of the same size from the S3 server and from the raw
 * baseline server so both see the same machine noise.
 */
export async function compareLargeGet(
  client: S3Http,
  s3Path: string,
  rawUrl: string,
  expectBytes: number,
  rounds: number,
  seconds: number,
  /** Server pids, to report CPU per GET (a loaded machine makes MB/s noisy; CPU less so). */
  pids: { s3?: number; raw?: number } = {},
): Promise<{ s3: ThroughputSample; raw: ThroughputSample; medianPairRatio: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const s3: number[] = [];
  const raw: number[] = [];
  const cpu = { s3: 0, raw: 0 };
  const timed = async <T>(which: 's3' | 'raw', get: () => Promise<T>): Promise<T> => {
    const before = processCpuMs(pids[which]);
    const out = await get();
    const after = processCpuMs(pids[which]);
    if (before !== undefined && after !== undefined) cpu[which] += after - before;
    return out;
  };
  const deadline = performance.now() + seconds * 1000;
  try {
    // One warm-up of each: page cache, JIT, connection.
    await rawGet(rawUrl, agent);
    await client.ok('GET', s3Path);
    for (let i = 0; i < rounds && performance.now() < deadline; i++) {
      let t = performance.now();
      const rb = await timed('raw', () => rawGet(rawUrl, agent));
      raw.push(rb / ((performance.now() - t) / 1000) / 1e6);
      t = performance.now();
      const res = await timed('s3', () => client.ok('GET', s3Path));
      s3.push(res.bytes / ((performance.now() - t) / 1000) / 1e6);
      if (rb !== expectBytes || res.bytes !== expectBytes) {
        throw new Error(`large GET sizes: raw ${rb}, s3 ${res.bytes}, expected ${expectBytes}`);
      }
    }
  } finally {
    agent.destroy();
  }
  const perGet = (which: 's3' | 'raw', n: number) => (pids[which] !== undefined && n > 0 ? { cpuMsPerGet: cpu[which] / n } : {});
  return {
    s3: { mbPerSec: s3, medianMbPerSec: median(s3), ...perGet('s3', s3.length) },
    raw: { mbPerSec: raw, medianMbPerSec: median(raw), ...perGet('raw', raw.length) },
    // Each S3 GET runs right after its raw twin, so a pair shares the
    // machine's load of that moment: the median of pair ratios is steadier
    // than a ratio of two medians on a noisy machine.
    medianPairRatio: median(s3.map((v, i) => v / raw[i]!)),
  };
}
