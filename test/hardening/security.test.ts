// A real `lookahead serve --role secondary` process with debug logging:
// every replication route refuses a client's S3 key (and the admin key, and
// a wrong replication secret), admin routes refuse a client key, nothing
// changes, and after a run full of auth failures neither stdout nor the log
// holds a secret or a signature that was sent. Then file modes of a data dir.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSite, defaultPredictorConfig, type RunningSite } from '../../src/cli/site.ts';
import { signHeaders, streamedBodyHash } from '../../src/replica/auth.ts';
import { rawRequest, send, signer, type RawResponse, type Target } from '../helpers/http.ts';
import { siteBase } from '../helpers/sites.ts';
import { sleep } from './harness.ts';

const mainKey = { accessKeyId: 'SECMAINKEY0000000001', secretAccessKey: 'main-secret-zq8Xv3Lm9Pw2Rt5Yu7Io0Pa1Sd4Fg6' };
const clientKey = { accessKeyId: 'SECCLIENTKEY00000001', secretAccessKey: 'client-secret-Hj3Kl5Zx7Cv9Bn1Mq2We4Rt6Y' };
const replicationSecret = 'replication-secret-Nn4Mm6Bb8Vv0Cc2Xx4Zz6';
const wrongSecrets = ['wrong-secret-Qa1Ws2Ed3Rf4Tg5Yh6Uj7Ik8Ol9', 'wrong-replication-secret-Pl0Ok9Ij8Uh7Yg6'];

let dir: string;
let child: ChildProcess;
let port: number;
let stdout = '';
let stderr = '';
/** Every signature this test put on the wire. */
const sentSignatures: string[] = [];

function target(key: { accessKeyId: string; secretAccessKey: string }): Target {
  return { port, region: 'us-east-1', ...key };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lookahead-sec-'));
  const keysFile = join(dir, 'keys.json');
  await writeFile(keysFile, JSON.stringify([{ ...clientKey, buckets: ['client-bucket'] }]), { mode: 0o600 });
  child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', 'serve', '--role', 'secondary', '--data', join(dir, 'data'), '--listen', '127.0.0.1:0', '--keys-file', keysFile, '--log-level', 'debug'],
    {
      cwd: join(import.meta.dirname, '../..'),
      env: { ...process.env, LOOKAHEAD_ACCESS_KEY: mainKey.accessKeyId, LOOKAHEAD_SECRET_KEY: mainKey.secretAccessKey, LOOKAHEAD_REPLICATION_SECRET: replicationSecret },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  for (let i = 0; i < 300 && !/listening on http:\/\/127\.0\.0\.1:(\d+)/.test(stdout); i++) await sleep(50);
  const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
  if (!m) throw new Error(`serve did not start:\n${stdout}\n${stderr}`);
  port = Number(m[1]);
}, 30_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A SigV4-signed request whose signature is remembered for the log check. */
async function sigv4(key: { accessKeyId: string; secretAccessKey: string }, method: string, path: string, body = ''): Promise<RawResponse> {
  const t = target(key);
  const headers = { host: `127.0.0.1:${port}`, 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'), 'content-length': String(body.length) };
  const signed = await signer(t).sign({ method, protocol: 'http:', hostname: '127.0.0.1', port, path, query: {}, headers });
  sentSignatures.push(/Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))![1]!);
  return send(port, method, path, signed.headers as Record<string, string>, Buffer.from(body));
}

/** A request signed like the primary's, with `secret`. */
function replicaSigned(secret: string, method: string, path: string, body: string, streamed = false): Promise<RawResponse> {
  const contentSha256 = streamed ? streamedBodyHash : createHash('sha256').update(body).digest('hex');
  const h = signHeaders(secret, { method, url: path, date: Date.now(), contentSha256, meta: '', epoch: '' });
  sentSignatures.push(h['x-lookahead-replica-auth']!.split(' ')[1]!);
  return send(port, method, path, { host: `127.0.0.1:${port}`, 'content-length': String(body.length), ...h }, Buffer.from(body));
}

