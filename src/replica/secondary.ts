// The secondary side (PROTOCOL.md "Secondary kinds: gateway in secondary
// role"): holds R durably, applies the primary's copies, refuses client
// writes. Transport-free: the HTTP router (router.ts) and the simulation's
// SimTarget both call these methods.

import { Readable } from 'node:stream';
import type { ChangeHooks, ChangeIntent } from '../core/changes.ts';
import type { Clock } from '../core/clock.ts';
import { NotPrimaryError, S3Error } from '../core/errors.ts';
import { replicaBatchObjectsMax } from '../core/limits.ts';
import type { ObjectStore, ReplicaBody } from '../objects/types.ts';
import type { BatchResult, ReplicaCopy } from './batch.ts';
import { GenerationalRecord } from '../predict/record.ts';
import type { LocationEntry, LocationName } from '../predict/types.ts';
import type {
  BucketCopy,
  DeleteCopy,
  ObjectCopy,
  PeerHealth,
  RecordAck,
  RecordMessage,
  SessionInfo,
} from './messages.ts';
import { replicaWireVersion } from './messages.ts';
import type { SecondaryDurable, SecondaryMeta } from './state.ts';
import { FencedError, StaleSessionError } from './target.ts';

export interface SecondaryOptions {
  durable: SecondaryDurable;
  store: ObjectStore;
  clock: Clock;
  /** Named in the error a client gets for a write here. */
  primaryUrl?: string;
}

export class SecondaryService {
  private record = new GenerationalRecord();
  private meta: SecondaryMeta;
  /** Record messages and session changes apply one at a time, in order. */
  private chain: Promise<unknown> = Promise.resolve();
  private started = false;
  /** Bucket copies exclude object copies (a copy racing a bucket delete
   * must not recreate the bucket). */
  private readonly lock = new SharedLock();
  private applyingBucket: string | undefined;

  constructor(private readonly options: SecondaryOptions) {
    this.meta = options.durable.meta();
    if (options.primaryUrl !== undefined) this.meta.primary = options.primaryUrl;
  }

  async start(): Promise<void> {
    this.record = await this.options.durable.record.load();
    this.meta = { ...this.options.durable.meta(), primary: this.options.primaryUrl ?? this.meta.primary };
    this.started = true;
  }

  get epoch(): number {
    return this.meta.epoch;
  }

  get primaryUrl(): string | undefined {
    return this.meta.primary;
  }

  /** |R| as durably stored. */
  get recordSize(): number {
    return this.record.size;
  }

  /** The at-risk list (issue 4): names of every location in R. */
  recordNames(): LocationName[] {
    return this.entries().map((e) => e.name);
  }

  health(): PeerHealth {
    return { role: 'secondary', epoch: this.meta.epoch, recordSize: this.record.size };
  }

  openSession(from: string, epoch: number): Promise<SessionInfo> {
    return this.serial(async () => {
      this.checkEpoch(epoch);
      // A new session makes every message of older ones stale: a record
      // message delayed across a primary restart must not undo a removal
      // that the rebuilt R' relies on ("R' ⊆ R", invariant 2).
      const next: SecondaryMeta = { ...this.meta, session: this.meta.session + 1, epoch: Math.max(epoch, this.meta.epoch) };
      await this.options.durable.setMeta(next);
      this.meta = next;
      void from;
      return {
        v: replicaWireVersion,
        epoch: next.epoch,
        session: next.session,
        lastMsgId: next.lastMsgId,
        entries: this.entries(),
        batchObjectsMax: replicaBatchObjectsMax,
      };
    });
  }

  /**
   * Applies a record message in one durable transaction and only then
   * acks: "S sends [the ack] only after R is durable" (write path step 2;
   * invariant 3). Removals first, then additions, as the primary composed
   * them: an id in both stays.
   */
  applyRecord(message: RecordMessage): Promise<RecordAck> {
    return this.serial(async () => {
      this.checkEpoch(message.epoch);
      if (message.session !== this.meta.session) throw new StaleSessionError(this.meta.session);
      if (message.msgId <= this.meta.lastMsgId) {
        return { v: replicaWireVersion, msgId: message.msgId, duplicate: true, recordSize: this.record.size };
      }
      await this.commitRecord(message);
      return { v: replicaWireVersion, msgId: message.msgId, duplicate: false, recordSize: this.record.size };
    });
  }

