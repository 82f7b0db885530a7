// One copy of a Q entry's location to S, shared by the copier (asynchronous,
// claims 3 and 23) and the synchronous copy on a miss (claim 2).
//
// PROTOCOL.md, write path step 6: "reads the current version of K, sends it
// (or a delete) to S". What is sent is the location's state now, not the
// write that queued it: a newer version only means S gets it sooner, and the
// entry's seq travels with a delete so S never lets an older tombstone beat
// a newer copy (S drops stale copies by seq).

import { S3Error } from '../core/errors.ts';
import type { ObjectReader, ObjectStore } from '../objects/types.ts';
import { parseLocationName } from '../predict/locations.ts';
import type { ReplicaMetrics } from './metrics.ts';
import type { QEntry } from './state.ts';
import type { ReplicaTarget } from './target.ts';

export interface CopyOneDeps {
  target: ReplicaTarget;
  store: ObjectStore | undefined;
  epoch: number;
  metrics?: ReplicaMetrics;
}

/** What one copy sent: the kind and the body bytes (0 for deletes and buckets). */
export interface CopyOneResult {
  op: 'put' | 'delete' | 'bucket';
  bytes: number;
}

/** Sends the current version of `qkey`'s location to S (see above). Throws
 * what the target throws; the caller decides about retries. */
export async function copyCurrentVersion(deps: CopyOneDeps, qkey: string, entry: QEntry): Promise<CopyOneResult> {
  const { target, store, epoch, metrics } = deps;
  const loc = parseLocationName(qkey);
  if (loc === undefined || store === undefined) throw new Error(`cannot copy ${qkey}`);
  if (loc.kind === 'bucket') {
    const info = await store.headBucket(loc.bucket).catch(() => undefined);
    const region = info?.region ?? 'us-east-1';
    await target.putBucket({ epoch, bucket: loc.bucket, exists: info !== undefined, region, seq: entry.seq });
    metrics?.objectsReplicated.inc({ op: 'bucket' });
    return { op: 'bucket', bytes: 0 };
  }
  if (loc.kind !== 'key') throw new Error(`cannot copy ${qkey}`);
  const reader = await openIfExists(store, loc.bucket, loc.key);
  if (reader === undefined) {
    // Gone on P: a delete with the entry's seq. If a newer version was
    // copied meanwhile, Q's seq moved on and the entry stays for another
    // round; S never lets an older tombstone beat a newer copy.
    await target.deleteObject({ epoch, bucket: loc.bucket, key: loc.key, seq: entry.seq });
    metrics?.objectsReplicated.inc({ op: 'delete' });
    return { op: 'delete', bytes: 0 };
  }
  const body = reader.stream();
  try {
    await target.putObject({ epoch, meta: reader.meta }, body);
  } finally {
    body.destroy(); // releases the reader's pins (PinnedReader)
  }
  metrics?.bytesReplicated.inc(reader.meta.size);
  metrics?.objectsReplicated.inc({ op: 'put' });
  return { op: 'put', bytes: reader.meta.size };
}

async function openIfExists(store: ObjectStore, bucket: string, key: string): Promise<ObjectReader | undefined> {
  try {
    return await store.openObject(bucket, key);
  } catch (err) {
    if (err instanceof S3Error && (err.code === 'NoSuchKey' || err.code === 'NoSuchBucket')) return undefined;
    throw err;
  }
}
