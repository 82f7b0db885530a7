// Operator endpoints under /_lookahead/: status (JSON), Prometheus metrics and
// admin actions. They sit outside the S3 namespace (bucket names cannot start
// with '_') and require a SigV4 signature by an admin access key: a client
// key that may read and write buckets may not read or change replication
// state.
//
// The operator console (GET /_lookahead/ui, src/gateway/ui) and the JSON it
// polls (status, record) also accept HTTP Basic auth with the admin key, as
// a browser cannot sign; without credentials they answer 401 with a Basic
// challenge so the browser asks for them. Metrics and actions stay SigV4
// only: a POST must not ride on credentials a browser caches.

import type { Context } from 'koa';
import Router from '@koa/router';
import type { Registry } from 'prom-client';
import type { Clock } from '../core/clock.ts';
import { S3Error, toWireError } from '../core/errors.ts';
import { readBounded } from '../core/bounded-read.ts';
import { verifyRequest, type CredentialLookup } from './auth/sigv4.ts';
import type { SigningKeyCache } from './auth/signing.ts';
import { consoleSecurityHeaders, loadConsoleAssets, type ConsoleAsset } from './ui/assets.ts';
import { basicChallenge, isBasicAuthorization, verifyBasic } from './ui/basic-auth.ts';
import { parseRecordQuery, type RecordProvider } from './ui/record-view.ts';

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
  /** Serves GET /_lookahead/record?search=&limit= (the console's at-risk
   * list) when given; absent, that route answers 404 and the page says so. */
  record?: RecordProvider;
}

/** Admin bodies are small JSON documents. */
const adminBodyBytesMax = 64 * 1024;

function splitUrl(url: string): { rawPath: string; rawQuery: string } {
  const q = url.indexOf('?');
  return q < 0 ? { rawPath: url, rawQuery: '' } : { rawPath: url.slice(0, q), rawQuery: url.slice(q + 1) };
}

/** No usable credentials on a route a browser may open: ask for Basic. */
class CredentialsWanted extends Error {}

/** Which schemes a route accepts. */
type AuthSchemes = 'sigv4' | 'sigv4-or-basic';

function authenticate(ctx: Context, options: AdminRouterOptions, schemes: AuthSchemes): void {
  const header = ctx.get('authorization') || undefined;
  if (schemes === 'sigv4-or-basic' && isBasicAuthorization(header)) {
    if (verifyBasic(header, options.credentials, options.adminKeys) === undefined) {
      throw new CredentialsWanted('Wrong admin access key id or secret.');
    }
    return;
  }
  const { rawPath, rawQuery } = splitUrl(ctx.req.url ?? '/');
  const auth = verifyRequest(
    { method: ctx.method, rawPath, rawQuery, headers: ctx.req.headersDistinct },
    options.credentials,
    { now: options.clock.now(), ...(options.keyCache ? { keyCache: options.keyCache } : {}) },
  );
  if (!auth && schemes === 'sigv4-or-basic') throw new CredentialsWanted('Sign in with the admin access key.');
  if (!auth || !options.adminKeys.has(auth.accessKeyId)) {
    throw new S3Error('AccessDenied', 'Admin endpoints require the admin access key.');
  }
}

async function readJson(ctx: Context): Promise<unknown> {
  const raw = await readBounded(ctx.req, adminBodyBytesMax, () => new S3Error('InvalidRequest', 'Admin request body too large.'));
  if (raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new S3Error('InvalidRequest', 'Admin request body is not JSON.');
  }
}

/** Runs `fn` authenticated, answering JSON errors with the S3 code. */
function guarded(options: AdminRouterOptions, fn: (ctx: Context) => Promise<void>, schemes: AuthSchemes = 'sigv4') {
  return async (ctx: Context) => {
    try {
      authenticate(ctx, options, schemes);
      await fn(ctx);
    } catch (err) {
      if (err instanceof CredentialsWanted) {
        ctx.status = 401;
        ctx.set('www-authenticate', basicChallenge);
        ctx.set('cache-control', 'no-store');
        ctx.body = { error: 'Unauthorized', message: err.message };
        return;
      }
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
      ctx.set('cache-control', 'no-store');
      ctx.body = await options.status();
    }, 'sigv4-or-basic'),
  );
  addConsoleRoutes(router, options);
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

function sendAsset(ctx: Context, asset: ConsoleAsset): void {
  for (const [name, value] of Object.entries(consoleSecurityHeaders)) ctx.set(name, value);
  ctx.type = asset.contentType;
  ctx.body = asset.body;
}

/** The operator console (src/gateway/ui) and its record list. */
function addConsoleRoutes(router: Router, options: AdminRouterOptions): void {
  for (const [path, asset] of loadConsoleAssets()) {
    router.get(path, guarded(options, async (ctx) => sendAsset(ctx, asset), 'sigv4-or-basic'));
  }
  const record = options.record;
  if (record === undefined) return;
  router.get(
    '/record',
    guarded(options, async (ctx) => {
      const query = parseRecordQuery(ctx.query);
      ctx.set('cache-control', 'no-store');
      ctx.body = await record(query);
    }, 'sigv4-or-basic'),
  );
}
