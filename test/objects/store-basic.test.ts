import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { S3Error } from '../../src/core/errors.ts';
import { makeFixture, noAttrs, putInput, readAll, type Fixture } from './helpers.ts';

let fx: Fixture;
beforeEach(async () => {
  fx = await makeFixture();
  await fx.store.createBucket('bkt', 'us-east-1');
});
afterEach(async () => fx.cleanup());

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    throw err;
  }
  return 'ok';
}

describe('buckets', () => {
  it('creates, lists, heads and deletes buckets', async () => {
    const s = fx.store;
    expect(await code(s.createBucket('bkt', 'us-east-1'))).toBe('BucketAlreadyOwnedByYou');
    await s.createBucket('other', 'eu-west-1');
    expect((await s.listBuckets()).map((b) => b.name)).toEqual(['bkt', 'other']);
    expect((await s.headBucket('other')).region).toBe('eu-west-1');
    await s.deleteBucket('other');
    expect(await code(s.headBucket('other'))).toBe('NoSuchBucket');
    expect(await code(s.deleteBucket('other'))).toBe('NoSuchBucket');
  });

  it('refuses to delete a bucket with objects or uploads', async () => {
    const s = fx.store;
    await s.putObject(putInput('bkt', 'a', 'x'));
    expect(await code(s.deleteBucket('bkt'))).toBe('BucketNotEmpty');
    await s.deleteObject('bkt', 'a');
    const up = await s.createMultipartUpload('bkt', 'm', noAttrs);
    expect(await code(s.deleteBucket('bkt'))).toBe('BucketNotEmpty');
    await s.abortMultipartUpload('bkt', 'm', up.uploadId);
    await s.deleteBucket('bkt');
  });
});

