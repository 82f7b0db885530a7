// A TCP proxy for the inter-site link that misbehaves on purpose: it delays
// chunks (order kept), resets connections (RST) at random moments, stalls
// some connections silently before resetting them, and can refuse every
// connection for a while (a partition). Bytes that are forwarded are never
// altered or dropped from the middle of a stream: TCP does not do that; a
// lost segment shows up as delay or, if it never comes, as a dead connection.

import net, { type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '../../src/core/clock.ts';

export interface ChaosSettings {
  /** Per forwarded chunk: extra delay drawn from [0, delayMsMax]. */
  delayMsMax: number;
  /** Per forwarded chunk: probability the connection is reset instead. */
  resetChance: number;
  /** Per new connection: probability it goes silent, then is reset after stallMs. */
  stallChance: number;
  stallMs: number;
}

export const calm: ChaosSettings = { delayMsMax: 0, resetChance: 0, stallChance: 0, stallMs: 0 };

export interface ChaosCounts {
  connections: number;
  resets: number;
  stalls: number;
  refused: number;
  chunks: number;
}

/** Small deterministic PRNG (mulberry32): a failing soak can be replayed by seed. */
export function prng(seed: number): () => number {
  const random = seededRandom(seed);
  return () => random.next();
}

export class ChaosProxy {
  settings: ChaosSettings = calm;
  /** While true, new connections are reset at once and open ones are cut. */
  private partitioned = false;
  readonly counts: ChaosCounts = { connections: 0, resets: 0, stalls: 0, refused: 0, chunks: 0 };
  private readonly server: net.Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly random: () => number,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  /** Cut everything now and refuse new connections until heal(). */
  partition(): void {
    this.partitioned = true;
    for (const s of this.sockets) this.reset(s);
  }

  heal(): void {
    this.partitioned = false;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private reset(s: Socket): void {
    if (s.destroyed) return;
    this.counts.resets++;
    // RST rather than FIN: the peer sees ECONNRESET, as with a dead middlebox.
    if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
    else s.destroy();
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    s.on('error', () => {});
  }

  private accept(client: Socket): void {
    this.track(client);
    this.counts.connections++;
    if (this.partitioned) {
      this.counts.refused++;
      this.reset(client);
      return;
    }
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    this.track(upstream);
    const pair = [client, upstream];
    const cut = () => pair.forEach((s) => this.reset(s));
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    if (this.random() < this.settings.stallChance) {
      // Accept, read and forward nothing; reset later.
      this.counts.stalls++;
      client.pause();
      this.later(this.settings.stallMs, cut);
      return;
    }
    this.forward(client, upstream, cut);
    this.forward(upstream, client, cut);
  }

  /** Pipes from → to with per-chunk delay (order kept) and random resets. */
  private forward(from: Socket, to: Socket, cut: () => void): void {
    let tail = Promise.resolve();
    let queued = 0;
    from.on('data', (chunk: Buffer) => {
      this.counts.chunks++;
      if (this.random() < this.settings.resetChance) {
        cut();
        return;
      }
      const delay = this.settings.delayMsMax > 0 ? this.random() * this.settings.delayMsMax : 0;
      // Backpressure: a slow link slows the sender instead of buffering here.
      if (++queued > 16) from.pause();
      tail = tail.then(
        () =>
          new Promise<void>((resolve) => {
            const write = () => {
              queued--;
              if (queued <= 16) from.resume();
              if (!to.destroyed) to.write(chunk);
              resolve();
            };
            if (delay === 0) write();
            else this.later(delay, write);
          }),
      );
    });
    from.once('end', () => void tail.then(() => to.end()));
  }
}
