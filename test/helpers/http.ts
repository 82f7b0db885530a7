// Plain node:http requests to a test gateway, signed with @smithy/signature-v4
// (an independent SigV4 implementation), plus a hand-built aws-chunked
// signed-streaming body for tests that must tamper with chunk signatures.

import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import http from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';

class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

export interface Target {
  port: number;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface RawRequest {
  method: string;
  /** Already percent-encoded path. */
  path: string;
  /** Decoded query parameters. */
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Skip signing: an anonymous request. */
  anonymous?: boolean;
  /** Sign with this secret instead of the right one. */
  secret?: string;
  /** x-amz-content-sha256 to sign with (default: the body's hex SHA-256). */
  payloadHash?: string;
}

export function signer(t: Target, secret = t.secretAccessKey): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: t.accessKeyId, secretAccessKey: secret },
    region: t.region,
    service: 's3',
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function queryString(query: Record<string, string>): string {
  return Object.entries(query)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

/** Signs (unless anonymous) and sends one request; resolves with the whole response. */
export async function rawRequest(t: Target, r: RawRequest): Promise<RawResponse> {
  const body = r.body === undefined ? Buffer.alloc(0) : Buffer.from(r.body);
  let headers: Record<string, string> = {
    host: `127.0.0.1:${t.port}`,
    ...(r.body !== undefined ? { 'content-length': String(body.length) } : {}),
    ...r.headers,
  };
  if (!r.anonymous) {
    headers['x-amz-content-sha256'] ??= r.payloadHash ?? sha256Hex(body);
    const signed = await signer(t, r.secret).sign({
      method: r.method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: t.port,
      path: r.path,
      query: r.query ?? {},
      headers,
    });
    headers = signed.headers as Record<string, string>;
  }
  const qs = r.query ? queryString(r.query) : '';
  return send(t.port, r.method, qs ? `${r.path}?${qs}` : r.path, headers, body);
}

export function send(
  port: number,
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body && body.length ? body : undefined);
  });
}

/** Presigns a URL with @smithy/signature-v4 (query-string auth). */
export async function presignUrl(
  t: Target,
  method: string,
  path: string,
  expiresIn: number,
  options: { headers?: Record<string, string>; query?: Record<string, string> } = {},
): Promise<string> {
  const signed = await signer(t).presign(
    {
      method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: t.port,
      path,
      query: options.query ?? {},
      // Like @aws-sdk/s3-request-presigner: presigned payloads are unsigned
      // (smithy would otherwise sign the empty body's hash).
      headers: { host: `127.0.0.1:${t.port}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...options.headers },
    },
    { expiresIn },
  );
  return `${path}?${queryString(signed.query as Record<string, string>)}`;
}

/** The first element text of a tag in an XML body (tests only). */
export function xmlText(body: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(body);
  return m?.[1];
}

// ---------------------------------------------------------------------------
// aws-chunked, signed by hand

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

export function signingKey(secret: string, date: string, region: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), 's3'), 'aws4_request');
}

export interface ChunkedUpload {
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * A STREAMING-AWS4-HMAC-SHA256-PAYLOAD PUT: the headers are signed with
 * smithy, each chunk with the signing key chained from the seed signature.
 * `tamper(i, chunk)` may change chunk i's data after it was signed.
 */
export async function signedChunkedPut(
  t: Target,
  path: string,
  payload: Buffer,
  chunkSize: number,
  tamper?: (index: number, data: Buffer) => Buffer,
): Promise<ChunkedUpload> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < payload.length; i += chunkSize) chunks.push(payload.subarray(i, i + chunkSize));
  chunks.push(Buffer.alloc(0));
  const signatureLine = (size: number) => `${size.toString(16)};chunk-signature=`.length + 64 + 2;
  const encodedLength = chunks.reduce((n, c) => n + signatureLine(c.length) + c.length + 2, 0);
  const headers: Record<string, string> = {
    host: `127.0.0.1:${t.port}`,
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': String(payload.length),
    'content-length': String(encodedLength),
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  };
  const signed = await signer(t).sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port: t.port, path, query: {}, headers });
  const auth = String(signed.headers.authorization);
  const amzDate = String(signed.headers['x-amz-date']);
  let previous = /Signature=([0-9a-f]{64})/.exec(auth)![1]!;
  const scope = `${amzDate.slice(0, 8)}/${t.region}/s3/aws4_request`;
  const key = signingKey(t.secretAccessKey, amzDate.slice(0, 8), t.region);
  const emptyHash = sha256Hex('');
  const parts: Buffer[] = [];
  chunks.forEach((chunk, i) => {
    const sts = ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, previous, emptyHash, sha256Hex(chunk)].join('\n');
    const sig = createHmac('sha256', key).update(sts).digest('hex');
    previous = sig;
    const data = tamper ? tamper(i, chunk) : chunk;
    parts.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${sig}\r\n`), data, Buffer.from('\r\n'));
  });
  return { headers: signed.headers as Record<string, string>, body: Buffer.concat(parts) };
}
