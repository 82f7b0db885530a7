import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeHooks, ChangeIntent, CommittedChange } from '../../src/core/changes.ts';
import { S3Error } from '../../src/core/errors.ts';
import type { ObjectMeta } from '../../src/objects/types.ts';
import { makeFixture, noAttrs, putInput, readAll, type Fixture } from './helpers.ts';

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.cleanup();
  fx = undefined;
});

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    return (err as Error).message;
  }
  return 'ok';
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

/** These tests count blob files, so every body becomes one (no inline bodies). */
const filesOnly = { inlineMaxBytes: 0 };

const blobFiles = (f: Fixture) => filesUnder(join(f.dataDir, 'blobs'));
const tmpFiles = (f: Fixture) => filesUnder(join(f.dataDir, 'tmp'));

/** Hooks that log every call and let a test hold admissions open. */
function recordingHooks() {
  const log: string[] = [];
  const intents: ChangeIntent[] = [];
  const committed: CommittedChange[] = [];
  let gate: Promise<void> = Promise.resolve();
  let failCommit = false;
  const hooks: ChangeHooks = {
    admit: async (intent) => {
      log.push(`admit:${intent.kind}`);
      intents.push(intent);
      await gate;
      log.push(`admitted:${intent.kind}`);
      return { hit: false };
    },
    committed: (change) => {
      log.push(`committed:${change.kind}`);
      if (failCommit) throw new Error('queue write failed');
      committed.push(change);
    },
  };
  return {
    hooks, log, intents, committed,
    hold(): () => void {
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      return open;
    },
    failCommits(v: boolean) {
      failCommit = v;
    },
  };
}

