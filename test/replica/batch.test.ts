// Batched small copies (src/replica/batch.ts): the wire format round-trips
// and refuses inconsistent bodies; the batcher gathers copies of one turn
// into one request, maps per-item failures, and falls back to single
// requests for a secondary without the route.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { replicaBatchObjectBytesMax, replicaBatchObjectsMax } from '../../src/core/limits.ts';
import { objectMetaVersion, type ObjectMeta } from '../../src/objects/types.ts';
import {
  BatchUnsupportedError,
  ObjectBatcher,
  decodeBatch,
  encodeBatch,
  encodeBatchParts,
  type BatchItem,
  type BatchResult,
} from '../../src/replica/batch.ts';
import { sha256Hex, sha256HexOfParts } from '../../src/replica/auth.ts';
import { BodySlabs } from '../../src/replica/copier.ts';
import { ReplicaProtocolError } from '../../src/replica/messages.ts';
import { TargetRejectedError, TargetUnavailableError } from '../../src/replica/target.ts';

function item(key: string, body: Buffer, epoch = 1, seq = 1): BatchItem {
  const meta: ObjectMeta = {
    v: objectMetaVersion,
    bucket: 'b',
    key,
    size: body.length,
    etag: createHash('md5').update(body).digest('hex'),
    lastModified: 1,
    seq,
    headers: {},
    userMeta: { k: key },
    tags: {},
    blobs: [],
  };
  return { copy: { epoch, meta }, body };
}

describe('batch wire format', () => {
  it('round-trips metas, epochs and bodies (empty bodies too)', () => {
    const items = [item('a', Buffer.from('hello')), item('b/ü', Buffer.alloc(0), 2, 7), item('c', Buffer.alloc(5000, 9), 3)];
    const back = decodeBatch(encodeBatch(items));
    expect(back.map((i) => [i.copy.epoch, i.copy.meta.key, i.copy.meta.seq, i.copy.meta.userMeta.k])).toEqual(
      items.map((i) => [i.copy.epoch, i.copy.meta.key, i.copy.meta.seq, i.copy.meta.userMeta.k]),
    );
    back.forEach((b, n) => expect(b.body.equals(items[n]!.body)).toBe(true));
  });

  it('in parts: bodies packed in one slab go as one part; the parts are the batch body, and hash as it', () => {
    const slabs = new BodySlabs();
    const packed = ['alpha', '', 'beta', 'gamma'].map((t, i) => item(`p${i}`, slabs.copy(Buffer.from(t))));
    const parts = encodeBatchParts(packed);
    expect(parts.length).toBe(2); // the head, then one run of the three non-empty bodies
    expect(parts[1]!.toString()).toBe('alphabetagamma');
    const whole = Buffer.concat(parts);
    expect(whole.equals(encodeBatch(packed))).toBe(true);
    expect(sha256HexOfParts(parts)).toBe(sha256Hex(whole));
    expect(decodeBatch(whole).map((i) => i.body.toString())).toEqual(['alpha', '', 'beta', 'gamma']);
  });

  it('in parts: bodies in buffers of their own (not adjacent) stay apart, and past 8 runs are gathered', () => {
    const slabs = new BodySlabs();
    // A slab's body, then one of its own, then the slab again: three runs.
    const few = [item('a', slabs.copy(Buffer.from('one'))), item('b', Buffer.from('two')), item('c', slabs.copy(Buffer.from('three')))];
    const fewParts = encodeBatchParts(few);
    expect(fewParts.slice(1).map((p) => p.toString())).toEqual(['one', 'two', 'three']);
    expect(decodeBatch(Buffer.concat(fewParts)).map((i) => i.body.toString())).toEqual(['one', 'two', 'three']);
    // Same slab, not adjacent (a body between them left out): two runs.
    const [x, skipped, z] = ['x-body', 'skipped', 'z-body'].map((t) => slabs.copy(Buffer.from(t)));
    expect(skipped!.toString()).toBe('skipped');
    const gap = [item('x', x!), item('z', z!)];
    expect(encodeBatchParts(gap).slice(1).map((p) => p.toString())).toEqual(['x-body', 'z-body']);
    expect(decodeBatch(Buffer.concat(encodeBatchParts(gap))).map((i) => i.body.toString())).toEqual(['x-body', 'z-body']);
    const many = Array.from({ length: 9 }, (_, i) => item(`m${i}`, Buffer.from(`body-${i}`)));
    const manyParts = encodeBatchParts(many);
    expect(manyParts.length).toBe(2);
    expect(Buffer.concat(manyParts).equals(encodeBatch(many))).toBe(true);
    expect(sha256HexOfParts(manyParts)).toBe(sha256Hex(encodeBatch(many)));
  });

  it('refuses trailing bytes, cut bodies, too many items and a garbled head', () => {
    const raw = encodeBatch([item('a', Buffer.from('hello')), item('b', Buffer.from('world'))]);
    expect(() => decodeBatch(Buffer.concat([raw, Buffer.from('x')]))).toThrow(ReplicaProtocolError);
    expect(() => decodeBatch(raw.subarray(0, raw.length - 1))).toThrow(ReplicaProtocolError);
    expect(() => decodeBatch(raw.subarray(0, 2))).toThrow(ReplicaProtocolError);
    const garbled = Buffer.from(raw);
    garbled[5] = 0x7b; // '{' inside the JSON head
    expect(() => decodeBatch(garbled)).toThrow(ReplicaProtocolError);
    const many = Array.from({ length: replicaBatchObjectsMax + 1 }, (_, i) => item(`k${i}`, Buffer.from('x')));
    expect(() => decodeBatch(encodeBatch(many))).toThrow(ReplicaProtocolError);
  });
});

