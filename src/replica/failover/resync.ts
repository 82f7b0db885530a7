// Resync after a failover (PROTOCOL.md "Rejoin (failback)"; claims 7, 8):
// the new primary copies onto the rejoining site only what may differ, the
// locations of its record R (the old primary's writes that may not have
// arrived) plus every key it wrote since promotion. Never the namespace.
//
// A key: its current version is copied (forced: the old primary may hold a
// newer seq that never arrived) or, when the key has none here, a forced
// delete removes it there. A prefix group: both sides are listed under the
// prefix and each key found is a key. An upload group: its final key. A
// bucket: created or deleted to match.
//
// The work list is durable (FailoverState pending): an interrupted resync
// resumes where it stopped. Client writes go on meanwhile through the
// replicator's queue; a key written while its forced copy was in flight is
// copied again (its seq moved), so a forced copy never leaves an older
// version behind a newer one.

import type { Clock } from '../../core/clock.ts';
import { S3Error } from '../../core/errors.ts';
import type { ListResult, ObjectStore } from '../../objects/types.ts';
import { locationName, parseLocationName } from '../../predict/locations.ts';
import type { LocationName } from '../../predict/types.ts';
import type { BucketCopy } from '../messages.ts';
import type { ResyncPeer } from './client.ts';
import type { FailoverState, ResyncMeta } from './state.ts';

/** Work items taken from the durable list per round. */
const resyncBatch = 64;
/** Items in flight at once. */
const resyncConcurrency = 8;
/** Copies of one key before giving up for this round (it is written faster
 * than it can be copied; it stays pending). */
const keyAttemptsMax = 5;
/** Rounds of the whole list (every loop bounded); each round takes a batch. */
const resyncRoundsMax = 10_000_000;
/** Pages listed under one prefix group (1000 keys each). */
const groupPagesMax = 1000;

export interface ResyncPlan {
  /** The locations of R (what the old primary may have written last). */
  record: LocationName[];
  /** Keys written on this site since promotion. */
  tracked: LocationName[];
}

