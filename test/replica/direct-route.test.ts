// The replica endpoints are served straight from node's server (the
// gateway's DirectRoute), past koa; the koa router stays for app.callback()
// and for paths and methods it has no route for. Both must answer alike:
// the same statuses, bodies and content types for a valid batch, a forged
// signature, a body that is not the one signed, a cut batch, a fenced
// sender, an unknown path and a wrong method.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.ts';
import type { Gateway } from '../../src/gateway/server.ts';
import type { DiskObjectStore } from '../../src/objects/store.ts';
import { sha256Hex, signHeaders } from '../../src/replica/auth.ts';
import { encodeBatch, type BatchItem } from '../../src/replica/batch.ts';
import { GatewayTarget } from '../../src/replica/http-target.ts';
import { copyItem, openSecondaryGateway, type SecondaryGateway } from '../helpers/secondary-gateway.ts';

const secret = randomBytes(16).toString('hex');
const bucket = 'direct';
/** The session's epoch: copies of an older one are fenced. */
const epoch = 3;
let site: SecondaryGateway;
let store: DiskObjectStore;
let gateway: Gateway;
/** Served by gateway.listen: replica routes go past koa. */
let direct: string;
/** The same app through koa alone (app.callback()). */
let viaKoa: string;
let koaServer: http.Server;
/** Requests that reached koa's middleware chain. */
let koaRequests = 0;
let seq = 1_000;

beforeAll(async () => {
  site = await openSecondaryGateway('direct-route', secret);
  ({ store, gateway } = site);
  gateway.app.middleware.unshift(async (_ctx, next) => {
    koaRequests++;
    await next();
  });
  direct = `http://127.0.0.1:${(await gateway.listen('127.0.0.1', 0)).port}`;
  koaServer = http.createServer(gateway.app.callback());
  await new Promise<void>((resolve) => koaServer.listen(0, '127.0.0.1', resolve));
  viaKoa = `http://127.0.0.1:${(koaServer.address() as AddressInfo).port}`;
  const target = new GatewayTarget({ url: direct, secret, clock: systemClock });
  await target.openSession('test', epoch);
  await target.putBucket({ epoch, bucket, exists: true, region: 'us-east-1', seq: 1 });
  await target.close();
}, 30_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (koaServer ? koaServer.close(() => resolve()) : resolve()));
  await site?.close();
});

function item(key: string, text: string, at = epoch): BatchItem {
  return copyItem({ bucket, key, text, epoch: at, seq: seq++ });
}

interface Answer {
  status: number;
  contentType: string | undefined;
  /** JSON answers parsed; XML ones reduced to their error code. */
  body: unknown;
  requestId: string | undefined;
}

async function send(
  base: string,
  method: string,
  path: string,
  body: Buffer | undefined,
  options: { signed?: Buffer; secret?: string } = {},
): Promise<Answer> {
  const url = `/_lookahead/replica${path}`;
  const signedHash = sha256Hex(options.signed ?? body ?? Buffer.alloc(0));
  const headers = signHeaders(options.secret ?? secret, { method, url, date: Date.now(), contentSha256: signedHash, meta: '', epoch: '' });
  const res = await fetch(`${base}${url}`, { method, headers, ...(body ? { body } : {}) });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? undefined;
  const parsed = contentType?.startsWith('application/json') ? JSON.parse(text) : (/<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? text);
  return { status: res.status, contentType, body: parsed, requestId: res.headers.get('x-amz-request-id') ?? undefined };
}

/** Sends the request made by `make` (fresh items each time) to both servers. */
async function both(make: () => [string, string, Buffer | undefined, { signed?: Buffer; secret?: string }?]): Promise<[Answer, Answer]> {
  const [m1, p1, b1, o1] = make();
  const viaDirect = await send(direct, m1, p1, b1, o1);
  const [m2, p2, b2, o2] = make();
  return [viaDirect, await send(viaKoa, m2, p2, b2, o2)];
}

/** Answers of the two paths, minus what differs by design (request ids). */
function comparable(a: Answer): Omit<Answer, 'requestId'> {
  const { requestId, ...rest } = a;
  expect(requestId).toMatch(/^[0-9A-F]{16}$/);
  return rest;
}

describe('replica endpoints served past koa', () => {
  it('a valid batch applies through both paths alike, and the direct one never enters koa', async () => {
    const before = koaRequests;
    const [d, k] = await both(() => {
      const raw = encodeBatch([item(`ok/${seq}`, 'alpha'), item(`ok/${seq + 1}`, 'beta')]);
      return ['POST', '/objects', raw];
    });
    expect(comparable(d)).toEqual({
      status: 200,
      contentType: 'application/json; charset=utf-8',
      body: { results: [{ applied: true }, { applied: true }] },
    });
    expect(comparable(k)).toEqual(comparable(d));
    expect(koaRequests - before).toBe(1); // the app.callback() request only
  });

  it('refusals answer alike: forged signature, body not the one signed, cut batch, fenced sender', async () => {
    const forged = await both(() => ['POST', '/objects', encodeBatch([item('f/a', 'x')]), { secret: 'not-the-secret' }]);
    expect(comparable(forged[0])).toMatchObject({ status: 403, contentType: 'application/xml', body: 'AccessDenied' });
    expect(comparable(forged[1])).toEqual(comparable(forged[0]));

    const swapped = await both(() => ['POST', '/objects', encodeBatch([item('s/a', 'forgery')]), { signed: encodeBatch([item('s/a', 'genuine')]) }]);
    expect(comparable(swapped[0])).toMatchObject({ status: 403, body: { error: 's3', code: 'AccessDenied' } });
    expect(comparable(swapped[1])).toEqual(comparable(swapped[0]));

    const cut = await both(() => {
      const raw = encodeBatch([item('c/a', 'first'), item('c/b', 'second')]);
      return ['POST', '/objects', raw.subarray(0, raw.length - 3)];
    });
    expect(comparable(cut[0])).toMatchObject({ status: 400, body: { error: 'protocol' } });
    expect(comparable(cut[1])).toEqual(comparable(cut[0]));

    const fenced = await both(() => ['POST', '/objects', encodeBatch([item('old/a', 'stale', epoch - 1)])]);
    expect(comparable(fenced[0])).toMatchObject({ status: 409, body: { error: 'fenced', epoch } });
    expect(comparable(fenced[1])).toEqual(comparable(fenced[0]));

    for (const key of ['f/a', 's/a', 'c/a', 'c/b', 'old/a']) await expect(store.headObject(bucket, key)).rejects.toThrow();
  });

  it('JSON routes (health, delete) answer alike; unknown paths and methods still go to koa', async () => {
    const health = await both(() => ['GET', '/health', undefined]);
    expect(comparable(health[0])).toMatchObject({ status: 200, body: { role: 'secondary', epoch } });
    expect(comparable(health[1])).toEqual(comparable(health[0]));

    const del = await both(() => ['POST', '/delete', Buffer.from(JSON.stringify({ epoch, bucket, key: `gone/${seq}`, seq: seq++ }))]);
    expect(comparable(del[0])).toEqual({ status: 200, contentType: 'application/json; charset=utf-8', body: { applied: true } });
    expect(comparable(del[1])).toEqual(comparable(del[0]));

    const before = koaRequests;
    const unknown = await send(direct, 'POST', '/nope', Buffer.from('{}'));
    expect(unknown.status).toBe(404);
    const wrongMethod = await send(direct, 'GET', '/objects', undefined);
    expect(wrongMethod.status).toBe(405);
    expect(koaRequests - before).toBe(2);
  });
});
