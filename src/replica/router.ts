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
import { contentHashHeader, epochHeader, metaHeader, sha256Hex, streamedBodyHash, verifySignature } from './auth.ts';
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

/** One endpoint: its answer's JSON, or a thrown error (errorJson maps it). */
interface Route {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  run(req: IncomingMessage): Promise<unknown>;
}

/** What a route answers: the gateway's DirectRoute/DirectReply, by shape
 * (replica code does not import the gateway). */
export interface ReplicaDirectRoute {
  method: string;
  path: string;
  serve(req: IncomingMessage): Promise<{ status: number; body: unknown }>;
}

/** The koa router of these endpoints, every one of which the gateway may
 * also serve without koa (`directRoutes`): the copier's batches come many a
 * second, and koa's per-request context and middleware chain cost the
 * secondary CPU the primary's client writes need (the two share a machine
 * in the replication bench). Both paths run the same Route and auth. */
export type ReplicaRouter = Router & { directRoutes: readonly ReplicaDirectRoute[] };

/** A request header as koa's ctx.get gives it, '' as absent. */
function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * `service` may be a getter: the composition root builds the router (for the
 * gateway) before the store exists, and the service needs the store.
 */
export function createReplicaRouter(
  serviceOrGetter: SecondaryService | (() => SecondaryService),
  replicationSecret: string,
  clock: Clock,
): ReplicaRouter {
  const current = typeof serviceOrGetter === 'function' ? serviceOrGetter : () => serviceOrGetter;
  const routes = replicaRoutes(current);
  /** The refusal of a request without a valid signature, or undefined. */
  const refusal = (req: IncomingMessage): S3Error | undefined => {
    const reason = verifySignature(
      replicationSecret,
      { method: req.method ?? 'GET', url: req.url ?? '/', header: (name) => header(req, name) },
      clock.now(),
    );
    return reason === undefined ? undefined : new S3Error('AccessDenied', `Replication request refused: ${reason}.`);
  };

  const router = new Router({ prefix: replicaPathPrefix });
  // Authentication first, for every route: 403 and nothing read or changed.
  router.use(async (ctx, next) => {
    const refused = refusal(ctx.req);
    if (refused !== undefined) {
      ctx.set('connection', 'close');
      throw refused;
    }
    try {
      await next();
    } catch (err) {
      replyError(ctx, err);
    }
  });
  for (const route of routes) {
    const handler = async (ctx: Koa.Context): Promise<void> => {
      ctx.body = await route.run(ctx.req);
    };
    if (route.method === 'GET') router.get(route.path, handler);
    else if (route.method === 'POST') router.post(route.path, handler);
    else router.put(route.path, handler);
  }

  const directRoutes = routes.map(
    (route): ReplicaDirectRoute => ({
      method: route.method,
      path: replicaPathPrefix + route.path,
      serve: async (req) => {
        // As the middleware above: a refusal is thrown (the gateway answers
        // S3 error XML), a route's own error answered as JSON.
        const refused = refusal(req);
        if (refused !== undefined) throw refused;
        try {
          return { status: 200, body: await route.run(req) };
        } catch (err) {
          return errorJson(err);
        }
      },
    }),
  );
  return Object.assign(router, { directRoutes });
}

function replicaRoutes(current: () => SecondaryService): Route[] {
  /** JSON bodies must hash to what was signed. */
  const body = async (req: IncomingMessage): Promise<unknown> => {
    const { json, sha256 } = await readJson(req);
    if (sha256 !== header(req, contentHashHeader)) throw new S3Error('AccessDenied', 'Body does not match its signature.');
    return json;
  };
  return [
    { method: 'GET', path: '/health', run: async () => current().health() },
    {
      method: 'POST',
      path: '/session',
      run: async (req) => {
        const json = await body(req);
        if (!isRecord(json)) throw new ReplicaProtocolError('expected {from, epoch}');
        return current().openSession(text(json.from, 'from'), num(json.epoch, 'epoch'));
      },
    },
    { method: 'POST', path: '/record', run: async (req) => current().applyRecord(decodeRecordMessage(await body(req))) },
    {
      method: 'PUT',
      path: '/object',
      run: async (req) => {
        if (header(req, contentHashHeader) !== streamedBodyHash) throw new ReplicaProtocolError('object bodies are streamed');
        const meta = decodeMetaHeader(header(req, metaHeader));
        const epoch = Number(header(req, epochHeader) ?? '');
        return { applied: await current().putObject({ epoch: num(epoch, 'epoch'), meta }, req) };
      },
    },
    // Many small copies in one request (batch.ts); the signed hash covers metas and bodies.
    {
      method: 'POST',
      path: batchPath,
      run: async (req) => {
        const raw = await readBatchBody(req);
        if (sha256Hex(raw) !== header(req, contentHashHeader)) throw new S3Error('AccessDenied', 'Body does not match its signature.');
        return applyBatch(current(), decodeBatch(raw));
      },
    },
    {
      method: 'POST',
      path: '/delete',
      run: async (req) => {
        const json = await body(req);
        if (!isRecord(json)) throw new ReplicaProtocolError('expected a delete');
        const copy: DeleteCopy = {
          epoch: num(json.epoch, 'epoch'),
          bucket: text(json.bucket, 'bucket'),
          key: text(json.key, 'key'),
          seq: num(json.seq, 'seq'),
        };
        return { applied: await current().deleteObject(copy) };
      },
    },
    {
      method: 'POST',
      path: '/bucket',
      run: async (req) => {
        const json = await body(req);
        if (!isRecord(json) || typeof json.exists !== 'boolean') throw new ReplicaProtocolError('expected a bucket copy');
        const copy: BucketCopy = {
          epoch: num(json.epoch, 'epoch'),
          bucket: text(json.bucket, 'bucket'),
          exists: json.exists,
          region: text(json.region, 'region'),
          seq: num(json.seq, 'seq'),
        };
        await current().putBucket(copy);
        return { ok: true };
      },
    },
  ];
}

/** Errors as JSON the GatewayTarget maps back to its error classes (the
 * failover router answers with the same shapes). */
export function replyError(ctx: Koa.Context, err: unknown): void {
  const { status, body } = errorJson(err);
  ctx.status = status;
  ctx.body = body;
}

/** The JSON answer for one of our error classes; anything else is rethrown
 * (the gateway answers it as an internal error). */
export function errorJson(err: unknown): { status: number; body: unknown } {
  if (err instanceof FencedError) return { status: 409, body: { error: 'fenced', epoch: err.epoch, primary: err.primary ?? null } };
  if (err instanceof StaleSessionError) return { status: 409, body: { error: 'stale-session', session: err.current } };
  if (err instanceof ReplicaProtocolError) return { status: 400, body: { error: 'protocol', message: err.message } };
  if (err instanceof S3Error) return { status: err.status, body: { error: 's3', code: err.code, message: err.message } };
  throw err;
}