export interface ResyncOptions {
  store: ObjectStore;
  peer: ResyncPeer;
  putBucket: (copy: BucketCopy) => Promise<void>;
  /** This store's highest seq (DiskObjectStore.currentSeq). */
  currentSeq: () => number;
  state: FailoverState;
  epoch: number;
  clock: Clock;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export class ResyncRunner {
  private meta: ResyncMeta;
  private stopped = false;

  constructor(private readonly options: ResyncOptions) {
    this.meta = options.state.resyncMeta();
  }

  progress(): ResyncMeta {
    return { ...this.meta };
  }

  stop(): void {
    this.stopped = true;
  }

  /** Plans (once) and runs until the list is empty; true when done. */
  async run(plan?: () => ResyncPlan): Promise<boolean> {
    const { state, clock } = this.options;
    if (this.meta.phase !== 'copying' && plan !== undefined) {
      const { record, tracked } = plan();
      const names = new Set(record);
      const sizes = [names.size];
      for (const n of tracked) names.add(n);
      sizes.push(names.size);
      for (const n of await this.peerUnsynced()) names.add(n);
      const planned = { record: sizes[0] as number, tracked: (sizes[1] as number) - (sizes[0] as number), peerUnsynced: names.size - (sizes[1] as number) };
      this.meta = { phase: 'copying', total: names.size, done: 0, examined: 0, copied: 0, deleted: 0, planned, startedAt: clock.now() };
      await state.addPending([...names]);
      await state.setResyncMeta(this.meta);
    }
    try {
      for (let round = 0; round < resyncRoundsMax && !this.stopped; round++) {
        const batch = state.pendingScan(resyncBatch);
        if (batch.length === 0) break;
        await mapLimit(batch, resyncConcurrency, (name) => this.item(name));
      }
    } catch {
      // Logged per item; the list stays durable and the caller retries.
      return false;
    }
    if (this.stopped || state.pendingCount() > 0) return false;
    this.meta = { ...this.meta, phase: 'done', finishedAt: clock.now() };
    await state.setResyncMeta(this.meta);
    return true;
  }

  /** The old primary's own list of writes it never saw confirmed. */
  private async peerUnsynced(): Promise<LocationName[]> {
    const out: LocationName[] = [];
    let after: string | undefined;
    for (let page = 0; page < groupPagesMax; page++) {
      const res = await this.options.peer.unsynced(after);
      out.push(...res.names);
      if (!res.more || res.names.length === 0) break;
      after = res.names[res.names.length - 1];
    }
    return out;
  }

  private async item(name: LocationName): Promise<void> {
    if (this.stopped) return;
    const loc = parseLocationName(name);
    let finished = true;
    try {
      if (loc?.kind === 'key') finished = await this.key(loc.bucket, loc.key);
      else if (loc?.kind === 'upload') await this.expand([locationName({ kind: 'key', bucket: loc.bucket, key: loc.key })]);
      else if (loc?.kind === 'prefix') await this.prefix(loc.bucket, loc.prefix);
      else if (loc?.kind === 'bucket') await this.bucket(loc.bucket);
    } catch (err) {
      if (this.stopped) return;
      this.options.log?.('resync item failed; stays pending', { name, err: String(err) });
      throw err;
    }
    if (!finished || this.stopped) return;
    this.meta = { ...this.meta, done: this.meta.done + 1 };
    await this.options.state.finishPending(name, this.meta);
  }

  /** New work found by expanding a group (counted into the total). */
  private async expand(names: LocationName[]): Promise<void> {
    const fresh = names.filter((n) => !this.options.state.hasPending(n));
    if (fresh.length === 0) return;
    await this.options.state.addPending(fresh);
    this.meta = { ...this.meta, total: this.meta.total + fresh.length, expanded: (this.meta.expanded ?? 0) + fresh.length };
  }

  /** Both sides listed under the prefix; every key that is on one side
   * only, or whose version differs, becomes a key item. A key equal on both
   * sides needs nothing: a later write here is queued (or tracked). */
  private async prefix(bucket: string, prefix: string): Promise<void> {
    const there = new Map<string, string>();
    let after: string | undefined;
    for (let page = 0; page < groupPagesMax; page++) {
      const res = await this.options.peer.list(bucket, prefix, after);
      for (const o of res.objects) there.set(o.key, versionOf(o));
      this.meta.examined += res.objects.length;
      if (!res.truncated || res.objects.length === 0) break;
      after = res.objects[res.objects.length - 1]?.key;
    }
    const differing = new Set<string>();
    const here = new Set<string>();
    after = undefined;
    for (let page = 0; page < groupPagesMax; page++) {
      const res: ListResult = await this.options.store.list({ bucket, prefix, maxKeys: 1000, ...(after ? { after } : {}) }).catch(noBucket);
      for (const o of res.objects) {
        here.add(o.key);
        if (there.get(o.key) !== versionOf(o)) differing.add(o.key);
      }
      this.meta.examined += res.objects.length;
      if (!res.isTruncated || res.objects.length === 0) break;
      after = res.nextAfter ?? res.objects[res.objects.length - 1]?.key;
    }
    for (const key of there.keys()) if (!here.has(key)) differing.add(key);
    await this.expand([...differing].map((key) => locationName({ kind: 'key', bucket, key })));
  }

  private async bucket(bucket: string): Promise<void> {
    const { store, putBucket, epoch } = this.options;
    const info = await store.headBucket(bucket).catch(() => undefined);
    if (info === undefined) await this.emptyThere(bucket);
    await putBucket({ epoch, bucket, exists: info !== undefined, region: info?.region ?? 'us-east-1', seq: 0 });
  }

  /** A bucket gone here: its keys there go first (listed: the bucket is
   * the record's location), then the bucket. */
  private async emptyThere(bucket: string): Promise<void> {
    const { peer, epoch } = this.options;
    for (let page = 0; page < groupPagesMax && !this.stopped; page++) {
      const res = await peer.list(bucket, '', undefined);
      if (res.objects.length === 0) return;
      this.meta.examined += res.objects.length;
      for (const o of res.objects) {
        await peer.deleteForced(epoch, bucket, o.key, this.options.currentSeq());
        this.meta.deleted++;
      }
    }
  }

  /** True when the peer holds what this site holds for the key. */
  private async key(bucket: string, key: string): Promise<boolean> {
    const { store, peer, epoch } = this.options;
    for (let attempt = 0; attempt < keyAttemptsMax && !this.stopped; attempt++) {
      const before = await store.headObject(bucket, key).catch(() => undefined);
      const there = await peer.head(bucket, key);
      this.meta.examined++;
      if (before === undefined) {
        if (there !== undefined) {
          // A tombstone at this site's current seq: a copy of any later
          // write here carries a higher seq and passes it.
          await peer.deleteForced(epoch, bucket, key, this.options.currentSeq());
          this.meta.deleted++;
        }
      } else if (there === undefined || there.seq !== before.seq || there.etag !== before.etag) {
        const reader = await store.openObject(bucket, key).catch(() => undefined);
        if (reader === undefined) continue; // deleted meanwhile: look again
        const body = reader.stream();
        try {
          await peer.putForced(epoch, reader.meta, body);
        } finally {
          body.destroy();
        }
        this.meta.copied++;
      }
      const after = await store.headObject(bucket, key).catch(() => undefined);
      if (after?.seq === before?.seq) return true;
    }
    return false;
  }
}

function versionOf(o: { etag: string; size: number; seq: number }): string {
  return `${o.seq}/${o.etag}/${o.size}`;
}

function noBucket(err: unknown): ListResult {
  if (err instanceof S3Error && err.code === 'NoSuchBucket') return { objects: [], isTruncated: false, commonPrefixes: [] };
  throw err;
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
