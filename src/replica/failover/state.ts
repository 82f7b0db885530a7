// Durable failover state of one site (issue 4), in sub-dbs of the site's
// lmdb root:
//   failover.site     the role this site took by promotion or rejoin, with
//                     its epoch: it outlives a restart with other flags
//   failover.tracked  every key (location name) written since promotion,
//                     added inside the commit transaction of the write
//   failover.pending  the resync's work list (durable: a rejoin resumes)
//   failover.resync   the resync's phase and counters
//   failover.unsynced a rejoining old primary's Q and dirty set (writes its
//                     secondary never confirmed; the dirty ones, admitted
//                     while the secondary was down, are outside R): the new
//                     primary adds them to its resync

import type { Database, RootDatabase } from 'lmdb';
import { assert } from '../../core/assert.ts';
import type { LocationName } from '../../predict/types.ts';

/** Format version byte of every value stored below (habit 8). */
export const failoverStateVersion = 1;

export interface SiteRoleRecord {
  role: 'primary' | 'secondary';
  epoch: number;
  /** Secondary: the primary it follows. */
  primary?: string;
  /** Primary: the secondary attached after a promotion. */
  secondary?: string;
  /** Primary: promoted at this time (ms). */
  promotedAt?: number;
  /** Promoted in a planned switchover (the queue was drained first): the
   * record holds nothing at risk and is not resynced. */
  planned?: boolean;
  /** A peer showed this higher epoch: the site refuses writes. */
  fencedBy?: number;
}

export type ResyncPhase = 'idle' | 'planning' | 'copying' | 'done';

export interface ResyncMeta {
  phase: ResyncPhase;
  /** Work items planned (locations of R plus keys written since promotion). */
  total: number;
  done: number;
  /** Objects looked at on either side, and copies/deletes sent. */
  examined: number;
  copied: number;
  deleted: number;
  /** Where the plan came from: R's locations, keys written here since
   * promotion, and the old primary's unconfirmed writes (overlaps count once, in this order). */
  planned?: { record: number; tracked: number; peerUnsynced: number };
  /** Keys found by listing both sides under the record's groups. */
  expanded?: number;
  startedAt?: number;
  finishedAt?: number;
}

export const idleResync: ResyncMeta = { phase: 'idle', total: 0, done: 0, examined: 0, copied: 0, deleted: 0 };

function encode(value: unknown): Buffer {
  return Buffer.concat([Buffer.from([failoverStateVersion]), Buffer.from(JSON.stringify(value), 'utf8')]);
}

function decode<T>(buf: Uint8Array | undefined): T | undefined {
  if (buf === undefined) return undefined;
  assert(buf[0] === failoverStateVersion, 'failover state: unknown format');
  return JSON.parse(Buffer.from(buf.subarray(1)).toString('utf8')) as T;
}

const marker = Buffer.from([failoverStateVersion]);

export class FailoverState {
  private readonly site: Database<Buffer, string>;
  private readonly tracked: Database<Buffer, string>;
  private readonly pending: Database<Buffer, string>;
  private readonly resync: Database<Buffer, string>;
  private readonly unsynced: Database<Buffer, string>;
  private trackedApprox: number;

  constructor(private readonly root: RootDatabase) {
    this.site = root.openDB<Buffer, string>({ name: 'failover.site', encoding: 'binary' });
    this.tracked = root.openDB<Buffer, string>({ name: 'failover.tracked', encoding: 'binary' });
    this.pending = root.openDB<Buffer, string>({ name: 'failover.pending', encoding: 'binary' });
    this.resync = root.openDB<Buffer, string>({ name: 'failover.resync', encoding: 'binary' });
    this.unsynced = root.openDB<Buffer, string>({ name: 'failover.unsynced', encoding: 'binary' });
    this.trackedApprox = this.tracked.getKeysCount();
  }

  role(): SiteRoleRecord | undefined {
    return decode<SiteRoleRecord>(this.site.get('role'));
  }

  async setRole(role: SiteRoleRecord): Promise<void> {
    await this.site.put('role', encode(role));
  }

  /** Inside the store's commit transaction (ChangeHooks.committed). */
  trackSync(name: LocationName): void {
    if (this.tracked.get(name) !== undefined) return;
    this.tracked.putSync(name, marker);
    this.trackedApprox++;
  }

  trackedCount(): number {
    return this.trackedApprox;
  }

  /** Keys in name order after `after`, at most `limit`. */
  trackedScan(after: string | undefined, limit: number): LocationName[] {
    const out: string[] = [];
    for (const key of this.tracked.getKeys({ start: after, limit: limit + 1 })) {
      if (key === after) continue;
      out.push(key);
      if (out.length >= limit) break;
    }
    return out;
  }

  async clearTracked(): Promise<void> {
    await this.tracked.clearAsync();
    this.trackedApprox = 0;
  }

  async setUnsynced(names: readonly LocationName[]): Promise<void> {
    await this.unsynced.clearAsync();
    await this.root.transaction(() => {
      for (const n of names) this.unsynced.putSync(n, marker);
    });
  }

  unsyncedScan(after: string | undefined, limit: number): LocationName[] {
    const out: string[] = [];
    for (const key of this.unsynced.getKeys({ start: after, limit: limit + 1 })) {
      if (key === after) continue;
      out.push(key);
      if (out.length >= limit) break;
    }
    return out;
  }

  resyncMeta(): ResyncMeta {
    return decode<ResyncMeta>(this.resync.get('meta')) ?? { ...idleResync };
  }

  async setResyncMeta(meta: ResyncMeta): Promise<void> {
    await this.resync.put('meta', encode(meta));
  }

  /** Adds work items (idempotent per name). */
  async addPending(names: readonly LocationName[]): Promise<void> {
    await this.root.transaction(() => {
      for (const n of names) this.pending.putSync(n, marker);
    });
  }

  pendingScan(limit: number): LocationName[] {
    return Array.from(this.pending.getKeys({ limit }));
  }

  hasPending(name: LocationName): boolean {
    return this.pending.get(name) !== undefined;
  }

  pendingCount(): number {
    return this.pending.getKeysCount();
  }

  /** One item finished: out of the work list, counters updated, atomically. */
  async finishPending(name: LocationName, meta: ResyncMeta): Promise<void> {
    await this.root.transaction(() => {
      this.pending.removeSync(name);
      this.resync.putSync('meta', encode(meta));
    });
  }
}

/**
 * Forgets the replication state of one side ('p': Q, dirty set, R', ids and
 * epoch meta; 's': R, its names, session and bucket floors). A site that
 * changes role starts that side clean: a stale R' would let writes "hit"
 * entries the new secondary's R does not hold (R' ⊆ R, invariant 2).
 */
export async function clearReplicaSide(root: RootDatabase, side: 'p' | 's'): Promise<void> {
  const prefix = `replica.${side}.`;
  const names =
    side === 'p'
      ? ['queue', 'dirty', 'meta', 'record', 'loc-names', 'loc-ids', 'loc-free', 'loc-meta']
      : ['meta', 'bucket-floor', 'record', 'loc-names', 'loc-ids', 'loc-free', 'loc-meta'];
  const dbs = names.map((n) =>
    n === 'record' || n === 'loc-ids' || n === 'loc-free'
      ? root.openDB<Buffer, number>({ name: `${prefix}${n}`, keyEncoding: 'uint32', encoding: 'binary' })
      : root.openDB<Buffer, string>({ name: `${prefix}${n}`, encoding: 'binary' }),
  );
  for (const db of dbs) await db.clearAsync();
}
