// Claim 2, "sending the message comprises copying the data synchronously"
// (PROTOCOL.md write path step 2: "Optionally the message carries the object
// itself"). With `syncCopyOnMiss`, a write that missed the record is acked
// only after its committed version (or delete) is durable on S too; hits
// stay asynchronous (claim 3).
//
// Why a step after the commit and not the body inside the record message:
// the record add must be durable on S before P commits (step 3), and the
// per-key seq that orders copies on S is taken at that commit, so a body
// sent with the message would reach S before its version exists on P (a
// write that then fails, BadDigest or a client gone mid-body, would have
// shipped data for nothing). Record messages are also group commits, one in
// flight at a time, bounded in size: bodies inside them would queue every
// miss behind the largest one. So the miss costs two round trips here (the
// record message, then the copy), and the copy uses the same ReplicaTarget
// calls and seq rules as the copier.
//
// The copy runs outside the copier's queue order: committed() hands the key
// here instead of to the copier, settled() copies it and then removes the Q
// entry as the copier would ("on S's durable ack removes K from Q, unless K
// was written again meanwhile"). If S fails, the write is committed on P
// and covered by R already (it was a miss whose record add S acked), so
// invariants 1-3 hold without the copy: the client is acked and the copier
// takes the key, as on a hit.

import type { CommittedChange, WriteToken } from '../core/changes.ts';
import { syncCopiesPendingMax } from '../core/limits.ts';
import type { ObjectStore } from '../objects/types.ts';
import type { ReplicaMetrics } from './metrics.ts';
import type { Dequeued, PrimaryDurable, QEntry } from './state.ts';
import { copyCurrentVersion } from './copy-one.ts';
import type { ReplicaTarget } from './target.ts';
import { FencedError } from './target.ts';

/** What became of one miss's synchronous copy before its ack. */
export type SyncCopyOutcome =
  | 'copied' // S holds this version or a newer one
  | 'peer-down' // S unreachable (degraded admission): left to the copier
  | 'failed' // the copy failed: left to the copier
  | 'overflow'; // too many in flight: left to the copier

export interface SyncCopierOptions {
  durable: PrimaryDurable;
  target: ReplicaTarget;
  epoch: () => number;
  store: () => ObjectStore | undefined;
  peerUp: () => boolean;
  /** The Q entry left Q: its pins go (as for the copier's copies). */
  onSynced: (qkey: string, removed?: Dequeued) => void;
  /** Hands the key to the copier (asynchronous, with retries). */
  toCopier: (qkey: string) => void;
  onFenced: (err: FencedError) => void;
  /** Told of every outcome (status counts; the simulation checks S). */
  onOutcome?: (change: CommittedChange, outcome: SyncCopyOutcome) => void;
  metrics?: ReplicaMetrics;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export type SyncCopyCounts = Record<SyncCopyOutcome, number> & { bytes: number; objects: number };

const nothingToWait: Promise<void> = Promise.resolve();

export class SyncCopier {
  /** Committed misses whose ack waits for settle(): token -> Q key. */
  private readonly expected = new Map<WriteToken, string>();
  private readonly counts: SyncCopyCounts = { copied: 0, 'peer-down': 0, failed: 0, overflow: 0, bytes: 0, objects: 0 };
  private stopped = false;

  constructor(private readonly options: SyncCopierOptions) {}

  stop(): void {
    this.stopped = true;
  }

  stats(): SyncCopyCounts {
    return { ...this.counts };
  }

  /**
   * Inside the commit transaction of a miss: its copy waits for settle().
   * False when the copier should take the key now (nothing waits here).
   */
  expect(change: CommittedChange, qkey: string): boolean {
    if (change.token === undefined) return false;
    if (this.expected.size >= syncCopiesPendingMax) {
      this.count(change, 'overflow');
      return false;
    }
    this.expected.set(change.token, qkey);
    return true;
  }

  /** A miss committed without a sync copy (admitted while S was down). */
  skipped(change: CommittedChange): void {
    this.count(change, 'peer-down');
  }

  /** The write did not commit after all (its transaction failed). */
  forget(token: WriteToken): void {
    const qkey = this.expected.get(token);
    if (qkey === undefined) return;
    this.expected.delete(token);
    this.options.toCopier(qkey); // whatever Q holds, the copier settles it
  }

  /** After the commit, before the ack: copy, then let the Q entry go.
   * Anything else (hits, mode off) returns a settled promise at once. */
  settle(change: CommittedChange): Promise<void> {
    const qkey = change.token === undefined ? undefined : this.expected.get(change.token);
    if (qkey === undefined || change.token === undefined) return nothingToWait;
    this.expected.delete(change.token);
    return this.copyBeforeAck(change, qkey);
  }

  private async copyBeforeAck(change: CommittedChange, qkey: string): Promise<void> {
    if (this.stopped || !this.options.peerUp()) return this.leave(change, qkey, 'peer-down');
    const { durable } = this.options;
    const entry = durable.qGet(qkey);
    // Gone from Q: a copy of this version or a newer one was acked already.
    if (entry === undefined) return this.count(change, 'copied');
    try {
      await this.copy(qkey, entry);
      this.counts.objects++;
    } catch (err) {
      if (err instanceof FencedError) this.options.onFenced(err);
      this.options.log?.('synchronous copy failed; the copier takes it', { qkey, err: String(err) });
      return this.leave(change, qkey, 'failed');
    }
    this.count(change, 'copied');
    await this.dequeue(qkey, entry.seq);
  }

  /** "removes K from Q, unless K was written again meanwhile" (step 6). */
  private async dequeue(qkey: string, seq: number): Promise<void> {
    let cover: readonly number[] | undefined;
    try {
      cover = await this.options.durable.qDeleteIfSeq(qkey, seq);
    } catch (err) {
      this.options.log?.('removing a synchronously copied key from Q failed', { qkey, err: String(err) });
    }
    if (cover !== undefined) this.options.onSynced(qkey, { seq, cover });
    else this.options.toCopier(qkey);
  }

  private leave(change: CommittedChange, qkey: string, outcome: SyncCopyOutcome): void {
    this.options.toCopier(qkey);
    this.count(change, outcome);
  }

  private count(change: CommittedChange, outcome: SyncCopyOutcome): void {
    this.counts[outcome]++;
    this.options.metrics?.syncCopies.inc({ outcome });
    this.options.onOutcome?.(change, outcome);
  }

  /** The current version of the Q entry's location (copy-one.ts). */
  private async copy(qkey: string, entry: QEntry): Promise<void> {
    const { target, metrics } = this.options;
    const sent = await copyCurrentVersion({ target, store: this.options.store(), epoch: this.options.epoch(), metrics }, qkey, entry);
    this.counts.bytes += sent.bytes;
  }
}
