// Child-process servers for the benchmark and the process-level tests:
// lookahead itself (src/main.ts serve), s3rver, and a raw loopback HTTP
// server. Every child listens on 127.0.0.1 port 0 and announces its URL on a
// line of output; we wait for that line (bounded) and, for lookahead, for
// /_lookahead/health.
//
// Children run as `node --import tsx FILE` (not `npx tsx`) so the pid we hold
// is the server process itself: RSS samples and SIGKILL hit the right one.

import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Credentials the benchmark and tests hand to every lookahead child. */
export const testAccessKey = 'LOOKAHEADBENCHKEY0001';
export const testSecretKey = 'lookahead-bench-secret-key-0000000000001';

const startTimeoutMs = 60_000;
const outputTailChars = 8_000;
const stopTimeoutMs = 10_000;

export interface ChildServer {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Last lines the child wrote, for error messages. */
  output: () => string;
  /** SIGTERM, then SIGKILL after a grace period; resolves when it exited. */
  stop: () => Promise<void>;
  /** SIGKILL at once; resolves when it exited. */
  kill: () => Promise<void>;
}

export interface SpawnOptions {
  args: string[];
  /** Node flags before `--import tsx`, e.g. ['--cpu-prof']. */
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** Matches the ready line; group 1 is the URL. */
  ready: RegExp;
  label: string;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Spawns `node --import tsx ...args` and waits for its ready line. */
export async function spawnServer(opts: SpawnOptions): Promise<ChildServer> {
  const env = { ...process.env, ...opts.env };
  // LOOKAHEAD_CPU_PROF_DIR=dir: every child writes a V8 CPU profile there on
  // exit (NODE_OPTIONS refuses --cpu-prof, so it goes on the command line).
  const prof = env.LOOKAHEAD_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${env.LOOKAHEAD_CPU_PROF_DIR}`] : [];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...prof, '--import', 'tsx', ...opts.args], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  let url: string | undefined;
  let onReady: ((u: string) => void) | undefined;
  // LOOKAHEAD_BENCH_CHILD_LOG_DIR=dir: every child's whole output also goes
  // to dir/LABEL-PID.log (e.g. with LOOKAHEAD_BENCH_NODE_ARGS=--trace-gc).
  const logFile = env.LOOKAHEAD_BENCH_CHILD_LOG_DIR ? path.join(env.LOOKAHEAD_BENCH_CHILD_LOG_DIR, `${opts.label}-${child.pid}.log`) : undefined;
  const watch = (chunk: Buffer): void => {
    if (logFile !== undefined) appendFileSync(logFile, chunk);
    tail = (tail + chunk.toString('utf8')).slice(-outputTailChars);
    if (url === undefined) {
      const m = opts.ready.exec(tail);
      if (m) {
        url = m[1]!;
        onReady?.(url);
      }
    }
  };
  // Always drained: a child blocked on a full pipe would stall the bench.
  child.stdout!.on('data', watch);
  child.stderr!.on('data', watch);

  const server: ChildServer = {
    url: '',
    pid: child.pid ?? -1,
    child,
    output: () => tail,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
      await exited(child);
      clearTimeout(timer);
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited(child);
    },
  };

  server.url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.label} did not start within ${startTimeoutMs} ms:\n${tail}`));
    }, startTimeoutMs);
    onReady = (u) => {
      clearTimeout(timer);
      resolve(u);
    };
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${opts.label} exited (${code ?? signal}) before it was ready:\n${tail}`));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${opts.label} could not be started: ${err.message}`));
    });
    if (url !== undefined) onReady(url);
  });
  return server;
}

/** The secret between the benches' primaries and secondaries. */
export const benchReplicationSecret = 'lookahead-bench-replication-secret';

export interface LookaheadOptions {
  dataDir: string;
  /** Node flags after LOOKAHEAD_BENCH_NODE_ARGS's (an A/B of flags). */
  nodeArgs?: string[];
  /** Extra `serve` flags, e.g. ['--role', 'primary', '--secondary', url]. */
  extraArgs?: string[];
  env?: Record<string, string>;
  /** pino level; 'warn' by default so request logs do not cost the bench. */
  logLevel?: string;
}

/**
 * Extra node flags for lookahead children from LOOKAHEAD_BENCH_NODE_ARGS
 * (space-separated), e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the
 * server under a workload. Only lookahead gets them, not s3rver or the bench.
 */
function lookaheadNodeArgs(): string[] {
  return (process.env.LOOKAHEAD_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
}

/**
 * CPU time (user + system) a process has used so far, in microseconds, from
 * /proc/PID/stat (clock ticks of 10 ms); NaN where /proc is not there.
 */
export function processCpuMicros(pid: number, statPath = `/proc/${pid}/stat`): number {
  try {
    const stat = readFileSync(statPath, 'utf8');
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicksPerSecond;
  } catch {
    return NaN;
  }
}

/** CPU of the process's main thread (the JS event loop: the one a Node
 * server saturates first), in µs; its other threads (lmdb's writer, GC
 * helpers, libuv) are processCpuMicros minus this. */
export function mainThreadCpuMicros(pid: number): number {
  return processCpuMicros(pid, `/proc/${pid}/task/${pid}/stat`);
}

/** USER_HZ: 100 on every Linux we run on. */
const clockTicksPerSecond = 100;

/** Starts `src/main.ts serve` on 127.0.0.1:0 and waits until it is healthy. */
export async function startLookahead(opts: LookaheadOptions): Promise<ChildServer> {
  const server = await spawnServer({
    label: 'lookahead',
    nodeArgs: [...lookaheadNodeArgs(), ...(opts.nodeArgs ?? [])],
    args: [
      'src/main.ts',
      'serve',
      '--data',
      opts.dataDir,
      '--listen',
      '127.0.0.1:0',
      '--log-level',
      opts.logLevel ?? 'warn',
      ...(opts.extraArgs ?? []),
    ],
    env: {
      LOOKAHEAD_ACCESS_KEY: testAccessKey,
      LOOKAHEAD_SECRET_KEY: testSecretKey,
      ...opts.env,
    },
    ready: /lookahead listening on (http:\/\/127\.0\.0\.1:\d+)/,
  });
  await waitHealthy(server.url, startTimeoutMs);
  return server;
}

/** Polls GET /_lookahead/health until 200 (bounded). */
export async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const status = await plainGetStatus(`${url}/_lookahead/health`);
      if (status === 200) return;
      last = `status ${status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not healthy within ${timeoutMs} ms (${last})`);
}

function plainGetStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(2_000, () => req.destroy(new Error('health check timed out')));
    req.on('error', reject);
  });
}

/** Starts s3rver (files under `dir`) in a child node process. */
export function startS3rver(dir: string): Promise<ChildServer> {
  return spawnServer({
    label: 's3rver',
    args: ['bench/s3rver-child.ts', dir],
    ready: /s3rver listening on (http:\/\/127\.0\.0\.1:\d+)/,
  });
}

/** Starts the raw loopback baseline server serving `bytes` bytes at GET /. */
export function startRawServer(bytes: number): Promise<ChildServer> {
  return spawnServer({
    label: 'raw http server',
    args: ['bench/raw-server.ts', String(bytes)],
    ready: /raw listening on (http:\/\/127\.0\.0\.1:\d+)/,
  });
}

/** Does src/main.ts serve accept `flag`? Reads `serve --help` (bounded). */
export async function serveHelp(): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--help'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited(child);
  clearTimeout(timer);
  return out;
}
