// Two real gateways in one process: a primary replicating to a secondary
// over HTTP, written through with the real SDK (issue 3).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectsCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  GetObjectTaggingCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pino from 'pino';
import type { RootDatabase } from 'lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock, systemRandom } from '../../src/core/clock.ts';
import { StaticCredentials } from '../../src/gateway/credentials.ts';
import { createGateway } from '../../src/gateway/server.ts';
import type { Gateway } from '../../src/gateway/server.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import { createPrimaryReplication, createSecondaryReplication } from '../../src/replica/index.ts';
import type { PrimaryReplication } from '../../src/replica/index.ts';
import type { GatewayTarget } from '../../src/replica/http-target.ts';
import { signHeaders, sha256Hex } from '../../src/replica/auth.ts';

const accessKeyId = 'LAREPLTESTKEY0000001';
const secretAccessKey = 'repl-test-secret-0123456789abcdefghijklm';
const replicationSecret = randomBytes(16).toString('hex');
const region = 'us-east-1';

interface Site {
  dir: string;
  root: RootDatabase;
  store: DiskObjectStore;
  gateway: Gateway;
  endpoint: string;
  client: S3Client;
}

async function site(hooksOf: (root: RootDatabase) => { hooks: import('../../src/core/changes.ts').ChangeHooks; routers?: import('@koa/router').default[] }): Promise<Site & { started: (store: DiskObjectStore) => void }> {
  const dir = await mkdtemp(join(tmpdir(), 'lookahead-repl-'));
  const root = openMetaDb(dir);
  const { hooks, routers } = hooksOf(root);
  const store = await DiskObjectStore.open({ dataDir: dir, db: root, hooks });
  const gateway = createGateway({
    store,
    credentials: new StaticCredentials([{ accessKeyId, secretAccessKey }]),
    region,
    logger: pino({ level: 'silent' }),
    ...(routers ? { extraRouters: routers } : {}),
  });
  const { port } = await gateway.listen('127.0.0.1', 0);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
  return { dir, root, store, gateway, endpoint, client, started: () => {} };
}

let primary: Site;
let secondary: Site;
let repl: PrimaryReplication;
let secondaryRouters: import('@koa/router').default[] = [];
let secondaryService: ReturnType<typeof createSecondaryReplication> | undefined;

function newGateway(store: DiskObjectStore, routers?: import('@koa/router').default[]): Gateway {
  return createGateway({
    store,
    credentials: new StaticCredentials([{ accessKeyId, secretAccessKey }]),
    region,
    logger: pino({ level: 'silent' }),
    ...(routers ? { extraRouters: routers } : {}),
  });
}

function primaryReplication(root: RootDatabase): PrimaryReplication {
  return createPrimaryReplication({
    root,
    secondaryUrl: secondary.endpoint,
    replicationSecret,
    clock: systemClock,
    random: systemRandom,
    config: { site: 'p', trimIdleMs: 60_000, probeIntervalMs: 100, sendRetryMs: 20 },
  });
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function body(client: S3Client, bucket: string, key: string): Promise<{ etag?: string; data: Buffer }> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { etag: res.ETag, data: Buffer.from(await res.Body!.transformToByteArray()) };
}

async function listing(client: S3Client, bucket: string): Promise<Array<{ key?: string; etag?: string; size?: number }>> {
  const res = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (res.Contents ?? []).map((o) => ({ key: o.Key, etag: o.ETag, size: o.Size }));
}

beforeAll(async () => {
  const sec = { value: undefined as ReturnType<typeof createSecondaryReplication> | undefined };
  secondary = await site((root) => {
    sec.value = createSecondaryReplication({ root, clock: systemClock, primaryUrl: 'http://primary.example', replicationSecret });
    secondaryRouters = [sec.value.router];
    return { hooks: sec.value.hooks, routers: secondaryRouters };
  });
  secondaryService = sec.value;
  await sec.value!.start(secondary.store);
  primary = await site((root) => {
    repl = primaryReplication(root);
    return { hooks: repl.hooks };
  });
  await repl.start(primary.store);
}, 30_000);

afterAll(async () => {
  await repl?.stop();
  for (const s of [primary, secondary]) {
    if (!s) continue;
    s.client.destroy();
    await s.gateway.close();
    await s.store.close();
    await s.root.close();
    await rm(s.dir, { recursive: true, force: true });
  }
});

