// Small bodies live in lmdb, committed with their metadata (no file, no rename).
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { S3Error } from '../../src/core/errors.ts';
import { inlineBodyBytesMax } from '../../src/core/limits.ts';
import { makeFixture, putInput, readAll, type Fixture } from './helpers.ts';

let fx: Fixture;
beforeEach(async () => {
  fx = await makeFixture();
  await fx.store.createBucket('in', 'us-east-1');
});
afterEach(async () => fx.cleanup());

async function files(sub: 'blobs' | 'tmp'): Promise<number> {
  let n = 0;
  for (const e of await readdir(join(fx.dataDir, sub), { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}

function inlineRecords(): number {
  return Array.from(fx.root.openDB<Buffer, Buffer>({ name: 'objects.inline', keyEncoding: 'binary', encoding: 'binary' }).getKeys({})).length;
}

describe('inline bodies', () => {
  it('stores a small body in lmdb, not in a file, and reads it back with ranges', async () => {
    const body = randomBytes(4096);
    const meta = await fx.store.putObject(putInput('in', 'small', body));
    expect(meta.blobs[0]!.id.startsWith('i')).toBe(true);
    expect(meta.etag).toBe(createHash('md5').update(body).digest('hex'));
    expect(await files('blobs')).toBe(0);
    expect(await files('tmp')).toBe(0);
    expect(inlineRecords()).toBe(1);
    expect((await readAll((await fx.store.openObject('in', 'small')).stream())).equals(body)).toBe(true);
    const part = await readAll((await fx.store.openObject('in', 'small')).stream({ start: 100, end: 199 }));
    expect(part.equals(body.subarray(100, 200))).toBe(true);
  });

  it('switches to a file just above the limit', async () => {
    const at = await fx.store.putObject(putInput('in', 'at', Buffer.alloc(inlineBodyBytesMax, 1)));
    expect(at.blobs[0]!.id.startsWith('i')).toBe(true);
    // Two chunks, so the switch happens mid-stream with data already buffered.
    const above = Buffer.concat([Buffer.alloc(inlineBodyBytesMax, 2), Buffer.from('x')]);
    const m = await fx.store.putObject(putInput('in', 'above', Readable.from([above.subarray(0, 1000), above.subarray(1000)])));
    expect(m.blobs[0]!.id.startsWith('i')).toBe(false);
    expect(await files('blobs')).toBe(1);
    expect((await readAll((await fx.store.openObject('in', 'above')).stream())).equals(above)).toBe(true);
  });

  it('overwrite and delete drop the old body in the same commit; open readers keep theirs', async () => {
    const v1 = randomBytes(1000);
    await fx.store.putObject(putInput('in', 'k', v1));
    const reader = await fx.store.openObject('in', 'k');
    await fx.store.putObject(putInput('in', 'k', randomBytes(300 * 1024))); // now a file
    expect(inlineRecords()).toBe(0);
    await fx.store.putObject(putInput('in', 'k', 'v3')); // inline again, the file goes
    await fx.store.settled();
    expect(await files('blobs')).toBe(0);
    expect((await readAll(reader.stream())).equals(v1)).toBe(true);
    await fx.store.deleteObject('in', 'k');
    expect(inlineRecords()).toBe(0);
  });

  it('a rejected body leaves no inline record', async () => {
    const bad = putInput('in', 'bad', 'tiny', {
      verify: () => {
        throw new S3Error('BadDigest', 'mismatch');
      },
    });
    await expect(fx.store.putObject(bad)).rejects.toMatchObject({ code: 'BadDigest' });
    expect(inlineRecords()).toBe(0);
    await expect(fx.store.headObject('in', 'bad')).rejects.toMatchObject({ code: 'NoSuchKey' });
  });

  it('is not visible before a delayed admission resolves', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fx.store.setChangeHooks({ admit: async () => (await gate, { hit: false }), committed: () => {} });
    const put = fx.store.putObject(putInput('in', 'gated', 'data'));
    await new Promise((r) => setTimeout(r, 30));
    await expect(fx.store.headObject('in', 'gated')).rejects.toMatchObject({ code: 'NoSuchKey' });
    expect(inlineRecords()).toBe(0);
    release();
    await put;
    expect((await fx.store.headObject('in', 'gated')).size).toBe(4);
  });

  it('copies and replica applies use inline bodies too; the sweep drops orphan records', async () => {
    await fx.store.putObject(putInput('in', 'src', 'copy me'));
    const c = await fx.store.copyObject({ bucket: 'in', key: 'src' }, { bucket: 'in', key: 'dst' }, 'copy');
    expect(c.blobs[0]!.id.startsWith('i')).toBe(true);
    const meta = { ...c, key: 'rep', seq: 99 };
    expect(await fx.store.applyReplica(meta, Readable.from([Buffer.from('copy me')]))).toBe(true);
    expect((await readAll((await fx.store.openObject('in', 'rep')).stream())).toString()).toBe('copy me');
    expect(inlineRecords()).toBe(3);
    // An orphan record (cannot happen through the store) is removed on open.
    const raw = fx.root.openDB<Buffer, Buffer>({ name: 'objects.inline', keyEncoding: 'binary', encoding: 'binary' });
    await raw.put(Buffer.from('i0000000000000000000000000000000'), Buffer.from('orphan'));
    const reopened = await fx.reopen();
    expect(reopened.lastSweep.orphans).toBe(1);
    expect(inlineRecords()).toBe(3);
    expect((await readAll((await reopened.openObject('in', 'dst')).stream())).toString()).toBe('copy me');
  });
});
