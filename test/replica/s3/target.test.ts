// S3Target beyond the shared contract: how R is laid out on the target
// (compaction, sealing of old sessions), promotion fencing, big single-part
// objects, and error mapping. Runs on s3rver (in process, fast).

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectMeta } from '../../../src/objects/types.ts';
import { replicaWireVersion } from '../../../src/replica/messages.ts';
import type { RecordMessage } from '../../../src/replica/messages.ts';
import { putBytes, listKeys } from '../../../src/replica/s3/client.ts';
import { deltaKey, encodeDelta, snapshotKey } from '../../../src/replica/s3/record.ts';
import { S3Target } from '../../../src/replica/s3/target.ts';
import type { S3TargetOptions } from '../../../src/replica/s3/target.ts';
import { FencedError, StaleSessionError, TargetUnavailableError } from '../../../src/replica/target.ts';
import type { S3Server } from './servers.ts';
import { rawClient, startS3rver } from './servers.ts';

let server: S3Server;
let site = 0;
const targets: S3Target[] = [];

beforeAll(async () => {
  server = await startS3rver();
});
afterAll(async () => {
  for (const t of targets) await t.close().catch(() => {});
  await server.stop();
});

function target(url: string, extra: Partial<S3TargetOptions> = {}): S3Target {
  const t = new S3Target({ url, credentials: server.credentials, tagging: 'separate', ...extra });
  targets.push(t);
  return t;
}

function newUrl(): { url: string; prefix: string } {
  const prefix = `t-${++site}/`;
  return { url: `s3://unit-target/${prefix}@${server.endpoint}`, prefix: `${prefix}.lookahead/` };
}

function msg(session: number, msgId: number, add: number[], remove: number[] = [], epoch = 1): RecordMessage {
  return { v: replicaWireVersion, epoch, from: 'p', session, msgId, add: add.map((id) => ({ id, name: `k/b/${id}` })), remove };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(cond()).toBe(true);
}

describe('S3Target record layout', () => {
  it('compacts deltas into the snapshot and deletes them; a fresh instance reads the same record', async () => {
    const { url, prefix } = newUrl();
    const t = target(url, { compactDeltasMin: 5 });
    const info = await t.openSession('p', 1);
    const expected = new Set<number>();
    for (let i = 1; i <= 12; i++) {
      const remove = i % 3 === 0 ? [i - 2] : [];
      await t.applyRecord(msg(info.session, i, [i], remove));
      expected.add(i);
      for (const r of remove) expected.delete(r);
    }
    await until(() => t.compactions >= 1);
    const client = rawClient(server);
    const deltas = await listKeys(client, 'unit-target', `${prefix}record/delta/`);
    expect(deltas.length).toBeLessThan(12);
    await t.close();
    const t2 = target(url);
    const again = await t2.openSession('p', 1);
    expect(again.lastMsgId).toBe(12);
    expect(again.entries.map((e) => e.id).sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b));
    client.destroy();
  });

  it('never folds a delta of a sealed session that lands late', async () => {
    const { url, prefix } = newUrl();
    const t1 = target(url);
    const s1 = await t1.openSession('p', 1);
    await t1.applyRecord(msg(s1.session, 1, [1, 2]));
    const t2 = target(url);
    const s2 = await t2.openSession('p', 1);
    expect(s2.entries.map((e) => e.id).sort()).toEqual([1, 2]);
    // The old incarnation's message 2 (removing 1) arrives after the restart.
    const client = rawClient(server);
    const late = encodeDelta({ epoch: 1, from: 'p', session: s1.session, msgId: 2, add: [], remove: [1] });
    await putBytes(client, 'unit-target', deltaKey(prefix, s1.session, 2), late);
    const t3 = target(url);
    const s3 = await t3.openSession('p', 1);
    expect(s3.entries.map((e) => e.id).sort()).toEqual([1, 2]);
    expect((await t3.readRecord()).entries.map((e) => e.id).sort()).toEqual([1, 2]);
    // And the new instance refuses messages of the old session outright.
    await expect(t3.applyRecord(msg(s1.session, 3, [], [2]))).rejects.toBeInstanceOf(StaleSessionError);
    client.destroy();
  });

  it('survives a crash between snapshot and delta deletion', async () => {
    const { url, prefix } = newUrl();
    const t1 = target(url);
    const s1 = await t1.openSession('p', 1);
    await t1.applyRecord(msg(s1.session, 1, [1]));
    await t1.applyRecord(msg(s1.session, 2, [2], [1]));
    // What a compaction writes first, as if the primary died before deleting.
    const client = rawClient(server);
    const { encodeSnapshot } = await import('../../../src/replica/s3/record.ts');
    await putBytes(client, 'unit-target', snapshotKey(prefix), encodeSnapshot({ session: s1.session, lastMsgId: 1, entries: [{ id: 1, name: 'k/b/1' }] }));
    const t2 = target(url);
    const s2 = await t2.openSession('p', 1);
    expect(s2.entries.map((e) => e.id)).toEqual([2]);
    expect(s2.lastMsgId).toBe(2);
    client.destroy();
  });
});

