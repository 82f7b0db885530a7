// Prometheus metrics of replication (issue 3, "Status"), registered on a
// Registry the composition root passes in: no module-level singletons.

import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

/** Live numbers the gauges read at scrape time. */
export interface ReplicaGaugeSource {
  recordSize(): number;
  queueDepth(): number;
  oldestQueuedAgeMs(): number;
  dirtyCount(): number;
  peerUp(): boolean;
  /** Copy priority background holding copies back for client load (pacing.ts). */
  copiesHeld(): boolean;
  /** Age of the oldest copy waiting to be sent (0 when none waits). */
  heldAgeMs(): number;
  /** Writes admitted so far, by record hit or miss: plain numbers the
   * replicator keeps anyway, read into the counter at scrape time
   * (prom-client's inc cost the main thread ~0.7 µs per write). */
  writes(): { hits: number; misses: number };
}

export class ReplicaMetrics {
  readonly writes: Counter<'result'>;
  readonly bytesReplicated: Counter;
  readonly objectsReplicated: Counter<'op'>;
  readonly recordMessages: Counter<'outcome'>;
  readonly syncCopies: Counter<'outcome'>;
  private source: ReplicaGaugeSource | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    this.writes = new Counter({
      name: 'lookahead_replica_writes_total',
      help: 'Writes admitted on the primary, by record hit or miss',
      labelNames: ['result'],
      registers,
      collect: () => {
        const counts = this.source?.writes();
        if (counts === undefined) return;
        this.writes.reset();
        this.writes.inc({ result: 'hit' }, counts.hits);
        this.writes.inc({ result: 'miss' }, counts.misses);
      },
    });
    this.bytesReplicated = new Counter({
      name: 'lookahead_replica_bytes_replicated_total',
      help: 'Object bytes the copier delivered to the secondary',
      registers,
    });
    this.objectsReplicated = new Counter({
      name: 'lookahead_replica_objects_replicated_total',
      help: 'Copies the secondary acknowledged, by operation',
      labelNames: ['op'],
      registers,
    });
    this.recordMessages = new Counter({
      name: 'lookahead_replica_record_messages_total',
      help: 'Record messages sent to the secondary, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.syncCopies = new Counter({
      name: 'lookahead_replica_sync_copies_total',
      help: 'Misses copied before their ack (--sync-copy-on-miss), by outcome: copied, or left to the copier (peer-down, failed, overflow)',
      labelNames: ['outcome'],
      registers,
    });
    const self = this;
    const gauge = (name: string, help: string, read: (s: ReplicaGaugeSource) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect(this: Gauge) {
          if (self.source !== undefined) this.set(read(self.source));
        },
      });
    gauge('lookahead_replica_record_entries', 'Entries in the record copy R\'', (s) => s.recordSize());
    gauge('lookahead_replica_queue_depth', 'Locations in the copy queue Q', (s) => s.queueDepth());
    gauge('lookahead_replica_lag_seconds', 'Age of the oldest entry in Q', (s) => s.oldestQueuedAgeMs() / 1000);
    gauge('lookahead_replica_dirty_keys', 'Keys written while the secondary was down (degraded mode)', (s) => s.dirtyCount());
    gauge('lookahead_replica_peer_up', '1 when the secondary answers', (s) => (s.peerUp() ? 1 : 0));
    gauge('lookahead_replica_copies_held', '1 while --copy-priority background holds copies back for client load', (s) => (s.copiesHeld() ? 1 : 0));
    gauge('lookahead_replica_copies_held_seconds', 'Age of the oldest copy waiting to be sent (bounded by --copy-lag-max-ms while clients are busy)', (s) => s.heldAgeMs() / 1000);
  }

  /** The replicator whose numbers the gauges report. */
  bind(source: ReplicaGaugeSource): void {
    this.source = source;
  }
}
