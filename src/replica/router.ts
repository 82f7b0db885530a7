// The secondary's inter-site endpoints under /_lookahead/replica/*, mounted
// on the gateway before S3 dispatch. Every request must carry a valid HMAC
// signature made with the replication secret; S3 credentials mean nothing
// here, so a client's key cannot touch the record or write replicas.

import type { IncomingMessage } from 'node:http';
import Router from '@koa/router';
import type Koa from 'koa';
import type { Clock } from '../core/clock.ts';
import { S3Error } from '../core/errors.ts';
import { readBounded } from '../core/bounded-read.ts';
import { replicaJsonBodyBytesMax } from '../core/limits.ts';
import { epochHeader, metaHeader, sha256Hex, streamedBodyHash, verifySignature } from './auth.ts';
import { ReplicaProtocolError, decodeMetaHeader, decodeRecordMessage } from './messages.ts';
import type { BucketCopy, DeleteCopy } from './messages.ts';
import { applyBatch, batchPath, decodeBatch, readBatchBody } from './batch.ts';
import type { SecondaryService } from './secondary.ts';
import { FencedError, StaleSessionError } from './target.ts';

export const replicaPathPrefix = '/_lookahead/replica';

/** Reads a JSON body up to the limit (never unbounded). */
async function readJson(req: IncomingMessage): Promise<{ json: unknown; sha256: string }> {
  const raw = await readBounded(req, replicaJsonBodyBytesMax, () => new ReplicaProtocolError('body too large'));
  try {
    return { json: JSON.parse(raw.toString('utf8')), sha256: sha256Hex(raw) };
  } catch {
    throw new ReplicaProtocolError('body is not JSON');
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ReplicaProtocolError(`${what}: expected an integer`);
  return v;
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ReplicaProtocolError(`${what}: expected a string`);
  return v;
}

/**
 * `service` may be a getter: the composition root builds the router (for the
 * gateway) before the store exists, and the service needs the store.
 */
export function createReplicaRouter(
  serviceOrGetter: SecondaryService | (() => SecondaryService),
  replicationSecret: string,
  clock: Clock,
): Router {
  const current = typeof serviceOrGetter === 'function' ? serviceOrGetter : () => serviceOrGetter;
  const router = new Router({ prefix: replicaPathPrefix });

  // Authentication first, for every route: 403 and nothing read or changed.
  router.use(async (ctx, next) => {
    const reason = verifySignature(
      replicationSecret,
      { method: ctx.method, url: ctx.originalUrl, header: (name) => ctx.get(name) || undefined },
      clock.now(),
    );
    if (reason !== undefined) {
      ctx.set('connection', 'close');
      throw new S3Error('AccessDenied', `Replication request refused: ${reason}.`);
    }
    try {
      await next();
    } catch (err) {
      replyError(ctx, err);
    }
  });

  /** JSON bodies must hash to what was signed. */
  const body = async (ctx: Koa.Context): Promise<unknown> => {
    const { json, sha256 } = await readJson(ctx.req);
    if (sha256 !== ctx.get('x-lookahead-content-sha256')) throw new S3Error('AccessDenied', 'Body does not match its signature.');
    return json;
  };

  router.get('/health', (ctx) => {
    ctx.body = current().health();
  });

  router.post('/session', async (ctx) => {
    const json = await body(ctx);
    if (!isRecord(json)) throw new ReplicaProtocolError('expected {from, epoch}');
    ctx.body = await current().openSession(text(json.from, 'from'), num(json.epoch, 'epoch'));
  });

  router.post('/record', async (ctx) => {
    ctx.body = await current().applyRecord(decodeRecordMessage(await body(ctx)));
  });

  router.put('/object', async (ctx) => {
    if (ctx.get('x-lookahead-content-sha256') !== streamedBodyHash) throw new ReplicaProtocolError('object bodies are streamed');
    const meta = decodeMetaHeader(ctx.get(metaHeader) || undefined);
    const epoch = Number(ctx.get(epochHeader));
    const applied = await current().putObject({ epoch: num(epoch, 'epoch'), meta }, ctx.req);
    ctx.body = { applied };
  });

  // Many small copies in one request (batch.ts); the signed hash covers metas and bodies.
  router.post(batchPath, async (ctx) => {
    const raw = await readBatchBody(ctx.req);
    if (sha256Hex(raw) !== ctx.get('x-lookahead-content-sha256')) throw new S3Error('AccessDenied', 'Body does not match its signature.');
    ctx.body = await applyBatch(current(), decodeBatch(raw));
  });

  router.post('/delete', async (ctx) => {
    const json = await body(ctx);
    if (!isRecord(json)) throw new ReplicaProtocolError('expected a delete');
    const copy: DeleteCopy = {
      epoch: num(json.epoch, 'epoch'),
      bucket: text(json.bucket, 'bucket'),
      key: text(json.key, 'key'),
      seq: num(json.seq, 'seq'),
    };
    ctx.body = { applied: await current().deleteObject(copy) };
  });

  router.post('/bucket', async (ctx) => {
    const json = await body(ctx);
    if (!isRecord(json) || typeof json.exists !== 'boolean') throw new ReplicaProtocolError('expected a bucket copy');
    const copy: BucketCopy = {
      epoch: num(json.epoch, 'epoch'),
      bucket: text(json.bucket, 'bucket'),
      exists: json.exists,
      region: text(json.region, 'region'),
      seq: num(json.seq, 'seq'),
    };
    await current().putBucket(copy);
    ctx.body = { ok: true };
  });

  return router;
}

/** Errors as JSON the GatewayTarget maps back to its error classes (the
 * failover router answers with the same shapes). */
export function replyError(ctx: Koa.Context, err: unknown): void {
  if (err instanceof FencedError) {
    ctx.status = 409;
    ctx.body = { error: 'fenced', epoch: err.epoch, primary: err.primary ?? null };
  } else if (err instanceof StaleSessionError) {
    ctx.status = 409;
    ctx.body = { error: 'stale-session', session: err.current };
  } else if (err instanceof ReplicaProtocolError) {
    ctx.status = 400;
    ctx.body = { error: 'protocol', message: err.message };
  } else if (err instanceof S3Error) {
    ctx.status = err.status;
    ctx.body = { error: 's3', code: err.code, message: err.message };
  } else {
    throw err;
  }
}
