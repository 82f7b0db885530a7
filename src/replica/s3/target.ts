// S3Target: a plain S3 service (MinIO, AWS S3, moto, s3rver) as the
// secondary (PROTOCOL.md "Secondary kinds", issue 5). The primary's
// replication core drives it through the same ReplicaTarget interface as a
// gateway secondary; the difference is that the target runs no code of
// ours, so this class does on the primary what SecondaryService does on a
// gateway secondary, using only PUT, GET, HEAD, LIST and DELETE:
//
// - R lives on the target as objects (record.ts). A record message is ONE
//   small PUT of a delta object, and the target's 200 is the durable ack
//   (invariant 3). Compaction into a snapshot runs off the ack path.
// - Sessions and the epoch live in the state object. Fencing needs a read
//   of it, which costs a GET at most every s3StateCheckMs, overlapped with
//   the delta PUT (applyRecord).
// - Per-key seqs live in x-amz-meta-lookahead-seq; a HEAD before each copy
//   drops a stale one (putObject explains what this does and does not buy).

import type { Readable } from 'node:stream';
import type { BucketLocationConstraint, S3Client } from '@aws-sdk/client-s3';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
} from '@aws-sdk/client-s3';
import type { Clock } from '../../core/clock.ts';
import type { ObjectMeta } from '../../objects/types.ts';
import { systemClock } from '../../core/clock.ts';
import {
  listKeysMax,
  s3RecordCompactDeltasMin,
  s3RecordDeltasMax,
  s3RecordRequestConcurrency,
  s3StateCheckMs,
  s3TargetMultipartBytesMin,
  s3TargetPartBytes,
} from '../../core/limits.ts';
import type { BucketCopy, DeleteCopy, ObjectCopy, PeerHealth, RecordAck, RecordMessage, SessionInfo } from '../messages.ts';
import { replicaWireVersion } from '../messages.ts';
import type { RemoteObject, ReplicaTarget } from '../target.ts';
import { FencedError, StaleSessionError, TargetRejectedError } from '../target.ts';
import type { S3Credentials } from './client.ts';
import { createS3Client, deleteKey, getBytes, isNotFound, listKeys, listPage, mapLimit, mapS3Error, putBytes } from './client.ts';
import type { CopyOptions } from './copy.ts';
import { copyObject, etagMetaName, reservedMetaNames, seqMetaName } from './copy.ts';
import type { RecordMap, S3RecordDelta, S3RecordSnapshot, S3TargetState } from './record.ts';
import {
  S3RecordFormatError,
  applyDelta,
  decodeDelta,
  decodeSnapshot,
  decodeState,
  deltaKey,
  deltasPrefix,
  emptySnapshot,
  encodeDelta,
  encodeSnapshot,
  encodeState,
  foldRecord,
  initialState,
  parseDeltaKey,
  recordEntries,
  sessionDeltasPrefix,
  snapshotKey,
  stateKey,
} from './record.ts';
import type { S3BucketMapping } from './url.ts';
import { parseS3TargetUrl, recordLocation, targetLocation } from './url.ts';

export interface S3TargetOptions {
  /** s3://BUCKET[/PREFIX][@ENDPOINT] or s3://*[@ENDPOINT] (url.ts). */
  url: string;
  /** undefined: the SDK's default chain (AWS_* environment, profiles). */
  credentials?: S3Credentials;
  /** Overrides the URL's ?region=. */
  region?: string;
  /** Overrides the URL's ?path-style=. */
  forcePathStyle?: boolean;
  clock?: Clock;
  /** HEAD before each copy to drop stale ones (default true). */
  checkSeq?: boolean;
  /** Default 'on-put'; 'separate' for servers ignoring x-amz-tagging. */
  tagging?: CopyOptions['tagging'];
  /** Default true. */
  sendChecksums?: boolean;
  /** Defaults from src/core/limits.ts; tests lower them. */
  multipartBytesMin?: number;
  partBytes?: number;
  compactDeltasMin?: number;
  /** Socket idle / connect timeout per request (ms). */
  requestTimeoutMs?: number;
  /** Errors of background compaction (the next message retries it). */
  log?: (msg: string, fields: Record<string, unknown>) => void;
}

/** What the lead's CLI passes: `--secondary s3://...` plus credentials. */
export function createS3Target(options: S3TargetOptions): S3Target {
  return new S3Target(options);
}

/** The durable record as stored, without opening a session (rejoin
 * --from-s3, the at-risk report after a failover to the target). */
