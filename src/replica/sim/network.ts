// The simulated link between the sites: every request and every response is
// a packet the harness delivers in any order, drops, or loses to a
// partition. SimTarget is the primary's ReplicaTarget over it, with
// timeouts in virtual time; a request that timed out may still arrive.

import { Readable } from 'node:stream';
import type { Clock, Random } from '../../core/clock.ts';
import type {
  BucketCopy,
  DeleteCopy,
  ObjectCopy,
  PeerHealth,
  RecordAck,
  RecordMessage,
  SessionInfo,
} from '../messages.ts';
import type { BatchResult, ReplicaCopy } from '../batch.ts';
import type { SecondaryService } from '../secondary.ts';
import type { ReplicaTarget } from '../target.ts';
import { TargetUnavailableError } from '../target.ts';

interface Packet {
  deliver: () => void;
}

/** Packets in flight at most; more are dropped (a bounded queue). */
const packetsMax = 10_000;

export class SimNetwork {
  private packets: Packet[] = [];
  partitioned = false;
  delivered = 0;
  dropped = 0;

  send(deliver: () => void): void {
    if (this.partitioned || this.packets.length >= packetsMax) {
      this.dropped++;
      return;
    }
    this.packets.push({ deliver });
  }

  get inFlight(): number {
    return this.packets.length;
  }

  /** Delivers one packet chosen at random (reordering). */
  deliverOne(random: Random): boolean {
    const packet = this.take(random);
    if (packet === undefined) return false;
    if (this.partitioned) {
      this.dropped++;
      return true;
    }
    this.delivered++;
    packet.deliver();
    return true;
  }

  dropOne(random: Random): void {
    if (this.take(random) !== undefined) this.dropped++;
  }

  private take(random: Random): Packet | undefined {
    if (this.packets.length === 0) return undefined;
    const i = Math.floor(random.next() * this.packets.length);
    return this.packets.splice(i, 1)[0];
  }
}

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

export class SimTarget implements ReplicaTarget {
  /** False once the primary incarnation using it crashed: answers to it
   * are lost. */
  alive = true;

  constructor(
    private readonly net: SimNetwork,
    private readonly secondary: () => SecondaryService | undefined,
    private readonly clock: Clock,
    private readonly timeoutMs: number,
  ) {}

  openSession(from: string, epoch: number): Promise<SessionInfo> {
    return this.call((s) => s.openSession(from, epoch));
  }

  applyRecord(message: RecordMessage): Promise<RecordAck> {
    const copy = structuredClone(message);
    return this.call((s) => s.applyRecord(copy));
  }

  async putObject(copy: ObjectCopy, body: Readable): Promise<boolean> {
    const data = await collect(body);
    const c = structuredClone(copy);
    return this.call((s) => s.putObject(c, Readable.from([data])));
  }

  putObjects(items: ReplicaCopy[]): Promise<BatchResult[]> {
    const copies = items.map((i) => ({ copy: structuredClone(i.copy), body: Buffer.from(i.body) }));
    return this.call((s) => s.putObjects(copies));
  }

  deleteObject(copy: DeleteCopy): Promise<boolean> {
    const c = { ...copy };
    return this.call((s) => s.deleteObject(c));
  }

  putBucket(copy: BucketCopy): Promise<void> {
    const c = { ...copy };
    return this.call((s) => s.putBucket(c));
  }

  health(): Promise<PeerHealth> {
    return this.call(async (s) => s.health());
  }

  async close(): Promise<void> {
    this.alive = false;
  }

  private call<T>(handler: (s: SecondaryService) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (fn: () => void) => {
        if (done || !this.alive) return;
        done = true;
        fn();
      };
      void this.clock.sleep(this.timeoutMs).then(() => finish(() => reject(new TargetUnavailableError('timeout'))));
      this.net.send(() => {
        const service = this.secondary();
        if (service === undefined) return; // S is down: the request is lost
        handler(service).then(
          (value) => this.net.send(() => finish(() => resolve(value))),
          (err: unknown) => this.net.send(() => finish(() => reject(err))),
        );
      });
    });
  }
}