  private async commitRecord(message: RecordMessage): Promise<void> {
    const adding = new Set(message.add.map((e) => e.id));
    const removed = this.record.remove(message.remove.filter((id) => !adding.has(id)));
    const generation = Math.max(this.record.lastGeneration + 1, 1);
    const fresh = message.add.filter((e) => !this.record.has(e.id));
    this.record.add(adding, generation);
    const next: SecondaryMeta = { ...this.meta, lastMsgId: message.msgId, epoch: Math.max(this.meta.epoch, message.epoch) };
    const { names } = this.options.durable;
    try {
      await this.options.durable.record.save(this.record, () => {
        names.releaseSync(removed);
        names.bindSync(fresh);
        this.options.durable.setMetaSync(next);
      });
    } catch (err) {
      // Not durable: reload so memory matches disk, then report failure
      // (no ack: the primary retries the same message).
      this.record = await this.options.durable.record.load();
      throw err;
    }
    this.meta = next;
  }

  /** "Each write carries a per-key sequence number so S drops a stale copy
   * that arrives late" (write path step 6): the store compares seqs; a copy
   * older than its bucket's last create/delete is stale too, and a copy
   * never creates a bucket (the bucket's own copy does). */
  async putObject(copy: ObjectCopy, body: Readable): Promise<boolean> {
    this.checkEpoch(copy.epoch);
    return this.lock.shared(async () => {
      const { bucket } = copy.meta;
      if (copy.meta.seq < this.options.durable.bucketFloor(bucket)) return drop(body);
      await this.requireBucket(bucket, body);
      return this.options.store.applyReplica(copy.meta, body);
    });
  }

  /**
   * Many small copies (batch.ts), each checked as putObject checks one
   * (seq against the bucket floor, bucket present; the store drops copies
   * older than what it holds), under one lock hold and, where the store can,
   * one transaction. Fencing fails the whole batch; any other refusal only
   * its item.
   */
  async putObjects(items: readonly ReplicaCopy[]): Promise<BatchResult[]> {
    for (const item of items) this.checkEpoch(item.copy.epoch);
    return this.lock.shared(async () => {
      const results: BatchResult[] = items.map(() => ({ applied: false }));
      const todo: number[] = [];
      const buckets = new Map<string, { floor: number; exists: boolean }>();
      for (const [n, { copy }] of items.entries()) {
        const { bucket } = copy.meta;
        let b = buckets.get(bucket);
        if (b === undefined) {
          b = { floor: this.options.durable.bucketFloor(bucket), exists: await this.bucketExists(bucket) };
          buckets.set(bucket, b);
        }
        if (copy.meta.seq < b.floor) continue; // stale: applied false
        if (!b.exists) results[n] = itemResult(noBucketYet(bucket));
        else todo.push(n);
      }
      const outcomes = await this.applyMany(todo.map((n) => ({ meta: items[n]!.copy.meta, body: items[n]!.body })));
      todo.forEach((n, i) => {
        const o = outcomes[i]!;
        results[n] = typeof o === 'boolean' ? { applied: o } : itemResult(o);
      });
      return results;
    });
  }

  private async applyMany(bodies: ReplicaBody[]): Promise<Array<boolean | Error>> {
    const { store } = this.options;
    if (bodies.length === 0) return [];
    if (store.applyReplicaBatch) return store.applyReplicaBatch(bodies);
    return Promise.all(
      bodies.map((b) => store.applyReplica(b.meta, Readable.from([b.body], { objectMode: false })).catch((err: Error) => err)),
    );
  }

  private bucketExists(bucket: string): Promise<boolean> {
    return this.options.store.headBucket(bucket).then(
      () => true,
      () => false,
    );
  }

  /** The tombstone at `seq` keeps a late copy from resurrecting the key.
   * No bucket-floor check: a delete older than the bucket's recreation
   * still removes a version older than itself that S kept from the bucket's
   * previous life (S may never have seen the bucket deleted), and it can
   * never bring anything back. */
  async deleteObject(copy: DeleteCopy): Promise<boolean> {
    this.checkEpoch(copy.epoch);
    return this.lock.shared(() => this.options.store.applyReplicaDelete(copy.bucket, copy.key, copy.seq));
  }

