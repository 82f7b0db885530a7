// The seam between the object store and replication (PROTOCOL.md, write path).
//
// The store calls `admit` as soon as it knows what a request will change, so
// the record message to the secondary travels in parallel with the local data
// write (step 2), awaits the admission before its metadata transaction
// (step 3: "only after a miss is acked may P commit K locally"), and calls
// `committed` inside that transaction so the copy queue Q entry commits
// atomically with the object (step 4).

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
}

/** Result of admission: `hit` when the record already covered the change. */
export interface Admission {
  hit: boolean;
}

/** A change that is being committed, with its per-store sequence number. */
export interface CommittedChange extends ChangeIntent {
  /** Monotonic per store; replicas drop copies older than what they hold. */
  seq: number;
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
}

/** Replication off: every write is admitted at once, nothing is queued. */
export const noReplication: ChangeHooks = {
  admit: async () => ({ hit: true }),
  committed: () => {},
};
