// HTTP-level behaviour with plain node:http: request ids, error bodies,
// NotImplemented, anonymous access, Expect: 100-continue, health, presigned
// URLs, virtual-host style.

import { createHash } from 'node:crypto';
import http from 'node:http';
import Router from '@koa/router';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presignUrl, rawRequest, send, signer, xmlText, type RawResponse } from '../helpers/http.ts';
import { startTestGateway, type TestGateway } from '../helpers/server.ts';

let gw: TestGateway;
const bucket = 'http-tests';
const publicBucket = 'public-read';

beforeAll(async () => {
  const extra = new Router();
  extra.get('/_lookahead/extra', (ctx) => {
    ctx.body = 'extra route';
  });
  extra.post('/_lookahead/echo', async (ctx) => {
    const chunks: Buffer[] = [];
    for await (const c of ctx.req) chunks.push(c as Buffer);
    ctx.body = Buffer.concat(chunks).toString();
  });
  gw = await startTestGateway({ anonymousReadBuckets: [publicBucket], baseDomain: 's3.test.local', extraRouters: [extra] });
  for (const b of [bucket, publicBucket]) {
    const r = await rawRequest(gw, { method: 'PUT', path: `/${b}` });
    expect(r.status).toBe(200);
  }
  await rawRequest(gw, { method: 'PUT', path: `/${publicBucket}/hello.txt`, body: 'public hello' });
  await rawRequest(gw, { method: 'PUT', path: `/${bucket}/private.txt`, body: 'private' });
});
afterAll(async () => {
  await gw?.close();
});

function expectError(r: RawResponse, status: number, code: string): void {
  expect({ status: r.status, code: xmlText(r.text, 'Code') }, r.text).toEqual({ status, code });
}

