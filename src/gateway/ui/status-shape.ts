// The status document the console reads (GET /_lookahead/status). Every
// field beyond `role` is optional: a single site has no `replication`, a
// site without WriteStats has no `writes`, and the page shows what is there.
// The composition root builds it; this type says what the page looks for.

import type { ReplicaStatus } from '../../replica/primary.ts';
import type { WriteStatsSnapshot } from './write-stats.ts';

/** A running resync (after failover or a degraded period). */
export interface ResyncProgress {
  done: number;
  total: number;
  phase: string;
}

export interface PeerInfo {
  site?: string;
  endpoint?: string;
  role?: string;
}

export interface ConsoleStatus {
  role: string;
  site?: string;
  endpoint?: string;
  uptimeSeconds?: number;
  /** The other site, when this one knows it. */
  peer?: PeerInfo;
  /** Present once replication is wired (primary). */
  replication?: Partial<ReplicaStatus> & {
    /** Invariant 4's cap on |R|. */
    recordEntriesMax?: number;
  };
  resync?: ResyncProgress;
  /** From WriteStats.snapshot(): the charts' samples. */
  writes?: WriteStatsSnapshot;
}
