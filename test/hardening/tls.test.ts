// --tls-cert/--tls-key: a site serves HTTPS with a self-signed certificate
// made by openssl at test time. A client trusting it reads and writes; plain
// HTTP to the port gets no S3 answer; a client not trusting it is refused at
// the handshake. The CLI refuses half a pair.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPredictorConfig, startSite, type RunningSite } from '../../src/cli/site.ts';
import { signer } from '../helpers/http.ts';
import { siteBase } from '../helpers/sites.ts';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const keys = { accessKeyId: 'TLSACCESSKEY00000001', secretAccessKey: 'tls-secret-0123456789abcdefghijklmnopqrs' };

let dir: string;
let site: RunningSite;
let ca: Buffer;

describe.skipIf(!hasOpenssl)('HTTPS with --tls-cert/--tls-key', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lookahead-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
    ca = await readFile(cert);
    site = await startSite({
      role: 'single',
      dataDir: join(dir, 'data'),
      ...siteBase(keys),
      tls: { certFile: cert, keyFile: key },
    });
  });
  afterAll(async () => {
    await site?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function call(method: string, path: string, body = '', trust: Buffer | null = ca): Promise<{ status: number; text: string }> {
    const headers = { host: `127.0.0.1:${site.port}`, 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'), 'content-length': String(body.length) };
    const signed = await signer({ port: site.port, region: 'us-east-1', ...keys }).sign({ method, protocol: 'https:', hostname: '127.0.0.1', port: site.port, path, query: {}, headers });
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: site.port, method, path, headers: signed.headers, agent: false, ...(trust ? { ca: trust } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('the endpoint is https and a trusting client reads and writes', async () => {
    expect(site.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await call('PUT', '/secure')).status).toBe(200);
    expect((await call('PUT', '/secure/k', 'over tls')).status).toBe(200);
    expect(await call('GET', '/secure/k')).toEqual({ status: 200, text: 'over tls' });
  });

  it('a client that does not trust the certificate is refused at the handshake', async () => {
    await expect(call('GET', '/secure/k', '', null)).rejects.toThrow(/self[- ]signed|certificate/i);
  });

  it('plain HTTP to the port gets no S3 answer', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: site.port, path: '/secure/k', agent: false }, (res) => {
        res.resume();
        resolve(`status ${res.statusCode}`);
      });
      req.on('error', (err) => resolve(`error ${err.message}`));
      req.setTimeout(3000, () => req.destroy(new Error('timeout')));
      req.end();
    });
    expect(outcome).not.toMatch(/^status 200/);
  });
});

describe('the serve command', () => {
  it('refuses --tls-cert without --tls-key', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--tls-cert', '/nonexistent.pem', '--data', join(tmpdir(), 'lookahead-tls-unused'), '--listen', '127.0.0.1:0'], {
      cwd: join(import.meta.dirname, '../..'),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('--tls-cert and --tls-key go together');
  });
});