describe('objects', () => {
  it('puts, heads, gets and ranges an object', async () => {
    const s = fx.store;
    const body = Buffer.from('hello, object store');
    const meta = await s.putObject(
      putInput('bkt', 'greeting.txt', body, {
        headers: { contentType: 'text/plain' },
        userMeta: { colour: 'blue' },
        algorithms: ['CRC32C'],
        checksumAlgorithm: 'CRC32C',
      }),
    );
    expect(meta.etag).toBe(md5(body));
    expect(meta.size).toBe(body.length);
    expect(meta.checksum).toEqual({ algorithm: 'CRC32C', value: expect.any(String), type: 'FULL_OBJECT' });
    const head = await s.headObject('bkt', 'greeting.txt');
    expect(head.headers.contentType).toBe('text/plain');
    expect(head.userMeta).toEqual({ colour: 'blue' });
    expect(head.v).toBe(1);
    const r = await s.openObject('bkt', 'greeting.txt');
    expect((await readAll(r.stream())).equals(body)).toBe(true);
    const r2 = await s.openObject('bkt', 'greeting.txt');
    expect((await readAll(r2.stream({ start: 7, end: 12 }))).toString()).toBe('object');
  });

  it('reports missing buckets and keys', async () => {
    const s = fx.store;
    expect(await code(s.headObject('bkt', 'nope'))).toBe('NoSuchKey');
    expect(await code(s.openObject('nobkt', 'k'))).toBe('NoSuchBucket');
    expect(await code(s.putObject(putInput('nobkt', 'k', 'x')))).toBe('NoSuchBucket');
    expect(await code(s.deleteObject('bkt', 'nope'))).toBe('ok');
  });

  it('accepts string chunks as UTF-8 bytes', async () => {
    const { Readable } = await import('node:stream');
    const m = await fx.store.putObject(putInput('bkt', 'strings', Readable.from(['héllo', ' world'])));
    expect(m.size).toBe(Buffer.byteLength('héllo world'));
    expect((await readAll((await fx.store.openObject('bkt', 'strings')).stream())).toString()).toBe('héllo world');
  });

  it('stores an empty object', async () => {
    await fx.store.putObject(putInput('bkt', 'empty', Buffer.alloc(0)));
    const r = await fx.store.openObject('bkt', 'empty');
    expect(r.meta.size).toBe(0);
    expect((await readAll(r.stream())).length).toBe(0);
  });

  it('deletes an object and its blob', async () => {
    const s = fx.store;
    await s.putObject(putInput('bkt', 'a', 'data'));
    await s.deleteObject('bkt', 'a');
    expect(await code(s.headObject('bkt', 'a'))).toBe('NoSuchKey');
  });

  it('honours If-None-Match: * and If-Match', async () => {
    const s = fx.store;
    const m = await s.putObject(putInput('bkt', 'c', 'one', { ifNoneMatchStar: true }));
    expect(await code(s.putObject(putInput('bkt', 'c', 'two', { ifNoneMatchStar: true })))).toBe('PreconditionFailed');
    expect(await code(s.putObject(putInput('bkt', 'c', 'two', { ifMatch: '"0000"' })))).toBe('PreconditionFailed');
    expect(await code(s.putObject(putInput('bkt', 'c', 'two', { ifMatch: `"${m.etag}"` })))).toBe('ok');
    expect(await code(s.putObject(putInput('bkt', 'missing', 'two', { ifMatch: `"${m.etag}"` })))).toBe('NoSuchKey');
    const r = await s.openObject('bkt', 'c');
    expect((await readAll(r.stream())).toString()).toBe('two');
  });

  it('rejects keys over 1024 bytes and accepts exactly 1024', async () => {
    const s = fx.store;
    const k1024 = 'é'.repeat(512); // 2 bytes each
    await s.putObject(putInput('bkt', k1024, 'x'));
    expect((await s.headObject('bkt', k1024)).key).toBe(k1024);
    expect(await code(s.putObject(putInput('bkt', `${k1024}a`, 'x')))).toBe('KeyTooLongError');
  });

  it('sets tags with a new seq', async () => {
    const s = fx.store;
    const m = await s.putObject(putInput('bkt', 't', 'x', { tags: { a: '1' } }));
    const m2 = await s.setTags('bkt', 't', { b: '2' });
    expect(m2.tags).toEqual({ b: '2' });
    expect(m2.seq).toBeGreaterThan(m.seq);
    expect(m2.etag).toBe(m.etag);
    expect((await s.headObject('bkt', 't')).tags).toEqual({ b: '2' });
    expect(await code(s.setTags('bkt', 'nope', {}))).toBe('NoSuchKey');
  });

  it('copies with kept or replaced attributes, and onto itself, with a range', async () => {
    const s = fx.store;
    await s.putObject(putInput('bkt', 'src', '0123456789', { userMeta: { a: '1' }, headers: { contentType: 'x/y' } }));
    const kept = await s.copyObject({ bucket: 'bkt', key: 'src' }, { bucket: 'bkt', key: 'dst' }, 'copy');
    expect(kept.userMeta).toEqual({ a: '1' });
    expect(kept.etag).toBe(md5('0123456789'));
    const repl = await s.copyObject({ bucket: 'bkt', key: 'src' }, { bucket: 'bkt', key: 'src' }, { headers: {}, userMeta: { b: '2' }, tags: {} });
    expect(repl.userMeta).toEqual({ b: '2' });
    const self = await s.openObject('bkt', 'src');
    expect((await readAll(self.stream())).toString()).toBe('0123456789');
    const part = await s.copyObject({ bucket: 'bkt', key: 'src', range: { start: 2, end: 4 } }, { bucket: 'bkt', key: 'piece' }, 'copy');
    expect(part.size).toBe(3);
    const r = await s.openObject('bkt', 'piece');
    expect((await readAll(r.stream())).toString()).toBe('234');
    expect(await code(s.copyObject({ bucket: 'bkt', key: 'src' }, { bucket: 'bkt', key: 'dst' }, 'copy', { ifNoneMatchStar: true }))).toBe('PreconditionFailed');
    expect(await code(s.copyObject({ bucket: 'bkt', key: 'nope' }, { bucket: 'bkt', key: 'd2' }, 'copy'))).toBe('NoSuchKey');
  });

  it('refuses ranges past the end, before anything is admitted', async () => {
    const s = fx.store;
    await s.putObject(putInput('bkt', 'r', '0123'));
    const r = await s.openObject('bkt', 'r');
    expect(() => r.stream({ start: 2, end: 4 })).toThrow(S3Error);
    const seq = s.currentSeq();
    expect(await code(s.copyObject({ bucket: 'bkt', key: 'r', range: { start: 4, end: 9 } }, { bucket: 'bkt', key: 'x' }, 'copy'))).toBe('InvalidRange');
    expect(s.currentSeq()).toBe(seq);
  });

  it('survives a reopen with data and seq intact', async () => {
    const m = await fx.store.putObject(putInput('bkt', 'persist', 'still here'));
    const s = await fx.reopen();
    const r = await s.openObject('bkt', 'persist');
    expect((await readAll(r.stream())).toString()).toBe('still here');
    expect(s.currentSeq()).toBe(m.seq);
    const m2 = await s.putObject(putInput('bkt', 'next', 'x'));
    expect(m2.seq).toBe(m.seq + 1);
  });
});