const replicaRoutes: [string, string, string][] = [
  ['GET', '/_lookahead/replica/health', ''],
  ['POST', '/_lookahead/replica/session', JSON.stringify({ from: 'attacker', epoch: 99 })],
  ['POST', '/_lookahead/replica/record', JSON.stringify({ session: 1, seq: 1, adds: [], removes: [] })],
  ['PUT', '/_lookahead/replica/object', 'planted body'],
  ['POST', '/_lookahead/replica/delete', JSON.stringify({ epoch: 99, bucket: 'b', key: 'k', seq: 1 })],
  ['POST', '/_lookahead/replica/bucket', JSON.stringify({ epoch: 99, bucket: 'planted-bucket', exists: true, region: 'us-east-1', seq: 1 })],
  ['GET', '/_lookahead/replica/no-such-route', ''],
];

async function siteState(): Promise<unknown> {
  const status = await sigv4(mainKey, 'GET', '/_lookahead/status');
  expect(status.status, status.text).toBe(200);
  const { replication } = JSON.parse(status.text) as { replication: unknown };
  const buckets = (await sigv4(mainKey, 'GET', '/')).text.match(/<Name>[^<]*<\/Name>/g) ?? [];
  return { replication, buckets };
}

describe('replication endpoints need the replication secret', () => {
  it('refuse unsigned, client-key, admin-key and wrong-secret requests on every route; nothing changes', async () => {
    const before = await siteState();
    for (const [method, path, body] of replicaRoutes) {
      const attempts: [string, () => Promise<RawResponse>][] = [
        ['unsigned', () => send(port, method, path, { host: `127.0.0.1:${port}`, 'content-length': String(body.length) }, Buffer.from(body))],
        ['client S3 key', () => sigv4(clientKey, method, path, body)],
        ['admin S3 key', () => sigv4(mainKey, method, path, body)],
        ['wrong replication secret', () => replicaSigned(wrongSecrets[1]!, method, path, body, method === 'PUT')],
      ];
      for (const [label, attempt] of attempts) {
        const r = await attempt();
        // An unknown route is 404 before authentication (koa-router runs the
        // prefix's auth middleware only for matched routes): refused either way.
        const want = path.endsWith('no-such-route') ? [403, 404] : [403];
        expect(want, `${method} ${path} ${label}: ${r.status} ${r.text}`).toContain(r.status);
      }
    }
    expect(await siteState()).toEqual(before);
    // The right secret does get in (so the 403s above are about the key).
    const ok = await replicaSigned(replicationSecret, 'GET', '/_lookahead/replica/health', '');
    expect(ok.status, ok.text).toBe(200);
  });
});

describe('admin endpoints need the admin key', () => {
  it('a client S3 key is refused on status, metrics and record; Basic with it too', async () => {
    for (const path of ['/_lookahead/status', '/_lookahead/metrics', '/_lookahead/record']) {
      const r = await sigv4(clientKey, 'GET', path);
      expect(r.status, `${path}: ${r.text}`).toBe(403);
      const basic = `Basic ${Buffer.from(`${clientKey.accessKeyId}:${clientKey.secretAccessKey}`).toString('base64')}`;
      const b = await send(port, 'GET', path, { host: `127.0.0.1:${port}`, authorization: basic });
      // 401 (challenge) on browser routes; SigV4-only routes refuse the scheme (400).
      expect([400, 401, 403], path).toContain(b.status);
      expect(b.text).not.toContain('"replication"');
    }
    expect((await sigv4(mainKey, 'GET', '/_lookahead/status')).status).toBe(200);
  });
});

