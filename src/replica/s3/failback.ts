// Failover to a plain S3 secondary and failback from it (issue 5; PROTOCOL.md
// "Failover, failback, resync"). The target runs no code of ours, so:
//
// - Failover (promoteS3Target): clients repoint to the S3 service itself; we
//   only mark the target's state object promoted (epoch+1), which fences a
//   returning primary (its next record message or copy reads the higher
//   epoch), wait until no delta the old primary could still have acked is
//   in flight, and read the at-risk list from the stored record.
//
// - Failback (S3Failback): the old primary's data dir, opened offline, is
//   brought to the target's state by the ordinary resync engine
//   (ResyncRunner) run in the opposite direction: its "store" (the side
//   whose version wins) is the target seen through S3Source, its "peer"
//   (the side that is overwritten) is the local store through LocalPeer.
//   The work list is R (the target's stored record) + the old primary's
//   own unconfirmed writes (Q, dirty) + the keys the target changed since
//   the promotion, and it is durable (FailoverState pending): a run that
//   was interrupted resumes.
//
// Plain S3 has no change feed: the keys clients wrote, overwrote or deleted
// on the target since the promotion are found by ONE listing of the target's
// mapped namespace (LIST requests: keys/1000, no GET or HEAD) merged with
// the local listing (lmdb, no I/O to the target): a key on one side only,
// one whose size (or plain MD5 ETag) differs, or one whose LastModified is
// not older than the promotion becomes a work item. Only work items are
// HEADed (and the keys under R's prefix groups: a plain S3 listing carries
// no seq, so each of those is HEADed too), and only differing ones are
// copied. So the copy cost is bounded by R + the writes since the failover;
// the listing cost is the namespace's LIST pages, which is the price of a
// target without a change feed (a delete leaves no trace but the key's
// absence). Known limits: a key a client overwrote on the target with the
// same body (same ETag) and only new metadata, outside R, is not copied
// (seq and ETag both match); a client's multipart object comes back
// without its part sizes (partNumber GETs of it are not served here).

import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { GetObjectCommand, GetObjectTaggingCommand, HeadBucketCommand, HeadObjectCommand, ListBucketsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Clock } from '../../core/clock.ts';
import { S3Error } from '../../core/errors.ts';
import type { ChecksumAlgorithm, ListResult, ObjectMeta, ObjectReader, ObjectStore, StoredChecksum } from '../../objects/types.ts';
import { objectMetaVersion } from '../../objects/types.ts';
import { locationName } from '../../predict/locations.ts';
import type { LocationName } from '../../predict/types.ts';
import type { BucketCopy } from '../messages.ts';
import type { ResyncPeer } from '../failover/client.ts';
import type { ListedObject } from '../failover/router.ts';
import { ResyncRunner } from '../failover/resync.ts';
import type { FailoverState, ResyncMeta } from '../failover/state.ts';
import type { S3Credentials } from './client.ts';
import { createS3Client, isNoSuchBucket, isNotFound, mapS3Error } from './client.ts';
import { checksumMetaName } from './copy.ts';
import type { S3RecordView, S3Target } from './target.ts';
import { replicaMetaOf } from './target.ts';
import { stateKey } from './record.ts';
import { parseS3TargetUrl, recordLocation, targetLocation, type S3BucketMapping } from './url.ts';

/** Keys listed per bucket and side while planning (every loop bounded). */
export const failbackKeysPerBucketMax = 10_000_000;
/** Buckets (or prefix-mapped bucket names) considered. */
export const failbackBucketsMax = 100_000;
/** LastModified has one-second resolution on most servers, and the
 * promotion time is the state object's own LastModified: keys modified up
 * to this long before it are examined too (a HEAD each, never a wrong skip). */
export const failbackClockMarginMs = 1000;
/** Names of the at-risk list printed by promote --from-s3 (the rest with --json --all). */
export const s3AtRiskNamesMax = 10_000;

// ---------------------------------------------------------------- failover

export interface S3PromoteResult {
  epoch: number;
  /** The state object's LastModified after the promotion (the target's clock, ms). */
  promotedAt: number;
  /** Promoted by an earlier call: the epoch was not raised again, so the
   * promotion time (the start of "written since the failover") stays. */
  alreadyPromoted: boolean;
  record: S3RecordView;
}