describe('hooks', () => {
  it('admits at the start, streams meanwhile, commits only after the admission', async () => {
    const rec = recordingHooks();
    fx = await makeFixture(rec.hooks, filesOnly);
    await fx.store.createBucket('h', 'us-east-1');
    const release = rec.hold();
    const body = randomBytes(100_000);
    const put = fx.store.putObject(putInput('h', 'k', body));
    // The data reaches its blob while the admission is still pending.
    for (let i = 0; i < 200 && (await blobFiles(fx)).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect((await blobFiles(fx)).length).toBe(1);
    expect(await code(fx.store.headObject('h', 'k'))).toBe('NoSuchKey');
    expect(rec.log).toEqual(['admit:bucket-create', 'admitted:bucket-create', 'committed:bucket-create', 'admit:put']);
    release();
    const meta = await put;
    expect(rec.log.slice(3)).toEqual(['admit:put', 'admitted:put', 'committed:put']);
    // The commit carries the token its admission got: the hooks match them by it.
    expect(typeof rec.intents[1]?.token).toBe('symbol');
    expect(rec.committed[1]).toEqual({ kind: 'put', bucket: 'h', key: 'k', seq: meta.seq, token: rec.intents[1]?.token });
    expect(meta.seq).toBe(rec.committed[0]!.seq + 1);
  });

  it('writes made in committed() share the metadata transaction', async () => {
    const rec = recordingHooks();
    fx = await makeFixture(undefined, filesOnly);
    const queue = fx.root.openDB<number, string>({ name: 'test.queue' });
    fx.store.setChangeHooks({
      admit: rec.hooks.admit,
      committed: (c) => {
        queue.put(`${c.bucket}/${c.key}`, c.seq);
        rec.hooks.committed(c);
      },
    });
    await fx.store.createBucket('h', 'us-east-1');
    const m = await fx.store.putObject(putInput('h', 'k', 'v1'));
    expect(queue.get('h/k')).toBe(m.seq);
    // A throwing committed() rolls back the object AND the queue write.
    rec.failCommits(true);
    expect(await code(fx.store.putObject(putInput('h', 'k2', 'v2')))).toBe('queue write failed');
    expect(queue.get('h/k2')).toBeUndefined();
    expect(await code(fx.store.headObject('h', 'k2'))).toBe('NoSuchKey');
    expect(fx.store.currentSeq()).toBe(m.seq);
    await fx.store.settled();
    expect((await blobFiles(fx)).length).toBe(1);
  });

  it('a refused admission commits nothing and leaves no file', async () => {
    fx = await makeFixture(undefined, filesOnly);
    await fx.store.createBucket('h', 'us-east-1');
    fx.store.setChangeHooks({
      admit: async () => {
        throw new S3Error('ServiceUnavailable', 'secondary unreachable');
      },
      committed: () => {},
    });
    expect(await code(fx.store.putObject(putInput('h', 'k', 'x')))).toBe('ServiceUnavailable');
    expect(await code(fx.store.deleteBucket('h'))).toBe('ServiceUnavailable');
    expect(await blobFiles(fx)).toEqual([]);
    expect(await tmpFiles(fx)).toEqual([]);
    expect(await code(fx.store.headObject('h', 'k'))).toBe('NoSuchKey');
  });

  it('a refusal that arrives mid-stream stops the upload without waiting for the body', async () => {
    fx = await makeFixture(undefined, filesOnly);
    await fx.store.createBucket('h', 'us-east-1');
    let refuse!: (e: Error) => void;
    fx.store.setChangeHooks({
      admit: () => new Promise((_, reject) => (refuse = reject)),
      committed: () => {},
    });
    let pushed = 0;
    const endless = new Readable({
      read() {
        pushed++;
        setTimeout(() => this.push(Buffer.alloc(1024)), 1);
      },
    });
    const put = fx.store.putObject(putInput('h', 'k', endless));
    await new Promise((r) => setTimeout(r, 30));
    refuse(new S3Error('ServiceUnavailable', 'secondary unreachable'));
    expect(await code(put)).toBe('ServiceUnavailable');
    expect(pushed).toBeGreaterThan(0);
    // Left to the caller: the gateway still writes the error on that socket.
    expect(endless.destroyed).toBe(false);
    expect(await tmpFiles(fx)).toEqual([]);
    expect(await blobFiles(fx)).toEqual([]);
  });

  it('every mutation goes through admit and committed with its ChangeKind', async () => {
    const rec = recordingHooks();
    fx = await makeFixture(rec.hooks, filesOnly);
    const s = fx.store;
    await s.createBucket('h', 'us-east-1');
    await s.putObject(putInput('h', 'a', 'x'));
    await s.setTags('h', 'a', { t: '1' });
    await s.copyObject({ bucket: 'h', key: 'a' }, { bucket: 'h', key: 'b' }, 'copy');
    await s.deleteObject('h', 'a');
    const up = await s.createMultipartUpload('h', 'm', noAttrs);
    const p = await s.uploadPart({ bucket: 'h', key: 'm', uploadId: up.uploadId, partNumber: 1, body: Readable.from([Buffer.from('p')]), algorithms: [], sha256: false, verify: () => {} });
    await s.completeMultipartUpload('h', 'm', up.uploadId, [{ partNumber: 1, etag: p.etag }]);
    const up2 = await s.createMultipartUpload('h', 'm2', noAttrs);
    await s.abortMultipartUpload('h', 'm2', up2.uploadId);
    await s.deleteObject('h', 'b');
    await s.deleteObject('h', 'm');
    await s.deleteBucket('h');
    expect(rec.committed.map((c) => c.kind)).toEqual([
      'bucket-create', 'put', 'tagging', 'put', 'delete', 'mpu-create', 'mpu-part', 'put', 'mpu-create', 'mpu-abort', 'delete', 'delete', 'bucket-delete',
    ]);
    expect(rec.intents.map((i) => i.kind)).toEqual(rec.committed.map((c) => c.kind));
    const seqs = rec.committed.map((c) => c.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(rec.committed[6]).toMatchObject({ kind: 'mpu-part', key: 'm', uploadId: up.uploadId });
    expect(rec.committed[7]).toMatchObject({ kind: 'put', key: 'm', uploadId: up.uploadId });
  });
});

describe('durability', () => {
  it('a failed verify leaves no temp file, no blob and no metadata', async () => {
    fx = await makeFixture(undefined, filesOnly);
    await fx.store.createBucket('d', 'us-east-1');
    const bad = putInput('d', 'k', randomBytes(50_000), {
      verify: () => {
        throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
      },
    });
    expect(await code(fx.store.putObject(bad))).toBe('BadDigest');
    expect(await tmpFiles(fx)).toEqual([]);
    expect(await blobFiles(fx)).toEqual([]);
    expect(await code(fx.store.headObject('d', 'k'))).toBe('NoSuchKey');
    expect(fx.store.currentSeq()).toBe(1); // only the bucket
  });

  it('a client that disconnects mid-stream leaves nothing behind', async () => {
    fx = await makeFixture(undefined, filesOnly);
    await fx.store.createBucket('d', 'us-east-1');
    const body = new Readable({ read() {} });
    const put = fx.store.putObject(putInput('d', 'k', body));
    body.push(randomBytes(64 * 1024));
    await new Promise((r) => setTimeout(r, 20));
    body.destroy(new Error('aborted'));
    expect(await code(put)).toBe('aborted');
    expect(await tmpFiles(fx)).toEqual([]);
    expect(await blobFiles(fx)).toEqual([]);
    expect(await code(fx.store.headObject('d', 'k'))).toBe('NoSuchKey');
  });

  it('the sweep on reopen removes temp files and unreferenced blobs only', async () => {
    fx = await makeFixture(undefined, filesOnly);
    const s = fx.store;
    await s.createBucket('d', 'us-east-1');
    await s.putObject(putInput('d', 'kept', 'object data'));
    const up = await s.createMultipartUpload('d', 'mpu', noAttrs);
    await s.uploadPart({ bucket: 'd', key: 'mpu', uploadId: up.uploadId, partNumber: 1, body: Readable.from([Buffer.from('part')]), algorithms: [], sha256: false, verify: () => {} });
    const referenced = (await blobFiles(fx)).sort();
    expect(referenced.length).toBe(2);
    // What a crash leaves: a half-written temp file and a renamed blob whose commit never happened.
    await writeFile(join(fx.dataDir, 'tmp', 'dead.tmp'), 'partial');
    await mkdir(join(fx.dataDir, 'blobs', 'ab'), { recursive: true });
    await writeFile(join(fx.dataDir, 'blobs', 'ab', 'ab0000000000000000000000000000ff'), 'orphan');
    const reopened = await fx.reopen();
    expect(reopened.lastSweep).toEqual({ tmp: 1, orphans: 1 });
    expect(await tmpFiles(fx)).toEqual([]);
    expect((await blobFiles(fx)).sort()).toEqual(referenced);
    expect((await readAll((await reopened.openObject('d', 'kept')).stream())).toString()).toBe('object data');
    expect((await reopened.listParts('d', 'mpu', up.uploadId, { maxParts: 10 })).parts.length).toBe(1);
  });
});

describe('concurrency', () => {
  it('a reader that opened before an overwrite keeps reading its version', async () => {
    fx = await makeFixture(undefined, filesOnly);
    const s = fx.store;
    await s.createBucket('c', 'us-east-1');
    const v1 = randomBytes(8 * 1024 * 1024);
    const v2 = randomBytes(1024);
    await s.putObject(putInput('c', 'k', v1));
    const reader = await s.openObject('c', 'k');
    const stream = reader.stream();
    const chunks: Buffer[] = [];
    const iter = stream[Symbol.asyncIterator]();
    chunks.push((await iter.next()).value as Buffer); // mid-stream
    await s.putObject(putInput('c', 'k', v2));
    await s.deleteObject('c', 'k');
    await s.putObject(putInput('c', 'k', v2));
    await s.settled();
    expect((await blobFiles(fx)).length).toBe(2); // v1 pinned by the reader, v2 current
    for (let r = await iter.next(); !r.done; r = await iter.next()) chunks.push(r.value as Buffer);
    expect(Buffer.concat(chunks).equals(v1)).toBe(true);
    await s.settled();
    expect((await blobFiles(fx)).length).toBe(1); // v1 unlinked once the reader let go
    expect((await readAll((await s.openObject('c', 'k')).stream())).equals(v2)).toBe(true);
  });

  it('concurrent writers to one key: last committed wins whole, replaced blobs go', async () => {
    fx = await makeFixture(undefined, filesOnly);
    const s = fx.store;
    await s.createBucket('c', 'us-east-1');
    const bodies = Array.from({ length: 24 }, (_, i) => randomBytes(1000 + i * 997));
    const metas = await Promise.all(bodies.map((b) => s.putObject(putInput('c', 'same', b))));
    expect(new Set(metas.map((m) => m.seq)).size).toBe(metas.length); // seq is per commit, even in one batch
    const winner = metas.reduce((a, b) => (a.seq > b.seq ? a : b));
    const head = await s.headObject('c', 'same');
    expect(head.seq).toBe(winner.seq);
    const data = await readAll((await s.openObject('c', 'same')).stream());
    expect(md5(data)).toBe(head.etag);
    expect(data.length).toBe(head.size);
    await s.settled();
    expect((await blobFiles(fx)).length).toBe(1);
  });
});

describe('replica apply', () => {
  function replicaMeta(key: string, body: Buffer, seq: number): ObjectMeta {
    return {
      v: 1, bucket: 'r', key, size: body.length, etag: md5(body), lastModified: 1_700_000_000_000, seq,
      headers: { contentType: 'text/plain' }, userMeta: { from: 'primary' }, tags: {}, blobs: [{ id: 'primary-blob', size: body.length }],
    };
  }
  const body = (s: string) => Readable.from([Buffer.from(s)]);

  it('drops stale copies, keeps tombstones, raises the seq counter, calls no hooks', async () => {
    const rec = recordingHooks();
    fx = await makeFixture(rec.hooks, filesOnly);
    const s = fx.store;
    // Bucket created implicitly by the first copy.
    expect(await s.applyReplica(replicaMeta('k', Buffer.from('v5'), 5), body('v5'))).toBe(true);
    expect((await s.headBucket('r')).name).toBe('r');
    expect(await s.applyReplica(replicaMeta('k', Buffer.from('v3'), 3), body('v3'))).toBe(false);
    expect(await s.applyReplica(replicaMeta('k', Buffer.from('v5b'), 5), body('v5b'))).toBe(false);
    const head = await s.headObject('r', 'k');
    expect(head.seq).toBe(5);
    expect(head.userMeta).toEqual({ from: 'primary' });
    expect(head.blobs[0]!.id).not.toBe('primary-blob');
    expect((await readAll((await s.openObject('r', 'k')).stream())).toString()).toBe('v5');

    expect(await s.applyReplicaDelete('r', 'k', 4)).toBe(false);
    expect(await s.applyReplicaDelete('r', 'k', 6)).toBe(true);
    expect(await code(s.headObject('r', 'k'))).toBe('NoSuchKey');
    // A late copy older than the tombstone cannot resurrect the key.
    expect(await s.applyReplica(replicaMeta('k', Buffer.from('v6'), 6), body('v6'))).toBe(false);
    expect(await s.applyReplica(replicaMeta('k', Buffer.from('v7'), 7), body('v7'))).toBe(true);
    // force installs even an older version (resync after failover).
    expect(await s.applyReplica(replicaMeta('k', Buffer.from('v2'), 2), body('v2'), { force: true })).toBe(true);
    expect((await s.headObject('r', 'k')).seq).toBe(2);
    expect(await s.applyReplicaDelete('r', 'gone', 9)).toBe(true);
    expect(s.currentSeq()).toBe(9);
    expect(rec.log).toEqual([]);
    // A promoted secondary continues above what it received.
    const local = await s.putObject(putInput('r', 'new', 'x'));
    expect(local.seq).toBe(10);
    await s.settled();
    expect((await blobFiles(fx)).length).toBe(2);
  });

  it('refuses a copy whose body does not match its metadata, storing nothing', async () => {
    fx = await makeFixture(undefined, filesOnly);
    const s = fx.store;
    expect(await code(s.applyReplica(replicaMeta('k', Buffer.from('right'), 3), body('wrong')))).toBe('BadDigest');
    expect(await code(s.applyReplica(replicaMeta('k', Buffer.from('right'), 3), body('shrt')))).toBe('IncompleteBody');
    expect(await blobFiles(fx)).toEqual([]);
    expect(await tmpFiles(fx)).toEqual([]);
  });
});
