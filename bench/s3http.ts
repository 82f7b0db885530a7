// A light S3 client over node:http with a keep-alive agent, signing with
// bench/sigv4.ts. Bodies are sent with UNSIGNED-PAYLOAD (hashing 1 MiB per
// request would make the client the bottleneck); responses are drained and
// counted, kept only when asked.

import http from 'node:http';
import { Readable } from 'node:stream';
import { SigV4Signer, unsignedPayload, emptySha256, type Credentials } from './sigv4.ts';

export interface Endpoint extends Credentials {
  /** e.g. "http://127.0.0.1:9000" */
  url: string;
}

export interface S3Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Bytes of the response body received. */
  bytes: number;
  /** The body, when `keepBody` was asked (or on an error status). */
  body?: Buffer;
}

export interface S3RequestOptions {
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** A buffer, or a stream factory with its exact length. */
  body?: Buffer | { length: number; stream: () => Readable };
  keepBody?: boolean;
  /** Per-request ceiling so a hung server cannot hang the bench. */
  timeoutMs?: number;
}

const requestTimeoutMsDefault = 120_000;

export class S3Http {
  readonly endpoint: Endpoint;
  private readonly signer: SigV4Signer;
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly hostname: string;
  private readonly port: number;

  constructor(endpoint: Endpoint, maxSockets = 64) {
    this.endpoint = endpoint;
    this.signer = new SigV4Signer(endpoint);
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
    const u = new URL(endpoint.url);
    this.host = u.host;
    this.hostname = u.hostname;
    this.port = Number(u.port || 80);
  }

  close(): void {
    this.agent.destroy();
  }

  /** One signed request; `path` is decoded ("/bucket/key"). */
  request(method: string, path: string, opts: S3RequestOptions = {}): Promise<S3Response> {
    const body = opts.body;
    const length = body === undefined ? 0 : body.length;
    const headers: Record<string, string> = { ...opts.headers };
    if (body !== undefined || method === 'PUT' || method === 'POST') {
      headers['content-length'] = String(length);
    }
    const signed = this.signer.sign({
      method,
      path,
      query: opts.query,
      host: this.host,
      headers,
      payloadHash: body === undefined ? emptySha256 : unsignedPayload,
    });
    return new Promise<S3Response>((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          hostname: this.hostname,
          port: this.port,
          method,
          path: signed.pathAndQuery,
          headers: signed.headers,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const keep = opts.keepBody === true || status >= 300;
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (keep) chunks.push(chunk);
          });
          res.on('end', () =>
            resolve({ status, headers: res.headers, bytes, body: keep ? Buffer.concat(chunks) : undefined }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(opts.timeoutMs ?? requestTimeoutMsDefault, () =>
        req.destroy(new Error(`${method} ${path}: timed out`)),
      );
      req.on('error', reject);
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        const src = body.stream();
        src.on('error', (err) => req.destroy(err));
        src.pipe(req);
      }
    });
  }

  /** Like request, but throws unless the status is 2xx. */
  async ok(method: string, path: string, opts: S3RequestOptions = {}): Promise<S3Response> {
    const res = await this.request(method, path, opts);
    if (res.status < 200 || res.status >= 300) {
      const text = res.body?.toString('utf8').slice(0, 500) ?? '';
      throw new Error(`${method} ${path} -> ${res.status} ${text}`);
    }
    return res;
  }

  /** Creates the bucket; an already-owned bucket is fine. */
  async ensureBucket(bucket: string): Promise<void> {
    const res = await this.request('PUT', `/${bucket}`);
    if (res.status >= 300 && res.status !== 409) {
      throw new Error(`create bucket ${bucket} -> ${res.status} ${res.body?.toString('utf8') ?? ''}`);
    }
  }
}

/** A stream of `length` bytes repeating `pattern`, generated as it is read. */
export function patternStream(pattern: Buffer, length: number): Readable {
  let left = length;
  return new Readable({
    highWaterMark: pattern.length,
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, pattern.length);
      left -= n;
      this.push(n === pattern.length ? pattern : pattern.subarray(0, n));
    },
  });
}
