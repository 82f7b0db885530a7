// The batch route over HTTP against a real secondary gateway: the current
// format (v2) and an older primary's (v1, base64url metas) both apply; a
// batch that is cut, garbled, of an unknown version or not what was signed
// is refused whole and changes nothing on disk.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.ts';
import { replicaBatchObjectsLegacyMax, replicaBatchObjectsMax } from '../../src/core/limits.ts';
import type { DiskObjectStore } from '../../src/objects/store.ts';
import { sha256Hex, signHeaders } from '../../src/replica/auth.ts';
import { encodeBatch, encodeBatchParts, type BatchItem } from '../../src/replica/batch.ts';
import { BodySlabs } from '../../src/replica/copier.ts';
import { GatewayTarget } from '../../src/replica/http-target.ts';
import { copyItem, openSecondaryGateway, type SecondaryGateway } from '../helpers/secondary-gateway.ts';
import { encodeMetaHeader } from '../../src/replica/messages.ts';

const secret = randomBytes(16).toString('hex');
const bucket = 'batches';
let site: SecondaryGateway;
let store: DiskObjectStore;
let endpoint: string;
let target: GatewayTarget;
let epoch: number;
let seq = 1_000;

beforeAll(async () => {
  site = await openSecondaryGateway('batch-http', secret);
  store = site.store;
  endpoint = `http://127.0.0.1:${(await site.gateway.listen('127.0.0.1', 0)).port}`;
  target = new GatewayTarget({ url: endpoint, secret, clock: systemClock });
  epoch = (await target.openSession('test', 1)).epoch;
  await target.putBucket({ epoch, bucket, exists: true, region: 'us-east-1', seq: 1 });
}, 30_000);

afterAll(async () => {
  await target?.close();
  await site?.close();
});

function item(key: string, text: string): BatchItem {
  return copyItem({ bucket, key, text, epoch, seq: seq++ });
}

/** The version-1 encoding an older primary sends (metas as header strings). */
function encodeV1(items: BatchItem[]): Buffer {
  const head = Buffer.from(JSON.stringify({ items: items.map((i) => ({ meta: encodeMetaHeader(i.copy.meta), epoch: i.copy.epoch })) }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(head.length);
  return Buffer.concat([len, head, ...items.map((i) => i.body)]);
}

async function post(body: Buffer, signed: Buffer = body): Promise<{ status: number; json: unknown }> {
  const url = '/_lookahead/replica/objects';
  const headers = signHeaders(secret, { method: 'POST', url, date: Date.now(), contentSha256: sha256Hex(signed), meta: '', epoch: '' });
  const res = await fetch(`${endpoint}${url}`, { method: 'POST', body, headers });
  return { status: res.status, json: await res.json() };
}

async function stored(key: string): Promise<string | undefined> {
  try {
    const chunks: Buffer[] = [];
    for await (const c of (await store.openObject(bucket, key)).stream()) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  } catch {
    return undefined;
  }
}

describe('POST /_lookahead/replica/objects', () => {
  it('the secondary says how many copies a batch may carry, and the target adopts it; that many apply in one request', async () => {
    expect(target.batchObjectsMax()).toBe(replicaBatchObjectsMax);
    const items = Array.from({ length: replicaBatchObjectsMax }, (_, i) => item(`max/k${i}`, `body ${i}`));
    const results = await target.putObjects(items);
    expect(results.every((r) => 'applied' in r && r.applied)).toBe(true);
    expect(await stored(`max/k${replicaBatchObjectsMax - 1}`)).toBe(`body ${replicaBatchObjectsMax - 1}`);
  });

  it('a target that has not opened a session yet (or an older secondary) sends 64 a batch', () => {
    const fresh = new GatewayTarget({ url: endpoint, secret, clock: systemClock });
    expect(fresh.batchObjectsMax()).toBe(replicaBatchObjectsLegacyMax);
  });

  it('applies the current format and an older primary\'s version-1 batches', async () => {
    const results = await target.putObjects([item('v2/a', 'alpha'), item('v2/b', 'beta')]);
    expect(results).toEqual([{ applied: true }, { applied: true }]);
    const v1 = await post(encodeV1([item('v1/a', 'one'), item('v1/b', 'two')]));
    expect(v1).toEqual({ status: 200, json: { results: [{ applied: true }, { applied: true }] } });
    expect(await Promise.all(['v2/a', 'v2/b', 'v1/a', 'v1/b'].map(stored))).toEqual(['alpha', 'beta', 'one', 'two']);
  });

  it('bodies packed in the copier\'s slabs go in parts (runs and a body of its own), signed as one body', async () => {
    const slabs = new BodySlabs();
    const texts = ['slab-one', 'slab-two', 'alone', 'slab-three'];
    const items = texts.map((t, i) => {
      const it = item(`parts/${i}`, t);
      return i === 2 ? it : { ...it, body: slabs.copy(it.body) };
    });
    expect(encodeBatchParts(items).length).toBe(4); // head, run, alone, run
    const results = await target.putObjects(items);
    expect(results).toEqual(texts.map(() => ({ applied: true })));
    expect(await Promise.all(texts.map((_, i) => stored(`parts/${i}`)))).toEqual(texts);
  });

  it('a cut, garbled or unknown-version batch is a 400 and applies none of its items', async () => {
    const raw = encodeBatch([item('bad/a', 'first'), item('bad/b', 'second')]);
    const cut = await post(raw.subarray(0, raw.length - 3));
    expect(cut.status).toBe(400);
    const garbled = Buffer.from(raw);
    garbled[4] = 0x78; // 'x' where the JSON head opens
    expect((await post(garbled)).status).toBe(400);
    const headLength = raw.readUInt32BE(0);
    const head = JSON.parse(raw.toString('utf8', 4, 4 + headLength)) as { v: number };
    const v9 = Buffer.from(JSON.stringify({ ...head, v: 9 }));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(v9.length);
    const unknown = await post(Buffer.concat([len, v9, raw.subarray(4 + headLength)]));
    expect(unknown.status).toBe(400);
    expect((unknown.json as { message: string }).message).toMatch(/version/);
    expect(await stored('bad/a')).toBeUndefined();
    expect(await stored('bad/b')).toBeUndefined();
  });

  it('a body other than the one signed is refused (403) and applies nothing', async () => {
    const signed = encodeBatch([item('forged/a', 'genuine')]);
    const forged = encodeBatch([item('forged/a', 'forgery')]);
    expect((await post(forged, signed)).status).toBe(403);
    expect(await stored('forged/a')).toBeUndefined();
  });

  it('a body that does not match its ETag fails alone; its batch-mates apply', async () => {
    const good = item('etag/good', 'fine');
    const bad = item('etag/bad', 'damaged');
    bad.copy.meta.etag = 'f'.repeat(32);
    const results = await target.putObjects([good, bad]);
    expect(results[0]).toEqual({ applied: true });
    expect(results[1]).toMatchObject({ status: 400, code: 'BadDigest' });
    expect(await stored('etag/good')).toBe('fine');
    expect(await stored('etag/bad')).toBeUndefined();
  });
});
