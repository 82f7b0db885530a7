// The gateway's HTTP server: koa for the /_lookahead/* routes, and one
// middleware that turns every other request into an S3 operation.
//
// S3 responses are written straight to node's response (ctx.respond = false):
// koa's body heuristics (content types, 204 for empty bodies) are not S3's.
// Routers may also offer hot routes of theirs (the inter-site batch of
// replica copies) for serving without koa: see DirectRoute.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../core/clock.ts';
import { S3Error } from '../core/errors.ts';
import { keepAliveIdleMs, requestHeaderBytesMax, requestHeadersMsMax, socketIdleMsMax } from '../core/limits.ts';
import type { ObjectStore } from '../objects/types.ts';
import { SigningKeyCache } from './auth/signing.ts';
import { verifyRequest, type AuthContext, type CredentialLookup } from './auth/sigv4.ts';
import { dispatch } from './dispatch.ts';
import {
  bucketOf,
  isAnonymousReadable,
  parseRequest,
  percentDecode,
  virtualHostBucket,
  type Operation,
  type OperationKind,
} from './endpoint.ts';
import { errorReply } from './errors-xml.ts';
import { GatewayMetrics } from './metrics.ts';
import type { HandlerDeps } from './handlers/context.ts';
import { writeReply } from './reply.ts';
import { XmlCodec } from './xml.ts';
import type { ReadVerification } from '../objects/verify-read.ts';
import type { ClientLoad } from './client-load.ts';

/** A JSON answer of a direct route. */
export interface DirectReply {
  status: number;
  body: unknown;
}

/**
 * A route served straight from node's server, without koa's context and
 * compose chain (their fixed cost per request showed in the secondary's
 * CPU per replicated batch). Matched by method and exact path (query
 * ignored); `serve` authenticates and answers, and what it throws is
 * answered as koa's internal routes answer it (S3 error XML).
 */
export interface DirectRoute {
  method: string;
  path: string;
  serve(req: http.IncomingMessage): Promise<DirectReply>;
}

/** A koa router whose routes are partly also offered as direct routes
 * (they must answer the same as the router would). */
export type ExtraRouter = Router & { directRoutes?: readonly DirectRoute[] };

export interface GatewayOptions {
  store: ObjectStore;
  credentials: CredentialLookup;
  region: string;
  /** Enables virtual-host style addressing: `bucket.<baseDomain>`. */
  baseDomain?: string;
  /** Buckets anonymous clients may read (GET/HEAD/list). */
  anonymousReadBuckets?: string[];
  logger: Logger;
  /** Mounted before S3 dispatch, for /_lookahead/* routes. */
  extraRouters?: ExtraRouter[];
  /** Health answers 200 only once this says so (default: always ready). */
  isReady?: () => boolean;
  clock?: Clock;
  /** Request counts and latencies by operation go here when given. */
  registry?: Registry;
  /** Serve HTTPS with this certificate chain and key (PEM) instead of HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** What GETs check of stored bodies (verify-read.ts); default 'full'. */
  verifyReads?: ReadVerification;
  /** Counts S3 requests for the copier's priority (client-load.ts). */
  clientLoad?: ClientLoad;
}

export interface Gateway {
  app: Koa;
  listen(host: string, port: number): Promise<{ server: http.Server; port: number }>;
  close(): Promise<void>;
}

const internalPrefix = '/_lookahead/';

function splitUrl(url: string): { rawPath: string; rawQuery: string } {
  const q = url.indexOf('?');
  return q < 0 ? { rawPath: url, rawQuery: '' } : { rawPath: url.slice(0, q), rawQuery: url.slice(q + 1) };
}

/**
 * Request ids: a random per-process prefix and a counter. Unique across
 * restarts and sites without a CSPRNG call per request (which showed up in
 * GET profiles).
 */
class RequestIds {
  private readonly prefix = randomBytes(3).toString('hex').toUpperCase();
  private counter = 0;

  next(): string {
    this.counter = (this.counter + 1) % 0x10000000000;
    return `${this.prefix}${this.counter.toString(16).toUpperCase().padStart(10, '0')}`;
  }
}

/** Headers every response carries, set before the operation runs. */
const ownHeaders = new Set(['x-amz-request-id', 'x-amz-id-2', 'server']);

/** x-amz-id-2 ("host id" on AWS): here derived from the request id. */
function idTwo(requestId: string): string {
  return Buffer.from(requestId).toString('base64');
}

