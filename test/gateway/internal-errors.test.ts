// Errors that are our bugs or the machine's: the client gets a generic S3
// error with the request id, the log gets everything.

import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StaticCredentials } from '../../src/gateway/credentials.ts';
import { createGateway, type Gateway } from '../../src/gateway/server.ts';
import type { ObjectStore } from '../../src/objects/types.ts';
import { rawRequest, xmlText } from '../helpers/http.ts';

const accessKeyId = 'AKIAINTERNALTEST0001';
const secretAccessKey = 'internal-test-secret';
const logLines: Record<string, unknown>[] = [];
let gateway: Gateway;
let port = 0;

/** A store whose every method fails the way a broken disk or a bug would. */
function failingStore(): ObjectStore {
  return new Proxy({} as ObjectStore, {
    get(_t, name) {
      if (name === 'headObject') {
        return async () => {
          throw new Error('lmdb exploded at /srv/secret/path');
        };
      }
      if (name === 'putObject') {
        return async () => {
          throw Object.assign(new Error('no space left on /srv/secret'), { code: 'ENOSPC' });
        };
      }
      return async () => {
        throw new TypeError('cannot read properties of undefined (internal)');
      };
    },
  });
}

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  gateway = createGateway({
    store: failingStore(),
    credentials: new StaticCredentials([{ accessKeyId, secretAccessKey }]),
    region: 'us-east-1',
    logger: pino({ level: 'info' }, sink),
  });
  ({ port } = await gateway.listen('127.0.0.1', 0));
});
afterAll(async () => {
  await gateway?.close();
});

const target = () => ({ port, region: 'us-east-1', accessKeyId, secretAccessKey });

describe('unexpected errors', () => {
  it('become InternalError without internals; the log has the cause and request id', async () => {
    const r = await rawRequest(target(), { method: 'GET', path: '/bucket/key', query: { tagging: '' } });
    expect(r.status).toBe(500);
    expect(xmlText(r.text, 'Code')).toBe('InternalError');
    expect(r.text).not.toContain('/srv/secret');
    expect(r.text).not.toContain('exploded');
    const requestId = r.headers['x-amz-request-id'];
    expect(xmlText(r.text, 'RequestId')).toBe(requestId);
    const line = logLines.find((l) => l.requestId === requestId);
    expect(line).toBeDefined();
    expect(JSON.stringify(line)).toContain('lmdb exploded at /srv/secret/path');
    expect(JSON.stringify(line)).toContain('stack');
  });

  it('a full disk is ServiceUnavailable', async () => {
    const r = await rawRequest(target(), { method: 'PUT', path: '/bucket/key', body: 'data' });
    expect(r.status).toBe(503);
    expect(xmlText(r.text, 'Code')).toBe('ServiceUnavailable');
    expect(r.text).not.toContain('/srv/secret');
  });

  it('HEAD gets the status without a body', async () => {
    const r = await rawRequest(target(), { method: 'HEAD', path: '/bucket/key' });
    expect(r.status).toBe(500);
    expect(r.body.length).toBe(0);
    expect(r.headers['x-amz-request-id']).toBeTruthy();
  });
});