export interface S3RecordView {
  state: S3TargetState;
  lastMsgId: number;
  entries: SessionInfo['entries'];
}

export interface S3RemoteObject extends RemoteObject {
  lastModified: number;
  /** The target's own ETag (differs from `etag` for a split big object). */
  targetEtag: string;
}

/** A replica's metadata read back from the target (getObject). */
export type S3ReplicaMeta = Pick<ObjectMeta, 'bucket' | 'key' | 'size' | 'etag' | 'seq' | 'lastModified' | 'headers' | 'userMeta' | 'tags'>;

/** The fields of a GET/HEAD answer every reader of a replica needs. */
interface ReplicaHead {
  Metadata?: Record<string, string>;
  ETag?: string;
  ContentLength?: number;
  LastModified?: Date;
  ContentType?: string;
  ContentEncoding?: string;
  ContentDisposition?: string;
  ContentLanguage?: string;
  CacheControl?: string;
  ExpiresString?: string;
  Expires?: Date;
}

/**
 * The primary's metadata of a replica as the target returns it: our
 * reserved x-amz-meta-lookahead-* names give back the primary's ETag and
 * seq; the rest is the client's metadata. Tags are read separately.
 */
export function replicaMetaOf(bucket: string, key: string, out: ReplicaHead): Omit<S3ReplicaMeta, 'tags'> {
  const metadata = out.Metadata ?? {};
  const targetEtag = (out.ETag ?? '').replace(/"/g, '');
  return {
    bucket,
    key,
    size: out.ContentLength ?? 0,
    etag: metadata[etagMetaName] ?? targetEtag,
    seq: Number(metadata[seqMetaName] ?? 0) || 0,
    lastModified: out.LastModified?.getTime() ?? 0,
    headers: dropUndefined({
      contentType: out.ContentType,
      contentEncoding: out.ContentEncoding,
      contentDisposition: out.ContentDisposition,
      contentLanguage: out.ContentLanguage,
      cacheControl: out.CacheControl,
      expires: out.ExpiresString ?? out.Expires?.toUTCString(),
    }),
    userMeta: Object.fromEntries(Object.entries(metadata).filter(([name]) => !reservedMetaNames.includes(name))),
  };
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export class S3Target implements ReplicaTarget {
  readonly mapping: S3BucketMapping;
  private readonly client: S3Client;
  private readonly rec: { bucket: string; prefix: string };
  private readonly clock: Clock;
  private readonly region: string;
  private readonly copyOptions: CopyOptions;
  private readonly checkSeq: boolean;
  private readonly compactDeltasMin: number;
  private state: S3TargetState = initialState;
  /** Start time of the last state read that returned `state`. */
  private stateCheckedAt = -Infinity;
  private session: number | undefined;
  private lastMsgId = 0;
  private record: RecordMap = new Map();
  private deltas = { count: 0, bytes: 0 };
  private snapshotBytes = 0;
  /** Record messages and session changes one at a time, in order. */
  private chain: Promise<unknown> = Promise.resolve();
  private compaction: Promise<void> | undefined;
  private closed = false;
  /** Compactions that completed (status, tests). */
  compactions = 0;

  constructor(private readonly options: S3TargetOptions) {
    const url = parseS3TargetUrl(options.url);
    this.mapping = url.mapping;
    this.rec = recordLocation(url.mapping);
    this.region = options.region ?? url.region;
    this.client = createS3Client({
      endpoint: url.endpoint,
      region: this.region,
      forcePathStyle: options.forcePathStyle ?? url.forcePathStyle,
      credentials: options.credentials,
      requestTimeoutMs: options.requestTimeoutMs,
    });
    this.clock = options.clock ?? systemClock;
    this.checkSeq = options.checkSeq ?? true;
    this.compactDeltasMin = options.compactDeltasMin ?? s3RecordCompactDeltasMin;
    this.copyOptions = {
      multipartBytesMin: options.multipartBytesMin ?? s3TargetMultipartBytesMin,
      partBytes: options.partBytes ?? s3TargetPartBytes,
      tagging: options.tagging ?? 'on-put',
      sendChecksums: options.sendChecksums ?? true,
    };
  }

  // ------------------------------------------------------------ sessions

  /**
   * Folds the stored record, then seals it under a new session: the
   * snapshot carrying the new session number is written BEFORE the state
   * object, so once any reader can see the new session, deltas of older
   * sessions (a message delayed across a primary restart) are never folded
   * again (record.ts header; "Messages of any older session are refused").
   */
  openSession(from: string, epoch: number): Promise<SessionInfo> {
    void from;
    return this.serial(async () => {
      await this.compaction;
      await this.ensureRecordBucket();
      const checkedAt = this.clock.now();
      const state = await this.readState();
      if (epoch < state.epoch) throw new FencedError(state.epoch, state.primary);
      const { record, lastMsgId, session: sealed } = await this.readRecordAt(state);
      const session = sealed + 1;
      const snapshot = encodeSnapshot({ session, lastMsgId, entries: recordEntries(record) });
      await putBytes(this.client, this.rec.bucket, snapshotKey(this.rec.prefix), snapshot);
      const next: S3TargetState = { ...state, epoch: Math.max(epoch, state.epoch), session, role: 'secondary' };
      await putBytes(this.client, this.rec.bucket, stateKey(this.rec.prefix), encodeState(next));
      this.setState(next, checkedAt);
      this.session = session;
      this.lastMsgId = lastMsgId;
      this.record = record;
      this.snapshotBytes = snapshot.length;
      this.deltas = { count: 0, bytes: 0 };
      this.startCompaction(undefined); // deletes the sealed sessions' deltas
      return { v: replicaWireVersion, epoch: next.epoch, session, lastMsgId, entries: recordEntries(record) };
    });
  }

  /** Snapshot + its session's newer deltas; `session` is the higher of the
   * state's and the snapshot's (a crash between their writes). */
  private async readRecordAt(state: S3TargetState): Promise<{ record: RecordMap; lastMsgId: number; session: number }> {
    const raw = await getBytes(this.client, this.rec.bucket, snapshotKey(this.rec.prefix));
    const snapshot: S3RecordSnapshot = raw === undefined ? emptySnapshot : decodeSnapshot(raw);
    const deltas = await this.readDeltas(snapshot);
    const { record, lastMsgId } = foldRecord(snapshot, deltas);
    return { record, lastMsgId, session: Math.max(state.session, snapshot.session) };
  }

  private async readDeltas(snapshot: S3RecordSnapshot): Promise<S3RecordDelta[]> {
    const { bucket, prefix } = this.rec;
    const after = deltaKey(prefix, snapshot.session, snapshot.lastMsgId);
    const keys = await listKeys(this.client, bucket, sessionDeltasPrefix(prefix, snapshot.session), after);
    return mapLimit(keys, s3RecordRequestConcurrency, async (key) => {
      const raw = await getBytes(this.client, bucket, key);
      if (raw === undefined) throw new S3RecordFormatError(key, 'listed but gone (compaction by another primary?)');
      const delta = decodeDelta(raw);
      const named = parseDeltaKey(prefix, key);
      if (named?.session !== delta.session || named.msgId !== delta.msgId) throw new S3RecordFormatError(key, 'name and content differ');
      return delta;
    });
  }

  /** R as stored now, read-only (no session is opened or sealed). */
  async readRecord(): Promise<S3RecordView> {
    const state = await this.readState();
    const { record, lastMsgId } = await this.readRecordAt(state);
    return { state, lastMsgId, entries: recordEntries(record) };
  }

  // ------------------------------------------------------------ record messages

  /**
   * One delta PUT; its 200 is the durable ack. Fencing: this primary acks
   * only while a state read that started at most s3StateCheckMs before the
   * ack saw its own epoch and session. The read is overlapped with the PUT
   * (and skipped while a recent one holds), so under steady load a record
   * message costs one PUT, and an idle primary pays one GET beside it.
   * Whoever fences the target (promotion) writes the state object, then
   * waits s3StateCheckMs + the request timeout before reading R: every
   * delta an old primary could still have acked is visible by then.
   */
  applyRecord(message: RecordMessage): Promise<RecordAck> {
    return this.serial(async () => {
      if (this.session === undefined || message.session !== this.session) throw new StaleSessionError(this.session ?? 0);
      this.checkEpoch(message.epoch);
      if (message.msgId <= this.lastMsgId) return this.ack(message.msgId, true);
      const body = encodeDelta({ ...message });
      const key = deltaKey(this.rec.prefix, message.session, message.msgId);
      const refresh = this.stateAge() > s3StateCheckMs / 2 ? this.refreshState() : undefined;
      await Promise.all([putBytes(this.client, this.rec.bucket, key, body), refresh]);
      if (this.stateAge() > s3StateCheckMs) await this.refreshState();
      if (this.state.session !== this.session) throw new StaleSessionError(this.state.session);
      this.checkEpoch(message.epoch);
      applyDelta(this.record, message);
      this.lastMsgId = message.msgId;
      this.deltas = { count: this.deltas.count + 1, bytes: this.deltas.bytes + body.length };
      this.maybeCompact();
      return this.ack(message.msgId, false);
    });
  }

  private ack(msgId: number, duplicate: boolean): RecordAck {
    return { v: replicaWireVersion, msgId, duplicate, recordSize: this.record.size };
  }

  /** Compaction pays off once the deltas' bytes reach a quarter of the
   * snapshot's (so the snapshot rewrite is amortised), and is forced at
   * s3RecordDeltasMax deltas (each one is a GET when a session opens). */
  private maybeCompact(): void {
    if (this.compaction !== undefined) return;
    const { count, bytes } = this.deltas;
    const due = count >= s3RecordDeltasMax || (count >= this.compactDeltasMin && bytes * 4 >= this.snapshotBytes);
    if (due) this.startCompaction({ session: this.session as number, lastMsgId: this.lastMsgId, entries: recordEntries(this.record) });
  }

  /** Snapshot first, then delete what it folded: a crash between leaves
   * deltas the reader skips (msgId <= the snapshot's) and the next
   * compaction deletes. Without a snapshot, only deletes sealed sessions. */
  private startCompaction(snapshot: S3RecordSnapshot | undefined): void {
    const folded = { ...this.deltas };
    const run = async (): Promise<void> => {
      const { bucket, prefix } = this.rec;
      if (snapshot !== undefined) {
        const raw = encodeSnapshot(snapshot);
        await putBytes(this.client, bucket, snapshotKey(prefix), raw);
        this.snapshotBytes = raw.length;
        this.deltas = { count: Math.max(0, this.deltas.count - folded.count), bytes: Math.max(0, this.deltas.bytes - folded.bytes) };
      }
      const session = this.session as number;
      const upTo = snapshot?.lastMsgId ?? 0;
      const keys = (await listKeys(this.client, bucket, deltasPrefix(prefix))).filter((key) => {
        const d = parseDeltaKey(prefix, key);
        return d !== undefined && (d.session < session || (d.session === session && d.msgId <= upTo));
      });
      await mapLimit(keys, s3RecordRequestConcurrency, (key) => deleteKey(this.client, bucket, key));
      if (snapshot !== undefined) this.compactions++;
    };
    this.compaction = run()
      .catch((err: unknown) => this.options.log?.('record compaction failed', { err: String(err) }))
      .finally(() => (this.compaction = undefined));
  }

  // ------------------------------------------------------------ state and fencing

  private async readState(): Promise<S3TargetState> {
    const raw = await getBytes(this.client, this.rec.bucket, stateKey(this.rec.prefix));
    return raw === undefined ? initialState : decodeState(raw);
  }

  private async refreshState(): Promise<void> {
    const startedAt = this.clock.now();
    this.setState(await this.readState(), startedAt);
  }

  private setState(state: S3TargetState, checkedAt: number): void {
    this.state = state;
    this.stateCheckedAt = Math.max(this.stateCheckedAt, checkedAt);
  }

  private stateAge(): number {
    return this.clock.now() - this.stateCheckedAt;
  }

  private checkEpoch(epoch: number): void {
    if (epoch < this.state.epoch) throw new FencedError(this.state.epoch, this.state.primary);
  }

  /** Copies check the epoch too, re-reading the state when it is old. */
  private async checkCopyEpoch(epoch: number): Promise<void> {
    if (this.stateAge() > s3StateCheckMs) await this.refreshState();
    this.checkEpoch(epoch);
  }

  /**
   * Failover to the target (clients repoint to it): marks it primary at
   * epoch+1, so a primary that comes back is fenced. Wait s3StateCheckMs
   * plus the request timeout before reading the at-risk record.
   */
  async promote(primary?: string): Promise<S3TargetState> {
    await this.ensureRecordBucket();
    const state = await this.readState();
    const next: S3TargetState = { ...state, epoch: state.epoch + 1, role: 'primary', ...(primary === undefined ? {} : { primary }) };
    await putBytes(this.client, this.rec.bucket, stateKey(this.rec.prefix), encodeState(next));
    this.setState(next, this.clock.now());
    return next;
  }

  async health(): Promise<PeerHealth> {
    await this.refreshState();
    return { role: this.state.role, epoch: this.state.epoch, recordSize: this.record.size };
  }

  // ------------------------------------------------------------ object copies

  /**
   * Per-key order: the target cannot compare seqs for us, so the seq rides
   * in x-amz-meta-lookahead-seq and a HEAD before the PUT drops a copy older
   * than what the target holds (one extra round trip per copy, off the
   * client's write path: the copier is asynchronous). This is enough
   * because the copier sends one copy per key at a time and always reads
   * the key's current version, so copies of a key leave in seq order; the
   * HEAD catches what reordering remains (a retry, a resync, a second
   * primary incarnation). What it cannot catch without a compare-and-swap
   * (If-Match, not universal): a PUT the primary gave up on (timeout) that
   * the target still completes after a newer copy landed. The copier
   * retries failed keys after a backoff of at least copyRetryBaseMs, by
   * which time such a request has normally died with its socket.
   */
  async putObject(copy: ObjectCopy, body: Readable): Promise<boolean> {
    await this.checkCopyEpoch(copy.epoch);
    const { meta } = copy;
    const loc = this.objectLocation(meta.bucket, meta.key);
    if (this.checkSeq && (await this.holdsNewer(loc, meta))) {
      body.resume();
      return false;
    }
    await copyObject(this.client, loc, meta, body, this.copyOptions);
    return true;
  }

  /**
   * A delete is a DeleteObject. Plain S3 keeps no tombstone (a delete
   * marker needs versioning, which we do not require), so only the HEAD
   * guards order: a newer copy already there is kept. A copy older than
   * the delete arriving after it could resurrect the key; the copier's
   * per-key order (above) is what prevents that.
   */
  async deleteObject(copy: DeleteCopy): Promise<boolean> {
    await this.checkCopyEpoch(copy.epoch);
    const loc = this.objectLocation(copy.bucket, copy.key);
    if (this.checkSeq) {
      const held = await this.heldSeq(loc);
      if (held === undefined) return true;
      if (held >= copy.seq) return false;
    }
    await deleteKey(this.client, loc.bucket, loc.key);
    return true;
  }

  /** Same-names mapping: the bucket itself. Prefix mapping: nothing to do
   * (a prefix exists when keys do; the keys' own deletes empty it). */
  async putBucket(copy: BucketCopy): Promise<void> {
    await this.checkCopyEpoch(copy.epoch);
    if (this.mapping.kind !== 'same') return;
    this.refuseRecordBucket(copy.bucket);
    try {
      if (copy.exists) await this.client.send(new CreateBucketCommand(this.createBucketInput(copy.bucket)));
      else await this.client.send(new DeleteBucketCommand({ Bucket: copy.bucket }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (copy.exists && (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists')) return;
      if (!copy.exists && (name === 'NoSuchBucket' || isNotFound(err))) return;
      throw mapS3Error(err, `bucket ${copy.bucket}`);
    }
  }

  /**
   * One page of the replicas of `bucket` on the target, in key order after
   * `after` (rejoin --from-s3 walks it for objects modified since the
   * failover: compare lastModified with the promotion time). Listings
   * carry no user metadata, so no seq, and `etag` is the target's own
   * (differs for a split big object): HEAD (headObject) when needed.
   */
  async listObjects(bucket: string, options: { prefix?: string; after?: string; max?: number } = {}): Promise<{ objects: Array<Omit<S3RemoteObject, 'seq'>>; nextAfter?: string }> {
    this.refuseRecordBucket(bucket);
    const base = targetLocation(this.mapping, bucket, '');
    const prefix = base.key + (options.prefix ?? '');
    let page;
    try {
      const marker = options.after === undefined ? undefined : base.key + options.after;
      page = await listPage(this.client, base.bucket, prefix, marker, Math.min(options.max ?? listKeysMax, listKeysMax));
    } catch (err) {
      if (err instanceof TargetRejectedError && err.code === 'NoSuchBucket') return { objects: [] };
      throw err;
    }
    const objects = page.contents.map((o) => ({ ...o, bucket, key: o.key.slice(base.key.length), targetEtag: o.etag }));
    const last = objects[objects.length - 1];
    return page.truncated && last !== undefined ? { objects, nextAfter: last.key } : { objects };
  }

  /**
   * Opens a replica for reading back (rejoin copies the target's newer
   * versions to the old primary): metadata as the primary stored it, minus
   * our reserved names; the body streams. undefined when absent.
   */
  async getObject(bucket: string, key: string): Promise<{ meta: S3ReplicaMeta; body: Readable } | undefined> {
    const loc = this.objectLocation(bucket, key);
    let out;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey' || isNotFound(err)) return undefined;
      throw mapS3Error(err, `GET ${loc.bucket}/${loc.key}`);
    }
    const metadata = out.Metadata ?? {};
    // Always asked: AWS omits x-amz-tagging-count when there are none, and
    // some servers (s3rver) never send it.
    const tags = await this.readTags(loc);
    const meta: S3ReplicaMeta = { ...replicaMetaOf(bucket, key, out), tags };
    return { meta, body: out.Body as Readable };
  }

  private async readTags(loc: { bucket: string; key: string }): Promise<Record<string, string>> {
    try {
      const out = await this.client.send(new GetObjectTaggingCommand({ Bucket: loc.bucket, Key: loc.key }));
      return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    } catch (err) {
      throw mapS3Error(err, `GET tagging ${loc.bucket}/${loc.key}`);
    }
  }

  /** HEAD of a replica: what `verify` and `rejoin --from-s3` compare. */
  async headObject(bucket: string, key: string): Promise<S3RemoteObject | undefined> {
    const loc = this.objectLocation(bucket, key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      const targetEtag = (out.ETag ?? '').replace(/"/g, '');
      return {
        bucket,
        key,
        etag: out.Metadata?.[etagMetaName] ?? targetEtag,
        targetEtag,
        size: out.ContentLength ?? 0,
        seq: Number(out.Metadata?.[seqMetaName] ?? 0) || 0,
        lastModified: out.LastModified?.getTime() ?? 0,
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw mapS3Error(err, `HEAD ${loc.bucket}/${loc.key}`);
    }
  }

  /** True when the target holds a newer version, or this very version
   * complete. The same seq with another size is a damaged earlier attempt
   * (a lax server may keep a truncated upload): copied again. */
  private async holdsNewer(loc: { bucket: string; key: string }, meta: ObjectCopy['meta']): Promise<boolean> {
    const held = await this.heldVersion(loc);
    if (held === undefined || held.seq < meta.seq) return false;
    return held.seq > meta.seq || held.size === meta.size;
  }

  private async heldSeq(loc: { bucket: string; key: string }): Promise<number | undefined> {
    return (await this.heldVersion(loc))?.seq;
  }

  /** Seq and size of the replica on the target (seq 0 for an object written
   * there by someone else); undefined when absent. */
  private async heldVersion(loc: { bucket: string; key: string }): Promise<{ seq: number; size: number } | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      return { seq: Number(out.Metadata?.[seqMetaName] ?? 0) || 0, size: out.ContentLength ?? -1 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw mapS3Error(err, `HEAD ${loc.bucket}/${loc.key}`);
    }
  }

  private objectLocation(bucket: string, key: string): { bucket: string; key: string } {
    this.refuseRecordBucket(bucket);
    return targetLocation(this.mapping, bucket, key);
  }

  private refuseRecordBucket(bucket: string): void {
    if (this.mapping.kind === 'same' && bucket === this.mapping.recordBucket) {
      throw new TargetRejectedError(`bucket ${bucket} holds the look-ahead record on the target`, 400, 'InvalidBucketName');
    }
  }

  /** The record's bucket must exist before the first record message. */
  private async ensureRecordBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.rec.bucket }));
      return;
    } catch (err) {
      if (!isNotFound(err) && (err as { name?: string }).name !== 'NoSuchBucket') throw mapS3Error(err, `HEAD bucket ${this.rec.bucket}`);
    }
    try {
      await this.client.send(new CreateBucketCommand(this.createBucketInput(this.rec.bucket)));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw mapS3Error(err, `create bucket ${this.rec.bucket}`);
    }
  }

  /** Buckets are created in the target's region (the client's): AWS refuses
   * a LocationConstraint other than the endpoint's, and us-east-1 takes none. */
  private createBucketInput(bucket: string): { Bucket: string; CreateBucketConfiguration?: { LocationConstraint: BucketLocationConstraint } } {
    if (this.region === 'us-east-1') return { Bucket: bucket };
    return { Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: this.region as BucketLocationConstraint } };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => {});
    await this.compaction;
    this.client.destroy();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }
}

export { reservedMetaNames };
