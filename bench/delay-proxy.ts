// A tiny delaying TCP proxy: the injected inter-site delay of the
// replication benchmark. Every chunk is forwarded `delayMs` after it arrived,
// in order, in both directions (so a round trip costs 2 x delayMs).
//
// Run as a child: `node --import tsx bench/delay-proxy.ts TARGET_PORT DELAY_MS`
// prints "delay proxy listening on http://127.0.0.1:PORT" (spawnDelayProxy()
// does that). Or in-process via startDelayProxy(). The benchmark runs it as a
// child: in the load generator's process, forwarding the copier's traffic
// delayed the generator's own requests, which the hit-path latency then
// charged to replication (replication off has no inter-site traffic).

import { spawn } from 'node:child_process';
import net from 'node:net';

/** Bytes queued in one direction before the sender is paused. */
const queuedBytesMax = 16 * 1024 * 1024;

function pipeDelayed(src: net.Socket, dst: net.Socket, delayMs: number): void {
  let queued = 0;
  let ended = false;
  let pending = 0;
  src.on('data', (chunk: Buffer) => {
    queued += chunk.length;
    pending++;
    if (queued > queuedBytesMax) src.pause();
    // Timers with the same delay fire in insertion order: order is kept.
    setTimeout(() => {
      queued -= chunk.length;
      pending--;
      if (!dst.destroyed) dst.write(chunk);
      if (queued <= queuedBytesMax && src.isPaused()) src.resume();
      if (ended && pending === 0) dst.end();
    }, delayMs);
  });
  src.on('end', () => {
    ended = true;
    if (pending === 0) setTimeout(() => dst.end(), delayMs);
  });
  src.on('error', () => dst.destroy());
  src.on('close', () => {
    if (!ended) setTimeout(() => dst.destroy(), delayMs);
  });
}

export interface DelayProxy {
  url: string;
  close: () => Promise<void>;
}

export function startDelayProxy(targetPort: number, delayMs: number, targetHost = '127.0.0.1'): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect(targetPort, targetHost);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    pipeDelayed(client, upstream, delayMs);
    pipeDelayed(upstream, client, delayMs);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** The proxy in a child process of its own (see the header). */
export function spawnDelayProxy(targetPort: number, delayMs: number): Promise<DelayProxy> {
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, String(targetPort), String(delayMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('delay proxy did not start within 30 s'));
    }, 30_000);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        url: m[1]!,
        close: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`delay proxy exited early (${code})`));
    });
  });
}

if (process.argv[1]?.endsWith('delay-proxy.ts')) {
  const targetPort = Number(process.argv[2]);
  const delayMs = Number(process.argv[3] ?? 20);
  if (!Number.isInteger(targetPort) || !(delayMs >= 0)) throw new Error('usage: delay-proxy.ts TARGET_PORT DELAY_MS');
  const proxy = await startDelayProxy(targetPort, delayMs);
  console.log(`delay proxy listening on ${proxy.url}`);
  process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
}
