// Every limit in one place: a named constant, its unit last, its reason beside it.

/** S3: object keys are at most 1024 bytes of UTF-8. */
export const keyBytesMax = 1024;
/** S3: bucket names are 3 to 63 characters. */
export const bucketNameCharsMin = 3;
export const bucketNameCharsMax = 63;
/** S3: user metadata (x-amz-meta-* names and values) is at most 2 KB. */
export const userMetadataBytesMax = 2048;
/** S3: a single PUT is at most 5 GiB. */
export const putObjectBytesMax = 5 * 1024 ** 3;
/** S3: every multipart part except the last is at least 5 MiB. */
export const partSizeBytesMin = 5 * 1024 ** 2;
/** S3: a part is at most 5 GiB. */
export const partSizeBytesMax = 5 * 1024 ** 3;
/** S3: part numbers run from 1 to 10000. */
export const partNumberMin = 1;
export const partNumberMax = 10_000;
/** S3: listings return at most 1000 entries per page. */
export const listKeysMax = 1000;
/** S3: DeleteObjects takes at most 1000 keys. */
export const deleteObjectsKeysMax = 1000;
/** S3: at most 10 tags per object; key 128 and value 256 characters. */
export const tagsPerObjectMax = 10;
export const tagKeyCharsMax = 128;
export const tagValueCharsMax = 256;
/** XML request bodies (Complete, DeleteObjects, tagging) are small; refuse
 * anything larger instead of buffering it: 1000 keys x 1 KiB + markup. */
export const xmlBodyBytesMax = 2 * 1024 ** 2;
/** S3: a request's clock may be off by at most 15 minutes. */
export const requestSkewMsMax = 15 * 60 * 1000;
/** SigV4: presigned URLs live 1 second to 7 days. */
export const presignExpiresSecondsMin = 1;
export const presignExpiresSecondsMax = 7 * 24 * 3600;
/** Node's default is 16 KiB; S3 allows 8 KiB of headers per request. */
export const requestHeaderBytesMax = 16 * 1024;
/** aws-chunked: a chunk header line (hex size + ;chunk-signature=64 hex) is short. */
export const chunkHeaderBytesMax = 4096;
/** aws-chunked: trailers carry a handful of checksum headers. */
export const chunkTrailerBytesMax = 16 * 1024;
/** SigV4: derived signing keys cached per (secret, date, region); a few per
 * active access key per day, so 1024 covers far more keys than we expect. */
export const signingKeyCacheEntriesMax = 1024;

// Operator console (src/gateway/ui, issue 7).
/** Per-second write samples kept for the console's charts: five minutes is
 * what an operator watching a failover looks back over; 300 small objects. */
export const consoleHistorySeconds = 300;
/** Record names one /_lookahead/record answer lists at most: a page shows a
 * screenful, not the whole record (up to recordEntriesMax entries). */
export const consoleRecordListMax = 1000;
/** A search string longer than any location name can match nothing. */
export const consoleSearchCharsMax = 2048;
/** Write timings waiting for their commit (admitted, not yet committed);
 * more concurrent writes go untimed rather than growing the map. */
export const consoleTimingsPendingMax = 10_000;

// Look-ahead record (src/predict). PROTOCOL.md invariant 4, "Bounded risk".
/** |R| cap: every entry is an object (or group) to resync after a disaster;
 * 1e6 random ids are about 1.25 MB of roaring bitmap on the wire. Misses wait
 * for removals when the record is full, they never drop coverage. */
export const recordEntriesMax = 1_000_000;
/** A prefix group costs a listing and a copy of every key under it at
 * resync: predictors do not add a group holding more keys than this. */
export const prefixGroupKeysMax = 10_000;
/** RecentWrites remembers at most this many keys (LRU), bounding memory at
 * roughly keys x depth prefix counters. */
export const recentWritesKeysMax = 100_000;
/** Locations one miss may add to the record (own + predictions): a bad
 * predictor must not flood R. */
export const predictedLocationsMax = 64;
/** Object store: how often openObject re-reads metadata when the blob it named
 * vanished under a concurrent overwrite (each retry sees a newer commit). */
export const openObjectAttemptsMax = 3;

// Replication (src/replica). PROTOCOL.md "every queue bounded".
/** Ids in one record message (adds + removes): bounds its size on the wire
 * (64 Ki ids x ~60 bytes of JSON each is about 4 MB). */
export const recordMessageEntriesMax = 65_536;
/** Misses waiting for a record message; more get SlowDown instead of
 * growing memory without bound. */
export const pendingMissesMax = 10_000;
/** Keys in the copy queue Q; a write beyond it gets SlowDown rather than an
 * unbounded backlog (and an unbounded resync after a disaster). */