/** Buckets an operation touches: its own and, for copies, the source's. */
function bucketsTouched(op: Operation): string[] {
  const own = bucketOf(op);
  const source = op.kind === 'CopyObject' || op.kind === 'UploadPartCopy' ? op.source.bucket : undefined;
  return [own, source].filter((b): b is string => b !== undefined);
}

/**
 * Refuses anonymous requests unless the bucket is open for anonymous reads,
 * and a key limited to some buckets everywhere else (what anyone may read
 * anonymously it may read too).
 */
function authorize(op: Operation, auth: AuthContext | undefined, anonymous: ReadonlySet<string>, allowed: ReadonlySet<string> | undefined): void {
  const bucket = bucketOf(op);
  const publicRead = bucket !== undefined && anonymous.has(bucket) && isAnonymousReadable(op);
  if (!auth) {
    if (publicRead) return;
    throw new S3Error('AccessDenied', 'Access Denied');
  }
  if (allowed === undefined || publicRead) return;
  if (bucketsTouched(op).every((b) => allowed.has(b))) return;
  throw new S3Error('AccessDenied', 'Access Denied');
}

class GatewayServer implements Gateway {
  readonly app = new Koa();
  private readonly xml = new XmlCodec();
  private readonly keyCache = new SigningKeyCache();
  private readonly requestIds = new RequestIds();
  private readonly anonymous: ReadonlySet<string>;
  private readonly clock: Clock;
  private readonly deps: HandlerDeps;
  /** Requests that sent Expect: 100-continue and still wait for it. */
  private readonly awaitingContinue = new WeakSet<http.IncomingMessage>();
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();
  /** Sockets whose errors directServe logs (one listener per connection). */
  private readonly watchedSockets = new WeakSet<Socket>();
  private readonly metrics?: GatewayMetrics;
  /** Direct routes by "METHOD path". */
  private readonly directRoutes = new Map<string, DirectRoute>();

  constructor(private readonly options: GatewayOptions) {
    this.anonymous = new Set(options.anonymousReadBuckets ?? []);
    this.clock = options.clock ?? systemClock;
    this.deps = { store: options.store, region: options.region, xml: this.xml, ...(options.verifyReads ? { verifyReads: options.verifyReads } : {}) };
    if (options.registry) this.metrics = new GatewayMetrics(options.registry);
    this.app.proxy = false;
    // Koa reports errors of finished responses here (mostly clients that hung
    // up mid-body). Ours go to pino; koa's default would print to stderr.
    this.app.on('error', (err: Error & { code?: string }) => this.connectionError(err));
    // listen() sends S3 requests past koa (directServe); this middleware
    // serves them too so that app.callback() alone is a complete handler.
    this.app.use(async (ctx, next) => {
      const requestId = this.stampIds(ctx.res);
      if (this.isInternal(ctx.req)) {
        await this.internal(ctx, next, requestId);
      } else {
        ctx.respond = false;
        await this.s3(ctx.req, ctx.res, requestId);
      }
    });
    this.app.use(this.healthRouter().routes());
    for (const router of options.extraRouters ?? []) {
      this.app.use(router.routes());
      this.app.use(router.allowedMethods());
      for (const route of router.directRoutes ?? []) this.directRoutes.set(`${route.method} ${route.path}`, route);
    }
  }

  private connectionError(err: Error & { code?: string }): void {
    const clientGone = err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || err.message === 'aborted';
    this.options.logger[clientGone ? 'debug' : 'warn']({ err }, 'connection error');
  }

  /** A new request id, and the headers every response carries. */
  private stampIds(res: http.ServerResponse): string {
    const requestId = this.requestIds.next();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', idTwo(requestId));
    res.setHeader('server', 'Lookahead');
    return requestId;
  }

  /** /_lookahead/... is ours, except on a bucket's virtual host (an object key there). */
  private isInternal(req: http.IncomingMessage): boolean {
    return (req.url ?? '/').startsWith(internalPrefix) && virtualHostBucket(req.headers.host, this.options.baseDomain) === undefined;
  }

