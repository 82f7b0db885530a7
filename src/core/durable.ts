// THE durable write. Every byte the store keeps goes through `durableWrite`,
// in this order (PROTOCOL.md invariant 3, "ack means durable"):
//
//   1. stream the body through the digest into a temp file under <dataDir>/tmp
//      (the digest includes the CRC32 the blob records: reads check it)
//   2. make the temp file's data durable (fdatasync, or O_DSYNC for a body
//      that fits one write batch: same guarantee, one round trip less)
//   3. verify the digest (callback; an S3Error rejects the body)
//   4. rename the temp file into its sharded blob dir
//   5. fsync the blob dir, so the rename survives a crash
//   6. await the replication admission (started by the caller in parallel
//      with steps 1-5; on a miss it resolves after the secondary's ack)
//   7. run the metadata transaction (callback), which makes the blob visible
//
// Small bodies (at most `inlineMaxBytes`, when the caller allows it) skip
// steps 1-2 and 4-5: the bytes, digested while they arrive and held in
// memory (bounded by that limit), are written by step 7 into lmdb inside the
// metadata transaction itself. That is at least as durable (the commit is
// fsync'ed before it resolves) and concurrent small PUTs then share one
// fsync per lmdb batch instead of paying two each (file and directory).
//
// Any error before 7 commits removes the file (temp or renamed blob): a
// client that disconnects mid-stream makes the body stream error, so its temp
// file goes too. A crash between 4 and 7 leaves an unreferenced blob, which
// the store's sweep on open removes. Nothing is ever visible before step 7,
// so a crash leaves the old version or the new one, never a torn one.

import { randomBytes, randomUUID } from 'node:crypto';
import fs, { constants as fsConstants } from 'node:fs';
import { mkdir, rename, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobRef, BodyDigest } from '../objects/types.ts';
import { assert } from './assert.ts';
import { DigestingTransform, type DigestOptions } from './checksum.ts';
import { S3Error } from './errors.ts';
import { blobShardCount, blobShardWritesPerTurn, durableWriteBatchBytes } from './limits.ts';

// Plain-fd calls: on this hot path (several per PUT) they cost noticeably
// less than FileHandle objects, which carry GC finalizers and close tracking.
const openFd = promisify(fs.open);
const writevFd = promisify(fs.writev);
const fdatasyncFd = promisify(fs.fdatasync);
const fsyncFd = promisify(fs.fsync);
const closeFd = promisify(fs.close);

/** Per-directory group commit of fsync: renames that finished before a sync
 * started share it, so concurrent writers into one dir pay one fsync. */
class DirSyncer {
  private fd?: Promise<number>;
  private running?: Promise<void>;
  private queued?: Promise<void>;

  constructor(private readonly dir: string) {}