export const copyQueueEntriesMax = 1_000_000;
/** Keys of Q the copier tracks in memory at most (its ready set): a window
 * onto Q, refilled by scanning Q. Enough for several full batches in
 * flight; Q itself holds up to copyQueueEntriesMax keys durably, and one
 * set entry per queued key (a held burst queues tens of thousands) costs the
 * GC on every client write. */
export const copyReadyKeysMax = 8192;
/** A record message is tried this many times before the peer counts as down. */
export const recordSendAttempts = 3;
/** Wait for a peer's answer this long before counting the attempt lost. */
export const replicaRequestTimeoutMs = 10_000;
/** Copier retry backoff: first delay and ceiling (exponential, full jitter). */
export const copyRetryBaseMs = 100;
export const copyRetryMaxMs = 30_000;
/** An admission not committed within this time (a write that failed after
 * admit) stops pinning its record entries; a commit after it re-checks. */
export const admissionLeaseMs = 60 * 60 * 1000;
/** Synchronous copies on a miss (claim 2) committed and not yet settled;
 * past it a miss's copy is left to the copier (acked as a hit would be)
 * rather than the map growing with writes in flight. */
export const syncCopiesPendingMax = 100_000;
/** Inter-site request timestamps may differ from ours by this much (replay window). */
export const replicaAuthSkewMs = 5 * 60 * 1000;
/** JSON bodies of inter-site requests (record messages, sessions). */
export const replicaJsonBodyBytesMax = 64 * 1024 ** 2;
/** Copies of objects up to this size travel in batches (replica/batch.ts);
 * the inline body limit (64 KiB): bodies this small are held in memory anyway. */
export const replicaBatchObjectBytesMax = 64 * 1024;
/** Copies in one batch request, at most: what a secondary accepts and says
 * it accepts (SessionInfo.batchObjectsMax). A batch request costs the
 * secondary ~1.4 ms of CPU besides its copies (its transaction, the request):
 * at 64 copies a 4 KiB copy cost it 47.7 µs, at 256 30.7 µs, at 512 30.0 µs
 * (`npx tsx bench/secondary-apply.ts --per-batch N`). */
export const replicaBatchObjectsMax = 256;
/** What secondaries that do not say (versions before the above) accept. */
export const replicaBatchObjectsLegacyMax = 64;
/** Bytes of one batch request (metas and bodies; bodies fill half at most). */
export const replicaBatchBytesMax = 4 * 1024 ** 2;
/** Batch requests in flight to one secondary; copies beyond wait for the next. */
export const replicaBatchInFlightMax = 4;
/** A batch that is not full starts at least this long after the previous
 * one: under load, fewer and fuller requests (each costs a request and a
 * transaction on both sites, on the cores client writes need); adds at most
 * this much to the replication lag. */
export const replicaBatchGapMs = 20;
/** Copy priority 'background' (src/replica/pacing.ts): while clients are
 * busy the copier holds copies back, but never once the oldest held entry is
 * this old; past it the copier runs at full speed until it has caught up.
 * Bounds how much longer a hit stays on the primary only (its data, not its
 * coverage: Q entries are covered by the record). Default of
 * --copy-lag-max-ms; see the README ("Copy priority") for the choice. */
export const copyDeferLagMsDefault = 10_000;
/** Upper bound of --copy-lag-max-ms: past a minute, a burst's copies are
 * better spread than held (and the held set is memory). */
export const copyDeferLagMsMax = 60_000;
/** No deferral once Q holds this many entries: Q backpressures admissions
 * (SlowDown) at copyQueueEntriesMax, and a copier at full speed keeps the
 * other nine tenths as headroom; also bounds the held keys in memory. */
export const copyDeferQueueEntriesMax = copyQueueEntriesMax / 10;
/** Clients count as busy until this long after their last S3 request ended
 * (or arrived). A client at concurrency 1 leaves gaps of well under a
 * millisecond, but a client descheduled on a loaded machine stalls for tens
 * of ms: at 50 ms the c16 benchmark (load average 3.5 on 2 cores) saw the
 * copier start mid-burst. Half a second of silence is a pause; it delays the
 * start of a drain by that much (the lag bound is 20 times longer). */
export const copyQuietMs = 500;
/** While deferring, the copier looks at the client load this often (the end
 * of a load wakes nobody): adds at most this much to the drain start. */
export const copyDeferPollMs = 25;
/** Small committed versions the primary keeps in memory for its copier
 * (replica/primary.ts), so a queued PUT is copied without reading its meta
 * and body back from lmdb; past it the copier reads them back. None is
 * kept while copies are deferred for busy clients (holdCopy). Sized for
 * the copier's steady-state window at 64 copies a batch
 * (replicaBatchInFlightMax batches plus a batch gap of writes: ~800 4 KiB
 * copies; with 256 a batch the window is larger and more copies are read
 * back): a backlog held in memory costs more in GC than its reads save
 * (measured with 32 MiB, bench/primary-hooks-cpu.ts held mode). */