describe('S3Target fencing', () => {
  it('a promoted target fences the old primary on its next record message or copy', async () => {
    const { url } = newUrl();
    const primary = target(url);
    const info = await primary.openSession('p', 1);
    await primary.applyRecord(msg(info.session, 1, [1]));
    const operator = target(url);
    const promoted = await operator.promote('http://s3-direct');
    expect(promoted).toMatchObject({ epoch: 2, role: 'primary' });
    // The old primary learns it within s3StateCheckMs.
    await new Promise((r) => setTimeout(r, 1100));
    const err = await primary.applyRecord(msg(info.session, 2, [2])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect((err as FencedError).epoch).toBe(2);
    expect((err as FencedError).primary).toBe('http://s3-direct');
    // The refused message's delta may be on the target (its PUT overlaps
    // the state read): an unacked addition only widens the at-risk list.
    const view = await operator.readRecord();
    expect(view.entries.map((e) => e.id)).toContain(1);
    expect(view.entries.length).toBeLessThanOrEqual(2);
    expect(await operator.health()).toMatchObject({ role: 'primary', epoch: 2 });
  });
});

describe('S3Target object copies', () => {
  it('splits a big single-part object into parts and keeps the primary ETag in metadata', async () => {
    const { url } = newUrl();
    const t = target(url, { multipartBytesMin: 6 * 1024 * 1024, partBytes: 5 * 1024 * 1024 });
    await t.openSession('p', 1);
    const body = Buffer.alloc(7 * 1024 * 1024, 7);
    const etag = createHash('md5').update(body).digest('hex');
    const meta: ObjectMeta = { v: 1, bucket: 'b', key: 'big', size: body.length, etag, lastModified: 0, seq: 9, headers: {}, userMeta: {}, tags: {}, blobs: [] };
    expect(await t.putObject({ epoch: 1, meta }, Readable.from([body.subarray(0, 1000), body.subarray(1000)]))).toBe(true);
    const head = await t.headObject('b', 'big');
    expect(head).toMatchObject({ etag, size: body.length, seq: 9 });
  });

  it('a body shorter or longer than its metadata fails fast; the next good copy heals the key', async () => {
    const { url } = newUrl();
    const t = target(url);
    await t.openSession('p', 1);
    const good = Buffer.alloc(100, 1);
    const etag = createHash('md5').update(good).digest('hex');
    const meta: ObjectMeta = { v: 1, bucket: 'b', key: 'short', size: 100, etag, lastModified: 0, seq: 1, headers: {}, userMeta: {}, tags: {}, blobs: [] };
    const started = Date.now();
    await expect(t.putObject({ epoch: 1, meta }, Readable.from([Buffer.alloc(10)]))).rejects.toThrow('body length 10');
    await expect(t.putObject({ epoch: 1, meta: { ...meta, size: 5 } }, Readable.from([Buffer.alloc(10)]))).rejects.toThrow('body length');
    expect(Date.now() - started).toBeLessThan(5000);
    // s3rver keeps what it got of an aborted upload; a retry of the same
    // seq must not count that as "already there".
    expect(await t.putObject({ epoch: 1, meta }, Readable.from([good]))).toBe(true);
    expect(await t.headObject('b', 'short')).toMatchObject({ size: 100, seq: 1, targetEtag: etag });
    expect(await t.putObject({ epoch: 1, meta }, Readable.from([good]))).toBe(false);
  });
});

describe('S3Target read-back (rejoin, verify)', () => {
  it('lists replicas of a bucket in pages and reads one back with its metadata', async () => {
    const { url } = newUrl();
    const t = target(url);
    await t.openSession('p', 1);
    const keys = ['a.txt', 'dir/b.txt', 'dir/c d.txt'];
    for (const [i, key] of keys.entries()) {
      const body = Buffer.from(`body ${key}`);
      const etag = createHash('md5').update(body).digest('hex');
      const meta: ObjectMeta = {
        v: 1, bucket: 'rb', key, size: body.length, etag, lastModified: 0, seq: 10 + i,
        headers: { contentType: 'text/plain', cacheControl: 'no-cache' }, userMeta: { who: 'me' }, tags: { t: String(i) }, blobs: [],
      };
      await t.putObject({ epoch: 1, meta }, Readable.from([body]));
    }
    const first = await t.listObjects('rb', { max: 2 });
    expect(first.objects.map((o) => o.key)).toEqual(['a.txt', 'dir/b.txt']);
    expect(first.nextAfter).toBe('dir/b.txt');
    const second = await t.listObjects('rb', { after: first.nextAfter, max: 2 });
    expect(second.objects.map((o) => o.key)).toEqual(['dir/c d.txt']);
    expect(second.nextAfter).toBeUndefined();
    expect((await t.listObjects('rb', { prefix: 'dir/' })).objects.map((o) => o.key)).toEqual(['dir/b.txt', 'dir/c d.txt']);
    expect((await t.listObjects('no-such-bucket-here')).objects).toEqual([]);
    const got = await t.getObject('rb', 'dir/c d.txt');
    expect(got?.meta).toMatchObject({ key: 'dir/c d.txt', seq: 12, userMeta: { who: 'me' }, tags: { t: '2' }, headers: { contentType: 'text/plain', cacheControl: 'no-cache' } });
    const chunks: Buffer[] = [];
    for await (const c of got?.body ?? []) chunks.push(Buffer.from(c as Buffer));
    expect(Buffer.concat(chunks).toString()).toBe('body dir/c d.txt');
    expect(await t.getObject('rb', 'missing')).toBeUndefined();
  });
});

describe('S3Target errors', () => {
  it('an unreachable endpoint is TargetUnavailableError', async () => {
    const t = target('s3://nobody-home@http://127.0.0.1:1', { requestTimeoutMs: 2000 });
    await expect(t.health()).rejects.toBeInstanceOf(TargetUnavailableError);
    await expect(t.openSession('p', 1)).rejects.toBeInstanceOf(TargetUnavailableError);
  });
});
