// Real `lookahead` processes for the failover tests: `serve` children on
// 127.0.0.1 port 0, CLI commands, an SDK client, and a steady write load.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';

export const repo = join(import.meta.dirname, '../..');
export const keys = { accessKeyId: 'FAILOVERACCESSKEY001', secretAccessKey: 'failover-secret-key-0123456789abcdefghij' };
export const replicationSecret = 'failover-replication-secret-0123456789';

const env = {
  ...process.env,
  LOOKAHEAD_ACCESS_KEY: keys.accessKeyId,
  LOOKAHEAD_SECRET_KEY: keys.secretAccessKey,
  LOOKAHEAD_REPLICATION_SECRET: replicationSecret,
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const portOf = (url: string) => Number(new URL(url).port);

/** Polls `fn` every 200 ms until it yields a value; fails after `maxMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, maxMs = 30_000): Promise<T> {
  const end = Date.now() + maxMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface Proc {
  child: ChildProcess;
  url: string;
  out: () => string;
}

/** `lookahead serve ARGS` on port 0; resolves once it listens. */
export async function serve(args: string[], extraEnv: Record<string, string> = {}): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--listen', '127.0.0.1:0', '--log-level', process.env.LOOKAHEAD_TEST_LOG ?? 'warn', ...args], {
    cwd: repo,
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const re = /listening on (http:\/\/127\.0\.0\.1:\d+)/;
  for (let i = 0; i < 400 && !re.test(out) && child.exitCode === null; i++) await sleep(50);
  const m = re.exec(out);
  if (!m) {
    child.kill('SIGKILL');
    throw new Error(`serve ${args.join(' ')} did not start:\n${out}`);
  }
  return { child, url: m[1] as string, out: () => out };
}

/** A test file's scratch directory, processes and proxies: created before
 * its tests, every process killed, proxy closed and file removed after. */
export interface ProcSuite {
  /** A path inside the suite's scratch directory. */
  path: (...parts: string[]) => string;
  /** `serve ARGS`, killed after the suite. */
  start: (args: string[], extraEnv?: Record<string, string>) => Promise<Proc>;
  /** Processes started elsewhere (or by `start`), killed after the suite. */
  procs: Proc[];
  /** Proxies closed after the suite. */
  proxies: Array<{ close: () => Promise<void> }>;
}

export function procSuite(prefix: string): ProcSuite {
  let dir: string | undefined;
  const suite: ProcSuite = {
    path: (...parts) => {
      if (dir === undefined) throw new Error('procSuite: path() before the suite started');
      return join(dir, ...parts);
    },
    start: async (args, extraEnv = {}) => {
      const p = await serve(args, extraEnv);
      suite.procs.push(p);
      return p;
    },
    procs: [],
    proxies: [],
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await Promise.all(suite.procs.map((p) => kill(p)));
    await Promise.all(suite.proxies.map((p) => p.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return suite;
}

export async function kill(proc: Proc | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill(signal);
  await Promise.race([exited, sleep(10_000)]);
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
}

/** `lookahead ARGS` (a CLI command); resolves with its exit code and output. */
export function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: repo, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

export function client(url: string): S3Client {
  return new S3Client({ endpoint: url, region: 'us-east-1', forcePathStyle: true, credentials: keys, maxAttempts: 1 });
}

export async function status(url: string): Promise<Record<string, any>> {
  const r = await cli(['status', '--endpoint', url, '--json']);
  if (r.code !== 0) throw new Error(`status ${url}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, any>;
}

export const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/**
 * A steady write load: puts (new keys and overwrites) and deletes over a
 * fixed key space, one request at a time, against whichever endpoint
 * `target()` names. Failures (a killed or fenced site) are counted, not thrown.
 */
export class WriteLoad {
  ok = 0;
  failed = 0;
  lastError = '';
  private running = false;
  private done: Promise<void> | undefined;
  private client: S3Client;
  private url: string;

  constructor(url: string, private readonly bucket: string, private readonly keySpace: string[], private readonly seed = 1) {
    this.url = url;
    this.client = client(url);
  }

  repoint(url: string): void {
    this.url = url;
    this.client = client(url);
  }

  start(): void {
    this.running = true;
    let n = this.seed;
    this.done = (async () => {
      for (let i = 0; this.running && i < 1_000_000; i++) {
        n = (n * 1103515245 + 12345) % 2 ** 31;
        const key = this.keySpace[n % this.keySpace.length] as string;
        try {
          if (n % 7 === 0) await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
          else await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: randomBytes(64 + (n % 2000)) }));
          this.ok++;
        } catch (err) {
          this.failed++;
          this.lastError = String((err as Error).name ?? err);
          await sleep(20);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}