describe('request ids and error bodies', () => {
  it('every response carries x-amz-request-id and x-amz-id-2, unique per request', async () => {
    const responses = await Promise.all([
      rawRequest(gw, { method: 'GET', path: '/' }),
      rawRequest(gw, { method: 'GET', path: `/${bucket}/missing` }),
      rawRequest(gw, { method: 'HEAD', path: `/${bucket}/missing` }),
      rawRequest(gw, { method: 'GET', path: '/', anonymous: true }),
      send(gw.port, 'GET', '/_lookahead/health', {}),
    ]);
    const ids = responses.map((r) => r.headers['x-amz-request-id']);
    for (const r of responses) {
      expect(r.headers['x-amz-request-id']).toMatch(/^[0-9A-F]{16}$/);
      expect(r.headers['x-amz-id-2']).toBeTruthy();
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('error XML has Code, Message, Resource and RequestId; HEAD errors have no body', async () => {
    const r = await rawRequest(gw, { method: 'GET', path: `/${bucket}/no%20such` });
    expectError(r, 404, 'NoSuchKey');
    expect(r.headers['content-type']).toBe('application/xml');
    expect(xmlText(r.text, 'Message')).toBeTruthy();
    expect(xmlText(r.text, 'Resource')).toBe(`/${bucket}/no such`);
    expect(xmlText(r.text, 'RequestId')).toBe(r.headers['x-amz-request-id']);
    const head = await rawRequest(gw, { method: 'HEAD', path: `/${bucket}/no%20such` });
    expect(head.status).toBe(404);
    expect(head.body.length).toBe(0);
  });

  it('responses carry the S3 namespace', async () => {
    const r = await rawRequest(gw, { method: 'GET', path: `/${bucket}`, query: { 'list-type': '2' } });
    expect(r.text).toContain('<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">');
    const loc = await rawRequest(gw, { method: 'GET', path: `/${bucket}`, query: { location: '' } });
    expect(loc.text).toContain('<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>');
  });

  it('unsupported sub-resources are NotImplemented (501) and change nothing', async () => {
    for (const [method, query] of [
      ['PUT', 'acl'],
      ['PUT', 'policy'],
      ['PUT', 'versioning'],
      ['GET', 'lifecycle'],
      ['DELETE', 'cors'],
    ] as const) {
      const r = await rawRequest(gw, { method, path: `/${bucket}`, query: { [query]: '' }, ...(method === 'PUT' ? { body: '<x/>' } : {}) });
      expectError(r, 501, 'NotImplemented');
    }
    const objAcl = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/private.txt`, query: { acl: '' }, body: '' });
    expectError(objAcl, 501, 'NotImplemented');
  });
});

describe('requests node refuses before any handler', () => {
  it('headers over the size limit get RequestHeaderSectionTooLarge with a request id', async () => {
    const r = await send(gw.port, 'GET', `/${bucket}/k`, { 'x-amz-meta-big': 'v'.repeat(20 * 1024) });
    expect(r.status).toBe(400);
    expect(xmlText(r.text, 'Code')).toBe('RequestHeaderSectionTooLarge');
    expect(r.headers['x-amz-request-id']).toMatch(/^[0-9A-F]{16}$/);
    expect(r.headers['x-amz-id-2']).toBeTruthy();
    expect(xmlText(r.text, 'RequestId')).toBe(r.headers['x-amz-request-id']);
    expect((await rawRequest(gw, { method: 'HEAD', path: `/${bucket}` })).status).toBe(200);
  });
});

describe('anonymous access', () => {
  it('unsigned requests are AccessDenied on ordinary buckets', async () => {
    expectError(await rawRequest(gw, { method: 'GET', path: `/${bucket}/private.txt`, anonymous: true }), 403, 'AccessDenied');
    expectError(await rawRequest(gw, { method: 'GET', path: '/', anonymous: true }), 403, 'AccessDenied');
    expectError(await rawRequest(gw, { method: 'GET', path: `/${bucket}`, anonymous: true }), 403, 'AccessDenied');
  });

  it('a bucket configured for anonymous read allows GET, HEAD and list only', async () => {
    const get = await rawRequest(gw, { method: 'GET', path: `/${publicBucket}/hello.txt`, anonymous: true });
    expect(get.status).toBe(200);
    expect(get.text).toBe('public hello');
    expect((await rawRequest(gw, { method: 'HEAD', path: `/${publicBucket}/hello.txt`, anonymous: true })).status).toBe(200);
    const list = await rawRequest(gw, { method: 'GET', path: `/${publicBucket}`, query: { 'list-type': '2' }, anonymous: true });
    expect(list.text).toContain('<Key>hello.txt</Key>');
    const put = await rawRequest(gw, { method: 'PUT', path: `/${publicBucket}/evil.txt`, body: 'x', anonymous: true, headers: { 'content-length': '1' } });
    expectError(put, 403, 'AccessDenied');
    expectError(await rawRequest(gw, { method: 'DELETE', path: `/${publicBucket}/hello.txt`, anonymous: true }), 403, 'AccessDenied');
    expect((await rawRequest(gw, { method: 'GET', path: `/${publicBucket}/evil.txt` })).status).toBe(404);
  });
});

describe('unencoded UTF-8 in x-amz-copy-source', () => {
  it('is read as the UTF-8 key it spells (node passes header bytes as latin1)', async () => {
    const put = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/${encodeURIComponent('é 日本.txt')}`, body: 'raw utf8' });
    expect(put.status).toBe(200);
    const rawSource = Buffer.from(`${bucket}/é 日本.txt`, 'utf8').toString('latin1');
    const copy = await rawRequest(gw, { method: 'PUT', path: `/${bucket}/copied-raw`, headers: { 'x-amz-copy-source': rawSource } });
    expect(copy.status, copy.text).toBe(200);
    expect((await rawRequest(gw, { method: 'GET', path: `/${bucket}/copied-raw` })).text).toBe('raw utf8');
  });
});

describe('Expect: 100-continue', () => {
  function putExpecting(headers: Record<string, string>, body: Buffer): Promise<{ continued: boolean; status: number; text: string }> {
    return new Promise((resolve, reject) => {
      let continued = false;
      const req = http.request({ host: '127.0.0.1', port: gw.port, method: 'PUT', path: `/${bucket}/continued`, headers, agent: false });
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ continued, status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
  }

  async function signedHeaders(secret?: string): Promise<Record<string, string>> {
    const body = Buffer.from('sent after 100');
    const headers = {
      host: `127.0.0.1:${gw.port}`,
      expect: '100-continue',
      'content-length': String(body.length),
      'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
    };
    const signed = await signer(gw, secret).sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port: gw.port, path: `/${bucket}/continued`, query: {}, headers });
    return signed.headers as Record<string, string>;
  }

  it('is answered after authentication, and the body then arrives', async () => {
    const r = await putExpecting(await signedHeaders(), Buffer.from('sent after 100'));
    expect(r).toMatchObject({ continued: true, status: 200 });
    expect((await rawRequest(gw, { method: 'GET', path: `/${bucket}/continued` })).text).toBe('sent after 100');
  });

  it('a request failing authentication gets its error without a 100', async () => {
    const r = await putExpecting(await signedHeaders('wrong-secret'), Buffer.from('never sent'));
    expect(r.continued).toBe(false);
    expect(r.status).toBe(403);
    expect(xmlText(r.text, 'Code')).toBe('SignatureDoesNotMatch');
  });
});

describe('internal routes', () => {
  it('health answers 200, extra routers are mounted', async () => {
    const health = await send(gw.port, 'GET', '/_lookahead/health', {});
    expect(health.status).toBe(200);
    const extra = await send(gw.port, 'GET', '/_lookahead/extra', {});
    expect(extra.text).toBe('extra route');
  });

  it('an internal route with Expect: 100-continue gets its body', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: gw.port, method: 'POST', path: '/_lookahead/echo', headers: { expect: '100-continue', 'content-length': '5' }, agent: false });
      req.on('continue', () => req.end('hello'));
      req.on('response', (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(text).toBe('hello');
  });

  it('health is 503 until ready', async () => {
    let ready = false;
    const other = await startTestGatewayWithReady(() => ready);
    try {
      expect((await send(other.port, 'GET', '/_lookahead/health', {})).status).toBe(503);
      ready = true;
      expect((await send(other.port, 'GET', '/_lookahead/health', {})).status).toBe(200);
    } finally {
      await other.close();
    }
  });
});

