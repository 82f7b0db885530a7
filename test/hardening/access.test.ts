// Every S3 operation of the endpoint union, walked unauthenticated, with a
// wrong secret and with a key limited to another bucket: each is refused with
// its S3 code and nothing changes. Then the per-key bucket allow-list from a
// keys file: a limited key works in its buckets, lists only those, and cannot
// copy across the boundary in either direction.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKeysFile } from '../../src/gateway/credentials.ts';
import { parseRequest, type Operation } from '../../src/gateway/endpoint.ts';
import { presignUrl, rawRequest, send, type RawRequest, type Target } from '../helpers/http.ts';
import { errorCode, sleep, snapshot, startHardGateway, type HardGateway } from './harness.ts';

const keysFile = JSON.stringify([
  { accessKeyId: 'FULLACCESSKEY0000001', secretAccessKey: 'full-secret-0123456789abcdefghijklmnopqrs' },
  { accessKeyId: 'ALPHAONLYKEY00000001', secretAccessKey: 'alpha-secret-0123456789abcdefghijklmnopq', buckets: ['alpha', 'alpha-2'] },
]);
const pairs = parseKeysFile(keysFile);
const [full, alphaOnly] = pairs as [(typeof pairs)[0], (typeof pairs)[0]];

let gw: HardGateway;
let admin: Target;
let uploadId: string;

beforeAll(async () => {
  gw = await startHardGateway({ pairs });
  admin = gw.as(full);
  for (const b of ['alpha', 'beta']) expect((await rawRequest(admin, { method: 'PUT', path: `/${b}` })).status).toBe(200);
  await rawRequest(admin, { method: 'PUT', path: '/beta/obj', body: 'beta object', headers: { 'x-amz-tagging': 'k=v' } });
  await rawRequest(admin, { method: 'PUT', path: '/alpha/obj', body: 'alpha object' });
  const create = await rawRequest(admin, { method: 'POST', path: '/beta/mpu', query: { uploads: '' } });
  uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(create.text)![1]!;
  await rawRequest(admin, { method: 'PUT', path: '/beta/mpu', query: { partNumber: '1', uploadId }, body: 'part one' });
});
afterAll(async () => {
  await gw?.close();
});

type Kind = Exclude<Operation['kind'], 'Invalid' | 'NotImplemented'>;

/** One request per operation, all aimed at bucket beta. A new kind in the
 * union fails to compile here until the walk covers it. */
