// Real `lookahead serve` pairs for two pieces of issue 3:
//  - a write that fails after its admission (BadDigest, a body cut off
//    mid-stream) releases its record pins at once: status shows admissions
//    and pinned entries back at zero long before the hour-long lease;
//  - `--sync-copy-on-miss` (claim 2): a miss is acknowledged only once the
//    secondary holds the object; if the secondary stops answering during
//    the copy, the committed write is still acknowledged and the copier
//    delivers it when the secondary returns.

import http from 'node:http';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { ChaosProxy, prng } from '../hardening/chaos-proxy.ts';
import { adminCall } from '../../src/cli/admin-client.ts';
import { signer } from '../helpers/http.ts';
import { client, keys, portOf, until, type Proc, procSuite } from './procs.ts';

const suite = procSuite('lookahead-sync-copy-');
const { proxies } = suite;

const start = (args: string[]): Promise<Proc> => suite.start(args);

/** A pair whose primary reaches the secondary through a proxy; predictors
 * off, so every new key misses and waits for the secondary. */
async function pair(name: string, extra: string[] = []) {
  const s = await start(['--role', 'secondary', '--data', suite.path(`${name}-s`)]);
  const proxy = new ChaosProxy(portOf(s.url), prng(7));
  await proxy.listen();
  proxies.push(proxy);
  const p = await start(['--role', 'primary', '--data', suite.path(`${name}-p`), '--secondary', `http://127.0.0.1:${proxy.port}`, '--predictors', ',', ...extra]);
  const bucket = `${name}-b`;
  await client(p.url).send(new CreateBucketCommand({ Bucket: bucket }));
  return { s, p, proxy, bucket };
}

async function replication(url: string): Promise<Record<string, any>> {
  const res = await adminCall({ url, ...keys }, 'GET', '/_lookahead/status');
  if (res.status !== 200) throw new Error(`status: ${res.status} ${res.text}`);
  return (res.json as { replication: Record<string, any> }).replication;
}

/** Admissions and pins back at zero: no write in flight, Q drained. */
async function released(url: string, maxMs: number): Promise<Record<string, any>> {
  return until('admissions and pins to return to zero', async () => {
    const r = await replication(url);
    return r.admissions === 0 && r.pinnedEntries === 0 && r.queueDepth === 0 ? r : undefined;
  }, maxMs);
}

function target(url: string) {
  return { port: portOf(url), region: 'us-east-1', ...keys };
}

/** A signed PUT whose body stops after `sent` of `length` bytes. */
async function cutPut(url: string, path: string, length: number, sent: number): Promise<void> {
  const t = target(url);
  const headers = { host: `127.0.0.1:${t.port}`, 'content-length': String(length), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
  const signed = await signer(t).sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port: t.port, path, query: {}, headers });
  await new Promise<void>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: t.port, method: 'PUT', path, headers: signed.headers, agent: false });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.write(Buffer.alloc(sent, 7), () => setTimeout(() => req.destroy(), 300));
  });
}

async function putError(url: string, input: ConstructorParameters<typeof PutObjectCommand>[0]): Promise<string | undefined> {
  return client(url)
    .send(new PutObjectCommand(input))
    .then(
      () => undefined,
      (err: Error) => err.name,
    );
}

describe('a write that fails after admit releases its record pins at once', () => {
  it('BadDigest and a body cut off mid-stream: admissions and pinned entries return to zero without the lease', { timeout: 90_000 }, async () => {
    const { p, bucket } = await pair('abort');
    expect(await putError(p.url, { Bucket: bucket, Key: 'ok', Body: 'fine' })).toBeUndefined();
    await released(p.url, 20_000);
    // Content-MD5 of another body: the gateway answers BadDigest after the
    // miss was admitted (the record message acked, the entry pinned).
    const wrongMd5 = Buffer.from('00112233445566778899aabbccddeeff', 'hex').toString('base64');
    expect(await putError(p.url, { Bucket: bucket, Key: 'bad-digest', Body: 'x'.repeat(70_000), ContentMD5: wrongMd5 })).toBe('BadDigest');
    await cutPut(p.url, `/${bucket}/cut-off`, 4 * 1024 * 1024, 256 * 1024);
    const r = await released(p.url, 10_000); // the lease is an hour
    expect(r.misses).toBeGreaterThanOrEqual(3); // both failed writes went through admission
    expect(await putError(p.url, { Bucket: bucket, Key: 'after', Body: 'still serving' })).toBeUndefined();
  });
});

/**
 * An HTTP proxy for the inter-site link that can make the secondary die in
 * the middle of object copies (the connection is cut as the copy arrives)
 * while record messages still pass.
 */
async function copyCutter(targetPort: number): Promise<{ port: number; cut: boolean; close(): Promise<void> }> {
  const state = { port: 0, cut: false, close: async () => {} };
  const server = http.createServer((req, res) => {
    if (state.cut && /\/_lookahead\/replica\/objects?\b/.test(req.url ?? '')) {
      req.socket.destroy();
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as import('node:net').AddressInfo).port;
  state.close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}

describe('--sync-copy-on-miss', () => {
  it('a miss is on the secondary when acknowledged; one whose copy fails is acknowledged and delivered later', { timeout: 90_000 }, async () => {
    const s = await start(['--role', 'secondary', '--data', suite.path('sync-s')]);
    const link = await copyCutter(portOf(s.url));
    try {
      const p = await start(['--role', 'primary', '--data', suite.path('sync-p'), '--secondary', `http://127.0.0.1:${link.port}`, '--predictors', ',', '--sync-copy-on-miss']);
      const bucket = 'sync-b';
      await client(p.url).send(new CreateBucketCommand({ Bucket: bucket }));
      expect((await replication(p.url)).syncCopyOnMiss).toBe(true);
      for (let i = 0; i < 5; i++) {
        expect(await putError(p.url, { Bucket: bucket, Key: `k/${i}`, Body: `body ${i}` })).toBeUndefined();
        // Read from the secondary right after the ack: already there.
        const got = await client(s.url).send(new GetObjectCommand({ Bucket: bucket, Key: `k/${i}` }));
        expect(await got.Body!.transformToString()).toBe(`body ${i}`);
      }
      // The bucket's creation missed too: six copies made before their acks.
      expect((await replication(p.url)).syncCopies).toMatchObject({ copied: 6, failed: 0 });
      // The secondary takes the record message, then dies as the copy
      // arrives: the write is committed and covered by R, so it is acked.
      link.cut = true;
      expect(await putError(p.url, { Bucket: bucket, Key: 'mid-copy', Body: 'late' })).toBeUndefined();
      expect((await replication(p.url)).syncCopies.failed).toBe(1);
      expect(await client(s.url).send(new GetObjectCommand({ Bucket: bucket, Key: 'mid-copy' })).then(() => 'there', (e: Error) => e.name)).toBe('NoSuchKey');
      link.cut = false;
      await until('the copier to deliver it', async () => {
        const got = await client(s.url).send(new GetObjectCommand({ Bucket: bucket, Key: 'mid-copy' })).catch(() => undefined);
        return got ? await got.Body!.transformToString() : undefined;
      });
      await released(p.url, 20_000);
    } finally {
      await link.close();
    }
  });
});