/**
 * Marks the target primary at epoch+1 (idempotent: a target already
 * promoted keeps its epoch and promotion time), then waits `settleMs`
 * (s3StateCheckMs + the request timeout: target.ts applyRecord) so every
 * delta a still-running old primary could have acked is visible, and reads
 * the record: the at-risk list.
 */
export async function promoteS3Target(
  target: S3Target,
  access: S3Access,
  options: { primary?: string; settleMs: number; clock: Clock },
): Promise<S3PromoteResult> {
  const before = await target.readRecord();
  const alreadyPromoted = before.state.role === 'primary';
  if (!alreadyPromoted) {
    await target.promote(options.primary);
    await options.clock.sleep(options.settleMs);
  }
  const record = await target.readRecord();
  return { epoch: record.state.epoch, promotedAt: await access.promotedAt(), alreadyPromoted, record };
}

// ---------------------------------------------------------------- raw access

/** What S3Target does not expose: bucket enumeration, the state object's
 * time, and a GET that returns checksums (the primary's, kept in
 * x-amz-meta-lookahead-checksum, or the target's own for keys clients wrote
 * there). Same URL, same credentials, same mapping as the S3Target. */
export class S3Access {
  readonly mapping: S3BucketMapping;
  readonly client: S3Client;

  constructor(url: string, credentials?: S3Credentials) {
    const parsed = parseS3TargetUrl(url);
    this.mapping = parsed.mapping;
    this.client = createS3Client({
      endpoint: parsed.endpoint,
      region: parsed.region,
      forcePathStyle: parsed.forcePathStyle,
      credentials,
    });
  }

  /** LastModified of the state object: when it was promoted, on the target's clock. */
  async promotedAt(): Promise<number> {
    const rec = recordLocation(this.mapping);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: rec.bucket, Key: stateKey(rec.prefix) }));
      return out.LastModified?.getTime() ?? 0;
    } catch (err) {
      throw mapS3Error(err, 'HEAD of the state object');
    }
  }

  /** The primary's bucket names present on the target (same names: its
   * buckets minus the record's; prefix: the first path segment under it). */
  async buckets(): Promise<string[]> {
    const m = this.mapping;
    if (m.kind === 'same') {
      const out = await this.client.send(new ListBucketsCommand({})).catch((err: unknown) => {
        throw mapS3Error(err, 'ListBuckets');
      });
      return (out.Buckets ?? []).map((b) => b.Name ?? '').filter((n) => n !== '' && n !== m.recordBucket);
    }
    const names: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < failbackBucketsMax / 1000 + 1; page++) {
      const out = await this.client
        .send(new ListObjectsV2Command({ Bucket: m.bucket, Prefix: m.prefix, Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) }))
        .catch((err: unknown) => {
          throw mapS3Error(err, `LIST ${m.bucket}/${m.prefix}`);
        });
      for (const p of out.CommonPrefixes ?? []) {
        const name = (p.Prefix ?? '').slice(m.prefix.length, -1);
        if (name !== '' && !name.startsWith('.')) names.push(name); // ".lookahead": the record
      }
      if (!out.IsTruncated || !out.NextContinuationToken) break;
      token = out.NextContinuationToken;
    }
    return names;
  }

  /** Same names: HeadBucket. Prefix: a bucket cannot be absent on its own
   * (no key under it is what absent means, and the keys settle that). */
  async bucketExists(bucket: string): Promise<boolean> {
    if (this.mapping.kind === 'prefix') return true;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
      return true;
    } catch (err) {
      if (isNotFound(err) || isNoSuchBucket(err) || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
      throw mapS3Error(err, `HEAD bucket ${bucket}`);
    }
  }

  /** A replica or a client's object, with everything the local store keeps. */
  async open(bucket: string, key: string): Promise<{ meta: ObjectMeta; body: Readable } | undefined> {
    const loc = targetLocation(this.mapping, bucket, key);
    let out;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key, ChecksumMode: 'ENABLED' }));
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey' || isNotFound(err) || isNoSuchBucket(err)) return undefined;
      throw mapS3Error(err, `GET ${loc.bucket}/${loc.key}`);
    }
    const metadata = out.Metadata ?? {};
    const checksum = primaryChecksum(metadata[checksumMetaName]) ?? targetChecksum(out as unknown as Record<string, unknown>);
    const meta: ObjectMeta = {
      v: objectMetaVersion,
      ...replicaMetaOf(bucket, key, out),
      tags: {},
      ...(checksum ? { checksum } : {}),
      blobs: [],
    };
    return { meta, body: out.Body as Readable };
  }

  close(): void {
    this.client.destroy();
  }
}

