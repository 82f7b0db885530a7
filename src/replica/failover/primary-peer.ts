// What a site in primary role answers on /_lookahead/replica/* (fencing,
// issue 4): an old primary that comes back and opens a session with a lower
// epoch gets "fenced" with this site's epoch and endpoint, so it refuses
// client writes at once and names the current primary. A sender with a
// higher epoch means this site was itself failed over: it fences itself.
// Anything else (two primaries at one epoch) is refused.

import type { Readable } from 'node:stream';
import { S3Error } from '../../core/errors.ts';
import type { BucketCopy, DeleteCopy, ObjectCopy, PeerHealth, RecordAck, RecordMessage, SessionInfo } from '../messages.ts';
import type { BatchResult, ReplicaCopy } from '../batch.ts';
import { FencedError } from '../target.ts';

export interface PrimaryPeerOptions {
  epoch: () => number;
  endpoint: () => string | undefined;
  /** A peer showed a higher epoch. */
  onHigherEpoch: (epoch: number) => void;
}

/** Shaped like the SecondaryService methods the replica router calls. */
export class PrimaryPeer {
  constructor(private readonly options: PrimaryPeerOptions) {}

  health(): PeerHealth {
    return { role: 'primary', epoch: this.options.epoch(), recordSize: 0 };
  }

  async openSession(_from: string, epoch: number): Promise<SessionInfo> {
    return this.refuse(epoch);
  }

  async applyRecord(message: RecordMessage): Promise<RecordAck> {
    return this.refuse(message.epoch);
  }

  async putObject(copy: ObjectCopy, body: Readable): Promise<boolean> {
    body.resume();
    return this.refuse(copy.epoch);
  }

  /** A batch of copies (batch.ts): fenced as a whole, else refused item by item. */
  async putObjects(items: readonly ReplicaCopy[]): Promise<BatchResult[]> {
    return items.map((item) => {
      try {
        return this.refuse(item.copy.epoch);
      } catch (err) {
        if (err instanceof S3Error) return { status: err.status, code: err.code, message: err.message };
        throw err;
      }
    });
  }

  async deleteObject(copy: DeleteCopy): Promise<boolean> {
    return this.refuse(copy.epoch);
  }

  async putBucket(copy: BucketCopy): Promise<void> {
    return this.refuse(copy.epoch);
  }

  private refuse(epoch: number): never {
    const mine = this.options.epoch();
    if (epoch < mine) throw new FencedError(mine, this.options.endpoint());
    if (epoch > mine) this.options.onHigherEpoch(epoch);
    throw new S3Error('MethodNotAllowed', `This site is a primary at epoch ${mine}; it takes no replication.`);
  }
}
