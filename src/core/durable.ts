// THE durable write. Every byte the store keeps goes through `durableWrite`,
// in this order (PROTOCOL.md invariant 3, "ack means durable"):
//
//   1. stream the body through the digest into a temp file under <dataDir>/tmp
//   2. fsync the temp file
//   3. verify the digest (callback; an S3Error rejects the body)
//   4. rename the temp file into its sharded blob dir
//   5. fsync the blob dir, so the rename survives a crash
//   6. await the replication admission (started by the caller in parallel
//      with steps 1-5; on a miss it resolves after the secondary's ack)
//   7. run the metadata transaction (callback), which makes the blob visible
//
// Any error before 7 commits removes the file (temp or renamed blob): a
// client that disconnects mid-stream makes the body stream error, so its temp
// file goes too. A crash between 4 and 7 leaves an unreferenced blob, which
// the store's sweep on open removes. Nothing is ever visible before step 7,
// so a crash leaves the old version or the new one, never a torn one.

import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobRef, BodyDigest } from '../objects/types.ts';
import { DigestingTransform, type DigestOptions } from './checksum.ts';

/** Where temp files and blobs live. */
export interface BlobDirs {
  tmpDir: string;
  blobDir: string;
}

/** Random blob id: 32 hex chars. Object keys never become file paths. */
export function newBlobId(): string {
  return randomBytes(16).toString('hex');
}

/** Blobs are sharded by the first two hex chars (256 subdirs). */
export function blobShard(id: string): string {
  return id.slice(0, 2);
}

export function blobPath(dirs: BlobDirs, id: string): string {
  return join(dirs.blobDir, blobShard(id), id);
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function unlinkQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export interface DurableWriteInput<T> {
  dirs: BlobDirs;
  body: Readable;
  digest: DigestOptions;
  /** Throws an S3Error to reject the body (nothing is committed). */
  verify: (digest: BodyDigest) => void;
  /** The replication admission, already started by the caller. */
  admission: Promise<unknown>;
  /** The metadata transaction; resolves once durably committed. */
  commit: (blob: BlobRef, digest: BodyDigest) => Promise<T>;
}

/** Streams, syncs, verifies, renames, admits and commits, in that order. */
export async function durableWrite<T>(input: DurableWriteInput<T>): Promise<T> {
  const { dirs } = input;
  const id = newBlobId();
  const tmpPath = join(dirs.tmpDir, `${id}.tmp`);
  const finalPath = blobPath(dirs, id);
  let current: string | undefined = tmpPath;
  try {
    const digester = new DigestingTransform(input.digest);
    // flush: true makes the stream fsync the file before it closes (steps 1-2).
    await pipeline(input.body, digester, createWriteStream(tmpPath, { flags: 'wx', flush: true }));
    const digest = digester.result();
    input.verify(digest); // 3
    await rename(tmpPath, finalPath); // 4
    current = finalPath;
    await fsyncDir(join(dirs.blobDir, blobShard(id))); // 5
    await input.admission; // 6
    const result = await input.commit({ id, size: digest.size }, digest); // 7
    current = undefined;
    return result;
  } catch (err) {
    if (current) await unlinkQuietly(current).catch(() => {});
    throw err;
  }
}