export const heldCopiesBytesMax = 4 * 1024 ** 2;
/** Location names the primary remembers the id of (replica/primary.ts
 * coverIds): every write looks up its key and each ancestor prefix, and the
 * prefixes repeat; a lookup in lmdb costs ~1 µs each. Cleared when full. */
export const coverIdsCachedNamesMax = 65_536;
/** Object store: blob files spread over 256 subdirectories (two hex chars). */
export const blobShardCount = 256;
/** Object store: new blobs go to one shard for this many writes, then the
 * next; concurrent writes then share one directory fsync (group commit). */
export const blobShardWritesPerTurn = 1024;
/** Object store: body chunks are gathered up to this size per writev, so tiny
 * chunks (aws-chunked 8 KiB) do not cost one syscall each, and a body this
 * small is written with a single O_DSYNC write. Held per upload in flight. */
export const durableWriteBatchBytes = 256 * 1024;

// Plain S3 secondary (src/replica/s3, issue 5).
/** An object copy larger than this goes to the target as a multipart upload:
 * a failed multi-GiB single PUT restarts from byte zero. Objects that were
 * multipart on the primary always go with their own part sizes (same ETag). */
export const s3TargetMultipartBytesMin = 64 * 1024 ** 2;
/** Part size when a single-part object is split for the target (raised to
 * size / partNumberMax for huge objects). */
export const s3TargetPartBytes = 16 * 1024 ** 2;
/** Record deltas on the target before a compaction into the snapshot is
 * considered: each costs one GET when a session opens. */
export const s3RecordCompactDeltasMin = 256;
/** Deltas on the target at most before compaction is forced regardless of
 * the snapshot's size: bounds the GETs of openSession. */
export const s3RecordDeltasMax = 4096;
/** Concurrent requests while reading or deleting record deltas. */
export const s3RecordRequestConcurrency = 16;
/** A primary re-reads the target's state object (epoch, session) at least
 * this often while it sends record messages: the window in which a fenced
 * primary may still get a record ack (see S3Target.applyRecord). */
export const s3StateCheckMs = 1000;

// Gateway HTTP server (src/gateway/server.ts).
/** No cap on a whole request (a 5 GiB PUT on a slow link takes long); what is
 * bounded is silence: a socket with no traffic this long is closed. */
export const socketIdleMsMax = 120_000;
/** A request's headers must have arrived within this (slow-header clients). */
export const requestHeadersMsMax = 60_000;
/** Idle keep-alive connections stay open this long: longer than SDK clients
 * keep idle sockets, so a client never writes into a socket we are closing. */
export const keepAliveIdleMs = 65_000;
/** Object store: initial lmdb map (virtual address space, not disk); it
 * grows beyond this automatically. ~1 KiB per object: a million objects. */
export const metaMapBytesInitial = 1024 ** 3;
/** Object store: bodies up to this size are stored inside the lmdb commit
 * instead of a file (one fsync per batch instead of two per object); also
 * the most a small PUT holds in memory. */
export const inlineBodyBytesMax = 64 * 1024;
/** Object store: read size for GET streams (node's default is 64 KiB); fewer,
 * larger chunks per response. Buffered per GET in flight. */
export const readChunkBytes = 256 * 1024;
/** Object store: read size for GETs of blobs of at least
 * largeReadFromBytes (the pump's pooled buffers). With a fresh buffer per
 * chunk, a 64 MiB GET (--verify-reads size) measured 59-68% of raw loopback
 * at 1 MiB against 35-39% at 256 KiB (allocation and GC dominated); the pump
 * reuses its buffers. Smaller blobs keep readChunkBytes (memory per GET in
 * flight). */
export const largeReadChunkBytes = 1024 * 1024;
/** Object store: blobs from this size on are read in largeReadChunkBytes;
 * GETs of at least this many bytes are written by the store's pump
 * (objects/pump.ts) with reused buffers. */
export const largeReadFromBytes = 8 * 1024 * 1024;
/** Object store: idle largeReadChunkBytes buffers kept for large reads (a
 * large GET holds two or three while it runs; more are allocated under
 * load and dropped when they come back): 16 MiB at most kept idle. */
export const largeReadPoolBuffersMax = 16;
/** Object store: how long to wait for lmdb-js's separate cause of a failed
 * commit (it arrives within the same turn; this only bounds the wait). */
export const commitErrorWaitMs = 1000;
