// What the primary needs from any secondary (PROTOCOL.md "Secondary kinds").
// A Lookahead gateway in secondary role (GatewayTarget), the simulation's
// in-memory peer (SimTarget), and later a plain S3 server keeping R as
// objects under a reserved prefix (issue 5) all sit behind this interface,
// so nothing here may assume HTTP or a gateway.

import type { Readable } from 'node:stream';
import type { ObjectMeta } from '../objects/types.ts';
import type {
  BucketCopy,
  DeleteCopy,
  ObjectCopy,
  PeerHealth,
  RecordAck,
  RecordMessage,
  SessionInfo,
} from './messages.ts';
import type { BatchResult, ReplicaCopy } from './batch.ts';

export interface ReplicaTarget {
  /**
   * Opens a new message session and returns S's durable record, from which
   * the primary rebuilds R' (claims 5, 10) and numbers its next message.
   * Messages of any older session are refused from then on: a record
   * message delayed in the network across a primary restart could
   * otherwise remove an entry the rebuilt R' holds (invariant 2).
   */
  openSession(from: string, epoch: number): Promise<SessionInfo>;
  /** Resolves only after R is durable on S (invariant 3). */
  applyRecord(message: RecordMessage): Promise<RecordAck>;
  /** Installs a copy; resolves with false when S held a newer seq. */
  putObject(copy: ObjectCopy, body: Readable): Promise<boolean>;
  /**
   * Many small copies (bodies in memory) in as few requests as the target
   * can: one result per item, in order ({applied} as putObject resolves, or
   * the item's own failure). Throws when the whole call failed (fencing, an
   * unreachable peer). Optional: the copier sends one by one without it.
   */
  putObjects?(items: ReplicaCopy[]): Promise<BatchResult[]>;
  /** Items a putObjects call may carry at most: what S said it accepts,
   * learnt when the session opened (more is refused whole, then sent one
   * by one). The copier sizes its batches by it. */
  batchObjectsMax?(): number;
  /** Deletes with a tombstone at seq; false when S held a newer seq. */
  deleteObject(copy: DeleteCopy): Promise<boolean>;
  /** Creates (exists) or deletes the bucket on S. */
  putBucket(copy: BucketCopy): Promise<void>;
  health(): Promise<PeerHealth>;
  close(): Promise<void>;
}

/** The peer could not be reached or did not answer in time. */
export class TargetUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TargetUnavailableError';
  }
}

/** The peer knows a higher epoch: this site was failed over and is fenced. */
export class FencedError extends Error {
  constructor(
    readonly epoch: number,
    readonly primary: string | undefined,
  ) {
    super(`peer is at epoch ${epoch}${primary ? `, primary ${primary}` : ''}`);
    this.name = 'FencedError';
  }
}

/** The peer opened a newer session: this message belongs to a dead one. */
export class StaleSessionError extends Error {
  constructor(readonly current: number) {
    super(`session superseded by ${current}`);
    this.name = 'StaleSessionError';
  }
}

/** The peer refused the request for a reason that retrying will not fix
 * soon (bad request, no such bucket yet...): the copier backs off. */
export class TargetRejectedError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'TargetRejectedError';
  }
}

/** Metadata of an object a target reports (resync, verify). */
export type RemoteObject = Pick<ObjectMeta, 'bucket' | 'key' | 'etag' | 'size' | 'seq'>;