const algorithms: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

/** "ALG:TYPE:value" as copy.ts stores it. */
function primaryChecksum(raw: string | undefined): StoredChecksum | undefined {
  if (raw === undefined) return undefined;
  const [algorithm, type, ...rest] = raw.split(':');
  if (!algorithms.includes(algorithm as ChecksumAlgorithm) || (type !== 'FULL_OBJECT' && type !== 'COMPOSITE')) return undefined;
  return { algorithm: algorithm as ChecksumAlgorithm, type, value: rest.join(':') };
}

/** The target's own checksum (a key a client wrote there with one). */
function targetChecksum(out: Record<string, unknown>): StoredChecksum | undefined {
  for (const algorithm of algorithms) {
    const value = out[`Checksum${algorithm}`];
    if (typeof value !== 'string' || value === '') continue;
    const composite = out.ChecksumType === 'COMPOSITE' || value.includes('-');
    return { algorithm, type: composite ? 'COMPOSITE' : 'FULL_OBJECT', value };
  }
  return undefined;
}

function noSuchKey(bucket: string, key: string): S3Error {
  return new S3Error('NoSuchKey', 'The specified key does not exist.', { extra: { Key: `${bucket}/${key}` } });
}

// ---------------------------------------------------------------- the two sides

/** What ResyncRunner reads of the side whose version wins. */
type ResyncSource = Pick<ObjectStore, 'headObject' | 'openObject' | 'list' | 'headBucket'>;

/** The target as the resync's source. A listing carries no seq: its
 * entries get seq -1, so a prefix group's keys always become key items
 * and are HEADed (the HEAD reads the seq from x-amz-meta-lookahead-seq). */
export class S3Source implements ResyncSource {
  constructor(
    private readonly target: S3Target,
    private readonly access: S3Access,
  ) {}

  async headObject(bucket: string, key: string): Promise<ObjectMeta> {
    const o = await this.target.headObject(bucket, key).catch((err: unknown) => {
      if (isNoSuchBucket(err) || (err as { code?: string }).code === 'NoSuchBucket') return undefined;
      throw err;
    });
    if (o === undefined) throw noSuchKey(bucket, key);
    return listedMeta(bucket, key, o);
  }

  async openObject(bucket: string, key: string): Promise<ObjectReader> {
    const got = await this.access.open(bucket, key);
    if (got === undefined) throw noSuchKey(bucket, key);
    const tags = await this.tags(bucket, key, got.body);
    const meta = { ...got.meta, tags };
    return {
      meta,
      stream: () => got.body,
      close: async () => void got.body.destroy(),
    };
  }

  /** The tagging sub-resource (a GET response carries only their count). */
  private async tags(bucket: string, key: string, body: Readable): Promise<Record<string, string>> {
    try {
      const loc = targetLocation(this.access.mapping, bucket, key);
      const out = await this.access.client.send(new GetObjectTaggingCommand({ Bucket: loc.bucket, Key: loc.key }));
      return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    } catch (err) {
      body.destroy();
      throw mapS3Error(err, `GET tagging ${bucket}/${key}`);
    }
  }

  async list(query: { bucket: string; prefix?: string; after?: string; maxKeys: number }): Promise<ListResult> {
    const page = await this.target.listObjects(query.bucket, {
      ...(query.prefix ? { prefix: query.prefix } : {}),
      ...(query.after ? { after: query.after } : {}),
      max: query.maxKeys,
    });
    const objects = page.objects.map((o) => listedMeta(query.bucket, o.key, { ...o, seq: -1 }));
    return { objects, commonPrefixes: [], isTruncated: page.nextAfter !== undefined, ...(page.nextAfter ? { nextAfter: page.nextAfter } : {}) };
  }

  async headBucket(bucket: string): Promise<{ name: string; created: number; region: string }> {
    if (!(await this.access.bucketExists(bucket))) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist');
    return { name: bucket, created: 0, region: 'us-east-1' };
  }
}

function listedMeta(bucket: string, key: string, o: { etag: string; size: number; seq: number; lastModified: number }): ObjectMeta {
  return { v: objectMetaVersion, bucket, key, size: o.size, etag: o.etag, seq: o.seq, lastModified: o.lastModified, headers: {}, userMeta: {}, tags: {}, blobs: [] };
}

/** The old primary's own store as the resync's peer (the side overwritten):
 * forced applies keep the target's seq, metadata, tags and checksum. */