async function startTestGatewayWithReady(isReady: () => boolean): Promise<{ port: number; close(): Promise<void> }> {
  const { createGateway } = await import('../../src/gateway/server.ts');
  const { StaticCredentials } = await import('../../src/gateway/credentials.ts');
  const pino = (await import('pino')).default;
  const g = createGateway({
    store: gw.store,
    credentials: new StaticCredentials([]),
    region: 'us-east-1',
    logger: pino({ level: 'silent' }),
    isReady,
  });
  const { port } = await g.listen('127.0.0.1', 0);
  return { port, close: () => g.close() };
}

describe('presigned URLs with plain http', () => {
  it('presigned GET reads the object', async () => {
    const url = await presignUrl(gw, 'GET', `/${bucket}/private.txt`, 60);
    const r = await send(gw.port, 'GET', url, { host: `127.0.0.1:${gw.port}` });
    expect(r.status).toBe(200);
    expect(r.text).toBe('private');
  });

  it('presigned PUT stores the body', async () => {
    const url = await presignUrl(gw, 'PUT', `/${bucket}/presigned%20put.txt`, 60);
    const body = Buffer.from('uploaded with a presigned URL');
    const r = await send(gw.port, 'PUT', url, { host: `127.0.0.1:${gw.port}`, 'content-length': String(body.length) }, body);
    expect(r.status, r.text).toBe(200);
    expect(r.headers.etag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    const got = await rawRequest(gw, { method: 'GET', path: `/${bucket}/presigned%20put.txt` });
    expect(got.text).toBe(body.toString());
  });

  it('a tampered presigned URL is refused', async () => {
    const url = await presignUrl(gw, 'GET', `/${bucket}/private.txt`, 60);
    const r = await send(gw.port, 'GET', url.replace('private.txt', 'other.txt'), { host: `127.0.0.1:${gw.port}` });
    expectError(r, 403, 'SignatureDoesNotMatch');
  });
});

describe('virtual-hosted style', () => {
  it('takes the bucket from the Host header when a base domain is configured', async () => {
    const signed = await signer(gw).sign({
      method: 'GET',
      protocol: 'http:',
      hostname: `${bucket}.s3.test.local`,
      path: '/private.txt',
      query: {},
      headers: { host: `${bucket}.s3.test.local`, 'x-amz-content-sha256': createHash('sha256').update('').digest('hex') },
    });
    const r = await send(gw.port, 'GET', '/private.txt', signed.headers as Record<string, string>);
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe('private');
  });

  it('serves /_lookahead/... on a bucket host as an object key, not our route', async () => {
    await rawRequest(gw, { method: 'PUT', path: `/${publicBucket}/_lookahead/health`, body: 'an object' });
    const r = await send(gw.port, 'GET', '/_lookahead/health', { host: `${publicBucket}.s3.test.local` });
    expect(r.status).toBe(200);
    expect(r.text).toBe('an object');
  });
});

describe('clients that hang up mid-download', () => {
  async function openFds(): Promise<number> {
    const { readdir } = await import('node:fs/promises');
    return (await readdir('/proc/self/fd')).length;
  }

  it('release the object file and leave the gateway serving', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024, 5);
    expect((await rawRequest(gw, { method: 'PUT', path: `/${bucket}/big-abort`, body: big })).status).toBe(200);
    const signed = await signer(gw).sign({
      method: 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: gw.port,
      path: `/${bucket}/big-abort`,
      query: {},
      headers: { host: `127.0.0.1:${gw.port}`, 'x-amz-content-sha256': createHash('sha256').update('').digest('hex') },
    });
    const baseline = await openFds();
    for (let i = 0; i < 10; i++) {
      await new Promise<void>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port: gw.port, path: `/${bucket}/big-abort`, headers: signed.headers, agent: false }, (res) => {
          res.once('data', () => req.destroy());
        });
        req.on('close', () => resolve());
        req.on('error', () => resolve());
        req.end();
      });
    }
    let fds = await openFds();
    for (let i = 0; i < 100 && fds > baseline; i++) {
      await new Promise((r) => setTimeout(r, 20));
      fds = await openFds();
    }
    expect(fds).toBeLessThanOrEqual(baseline);
    const whole = await rawRequest(gw, { method: 'GET', path: `/${bucket}/big-abort` });
    expect(whole.body.equals(big)).toBe(true);
  });
});