  /**
   * An S3 request straight from node's server, without koa: its context,
   * compose chain and per-request on-finished listeners cost a noticeable
   * share of a small PUT's CPU, and S3 replies never use them
   * (ctx.respond = false). What koa's on-finished did for us, logging
   * socket errors, a listener per connection does.
   */
  private directServe(req: http.IncomingMessage, res: http.ServerResponse): void {
    const requestId = this.stampIds(res);
    this.watchSocket(req.socket);
    this.s3(req, res, requestId).catch((err: unknown) => {
      // serveS3 answers every failure itself; this is our own bug.
      this.options.logger.error({ err, requestId }, 'S3 request failed outside its handler');
      res.destroy();
    });
  }

  /** The direct route for this internal request, if one is offered. */
  private directRoute(req: http.IncomingMessage): DirectRoute | undefined {
    if (this.directRoutes.size === 0) return undefined;
    return this.directRoutes.get(`${req.method ?? 'GET'} ${splitUrl(req.url ?? '/').rawPath}`);
  }

  /** A direct route's request: the ids, 100-continue and error answers of
   * internal() and the JSON answer koa would write for `ctx.body = {...}`. */
  private serveDirect(route: DirectRoute, req: http.IncomingMessage, res: http.ServerResponse): void {
    const requestId = this.stampIds(res);
    this.watchSocket(req.socket);
    // These routes authenticate themselves, after reading: let the body come.
    if (this.awaitingContinue.delete(req)) res.writeContinue();
    route
      .serve(req)
      .then(
        (reply) => {
          const body = JSON.stringify(reply.body);
          const headers: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) };
          // An unread body would be parsed as the next request: close instead.
          if (!req.complete) headers.connection = 'close';
          res.writeHead(reply.status, headers);
          res.end(body);
        },
        (err: unknown) => this.fail(req, res, err, requestId),
      )
      .catch((err: unknown) => {
        this.options.logger.warn({ err, requestId }, 'could not write internal response');
        res.destroy();
      });
  }

  private watchSocket(socket: Socket): void {
    if (this.watchedSockets.has(socket)) return;
    this.watchedSockets.add(socket);
    socket.on('error', (err) => this.connectionError(err));
  }

  private healthRouter(): Router {
    const router = new Router();
    router.get('/_lookahead/health', (ctx) => {
      const ready = this.options.isReady?.() ?? true;
      ctx.status = ready ? 200 : 503;
      ctx.body = { status: ready ? 'ok' : 'starting' };
    });
    return router;
  }

  /** Our own routes: errors still come out as S3 XML with the request id. */
  private async internal(ctx: Koa.Context, next: Koa.Next, requestId: string): Promise<void> {
    // These routes authenticate themselves, after reading: let the body come.
    if (this.awaitingContinue.delete(ctx.req)) ctx.res.writeContinue();
    try {
      await next();
    } catch (err) {
      const reply = errorReply(err, this.errorContext(ctx.req, requestId));
      ctx.status = reply.status;
      for (const [k, v] of Object.entries(reply.headers)) ctx.set(k, String(v));
      ctx.body = reply.body ?? '';
    }
  }

  private errorContext(req: http.IncomingMessage, requestId: string) {
    const { rawPath } = splitUrl(req.url ?? '/');
    return {
      requestId,
      method: req.method ?? 'GET',
      resource: percentDecode(rawPath) ?? rawPath,
      logger: this.options.logger,
      xml: this.xml,
    };
  }

  private async s3(req: http.IncomingMessage, res: http.ServerResponse, requestId: string): Promise<void> {
    const debug = this.options.logger.isLevelEnabled('debug');
    const started = debug || this.metrics ? performance.now() : 0;
    const load = this.options.clientLoad;
    load?.begin();
    let kind: OperationKind;
    try {
      kind = await this.serveS3(req, res, requestId);
    } finally {
      load?.end();
    }
    const ms = performance.now() - started;
    this.metrics?.observe(kind, res.statusCode, ms / 1000);
    if (debug) {
      // Access log for debugging only: the hot path pays nothing at info level.
      const url = (req.url ?? '').replace(/(X-Amz-Signature=)[^&]*/gi, '$1REDACTED');
      this.options.logger.debug({ requestId, op: kind, method: req.method, url, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    }
  }

  /** Serves one S3 request; returns the operation kind (for metrics and logs). */
  private async serveS3(req: http.IncomingMessage, res: http.ServerResponse, requestId: string): Promise<OperationKind> {
    const method = req.method ?? 'GET';
    const { rawPath, rawQuery } = splitUrl(req.url ?? '/');
    let kind: OperationKind = 'Invalid';
    try {
      const { operation, query } = parseRequest(
        { method, rawPath, rawQuery, headers: req.headers },
        { ...(this.options.baseDomain ? { baseDomain: this.options.baseDomain } : {}) },
      );
      const auth = verifyRequest(
        { method, rawPath, rawQuery, headers: req.headersDistinct },
        this.options.credentials,
        { now: this.clock.now(), keyCache: this.keyCache },
      );
      kind = operation.kind;
      const allowedBuckets = auth ? this.options.credentials.bucketsFor?.(auth.accessKeyId) : undefined;
      authorize(operation, auth, this.anonymous, allowedBuckets);
      // Only an authenticated, authorised request gets the client to send its body.
      if (this.awaitingContinue.delete(req)) res.writeContinue();
      const rq = { req, query, requestId, ...(auth ? { auth } : {}), ...(allowedBuckets ? { allowedBuckets } : {}) };
      const reply = await dispatch(operation, rq, this.deps);
      await writeReply(res, reply, method, (err) => this.bodyFailed(err, requestId, operation));
    } catch (err) {
      try {
        await this.fail(req, res, err, requestId);
      } catch (writeErr) {
        // The error itself could not be written (socket gone): log, cut.
        this.options.logger.warn({ err: writeErr, requestId }, 'could not write error response');
        res.destroy();
      }
    }
    return kind;
  }

  /** A response body failed after its headers went out (the connection was cut). */
  private bodyFailed(err: Error, requestId: string, op: Operation): void {
    const clientGone = (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE';
    const where = { bucket: bucketOf(op), key: 'key' in op ? op.key : undefined };
    this.options.logger[clientGone ? 'debug' : 'error']({ err, requestId, ...where }, 'response body failed; connection cut');
  }

  private async fail(req: http.IncomingMessage, res: http.ServerResponse, err: unknown, requestId: string): Promise<void> {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // Headers of a reply whose body failed before it was sent (ETag, length,
    // ranges) must not dress up the error.
    for (const name of res.getHeaderNames()) if (!ownHeaders.has(name)) res.removeHeader(name);
    const reply = errorReply(err, this.errorContext(req, requestId));
    // An unread body would be parsed as the next request: close instead.
    if (!req.complete) reply.headers.connection = 'close';
    await writeReply(res, reply, req.method ?? 'GET');
  }

  /**
   * Requests node's parser refused before any handler ran. Oversized headers
   * still get an S3 error body with a request id; other garbage a plain 400.
   */
  private clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const requestId = this.requestIds.next();
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const body = this.xml.buildPlain('Error', {
      Code: tooLarge ? 'RequestHeaderSectionTooLarge' : 'BadRequest',
      Message: tooLarge ? 'Your request header section exceeds the maximum allowed size.' : 'The request could not be parsed.',
      ...(tooLarge ? { MaxSizeAllowed: String(requestHeaderBytesMax) } : {}),
      RequestId: requestId,
    });
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nx-amz-request-id: ${requestId}\r\nx-amz-id-2: ${idTwo(requestId)}\r\n` +
        'content-type: application/xml\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  listen(host: string, port: number): Promise<{ server: http.Server; port: number }> {
    const koaHandler = this.app.callback();
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      if (!this.isInternal(req)) return this.directServe(req, res);
      const route = this.directRoute(req);
      if (route) this.serveDirect(route, req, res);
      else void koaHandler(req, res);
    };
    const serverOptions: http.ServerOptions = {
      keepAlive: true,
      maxHeaderSize: requestHeaderBytesMax,
      // Bodies stream for as long as they need; idle sockets are what we bound.
      requestTimeout: 0,
      headersTimeout: requestHeadersMsMax,
      keepAliveTimeout: keepAliveIdleMs,
    };
    const tls = this.options.tls;
    const server: http.Server = tls
      ? https.createServer({ ...serverOptions, cert: tls.cert, key: tls.key }, handler)
      : http.createServer(serverOptions, handler);
    server.timeout = socketIdleMsMax;
    server.on('checkContinue', (req, res) => {
      this.awaitingContinue.add(req);
      void handler(req, res);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.clientError(err, socket));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve({ server, port: (server.address() as AddressInfo).port });
      });
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      // Bounded shutdown: connections still busy are cut.
      for (const s of this.sockets) s.destroy();
    });
  }
}

export function createGateway(options: GatewayOptions): Gateway {
  return new GatewayServer(options);
}
