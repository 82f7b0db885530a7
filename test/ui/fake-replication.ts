// A stand-in for the primary's record, for console tests on one gateway: a
// change whose own location is not in the record is a miss and adds it (one
// generation per miss), later changes to it are hits. Real writes through
// the gateway drive it, so the numbers the page must show follow the writes.

import type { Admission, ChangeHooks, ChangeIntent } from '../../src/core/changes.ts';
import { locationName, ownLocation } from '../../src/predict/locations.ts';
import type { ReplicaStatus } from '../../src/replica/primary.ts';
import type { ResyncProgress } from '../../src/gateway/ui/status-shape.ts';

export class FakeRecord implements ChangeHooks {
  private readonly idOf = new Map<string, number>();
  private readonly nameOf = new Map<number, string>();
  private readonly generationOf = new Map<number, number>();
  private generation = 0;
  hits = 0;
  misses = 0;
  peer: ReplicaStatus['peer'] = 'ok';
  resync: ResyncProgress | undefined;
  fenced = false;

  constructor(readonly entriesMax: number) {}

  async admit(change: ChangeIntent): Promise<Admission> {
    const name = locationName(ownLocation(change));
    if (this.idOf.has(name)) {
      this.hits++;
      return { hit: true };
    }
    this.misses++;
    const id = this.idOf.size + 1;
    this.idOf.set(name, id);
    this.nameOf.set(id, name);
    this.generationOf.set(id, ++this.generation);
    return { hit: false };
  }

  committed(): void {}

  ids(): number[] {
    return [...this.nameOf.keys()];
  }

  name(id: number): string | undefined {
    return this.nameOf.get(id);
  }

  generationOfId(id: number): number | undefined {
    return this.generationOf.get(id);
  }

  status(): ReplicaStatus & { recordEntriesMax: number } {
    const total = this.hits + this.misses;
    return {
      role: this.fenced ? 'fenced' : 'primary',
      peer: this.peer,
      epoch: 3,
      recordSize: this.idOf.size,
      recordEntriesMax: this.entriesMax,
      queueDepth: 2,
      oldestQueuedAgeMs: 1500,
      misses: this.misses,
      hits: this.hits,
      missRate: total === 0 ? 0 : this.misses / total,
      bytesReplicated: 3 * 1024 * 1024,
      objectsReplicated: 7,
      dirtyCount: 0,
      pendingMisses: 0,
      pendingRemovals: 0,
      admissions: 1,
      pinnedEntries: 2,
      syncCopyOnMiss: true,
      syncCopies: { copied: 5, 'peer-down': 1, failed: 2, overflow: 0 },
    };
  }
}