export class LocalPeer implements ResyncPeer {
  constructor(
    private readonly store: ObjectStore,
    private readonly unsyncedNames: () => LocationName[],
  ) {}

  async list(bucket: string, prefix: string, after: string | undefined): Promise<{ objects: ListedObject[]; truncated: boolean }> {
    const exists = await this.store.headBucket(bucket).then(() => true, () => false);
    if (!exists) return { objects: [], truncated: false };
    const page = await this.store.list({ bucket, prefix, maxKeys: 1000, ...(after ? { after } : {}) });
    return { objects: page.objects.map((o) => ({ key: o.key, etag: o.etag, size: o.size, seq: o.seq })), truncated: page.isTruncated };
  }

  async head(bucket: string, key: string): Promise<ListedObject | undefined> {
    const o = await this.store.headObject(bucket, key).catch(() => undefined);
    return o ? { key, etag: o.etag, size: o.size, seq: o.seq } : undefined;
  }

  /** All at once: the old primary's Q and dirty set are bounded by Q's limit. */
  async unsynced(): Promise<{ names: string[]; more: boolean }> {
    return { names: this.unsyncedNames(), more: false };
  }

  putForced(_epoch: number, meta: ObjectMeta, body: Readable): Promise<boolean> {
    return this.store.applyReplica(meta, body, { force: true });
  }

  deleteForced(_epoch: number, bucket: string, key: string, seq: number): Promise<boolean> {
    return this.store.applyReplicaDelete(bucket, key, seq, { force: true });
  }

  /** A bucket item of R: created or deleted here to match the target. */
  async putBucket(copy: BucketCopy): Promise<void> {
    try {
      if (copy.exists) await this.store.createBucket(copy.bucket, copy.region);
      else await this.store.deleteBucket(copy.bucket);
    } catch (err) {
      const code = err instanceof S3Error ? err.code : '';
      if (copy.exists && (code === 'BucketAlreadyOwnedByYou' || code === 'BucketAlreadyExists')) return;
      if (!copy.exists && code === 'NoSuchBucket') return;
      throw err;
    }
  }

  async close(): Promise<void> {}
}

// ---------------------------------------------------------------- failback

export interface FailbackPlanStats {
  /** Location names of the target's stored record. */
  record: number;
  /** Keys found by the listing merge (below). */
  changedOnTarget: number;
  onlyTarget: number;
  onlyLocal: number;
  modifiedSincePromotion: number;
  /** Keys listed on each side and the target's LIST requests. */
  listedTarget: number;
  listedLocal: number;
  listRequests: number;
  buckets: number;
  /** Buckets created here before copying (new on the target). */
  bucketsCreated: number;
}

export interface FailbackResult {
  done: boolean;
  resumed: boolean;
  epoch: number;
  promotedAt: number;
  plan?: FailbackPlanStats;
  resync: ResyncMeta;
}