  /** Resolves after an fsync of the dir that started after this call. */
  sync(): Promise<void> {
    if (!this.running) return this.start();
    // The running sync may have begun before our rename: wait for the next one.
    this.queued ??= this.running.catch(() => {}).then(() => {
      this.queued = undefined;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<void> {
    if (!this.fd) {
      const opening = openFd(this.dir, 'r');
      this.fd = opening;
      opening.catch(() => {
        if (this.fd === opening) this.fd = undefined; // retry on the next sync
      });
    }
    const run = this.fd!.then((fd) => fsyncFd(fd));
    this.running = run;
    const clear = () => {
      if (this.running === run) this.running = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  async close(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    if (fd) await closeFd(await fd);
  }
}

/**
 * Where temp files and blobs live: <root>/tmp and <root>/blobs/<shard>/<id>.
 * New blob ids share one shard for a run of writes, then move on to the next
 * shard (ids stay random after the two shard chars): concurrent writes land
 * in one directory and share its fsync, and over time all shards fill evenly.
 */
export class BlobSpace {
  readonly tmpDir: string;
  readonly blobDir: string;
  private readonly syncers = new Map<string, DirSyncer>();
  private shard: number;
  private writesInShard = 0;

  constructor(root: string, startShard = randomBytes(1)[0]!) {
    this.tmpDir = join(root, 'tmp');
    this.blobDir = join(root, 'blobs');
    this.shard = startShard % blobShardCount;
  }

  async ensureDirs(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    for (const shard of this.shards()) await mkdir(join(this.blobDir, shard), { recursive: true });
  }

  shards(): string[] {
    return Array.from({ length: blobShardCount }, (_, i) => shardName(i));
  }

  /** Random blob id (32 hex chars) whose first two chars are the current shard. */
  newBlobId(): string {
    if (this.writesInShard >= blobShardWritesPerTurn) {
      this.writesInShard = 0;
      this.shard = (this.shard + 1) % blobShardCount;
    }
    this.writesInShard++;
    return shardName(this.shard) + randomBytes(15).toString('hex');
  }

  pathOf(id: string): string {
    return join(this.blobDir, blobShard(id), id);
  }

  syncShardOf(id: string): Promise<void> {
    const shard = blobShard(id);
    let syncer = this.syncers.get(shard);
    if (!syncer) {
      syncer = new DirSyncer(join(this.blobDir, shard));
      this.syncers.set(shard, syncer);
    }
    return syncer.sync();
  }

  async close(): Promise<void> {
    for (const s of this.syncers.values()) await s.close().catch(() => {});
    this.syncers.clear();
  }
}

function shardName(i: number): string {
  return i.toString(16).padStart(2, '0');
}

export function blobShard(id: string): string {
  return id.slice(0, 2);
}

export async function unlinkQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export interface DurableWriteInput<T> {
  space: BlobSpace;
  body: Readable;
  digest: DigestOptions;
  /** Throws an S3Error to reject the body (nothing is committed). */
  verify: (digest: BodyDigest) => void;
  /** The replication admission, already started by the caller. A rejection
   * stops the streaming at the next chunk instead of after the whole body. */
  admission: Promise<unknown>;
  /** Bodies longer than this fail with EntityTooLarge while streaming. */
  maxBytes: number;
  /** Bodies up to this size are handed to `commit` in memory (0: never). */
  inlineMaxBytes: number;
  /**
   * The metadata transaction; resolves once durably committed. With `inline`
   * the blob has no file: the transaction must store those bytes under
   * `blob.id` (an inline id, see isInlineBlobId).
   */
  commit: (blob: BlobRef, digest: BodyDigest, inline?: Buffer) => Promise<T>;
}

/**
 * Inline blob ids start with "i" (file blob ids are hex), 32 chars like them:
 * "i", 12 hex digits of the wall clock (ms), then 19 random hex digits (76
 * bits). The clock digits make ids sort in creation order, so a commit's new
 * bodies go to the right edge of the inline sub-db, one or two leaf pages,
 * instead of one random leaf each (a 4 KiB page copied and written per body:
 * a secondary wrote 12.3 KiB per 4 KiB copy with random ids, 8.8 with these).
 * Order is only locality, never correctness: uniqueness rests on the random
 * digits, and a clock stepping back only costs the locality.
 * randomUUID draws on an entropy pool node refills once per 128 ids; a
 * randomBytes call per small PUT showed up in PUT profiles.
 */
export function newInlineBlobId(): string {
  const u = randomUUID(); // xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx
  return `i${inlineIdClock()}${u.slice(24)}${u.slice(0, 7)}`;
}

/** `count` fresh inline ids from one random draw (replica batches make many per turn). */
export function newInlineBlobIds(count: number): string[] {
  const clock = inlineIdClock();
  const hex = randomBytes(10 * count).toString('hex');
  return Array.from({ length: count }, (_, i) => `i${clock}${hex.slice(20 * i, 20 * i + 19)}`);
}

/** The ordering digits of an inline id (12 hex digits of ms last until 10889). */
function inlineIdClock(): string {
  return Date.now().toString(16).padStart(12, '0');
}

export function isInlineBlobId(id: string): boolean {
  return id.startsWith('i');
}

/**
 * Streams, syncs, verifies, renames, admits and commits, in that order.
 * The body is never destroyed here, even when we stop reading it early: it
 * may be the client's request, and the gateway still has to write the error
 * response on that socket (it closes the connection afterwards).
 */
export async function durableWrite<T>(input: DurableWriteInput<T>): Promise<T> {
  const { space } = input;
  let refused: { error: unknown } | undefined;
  input.admission.catch((error: unknown) => (refused = { error }));
  const check = (size: number): void => {
    if (refused) throw refused.error;
    if (size > input.maxBytes) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
  };
  const digester = new DigestingTransform(input.digest);
  const chunks = input.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head = input.inlineMaxBytes > 0
    ? await readHead(chunks, digester, check, input.inlineMaxBytes)
    : { ended: false, buffered: [] };
  if (head.ended) return commitInline(input, digester, head.buffered);
  digester.trackCrc32(head.buffered); // a file blob records its CRC32 (checked on read)
  const id = space.newBlobId();
  const tmpPath = join(space.tmpDir, `${id}.tmp`);
  let current: string | undefined = tmpPath;
  try {
    const digest = await writeSynced(tmpPath, head.buffered, chunks, digester, check); // 1-2
    input.verify(digest); // 3
    await rename(tmpPath, space.pathOf(id)); // 4
    current = space.pathOf(id);
    await space.syncShardOf(id); // 5
    await input.admission; // 6
    assert(digest.crc32 !== undefined, 'file blob digest without its CRC32');
    const result = await input.commit({ id, size: digest.size, crc32: digest.crc32 }, digest); // 7
    current = undefined;
    return result;
  } catch (err) {
    if (current) await unlinkQuietly(current).catch(() => {});
    throw err;
  }
}

/** Bodies are byte streams; a string chunk (setEncoding, tests) is UTF-8. */
function asBuffer(chunk: Buffer | string): Buffer {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
}

/** Reads until the body ends or exceeds `limit` bytes; a failing body throws. */
async function readHead(
  chunks: AsyncIterator<Buffer>,
  digester: DigestingTransform,
  check: (size: number) => void,
  limit: number,
): Promise<{ ended: boolean; buffered: Buffer[] }> {
  const buffered: Buffer[] = [];
  let size = 0;
  while (size <= limit) {
    const next = await chunks.next();
    if (next.done) return { ended: true, buffered };
    const chunk = asBuffer(next.value);
    size += chunk.length;
    check(size);
    digester.update(chunk);
    buffered.push(chunk);
  }
  return { ended: false, buffered };
}

/** Small body: verify, admit, and commit the bytes with the metadata. */
async function commitInline<T>(input: DurableWriteInput<T>, digester: DigestingTransform, buffered: Buffer[]): Promise<T> {
  const digest = digester.result();
  input.verify(digest);
  await input.admission;
  const data = Buffer.concat(buffered);
  return input.commit({ id: newInlineBlobId(), size: data.length }, digest, data);
}

/** O_DSYNC: each write returns once its data (and the size) is durable. */
const createSynced = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_DSYNC;

/**
 * Steps 1-2: the rest of the body through the digest into a new file,
 * durably. `buffered` holds chunks already read (and digested). Chunks are
 * gathered into batches (one writev each). A body that fits in one batch is
 * written with one O_DSYNC writev: open, write, close, no separate fdatasync
 * round trip. A larger one is written batch by batch and fdatasync'ed at the
 * end. The file is created only when the first batch is ready.
 */
async function writeSynced(
  path: string,
  buffered: Buffer[],
  chunks: AsyncIterator<Buffer>,
  digester: DigestingTransform,
  check: (sizeSoFar: number) => void,
): Promise<BodyDigest> {
  let fd: number | undefined;
  try {
    let batch: Buffer[] = [...buffered];
    let batchBytes = buffered.reduce((n, b) => n + b.length, 0);
    let size = batchBytes;
    // A premature close or error of the body (client gone) throws here.
    for (;;) {
      if (batchBytes >= durableWriteBatchBytes) {
        fd ??= await openFd(path, 'wx');
        await writeAll(fd, batch, batchBytes);
        batch = [];
        batchBytes = 0;
      }
      const next = await chunks.next();
      if (next.done) break;
      const chunk = asBuffer(next.value);
      size += chunk.length;
      check(size);
      digester.update(chunk);
      batch.push(chunk);
      batchBytes += chunk.length;
    }
    if (fd === undefined) {
      fd = await openFd(path, createSynced);
      await writeAll(fd, batch, batchBytes);
    } else {
      await writeAll(fd, batch, batchBytes);
      await fdatasyncFd(fd); // also flushes the size, all a reader needs
    }
    return digester.result();
  } finally {
    if (fd !== undefined) await closeFd(fd);
  }
}

/** writev until every byte is written (a regular file rarely writes short,
 * but a nearly full disk can); each round makes progress or throws. */
async function writeAll(fd: number, buffers: Buffer[], total: number): Promise<void> {
  let rest = buffers;
  let left = total;
  while (left > 0) {
    const { bytesWritten: written } = await writevFd(fd, rest);
    if (written <= 0) throw new Error('writev made no progress');
    left -= written;
    if (left > 0) rest = [Buffer.concat(rest).subarray(written)];
  }
}
