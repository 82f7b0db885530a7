// The seam between the object store and replication (PROTOCOL.md, write path).
//
// The store calls `admit` as soon as it knows what a request will change, so
// the record message to the secondary travels in parallel with the local data
// write (step 2), awaits the admission before its metadata transaction
// (step 3: "only after a miss is acked may P commit K locally"), and calls
// `committed` inside that transaction so the copy queue Q entry commits
// atomically with the object (step 4). A write that fails after `admit`
// calls `aborted`, so what its admission holds (record pins) goes at once
// instead of at the end of a lease; a committed one calls `settled` after
// its transaction and before the client's ack (claim 2's synchronous copy
// on a miss waits there).

/** What a mutating request is about to change. */
export type ChangeKind =
  | 'put' // PutObject, CopyObject (destination), CompleteMultipartUpload (final key)
  | 'delete' // DeleteObject, each key of DeleteObjects
  | 'tagging' // Put/DeleteObjectTagging
  | 'mpu-create' // CreateMultipartUpload: the upload group (parts + final key)
  | 'mpu-part' // UploadPart, UploadPartCopy
  | 'mpu-abort' // AbortMultipartUpload
  | 'bucket-create'
  | 'bucket-delete';

export interface ChangeIntent {
  kind: ChangeKind;
  bucket: string;
  /** Object key; '' for bucket changes. */
  key: string;
  /** Set for mpu-* kinds and for a Complete (kind 'put'). */
  uploadId?: string;
  /** This one write, from `admit` to `committed` or `aborted` (see
   * newWriteToken). Absent: hooks fall back to matching by name. */
  token?: WriteToken;
}

/**
 * Identifies one write across the hooks. Admissions are found by it, never
 * by key alone: two writers of one key hold separate admissions, and the
 * one that fails must not release the other's (a key-only release could
 * unpin record entries a concurrent writer still needs).
 */
export type WriteToken = symbol;

export function newWriteToken(): WriteToken {
  return Symbol('write');
}

/** Result of admission: `hit` when the record already covered the change. */
export interface Admission {
  hit: boolean;
}

/**
 * The version a change commits, when the store has all of it in memory (a
 * small PUT whose body is stored inline): replication may copy it without
 * reading it back. `meta` is the store's object meta, opaque here (core
 * knows no objects).
 */
export interface CommittedVersion {
  readonly meta: unknown;
  readonly body: Buffer;
}

/** A change that is being committed, with its per-store sequence number. */
export interface CommittedChange extends ChangeIntent {
  /** Monotonic per store; replicas drop copies older than what they hold. */
  seq: number;
  /** Set by writes that hold the whole committed version (see above). */
  version?: CommittedVersion;
}

export interface ChangeHooks {
  /**
   * Called before the data write starts. Resolves when the local commit may
   * proceed: at once on a hit, after the secondary's durable ack on a miss.
   * Rejects (with an S3Error) when this site may not accept the write.
   */
  admit(change: ChangeIntent): Promise<Admission>;
  /**
   * Called synchronously inside the lmdb transaction that commits the change.
   * Writes done here (Q entries) commit or roll back with the object.
   */
  committed(change: CommittedChange): void;
  /**
   * The write admitted with `change.token` will not commit (its body
   * failed, a check refused it, its transaction failed): release what its
   * admission holds. Called after the admission settled; without a token,
   * or for a token already committed or released, a no-op.
   */
  aborted?(change: ChangeIntent): void;
  /**
   * Called after the commit transaction, before the client's ack; resolves
   * when the ack may go. Never rejects: the change is committed already.
   */
  settled?(change: CommittedChange): Promise<void>;
}

/** Replication off: every write is admitted at once, nothing is queued. */
export const noReplication: ChangeHooks = {
  admit: async () => ({ hit: true }),
  committed: () => {},
};
