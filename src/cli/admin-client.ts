// The CLI's side of the admin endpoints: signed JSON requests to a site.

import { request } from 'node:http';
import { signRequest } from '../gateway/auth/client-signer.ts';

export interface AdminEndpoint {
  url: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** An admin call does little work; a slow one is a stuck site. */
const adminRequestTimeoutMs = 30_000;

export async function adminCall(
  endpoint: AdminEndpoint,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown; text: string }> {
  const url = new URL(path, endpoint.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers = signRequest({
    method,
    host: url.host,
    rawPath: url.pathname,
    rawQuery: url.search.slice(1),
    ...(payload ? { body: payload } : {}),
    accessKeyId: endpoint.accessKeyId,
    secretAccessKey: endpoint.secretAccessKey,
    now: Date.now(),
  });
  return await new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        headers: { ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) },
        timeout: adminRequestTimeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`admin request to ${url.host} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
