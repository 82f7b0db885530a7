// Operator endpoints under /_lookahead/: status (JSON), Prometheus metrics and
// admin actions. They sit outside the S3 namespace (bucket names cannot start
// with '_') and require a SigV4 signature by an admin access key: a client
// key that may read and write buckets may not read or change replication
// state.

import type { Context } from 'koa';
import Router from '@koa/router';
import type { Registry } from 'prom-client';
import type { Clock } from '../core/clock.ts';
import { S3Error, toWireError } from '../core/errors.ts';
import { verifyRequest, type CredentialLookup } from './auth/sigv4.ts';
import type { SigningKeyCache } from './auth/signing.ts';

export interface AdminAction {
  /** POST /_lookahead/admin/<name> */
  name: string;
  run(body: unknown): Promise<unknown>;
}

export interface AdminRouterOptions {
  credentials: CredentialLookup;
  /** Access key ids allowed here (the site's main key). */
  adminKeys: ReadonlySet<string>;
  status: () => Promise<unknown> | unknown;
  registry: Registry;
  actions?: AdminAction[];
  clock: Clock;
  keyCache?: SigningKeyCache;
}

/** Admin bodies are small JSON documents. */
const adminBodyBytesMax = 64 * 1024;

function splitUrl(url: string): { rawPath: string; rawQuery: string } {
  const q = url.indexOf('?');
  return q < 0 ? { rawPath: url, rawQuery: '' } : { rawPath: url.slice(0, q), rawQuery: url.slice(q + 1) };
}

function authenticate(ctx: Context, options: AdminRouterOptions): void {
  const { rawPath, rawQuery } = splitUrl(ctx.req.url ?? '/');
  const auth = verifyRequest(
    { method: ctx.method, rawPath, rawQuery, headers: ctx.req.headersDistinct },
    options.credentials,
    { now: options.clock.now(), ...(options.keyCache ? { keyCache: options.keyCache } : {}) },
  );
  if (!auth || !options.adminKeys.has(auth.accessKeyId)) {
    throw new S3Error('AccessDenied', 'Admin endpoints require the admin access key.');
  }
}

async function readJson(ctx: Context): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > adminBodyBytesMax) throw new S3Error('InvalidRequest', 'Admin request body too large.');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new S3Error('InvalidRequest', 'Admin request body is not JSON.');
  }
}

/** Runs `fn` authenticated, answering JSON errors with the S3 code. */
function guarded(options: AdminRouterOptions, fn: (ctx: Context) => Promise<void>) {
  return async (ctx: Context) => {
    try {
      authenticate(ctx, options);
      await fn(ctx);
    } catch (err) {
      const wire = toWireError(err);
      ctx.status = wire.status;
      ctx.body = { error: wire.code, message: wire.unexpected ? String((err as Error)?.message ?? err) : wire.message };
    }
  };
}

export function createAdminRouter(options: AdminRouterOptions): Router {
  const router = new Router({ prefix: '/_lookahead' });
  router.get(
    '/status',
    guarded(options, async (ctx) => {
      ctx.body = await options.status();
    }),
  );
  router.get(
    '/metrics',
    guarded(options, async (ctx) => {
      ctx.type = options.registry.contentType;
      ctx.body = await options.registry.metrics();
    }),
  );
  for (const action of options.actions ?? []) {
    router.post(
      `/admin/${action.name}`,
      guarded(options, async (ctx) => {
        ctx.body = (await action.run(await readJson(ctx))) ?? { ok: true };
      }),
    );
  }
  return router;
}