export interface S3FailbackOptions {
  target: S3Target;
  access: S3Access;
  /** The old primary's store, opened offline (nothing else writes it). */
  store: ObjectStore;
  currentSeq: () => number;
  state: FailoverState;
  /** The old primary's unconfirmed writes (Q, dirty set, tracked keys). */
  unsynced: () => LocationName[];
  clock: Clock;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export class S3Failback {
  private readonly runner: ResyncRunner;
  private readonly peer: LocalPeer;

  constructor(private readonly options: S3FailbackOptions) {
    this.peer = new LocalPeer(options.store, options.unsynced);
    this.runner = new ResyncRunner({
      // The runner reads only ResyncSource's methods of its store.
      store: new S3Source(options.target, options.access) as ResyncSource as ObjectStore,
      peer: this.peer,
      putBucket: (copy) => this.peer.putBucket(copy),
      currentSeq: options.currentSeq,
      state: options.state,
      epoch: 0,
      clock: options.clock,
      ...(options.log ? { log: options.log } : {}),
    });
  }

  progress(): ResyncMeta {
    return this.runner.progress();
  }

  /** Plans (unless a planned run was interrupted: then resumes) and runs
   * the resync once; `done: false` leaves the durable list for a rerun. */
  async run(): Promise<FailbackResult> {
    const { target, access, state } = this.options;
    const record = await target.readRecord();
    if (record.state.role !== 'primary') {
      throw new S3Error('InvalidRequest', 'The target was not failed over (promote --from-s3 first): nothing to fail back from.');
    }
    const promotedAt = await access.promotedAt();
    const resumed = state.resyncMeta().phase === 'copying';
    let plan: FailbackPlanStats | undefined;
    let names: LocationName[] = [];
    if (!resumed) {
      const merged = await this.changedOnTarget(promotedAt - failbackClockMarginMs);
      plan = { ...merged.stats, record: record.entries.length };
      names = merged.names;
    }
    const recordNames = record.entries.map((e) => e.name);
    const done = await this.runner.run(resumed ? undefined : () => ({ record: recordNames, tracked: names }));
    return { done, resumed, epoch: record.state.epoch, promotedAt, ...(plan ? { plan } : {}), resync: this.runner.progress() };
  }

  /** The listing merge (header comment): every bucket on either side. */
  private async changedOnTarget(since: number): Promise<{ names: LocationName[]; stats: Omit<FailbackPlanStats, 'record'> }> {
    const { store, access } = this.options;
    const local = new Set((await store.listBuckets()).map((b) => b.name));
    const remote = new Set(await access.buckets());
    const stats = { changedOnTarget: 0, onlyTarget: 0, onlyLocal: 0, modifiedSincePromotion: 0, listedTarget: 0, listedLocal: 0, listRequests: 0, buckets: 0, bucketsCreated: 0 };
    const names: LocationName[] = [];
    for (const bucket of [...new Set([...local, ...remote])].sort().slice(0, failbackBucketsMax)) {
      stats.buckets++;
      if (!local.has(bucket)) {
        await this.peer.putBucket({ epoch: 0, bucket, exists: true, region: 'us-east-1', seq: 0 });
        stats.bucketsCreated++;
      }
      const there = await this.listTarget(bucket, stats);
      for await (const o of this.listLocal(bucket, stats)) {
        const t = there.get(o.key);
        there.delete(o.key);
        let why: 'onlyLocal' | 'modifiedSincePromotion' | undefined;
        if (t === undefined) why = 'onlyLocal';
        else if (t.lastModified >= since || t.size !== o.size || etagsDiffer(t.etag, o.etag)) why = 'modifiedSincePromotion';
        if (why === undefined) continue;
        stats[why]++;
        names.push(locationName({ kind: 'key', bucket, key: o.key }));
      }
      for (const key of there.keys()) {
        stats.onlyTarget++;
        names.push(locationName({ kind: 'key', bucket, key }));
      }
      // A bucket the target no longer has (same names): removed here once empty.
      if (access.mapping.kind === 'same' && !remote.has(bucket)) names.push(locationName({ kind: 'bucket', bucket }));
    }
    stats.changedOnTarget = names.length;
    return { names, stats };
  }

  private async listTarget(bucket: string, stats: { listedTarget: number; listRequests: number }): Promise<Map<string, { size: number; etag: string; lastModified: number }>> {
    const out = new Map<string, { size: number; etag: string; lastModified: number }>();
    let after: string | undefined;
    for (let page = 0; out.size < failbackKeysPerBucketMax; page++) {
      const res = await this.options.target.listObjects(bucket, after ? { after } : {});
      stats.listRequests++;
      for (const o of res.objects) out.set(o.key, { size: o.size, etag: o.targetEtag, lastModified: o.lastModified });
      stats.listedTarget += res.objects.length;
      if (res.nextAfter === undefined || res.objects.length === 0) break;
      after = res.nextAfter;
    }
    return out;
  }

  private async *listLocal(bucket: string, stats: { listedLocal: number }): AsyncGenerator<ObjectMeta> {
    let after: string | undefined;
    for (let seen = 0; seen < failbackKeysPerBucketMax; ) {
      const res = await this.options.store.list({ bucket, maxKeys: 1000, ...(after ? { after } : {}) }).catch((err: unknown) => {
        if (err instanceof S3Error && err.code === 'NoSuchBucket') return undefined;
        throw err;
      });
      if (res === undefined) return;
      seen += res.objects.length;
      stats.listedLocal += res.objects.length;
      yield* res.objects;
      if (!res.isTruncated || res.objects.length === 0) return;
      after = res.nextAfter ?? res.objects[res.objects.length - 1]?.key;
    }
  }
}

/** Only two plain MD5 ETags compare: a split or multipart copy has the
 * target's own "-N" ETag (the primary's is in its metadata: a HEAD). */
function etagsDiffer(targetEtag: string, localEtag: string): boolean {
  return !targetEtag.includes('-') && !localEtag.includes('-') && targetEtag !== localEtag;
}