function cases(): Record<Kind, RawRequest> {
  const copy = { 'x-amz-copy-source': '/beta/obj' };
  const completeXml = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"${'0'.repeat(32)}"</ETag></Part></CompleteMultipartUpload>`;
  return {
    ListBuckets: { method: 'GET', path: '/' },
    CreateBucket: { method: 'PUT', path: '/gamma' },
    HeadBucket: { method: 'HEAD', path: '/beta' },
    DeleteBucket: { method: 'DELETE', path: '/beta' },
    GetBucketLocation: { method: 'GET', path: '/beta', query: { location: '' } },
    ListObjects: { method: 'GET', path: '/beta' },
    ListObjectsV2: { method: 'GET', path: '/beta', query: { 'list-type': '2' } },
    ListMultipartUploads: { method: 'GET', path: '/beta', query: { uploads: '' } },
    DeleteObjects: { method: 'POST', path: '/beta', query: { delete: '' }, body: '<Delete><Object><Key>obj</Key></Object></Delete>' },
    PutObject: { method: 'PUT', path: '/beta/new', body: 'new body' },
    CopyObject: { method: 'PUT', path: '/beta/copied', headers: copy },
    GetObject: { method: 'GET', path: '/beta/obj' },
    HeadObject: { method: 'HEAD', path: '/beta/obj' },
    DeleteObject: { method: 'DELETE', path: '/beta/obj' },
    GetObjectTagging: { method: 'GET', path: '/beta/obj', query: { tagging: '' } },
    PutObjectTagging: { method: 'PUT', path: '/beta/obj', query: { tagging: '' }, body: '<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>' },
    DeleteObjectTagging: { method: 'DELETE', path: '/beta/obj', query: { tagging: '' } },
    CreateMultipartUpload: { method: 'POST', path: '/beta/new-mpu', query: { uploads: '' } },
    UploadPart: { method: 'PUT', path: '/beta/mpu', query: { partNumber: '2', uploadId }, body: 'part two' },
    UploadPartCopy: { method: 'PUT', path: '/beta/mpu', query: { partNumber: '3', uploadId }, headers: copy },
    CompleteMultipartUpload: { method: 'POST', path: '/beta/mpu', query: { uploadId }, body: completeXml },
    AbortMultipartUpload: { method: 'DELETE', path: '/beta/mpu', query: { uploadId } },
    ListParts: { method: 'GET', path: '/beta/mpu', query: { uploadId } },
  };
}

function kindOf(r: RawRequest): string {
  const qs = Object.entries(r.query ?? {}).map(([k, v]) => (v === '' ? k : `${k}=${encodeURIComponent(v)}`)).join('&');
  return parseRequest({ method: r.method, rawPath: r.path, rawQuery: qs, headers: r.headers ?? {} }, {}).operation.kind;
}

describe('the walk covers the whole endpoint union', () => {
  it('each case parses as the operation it is listed under', () => {
    for (const [kind, r] of Object.entries(cases())) expect(kindOf(r), kind).toBe(kind);
  });
});

async function walk(label: string, send: (r: RawRequest) => Promise<{ status: number; code: string | undefined }>, want: (kind: Kind) => string) {
  const before = await snapshot(gw, admin);
  const outcomes: Record<string, unknown> = {};
  const expected: Record<string, unknown> = {};
  for (const [kind, r] of Object.entries(cases()) as [Kind, RawRequest][]) {
    const got = await send(r);
    // HEAD errors carry no body: the status is all there is.
    outcomes[kind] = r.method === 'HEAD' ? got.status : { status: got.status, code: got.code };
    expected[kind] = r.method === 'HEAD' ? 403 : { status: 403, code: want(kind) };
  }
  expect(outcomes, label).toEqual(expected);
  expect(await snapshot(gw, admin), `${label}: nothing changed`).toEqual(before);
}

describe('every operation is refused without the right key, and changes nothing', () => {
  it('unauthenticated: AccessDenied', async () => {
    await walk('anonymous', async (r) => {
      const res = await rawRequest(admin, { ...r, anonymous: true });
      return { status: res.status, code: errorCode(res) };
    }, () => 'AccessDenied');
  });

  it('signed with a wrong secret: SignatureDoesNotMatch', async () => {
    await walk('wrong secret', async (r) => {
      const res = await rawRequest(admin, { ...r, secret: 'not-the-secret-0123456789abcdefghijklmno' });
      return { status: res.status, code: errorCode(res) };
    }, () => 'SignatureDoesNotMatch');
  });

  it('a key limited to other buckets: AccessDenied everywhere but ListBuckets', async () => {
    const limited = gw.as(alphaOnly);
    const before = await snapshot(gw, admin);
    for (const [kind, r] of Object.entries(cases()) as [Kind, RawRequest][]) {
      if (kind === 'ListBuckets') continue;
      const res = await rawRequest(limited, r);
      expect(res.status, `${kind}: ${res.text}`).toBe(403);
      if (r.method !== 'HEAD') expect(errorCode(res), kind).toBe('AccessDenied');
    }
    expect(await snapshot(gw, admin)).toEqual(before);
  });
});

describe('per-key bucket allow-list', () => {
  it('a limited key works in its bucket and sees only its buckets in ListBuckets', async () => {
    const limited = gw.as(alphaOnly);
    expect((await rawRequest(limited, { method: 'PUT', path: '/alpha/mine', body: 'mine' })).status).toBe(200);
    expect((await rawRequest(limited, { method: 'GET', path: '/alpha/mine' })).text).toBe('mine');
    const listed = (await rawRequest(limited, { method: 'GET', path: '/' })).text;
    expect([...listed.matchAll(/<Name>([^<]*)<\/Name>/g)].map((m) => m[1])).toEqual(['alpha']);
    const all = (await rawRequest(admin, { method: 'GET', path: '/' })).text;
    expect([...all.matchAll(/<Name>([^<]*)<\/Name>/g)].map((m) => m[1])).toEqual(['alpha', 'beta']);
    // It may create a bucket on its list, and only those.
    expect((await rawRequest(limited, { method: 'PUT', path: '/alpha-2' })).status).toBe(200);
    expect(errorCode(await rawRequest(limited, { method: 'PUT', path: '/alpha-3' }))).toBe('AccessDenied');
    expect((await rawRequest(limited, { method: 'DELETE', path: '/alpha-2' })).status).toBe(204);
  });

  it('copies cannot cross the boundary in either direction', async () => {
    const limited = gw.as(alphaOnly);
    const before = await snapshot(gw, admin);
    const intoAlpha = await rawRequest(limited, { method: 'PUT', path: '/alpha/stolen', headers: { 'x-amz-copy-source': '/beta/obj' } });
    expect([intoAlpha.status, errorCode(intoAlpha)]).toEqual([403, 'AccessDenied']);
    const intoBeta = await rawRequest(limited, { method: 'PUT', path: '/beta/planted', headers: { 'x-amz-copy-source': '/alpha/obj' } });
    expect([intoBeta.status, errorCode(intoBeta)]).toEqual([403, 'AccessDenied']);
    expect(await snapshot(gw, admin)).toEqual(before);
    // The same copy inside its own bucket works.
    const inside = await rawRequest(limited, { method: 'PUT', path: '/alpha/copy', headers: { 'x-amz-copy-source': '/alpha/obj' } });
    expect(inside.status, inside.text).toBe(200);
  });

  it('the keys file rejects a malformed bucket list', () => {
    expect(() => parseKeysFile('[{"accessKeyId":"a","secretAccessKey":"s","buckets":"alpha"}]')).toThrow(/buckets/);
    expect(() => parseKeysFile('[{"accessKeyId":"a","secretAccessKey":"s","buckets":[1]}]')).toThrow(/buckets/);
    expect(parseKeysFile('[{"accessKeyId":"a","secretAccessKey":"s","buckets":[]}]')[0]!.buckets).toEqual([]);
  });
});

describe('presigned URLs on the wire', () => {
  it('work until X-Amz-Expires passes, then are AccessDenied (Request has expired) and change nothing', async () => {
    const get = await presignUrl(admin, 'GET', '/beta/obj', 1);
    const put = await presignUrl(admin, 'PUT', '/beta/presigned-late', 1);
    const host = { host: `127.0.0.1:${gw.port}` };
    expect((await send(gw.port, 'GET', get, host)).text).toBe('beta object');
    await sleep(2100);
    const before = await snapshot(gw, admin);
    const late = await send(gw.port, 'GET', get, host);
    expect([late.status, errorCode(late)]).toEqual([403, 'AccessDenied']);
    expect(late.text).toContain('Request has expired');
    const latePut = await send(gw.port, 'PUT', put, { ...host, 'content-length': '4' }, Buffer.from('late'));
    expect([latePut.status, errorCode(latePut)]).toEqual([403, 'AccessDenied']);
    expect(await snapshot(gw, admin)).toEqual(before);
  });

  it('a URL presigned by a key limited to other buckets is AccessDenied', async () => {
    const url = await presignUrl(gw.as(alphaOnly), 'GET', '/beta/obj', 60);
    const r = await send(gw.port, 'GET', url, { host: `127.0.0.1:${gw.port}` });
    expect([r.status, errorCode(r)]).toEqual([403, 'AccessDenied']);
  });
});
