// The admin router's browser-facing side over real HTTP: Basic auth on the
// console and the JSON it polls, the SigV4 path the CLI uses, the 401
// challenge, the record list's query checks, and what Basic must not open.

import { request } from 'node:http';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall } from '../../src/cli/admin-client.ts';
import { systemClock } from '../../src/core/clock.ts';
import { consoleRecordListMax } from '../../src/core/limits.ts';
import { createAdminRouter } from '../../src/gateway/admin.ts';
import { StaticCredentials } from '../../src/gateway/credentials.ts';
import { buildRecordView } from '../../src/gateway/ui/record-view.ts';
import { startTestGateway, testAccessKeyId, testSecretAccessKey, type TestGateway } from '../helpers/server.ts';

const clientKey = { accessKeyId: 'CLIENTONLYKEY0000001', secretAccessKey: 'client-secret-0123456789abcdefghijklmnop' };

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}` };
}

const admin = basic(testAccessKeyId, testSecretAccessKey);

describe('admin router: console auth', () => {
  let gw: TestGateway;
  let gwNoRecord: TestGateway;
  let statusCalls = 0;
  let actionRuns = 0;
  const names = Array.from({ length: 150 }, (_, i) => `k/b/key-${String(i).padStart(3, '0')}`);

  beforeAll(async () => {
    const options = {
      credentials: new StaticCredentials([{ accessKeyId: testAccessKeyId, secretAccessKey: testSecretAccessKey }, clientKey]),
      adminKeys: new Set([testAccessKeyId]),
      status: () => ({ role: 'single', calls: ++statusCalls }),
      registry: new Registry(),
      clock: systemClock,
      actions: [{ name: 'poke', run: async () => ({ runs: ++actionRuns }) }],
    };
    gw = await startTestGateway({
      extraRouters: [
        createAdminRouter({
          ...options,
          record: (q) => buildRecordView({ ids: names.map((_, i) => i), nameOf: (id) => names[id], ...q }),
        }),
      ],
    });
    gwNoRecord = await startTestGateway({ extraRouters: [createAdminRouter(options)] });
  });

  afterAll(async () => {
    await gw?.close();
    await gwNoRecord?.close();
  });

  it('challenges a browser without credentials on the page and the JSON it polls', async () => {
    for (const path of ['/_lookahead/ui', '/_lookahead/ui/console.js', '/_lookahead/status', '/_lookahead/record']) {
      const res = await get(`${gw.endpoint}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers['www-authenticate'], path).toBe('Basic realm="lookahead"');
      expect(res.body, path).not.toContain('<html');
    }
  });

  it('serves the console with Basic credentials of the admin key, with a strict CSP', async () => {
    const page = await get(`${gw.endpoint}/_lookahead/ui`, admin);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('/_lookahead/ui/console.js');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const js = await get(`${gw.endpoint}/_lookahead/ui/console.js`, admin);
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.body).not.toContain('innerHTML =');
    const css = await get(`${gw.endpoint}/_lookahead/ui/console.css`, admin);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('answers status to Basic and to SigV4 (the CLI)', async () => {
    const before = statusCalls;
    const viaBasic = await get(`${gw.endpoint}/_lookahead/status`, admin);
    expect(viaBasic.status).toBe(200);
    expect(JSON.parse(viaBasic.body)).toEqual({ role: 'single', calls: before + 1 });
    const viaSigv4 = await adminCall(
      { url: gw.endpoint, accessKeyId: testAccessKeyId, secretAccessKey: testSecretAccessKey },
      'GET',
      '/_lookahead/status',
    );
    expect(viaSigv4.status).toBe(200);
    expect(viaSigv4.json).toEqual({ role: 'single', calls: before + 2 });
    const page = await adminCall({ url: gw.endpoint, accessKeyId: testAccessKeyId, secretAccessKey: testSecretAccessKey }, 'GET', '/_lookahead/ui');
    expect(page.status).toBe(200);
  });

  it('refuses wrong, partial, malformed and non-admin Basic credentials with a fresh challenge', async () => {
    const before = statusCalls;
    const attempts: Record<string, string>[] = [
      basic(testAccessKeyId, `${testSecretAccessKey}x`),
      basic(testAccessKeyId, testSecretAccessKey.slice(0, -1)),
      basic(testAccessKeyId, ''),
      basic(`${testAccessKeyId}X`, testSecretAccessKey),
      basic(clientKey.accessKeyId, clientKey.secretAccessKey),
      { authorization: `Basic ${Buffer.from(testAccessKeyId).toString('base64')}` },
      { authorization: 'Basic !!!not-base64!!!' },
      { authorization: 'Basic' },
    ];
    for (const headers of attempts) {
      const res = await get(`${gw.endpoint}/_lookahead/status`, headers);
      expect(res.status, headers.authorization).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Basic realm="lookahead"');
    }
    expect(statusCalls).toBe(before);
  });

  it('keeps SigV4 by a non-admin key refused (403), not challenged', async () => {
    const res = await adminCall({ url: gw.endpoint, ...clientKey }, 'GET', '/_lookahead/status');
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: 'AccessDenied' });
  });

  it('does not let Basic open metrics or admin actions', async () => {
    const metrics = await get(`${gw.endpoint}/_lookahead/metrics`, admin);
    expect(metrics.status).toBeGreaterThanOrEqual(400);
    const action = await get(`${gw.endpoint}/_lookahead/admin/poke`, admin, 'POST');
    expect(action.status).toBeGreaterThanOrEqual(400);
    expect(actionRuns).toBe(0);
    const signed = await adminCall({ url: gw.endpoint, accessKeyId: testAccessKeyId, secretAccessKey: testSecretAccessKey }, 'POST', '/_lookahead/admin/poke', {});
    expect(signed.json).toEqual({ runs: 1 });
  });

  it('lists the record with search and limit, and refuses bad limits', async () => {
    const all = await get(`${gw.endpoint}/_lookahead/record`, admin);
    expect(all.status).toBe(200);
    const view = JSON.parse(all.body);
    expect(view.size).toBe(150);
    expect(view.matched).toBe(150);
    expect(view.entries).toHaveLength(100);
    expect(view.byKind.key).toBe(150);
    const found = JSON.parse((await get(`${gw.endpoint}/_lookahead/record?search=KEY-14&limit=5`, admin)).body);
    expect(found.matched).toBe(10);
    expect(found.entries.map((e: { name: string }) => e.name)).toEqual(names.slice(140, 145));
    for (const limit of ['0', '-1', '1.5', 'abc', String(consoleRecordListMax + 1)]) {
      const res = await get(`${gw.endpoint}/_lookahead/record?limit=${limit}`, admin);
      expect(res.status, limit).toBe(400);
      expect(JSON.parse(res.body).error).toBe('InvalidArgument');
    }
  });

  it('answers 404 for the record list when the site has no record provider', async () => {
    const res = await get(`${gwNoRecord.endpoint}/_lookahead/record`, admin);
    expect(res.status).toBe(404);
    expect((await get(`${gwNoRecord.endpoint}/_lookahead/ui`, admin)).status).toBe(200);
  });
});
