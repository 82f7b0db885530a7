// The benchmark's own SigV4 signer (bench/sigv4.ts) against the reference
// signer the AWS SDK uses (@smithy/signature-v4, a dependency of
// @aws-sdk/client-s3): same request, same clock -> same Authorization.

import { describe, it, expect } from 'vitest';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { SigV4Signer, uriEncode, unsignedPayload, emptySha256 } from '../../bench/sigv4.ts';

class NodeSha256 {
  private h: Hash | Hmac;
  private readonly secret?: string | Uint8Array;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.secret =
      secret === undefined || typeof secret === 'string'
        ? secret
        : ArrayBuffer.isView(secret)
          ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength)
          : new Uint8Array(secret);
    this.h = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  reset(): void {
    this.h = this.fresh();
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(typeof data === 'string' ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.h.digest();
  }
}

const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const date = new Date('2026-11-30T01:02:03Z');

async function reference(method: string, key: string, query: Record<string, string>, headers: Record<string, string>): Promise<string> {
  const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service: 's3', sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
  const signed = await signer.sign(
    { method, protocol: 'http:', hostname: '127.0.0.1', port: 9000, path: uriEncode(key, false), query, headers: { host: '127.0.0.1:9000', ...headers } },
    { signingDate: date },
  );
  return String(signed.headers['authorization']);
}

const cases: { method: string; key: string; query: Record<string, string>; payload: string; extra: Record<string, string> }[] = [
  { method: 'GET', key: '/bench', query: { 'list-type': '2', prefix: 'a b/&+é"', 'continuation-token': 'x=y/z' }, payload: emptySha256, extra: {} },
  { method: 'PUT', key: '/bench/dir/odd &+-é" 日本語 %20 ~.txt', query: {}, payload: unsignedPayload, extra: { 'content-length': '4096' } },
  { method: 'POST', key: '/bench/big.bin', query: { uploads: '' }, payload: emptySha256, extra: {} },
  { method: 'PUT', key: '/bench/big.bin', query: { partNumber: '3', uploadId: 'abc/def+ghi==' }, payload: unsignedPayload, extra: { 'content-length': '16777216', 'x-amz-meta-note': '  two  spaces ' } },
];

describe('bench SigV4 signer', () => {
  for (const c of cases) {
    it(`matches the SDK's signer: ${c.method} ${c.key} ${JSON.stringify(c.query)}`, async () => {
      const ours = new SigV4Signer({ accessKey: creds.accessKeyId, secretKey: creds.secretAccessKey, region: 'us-east-1' }).sign({
        method: c.method,
        path: c.key,
        query: c.query,
        host: '127.0.0.1:9000',
        headers: c.extra,
        payloadHash: c.payload,
        date,
      });
      const ref = await reference(c.method, c.key, c.query, { ...c.extra, 'x-amz-date': '20261130T010203Z', 'x-amz-content-sha256': c.payload });
      expect(ours.headers['authorization']).toBe(ref);
    });
  }

  it('differs when the key differs by one character', () => {
    const s = new SigV4Signer({ accessKey: 'a', secretKey: 'b', region: 'us-east-1' });
    const sign = (path: string) => s.sign({ method: 'GET', path, host: 'h', payloadHash: emptySha256, date }).headers['authorization'];
    expect(sign('/bench/a')).not.toBe(sign('/bench/b'));
  });
});