describe('the keys file bucket list in a real serve process', () => {
  it('a client key limited to client-bucket is AccessDenied on another bucket where the main key gets NoSuchBucket', async () => {
    // A secondary refuses client writes, so no bucket exists here: the
    // difference between the two keys is the allow-list, checked before existence.
    const main = await sigv4(mainKey, 'GET', '/other-bucket');
    expect([main.status, /<Code>([^<]+)</.exec(main.text)?.[1]]).toEqual([404, 'NoSuchBucket']);
    const other = await sigv4(clientKey, 'GET', '/other-bucket');
    expect([other.status, /<Code>([^<]+)</.exec(other.text)?.[1]]).toEqual([403, 'AccessDenied']);
    const own = await sigv4(clientKey, 'GET', '/client-bucket');
    expect([own.status, /<Code>([^<]+)</.exec(own.text)?.[1]]).toEqual([404, 'NoSuchBucket']);
  });
});

describe('secrets never reach stdout or the log', () => {
  it('after auth failures of every kind, no secret, signature or Authorization value was printed', async () => {
    // More failures: wrong secrets on S3 routes, presigned with a bad signature, Basic with a wrong password.
    for (const secret of wrongSecrets) await sigv4({ accessKeyId: mainKey.accessKeyId, secretAccessKey: secret }, 'PUT', '/client-bucket/k', 'body');
    await rawRequest(target(mainKey), { method: 'GET', path: '/', secret: wrongSecrets[0]! });
    const badPresigned = `/client-bucket/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${mainKey.accessKeyId}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=${'ab'.repeat(32)}`;
    sentSignatures.push('ab'.repeat(32));
    await send(port, 'GET', badPresigned, { host: `127.0.0.1:${port}` });
    await send(port, 'GET', '/_lookahead/status', { host: `127.0.0.1:${port}`, authorization: `Basic ${Buffer.from(`${mainKey.accessKeyId}:${wrongSecrets[0]}`).toString('base64')}` });
    // Successful ones too.
    await sigv4(clientKey, 'GET', '/');
    await sleep(300);
    const output = stdout + stderr;
    expect(stderr.length, 'debug logging produced output to check').toBeGreaterThan(1000);
    for (const secret of [mainKey.secretAccessKey, clientKey.secretAccessKey, replicationSecret, ...wrongSecrets]) {
      expect(output.includes(secret), `secret ${secret.slice(0, 12)}... printed`).toBe(false);
    }
    for (const sig of sentSignatures) expect(output.includes(sig), `signature ${sig.slice(0, 12)}... logged`).toBe(false);
    expect(output).not.toMatch(/AWS4-HMAC-SHA256 Credential=/);
    expect(output).not.toMatch(/Basic [A-Za-z0-9+/=]{16,}/);
  });
});

describe('data dir files are not world-readable', () => {
  let site: RunningSite | undefined;
  let root: string | undefined;
  let dataDir: string;
  afterAll(async () => {
    await site?.close();
    // The temporary dir, not only the data dir in it (one was left per run).
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('the data dir is 0700; credentials, lmdb and blob files have no group/other bits', async () => {
    root = await mkdtemp(join(tmpdir(), 'lookahead-modes-'));
    dataDir = join(root, 'data');
    site = await startSite({
      role: 'single',
      dataDir,
      ...siteBase(), // no keys in the environment: the site generates its pair
      replication: { secret: 'unused', onSecondaryDown: 'degraded', predictors: defaultPredictorConfig },
    });
    const t = { port: site.port, region: 'us-east-1', ...site.credentials };
    await rawRequest(t, { method: 'PUT', path: '/modes' });
    await rawRequest(t, { method: 'PUT', path: '/modes/big', body: Buffer.alloc(300 * 1024, 7) });
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    const entries = await readdir(dataDir, { recursive: true, withFileTypes: true });
    const open: string[] = [];
    for (const e of entries) {
      const p = join(e.parentPath, e.name);
      const mode = (await stat(p)).mode & 0o777;
      if (mode & 0o077) open.push(`${p.slice(dataDir.length)} ${mode.toString(8)}`);
    }
    expect(open, 'files or dirs readable by group/other').toEqual([]);
    expect(entries.some((e) => e.name === 'credentials.json')).toBe(true);
  });
});