  async putBucket(copy: BucketCopy): Promise<void> {
    this.checkEpoch(copy.epoch);
    await this.lock.exclusive(async () => {
      const { durable, store } = this.options;
      if (copy.seq < durable.bucketFloor(copy.bucket)) return; // stale
      const exists = await store.headBucket(copy.bucket).then(
        () => true,
        () => false,
      );
      this.applyingBucket = copy.bucket;
      try {
        if (copy.exists && !exists) await store.createBucket(copy.bucket, copy.region);
        if (!copy.exists && exists) await store.deleteBucket(copy.bucket);
      } finally {
        this.applyingBucket = undefined;
      }
      await durable.setBucketFloor(copy.bucket, copy.seq);
    });
  }

  private async requireBucket(bucket: string, body: Readable): Promise<void> {
    if (!(await this.bucketExists(bucket))) {
      body.resume();
      throw noBucketYet(bucket);
    }
  }

  /** Client-write hooks of a secondary: every write is refused, naming the
   * primary (issue 3: "a secondary refuses client writes (an S3 error
   * naming the primary)"). Object copies do not go through hooks; bucket
   * copies use the store's bucket calls and are let through here. */
  hooks(): ChangeHooks {
    const refuse = secondaryHooks(() => this.meta.primary);
    return {
      admit: async (change) => {
        const bucketChange = change.kind === 'bucket-create' || change.kind === 'bucket-delete';
        if (bucketChange && change.bucket === this.applyingBucket) return { hit: true };
        return refuse.admit(change);
      },
      committed: (change) => {
        if (change.bucket !== this.applyingBucket) refuse.committed(change);
      },
    };
  }

  private entries(): LocationEntry[] {
    const out: LocationEntry[] = [];
    for (const id of this.record.toBitmap()) {
      const name = this.options.durable.names.nameOf(id);
      if (name !== undefined) out.push({ id, name });
    }
    return out;
  }

  /** Fencing (issue 4): a sender from an older epoch is a deposed primary. */
  private checkEpoch(epoch: number): void {
    if (!this.started) throw new Error('secondary not started');
    if (epoch < this.meta.epoch) throw new FencedError(this.meta.epoch, this.meta.primary);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }
}

/** ChangeHooks refusing every client write with NotPrimaryError. */
export function secondaryHooks(primaryUrl: () => string | undefined): ChangeHooks {
  return {
    admit: async (change: ChangeIntent) => {
      const primary = primaryUrl();
      throw new NotPrimaryError(
        `This site is a secondary and refuses ${change.kind} requests${primary ? `; write to ${primary}` : ''}.`,
        primary,
      );
    },
    committed: () => {
      throw new Error('a secondary admitted no write, so nothing can commit');
    },
  };
}

function noBucketYet(bucket: string): S3Error {
  return new S3Error('NoSuchBucket', `Bucket ${bucket} has not been replicated yet.`);
}

/** One item's failure in a batch answer; only our own bugs fail the request. */
function itemResult(err: Error): BatchResult {
  if (err instanceof S3Error) return { status: err.status, code: err.code, message: err.message };
  throw err;
}

function drop(body: Readable): false {
  body.resume();
  return false;
}

/** Many shared holders or one exclusive holder; waiters in arrival order. */
class SharedLock {
  private sharedCount = 0;
  private exclusiveHeld = false;
  private queue: Array<{ exclusive: boolean; go: () => void }> = [];

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.sharedCount--;
      this.next();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.exclusiveHeld = false;
      this.next();
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    if (this.queue.length === 0 && this.canRun(exclusive)) {
      this.take(exclusive);
      return Promise.resolve();
    }
    return new Promise((go) => this.queue.push({ exclusive, go }));
  }

  private canRun(exclusive: boolean): boolean {
    return !this.exclusiveHeld && (!exclusive || this.sharedCount === 0);
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.exclusiveHeld = true;
    else this.sharedCount++;
  }

  private next(): void {
    while (this.queue.length > 0 && this.canRun((this.queue[0] as { exclusive: boolean }).exclusive)) {
      const head = this.queue.shift() as { exclusive: boolean; go: () => void };
      this.take(head.exclusive);
      head.go();
    }
  }
}
