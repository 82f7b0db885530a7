// Inter-site endpoints of a resync (issue 4, rejoin), under
// /_lookahead/failover/*, on a site in secondary role. Signed with the
// replication secret like /_lookahead/replica/* (router.ts):
//   GET  /list?bucket=&prefix=&after=   one page of keys under a prefix
//   GET  /head?bucket=&key=             one key's ETag, size and seq
//   GET  /unsynced?after=               what this site, as the old primary,
//                                       wrote and never saw confirmed
//   PUT  /object                        a forced copy (body streamed)
//   POST /delete                        a forced delete
// "Forced" because the old primary may hold a version with a higher seq
// that never reached the new primary: the resync must replace it anyway.

import Router from '@koa/router';
import type Koa from 'koa';
import type { Clock } from '../../core/clock.ts';
import { S3Error } from '../../core/errors.ts';
import { readBounded } from '../../core/bounded-read.ts';
import { replicaJsonBodyBytesMax } from '../../core/limits.ts';
import type { ObjectStore } from '../../objects/types.ts';
import { epochHeader, metaHeader, sha256Hex, streamedBodyHash, verifySignature } from '../auth.ts';
import { ReplicaProtocolError, decodeMetaHeader } from '../messages.ts';
import { replyError } from '../router.ts';
import { FencedError } from '../target.ts';

export const failoverPathPrefix = '/_lookahead/failover';

/** Keys per list page (bounded answer). */
export const failoverListPageMax = 1000;

export interface ListedObject {
  key: string;
  etag: string;
  size: number;
  seq: number;
}

/** What the router needs of the site while it is a secondary. */
export interface FailoverPeer {
  store: ObjectStore;
  /** Names this site wrote as a primary and its secondary never confirmed. */
  unsynced(after: string | undefined, limit: number): string[];
  /** The secondary's epoch: older senders are fenced. */
  epoch(): number;
  primary(): string | undefined;
}

export function createFailoverRouter(peer: () => FailoverPeer | undefined, secret: string, clock: Clock): Router {
  const router = new Router({ prefix: failoverPathPrefix });
  router.use(async (ctx, next) => {
    const reason = verifySignature(secret, { method: ctx.method, url: ctx.originalUrl, header: (n) => ctx.get(n) || undefined }, clock.now());
    if (reason !== undefined) {
      ctx.set('connection', 'close');
      throw new S3Error('AccessDenied', `Failover request refused: ${reason}.`);
    }
    try {
      await next();
    } catch (err) {
      replyError(ctx, err);
    }
  });

  const current = (epoch?: number): FailoverPeer => {
    const p = peer();
    if (p === undefined) throw new S3Error('MethodNotAllowed', 'This site is not a secondary: rejoin it first.');
    if (epoch !== undefined && epoch < p.epoch()) throw new FencedError(p.epoch(), p.primary());
    return p;
  };

  router.get('/list', async (ctx) => {
    const bucket = str(ctx.query.bucket, 'bucket');
    const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '';
    const after = typeof ctx.query.after === 'string' && ctx.query.after !== '' ? ctx.query.after : undefined;
    const { store } = current();
    const exists = await store.headBucket(bucket).then(() => true, () => false);
    if (!exists) return void (ctx.body = { objects: [], truncated: false });
    const page = await store.list({ bucket, prefix, maxKeys: failoverListPageMax, ...(after ? { after } : {}) });
    const objects: ListedObject[] = page.objects.map((o) => ({ key: o.key, etag: o.etag, size: o.size, seq: o.seq }));
    ctx.body = { objects, truncated: page.isTruncated };
  });

  router.get('/unsynced', async (ctx) => {
    const after = typeof ctx.query.after === 'string' && ctx.query.after !== '' ? ctx.query.after : undefined;
    const names = current().unsynced(after, failoverListPageMax);
    ctx.body = { names, more: names.length === failoverListPageMax };
  });

  router.get('/head', async (ctx) => {
    const { store } = current();
    const meta = await store.headObject(str(ctx.query.bucket, 'bucket'), str(ctx.query.key, 'key')).catch(() => undefined);
    ctx.body = meta ? { exists: true, etag: meta.etag, size: meta.size, seq: meta.seq } : { exists: false };
  });

  router.put('/object', async (ctx) => {
    if (ctx.get('x-lookahead-content-sha256') !== streamedBodyHash) throw new ReplicaProtocolError('object bodies are streamed');
    const meta = decodeMetaHeader(ctx.get(metaHeader) || undefined);
    const { store } = current(Number(ctx.get(epochHeader)));
    ctx.body = { applied: await store.applyReplica(meta, ctx.req, { force: true }) };
  });

  router.post('/delete', async (ctx) => {
    const json = await readJson(ctx);
    const { store } = current(num(json.epoch, 'epoch'));
    ctx.body = { applied: await store.applyReplicaDelete(str(json.bucket, 'bucket'), str(json.key, 'key'), num(json.seq, 'seq'), { force: true }) };
  });

  return router;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ReplicaProtocolError(`${what}: expected a string`);
  return v;
}

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ReplicaProtocolError(`${what}: expected an integer`);
  return v;
}

async function readJson(ctx: Koa.Context): Promise<Record<string, unknown>> {
  const raw = await readBounded(ctx.req, replicaJsonBodyBytesMax, () => new ReplicaProtocolError('body too large'));
  if (sha256Hex(raw) !== ctx.get('x-lookahead-content-sha256')) throw new S3Error('AccessDenied', 'Body does not match its signature.');
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ReplicaProtocolError('body is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ReplicaProtocolError('expected an object');
  return json as Record<string, unknown>;
}