describe('primary and secondary gateways', () => {
  it('the secondary converges: listing, bodies, ETags, tags, deletes, multipart', { timeout: 60_000 }, async () => {
    const c = primary.client;
    await c.send(new CreateBucketCommand({ Bucket: 'photos' }));
    for (let i = 0; i < 12; i++) {
      await c.send(new PutObjectCommand({ Bucket: 'photos', Key: `2026/11/30/img-${i}.jpg`, Body: randomBytes(1000 + i), ContentType: 'image/jpeg', Metadata: { n: String(i) } }));
    }
    await c.send(new PutObjectTaggingCommand({ Bucket: 'photos', Key: '2026/11/30/img-1.jpg', Tagging: { TagSet: [{ Key: 'k', Value: 'v' }] } }));
    await c.send(new DeleteObjectCommand({ Bucket: 'photos', Key: '2026/11/30/img-0.jpg' }));
    await c.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: [{ Key: '2026/11/30/img-10.jpg' }, { Key: '2026/11/30/img-11.jpg' }] } }));
    await c.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'copies/img-2.jpg', CopySource: 'photos/2026/11/30/img-2.jpg' }));
    const big = randomBytes(11 * 1024 * 1024);
    await new Upload({ client: c, params: { Bucket: 'photos', Key: 'videos/big.bin', Body: big }, partSize: 5 * 1024 * 1024 }).done();

    await until(() => repl.status().queueDepth === 0, 'Q to drain');
    const want = await listing(c, 'photos');
    expect(want.length).toBe(11);
    expect(want.map((o) => o.key)).toContain('copies/img-2.jpg');
    expect(await listing(secondary.client, 'photos')).toEqual(want);
    for (const { key } of want) {
      const [p, s] = await Promise.all([body(c, 'photos', key!), body(secondary.client, 'photos', key!)]);
      expect(s.etag).toBe(p.etag);
      expect(s.data.equals(p.data)).toBe(true);
    }
    // Each site records the CRC32 of the bytes it stored (GETs check it):
    // per part on the primary, over the one received blob on the secondary.
    const partBytes = 5 * 1024 * 1024;
    const [onPrimary, onSecondary] = await Promise.all([primary.store, secondary.store].map((st) => st.headObject('photos', 'videos/big.bin')));
    expect(onPrimary!.blobs.map((b) => b.crc32)).toEqual([0, 1, 2].map((i) => zlib.crc32(big.subarray(i * partBytes, (i + 1) * partBytes))));
    expect(onSecondary!.blobs.map((b) => b.crc32)).toEqual([zlib.crc32(big)]);
    const tags = await secondary.client.send(new GetObjectTaggingCommand({ Bucket: 'photos', Key: '2026/11/30/img-1.jpg' }));
    expect(tags.TagSet).toEqual([{ Key: 'k', Value: 'v' }]);
    const status = repl.status();
    expect(status.peer).toBe('ok');
    expect(status.bytesReplicated).toBeGreaterThanOrEqual(big.length);
    expect(status.misses).toBeGreaterThan(0);
    expect(status.hits).toBeGreaterThan(0);
  });

  it('a hit sends no record message to the secondary', async () => {
    const c = primary.client;
    await c.send(new PutObjectCommand({ Bucket: 'photos', Key: '2026/11/30/warm.jpg', Body: 'x' }));
    const target = repl.target as GatewayTarget;
    const before = { records: target.sent.get('/record') ?? 0, hits: repl.status().hits };
    await c.send(new PutObjectCommand({ Bucket: 'photos', Key: '2026/11/30/warm.jpg', Body: 'y' }));
    expect(repl.status().hits).toBe(before.hits + 1);
    expect(target.sent.get('/record') ?? 0).toBe(before.records);
  });

  it('the secondary refuses client writes, naming the primary', async () => {
    const err = await secondary.client
      .send(new PutObjectCommand({ Bucket: 'photos', Key: 'nope', Body: 'x' }))
      .then(() => undefined, (e: { name?: string; $metadata?: { httpStatusCode?: number } }) => e);
    expect(err?.$metadata?.httpStatusCode).toBe(405);
    await expect(secondary.client.send(new GetObjectCommand({ Bucket: 'photos', Key: 'nope' }))).rejects.toThrow();
  });

  it('secondary down: degraded writes are tracked, then resynced when it returns', { timeout: 60_000 }, async () => {
    const c = primary.client;
    const port = Number(new URL(secondary.endpoint).port);
    await secondary.gateway.close();
    // A new bucket: nothing in the record covers it, so every write misses
    // and its record message cannot go out.
    await c.send(new CreateBucketCommand({ Bucket: 'outage' }));
    for (let i = 0; i < 5; i++) {
      await c.send(new PutObjectCommand({ Bucket: 'outage', Key: `down-${i}/file`, Body: `d${i}` }));
    }
    expect(repl.status().dirtyCount).toBe(6);
    expect(repl.status().peer).toBe('degraded');
    secondary.gateway = newGateway(secondary.store, secondaryRouters);
    await secondary.gateway.listen('127.0.0.1', port);
    await until(() => repl.status().dirtyCount === 0 && repl.status().queueDepth === 0, 'resync after the secondary returned');
    expect(repl.status().peer).toBe('ok');
    for (let i = 0; i < 5; i++) {
      expect((await body(secondary.client, 'outage', `down-${i}/file`)).data.toString()).toBe(`d${i}`);
    }
  });

  it('primary restart: R\' comes back from the secondary and writes go on replicating', { timeout: 60_000 }, async () => {
    const recordBefore = secondaryService!.service().recordSize;
    await repl.stop();
    primary.client.destroy();
    await primary.gateway.close();
    await primary.store.close();
    await primary.root.close();
    primary.root = openMetaDb(primary.dir);
    repl = primaryReplication(primary.root);
    primary.store = await DiskObjectStore.open({ dataDir: primary.dir, db: primary.root, hooks: repl.hooks });
    await repl.start(primary.store);
    expect(repl.status().recordSize).toBe(recordBefore);
    primary.gateway = newGateway(primary.store);
    const { port } = await primary.gateway.listen('127.0.0.1', 0);
    primary.client = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
    await primary.client.send(new PutObjectCommand({ Bucket: 'photos', Key: '2026/11/30/after-restart.jpg', Body: 'r' }));
    await until(() => repl.status().queueDepth === 0, 'Q to drain after restart');
    expect(await listing(secondary.client, 'photos')).toEqual(await listing(primary.client, 'photos'));
  });

  it('replica endpoints refuse unsigned requests and requests signed with a client key', async () => {
    const url = `${secondary.endpoint}/_lookahead/replica/record`;
    const message = JSON.stringify({ v: 1, epoch: 1, from: 'x', session: 1, msgId: 99, add: [{ id: 1, name: 'p/photos/' }], remove: [] });
    const unsigned = await fetch(url, { method: 'POST', body: message });
    expect(unsigned.status).toBe(403);
    const wrongKey = signHeaders(secretAccessKey, { method: 'POST', url: '/_lookahead/replica/record', date: Date.now(), contentSha256: sha256Hex(message), meta: '', epoch: '' });
    const forged = await fetch(url, { method: 'POST', body: message, headers: wrongKey });
    expect(forged.status).toBe(403);
    const bad = JSON.stringify({ v: 1, epoch: 1, from: 'x', session: 1, msgId: 1, add: [{ id: 1, name: 'not a location' }], remove: [] });
    const signedBad = signHeaders(replicationSecret, { method: 'POST', url: '/_lookahead/replica/record', date: Date.now(), contentSha256: sha256Hex(bad), meta: '', epoch: '' });
    const malformed = await fetch(url, { method: 'POST', body: bad, headers: signedBad });
    expect(malformed.status).toBe(400);
    const tampered = await fetch(url, { method: 'POST', body: message, headers: signedBad });
    expect(tampered.status).toBe(403);
    const rightKey = signHeaders(replicationSecret, { method: 'GET', url: '/_lookahead/replica/health', date: Date.now(), contentSha256: sha256Hex(''), meta: '', epoch: '' });
    const health = await fetch(`${secondary.endpoint}/_lookahead/replica/health`, { headers: rightKey });
    expect(health.status).toBe(200);
    expect(((await health.json()) as { role: string }).role).toBe('secondary');
  });
});
