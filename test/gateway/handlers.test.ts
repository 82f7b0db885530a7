// Handler-level tests with a recording fake store: what reaches the store
// for a request, and what never does.

import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/core/errors.ts';
import { copyObject, uploadPartCopy } from '../../src/gateway/handlers/copy.ts';
import type { HandlerDeps, RequestState } from '../../src/gateway/handlers/context.ts';
import { XmlCodec } from '../../src/gateway/xml.ts';
import { objectMetaVersion, type ObjectMeta, type ObjectStore } from '../../src/objects/types.ts';

const GiB = 1024 ** 3;

function meta(size: number): ObjectMeta {
  return {
    v: objectMetaVersion,
    bucket: 'src',
    key: 'k',
    size,
    etag: 'e',
    lastModified: 1_700_000_000_000,
    seq: 1,
    headers: { contentType: 'text/src' },
    userMeta: { a: '1' },
    tags: { t: 'src' },
    blobs: [],
  };
}

function fakeStore(sourceSize: number, calls: { name: string; args: unknown[] }[]): ObjectStore {
  return new Proxy({} as ObjectStore, {
    get(_t, name: string) {
      return async (...args: unknown[]) => {
        calls.push({ name, args });
        if (name === 'headObject') return meta(sourceSize);
        if (name === 'copyObject') return { ...meta(sourceSize), bucket: 'dst', key: 'k2' };
        if (name === 'uploadPartCopy') return { partNumber: 1, etag: 'p', size: 1, lastModified: 0 };
        throw new Error(`unexpected ${name}`);
      };
    },
  });
}

function request(headers: Record<string, string>): RequestState {
  return { req: { headers } as unknown as IncomingMessage, query: new Map(), requestId: 'TEST' };
}

function deps(store: ObjectStore): HandlerDeps {
  return { store, region: 'us-east-1', xml: new XmlCodec() };
}

const copyOp = { bucket: 'dst', key: 'k2', source: { bucket: 'src', key: 'k' } };

describe('CopyObject', () => {
  it('refuses a source over 5 GiB before copying anything', async () => {
    const calls: { name: string; args: unknown[] }[] = [];
    const err = await copyObject(copyOp, request({}), deps(fakeStore(5 * GiB + 1, calls))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3Error);
    expect((err as S3Error).code).toBe('InvalidRequest');
    expect(calls.map((c) => c.name)).toEqual(['headObject']);
  });

  it('COPY metadata with REPLACE tags keeps the source headers and takes the new tags', async () => {
    const calls: { name: string; args: unknown[] }[] = [];
    await copyObject(copyOp, request({ 'x-amz-tagging-directive': 'REPLACE', 'x-amz-tagging': 'n=1' }), deps(fakeStore(10, calls)));
    const copy = calls.find((c) => c.name === 'copyObject')!;
    expect(copy.args[2]).toEqual({ headers: { contentType: 'text/src' }, userMeta: { a: '1' }, tags: { n: '1' } });
  });

  it('REPLACE metadata with COPY tags takes the request headers and keeps the source tags', async () => {
    const calls: { name: string; args: unknown[] }[] = [];
    await copyObject(
      copyOp,
      request({ 'x-amz-metadata-directive': 'REPLACE', 'content-type': 'text/new', 'x-amz-meta-b': '2' }),
      deps(fakeStore(10, calls)),
    );
    const copy = calls.find((c) => c.name === 'copyObject')!;
    expect(copy.args[2]).toEqual({ headers: { contentType: 'text/new' }, userMeta: { b: '2' }, tags: { t: 'src' } });
  });

  it('both COPY passes "copy" so the store takes the source attributes', async () => {
    const calls: { name: string; args: unknown[] }[] = [];
    await copyObject(copyOp, request({}), deps(fakeStore(10, calls)));
    expect(calls.find((c) => c.name === 'copyObject')!.args[2]).toBe('copy');
  });

  it('an unknown directive is InvalidArgument and copies nothing', async () => {
    const calls: { name: string; args: unknown[] }[] = [];
    const err = await copyObject(copyOp, request({ 'x-amz-metadata-directive': 'MERGE' }), deps(fakeStore(10, calls))).catch((e: unknown) => e);
    expect((err as S3Error).code).toBe('InvalidArgument');
    expect(calls).toEqual([]);
  });
});

describe('UploadPartCopy', () => {
  const partOp = { ...copyOp, uploadId: 'u', partNumber: 1 };
  it('refuses more than 5 GiB in one part', async () => {
    const calls: { name: string; args: unknown[] }[] = [];
    const err = await uploadPartCopy(partOp, request({}), deps(fakeStore(6 * GiB, calls))).catch((e: unknown) => e);
    expect((err as S3Error).code).toBe('InvalidRequest');
    expect(calls.map((c) => c.name)).toEqual(['headObject']);
  });
  it('passes the range to the store', async () => {
    const calls: { name: string; args: unknown[] }[] = [];
    await uploadPartCopy(partOp, request({ 'x-amz-copy-source-range': 'bytes=100-199' }), deps(fakeStore(6 * GiB, calls)));
    const args = calls.find((c) => c.name === 'uploadPartCopy')!.args[0] as { source: unknown };
    expect(args.source).toEqual({ bucket: 'src', key: 'k', range: { start: 100, end: 199 } });
  });
});