describe('ObjectBatcher', () => {
  const body = (b: Buffer) => Readable.from([b], { objectMode: false });

  it('sends the copies of one turn in one request and maps each result', async () => {
    const calls: BatchItem[][] = [];
    const batcher = new ObjectBatcher(async (items) => {
      calls.push(items);
      return items.map((i): BatchResult =>
        i.copy.meta.key === 'bad' ? { status: 400, code: 'BadDigest', message: 'no' } : { applied: i.copy.meta.key !== 'stale' },
      );
    });
    const keys = ['a', 'stale', 'bad', 'b'];
    const outcomes = await Promise.allSettled(keys.map((k) => batcher.put(item(k, Buffer.from(k)).copy, body(Buffer.from(k)))));
    expect(calls).toHaveLength(1);
    expect(calls[0]!.map((i) => i.body.toString())).toEqual(keys);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).name))).toEqual([
      true,
      false,
      'TargetRejectedError',
      true,
    ]);
    const rejected = outcomes[2] as PromiseRejectedResult;
    expect((rejected.reason as TargetRejectedError).code).toBe('BadDigest');
  });

  it('a failed request fails every copy in it; a 5xx item is retryable (unavailable)', async () => {
    const down = new ObjectBatcher(async () => {
      throw new TargetUnavailableError('down');
    });
    const r = await Promise.allSettled([1, 2].map((n) => down.put(item(`k${n}`, Buffer.from('x')).copy, body(Buffer.from('x')))));
    expect(r.every((o) => o.status === 'rejected' && o.reason instanceof TargetUnavailableError)).toBe(true);
    const full = new ObjectBatcher(async (items) => items.map(() => ({ status: 503, code: 'ServiceUnavailable', message: 'disk full' })));
    await expect(full.put(item('k', Buffer.from('x')).copy, body(Buffer.from('x')))).rejects.toBeInstanceOf(TargetUnavailableError);
  });

  it('takes only small copies, and none after the secondary turned out to lack the route', async () => {
    const batcher = new ObjectBatcher(async () => {
      throw new BatchUnsupportedError();
    });
    const big = item('big', Buffer.alloc(replicaBatchObjectBytesMax + 1));
    expect(batcher.accepts(big.copy)).toBe(false);
    const small = item('s', Buffer.from('x'));
    expect(batcher.accepts(small.copy)).toBe(true);
    await expect(batcher.put(small.copy, body(small.body))).rejects.toBeInstanceOf(BatchUnsupportedError);
    expect(batcher.accepts(small.copy)).toBe(false);
  });

  it('a batch refused whole (4xx) sends each item alone, so only the bad one fails', async () => {
    const alone: string[] = [];
    const batcher = new ObjectBatcher(
      async () => {
        throw new TargetRejectedError('secondary refused: 400 batch: item epoch', 400);
      },
      async (i) => {
        alone.push(i.copy.meta.key);
        if (i.copy.meta.key === 'poison') throw new TargetRejectedError('secondary refused: 400', 400);
        return true;
      },
    );
    const keys = ['a', 'poison', 'b'];
    const r = await Promise.allSettled(keys.map((k) => batcher.put(item(k, Buffer.from(k)).copy, body(Buffer.from(k)))));
    expect(alone.sort()).toEqual([...keys].sort());
    expect(r.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('a body whose length differs from its meta is refused before it is framed', async () => {
    let sent = 0;
    const batcher = new ObjectBatcher(async (items) => {
      sent++;
      return items.map(() => ({ applied: true }));
    });
    const it1 = item('k', Buffer.from('four'));
    await expect(batcher.put(it1.copy, body(Buffer.from('three')))).rejects.toThrow(/bytes where its meta says/);
    await expect(batcher.put(it1.copy, body(Buffer.from('abc')))).rejects.toThrow(/bytes where its meta says/);
    expect(sent).toBe(0);
  });
});
