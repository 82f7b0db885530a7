import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../helpers/http.ts';
import { startTestGateway, type TestGateway } from '../helpers/server.ts';

let gw: TestGateway;
const registry = new Registry();
beforeAll(async () => {
  gw = await startTestGateway({ registry });
});
afterAll(async () => {
  await gw?.close();
});

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('gateway metrics', () => {
  it('count requests by operation and status, and time them', async () => {
    await rawRequest(gw, { method: 'PUT', path: '/metered' });
    await rawRequest(gw, { method: 'PUT', path: '/metered/k', body: 'x' });
    for (let i = 0; i < 3; i++) await rawRequest(gw, { method: 'GET', path: '/metered/k' });
    await rawRequest(gw, { method: 'GET', path: '/metered/missing' });
    await rawRequest(gw, { method: 'GET', path: '/metered', query: { acl: '' } });
    const text = await registry.metrics();
    expect(sample(text, 'lookahead_s3_requests_total', 'operation="GetObject",status="200"')).toBe(3);
    expect(sample(text, 'lookahead_s3_requests_total', 'operation="GetObject",status="404"')).toBe(1);
    expect(sample(text, 'lookahead_s3_requests_total', 'operation="PutObject",status="200"')).toBe(1);
    expect(sample(text, 'lookahead_s3_requests_total', 'operation="NotImplemented",status="501"')).toBe(1);
    expect(sample(text, 'lookahead_s3_request_seconds_count', 'operation="GetObject"')).toBe(4);
  });
});
