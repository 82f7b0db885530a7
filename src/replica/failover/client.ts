// The new primary's side of /_lookahead/failover/* (router.ts): listing and
// forced copies onto the site that rejoins as its secondary.

import http from 'node:http';
import type { Readable } from 'node:stream';
import type { Clock } from '../../core/clock.ts';
import { readBounded } from '../../core/bounded-read.ts';
import { replicaJsonBodyBytesMax, replicaRequestTimeoutMs } from '../../core/limits.ts';
import type { ObjectMeta } from '../../objects/types.ts';
import { epochHeader, metaHeader, sha256Hex, signHeaders, streamedBodyHash } from '../auth.ts';
import { encodeMetaHeader } from '../messages.ts';
import { FencedError, TargetRejectedError, TargetUnavailableError } from '../target.ts';
import { failoverPathPrefix, type ListedObject } from './router.ts';

export interface ResyncPeer {
  list(bucket: string, prefix: string, after: string | undefined): Promise<{ objects: ListedObject[]; truncated: boolean }>;
  head(bucket: string, key: string): Promise<ListedObject | undefined>;
  unsynced(after: string | undefined): Promise<{ names: string[]; more: boolean }>;
  putForced(epoch: number, meta: ObjectMeta, body: Readable): Promise<boolean>;
  deleteForced(epoch: number, bucket: string, key: string, seq: number): Promise<boolean>;
  close(): Promise<void>;
}

export class FailoverClient implements ResyncPeer {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly base: URL;

  constructor(private readonly options: { url: string; secret: string; clock: Clock }) {
    this.base = new URL(options.url);
  }

  async list(bucket: string, prefix: string, after: string | undefined) {
    const q = new URLSearchParams({ bucket, prefix, ...(after ? { after } : {}) });
    const json = (await this.call('GET', `/list?${q}`)) as { objects: ListedObject[]; truncated: boolean };
    return { objects: json.objects, truncated: json.truncated === true };
  }

  async unsynced(after: string | undefined): Promise<{ names: string[]; more: boolean }> {
    const json = (await this.call('GET', `/unsynced?${new URLSearchParams(after ? { after } : {})}`)) as { names: string[]; more: boolean };
    return { names: json.names, more: json.more === true };
  }

  async head(bucket: string, key: string): Promise<ListedObject | undefined> {
    const json = (await this.call('GET', `/head?${new URLSearchParams({ bucket, key })}`)) as ListedObject & { exists: boolean };
    return json.exists ? { key, etag: json.etag, size: json.size, seq: json.seq } : undefined;
  }

  async putForced(epoch: number, meta: ObjectMeta, body: Readable): Promise<boolean> {
    const json = await this.call('PUT', '/object', { body, length: meta.size, meta: encodeMetaHeader(meta), epoch: String(epoch) });
    return (json as { applied?: boolean }).applied === true;
  }

  async deleteForced(epoch: number, bucket: string, key: string, seq: number): Promise<boolean> {
    const json = await this.call('POST', '/delete', { json: { epoch, bucket, key, seq } });
    return (json as { applied?: boolean }).applied === true;
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  private call(
    method: string,
    path: string,
    payload: { json?: unknown; body?: Readable; length?: number; meta?: string; epoch?: string } = {},
  ): Promise<unknown> {
    const url = `${failoverPathPrefix}${path}`;
    const buf = payload.json === undefined ? undefined : Buffer.from(JSON.stringify(payload.json), 'utf8');
    const contentSha256 = payload.body ? streamedBodyHash : sha256Hex(buf ?? '');
    const headers: Record<string, string> = {
      ...signHeaders(this.options.secret, {
        method,
        url,
        date: this.options.clock.now(),
        contentSha256,
        meta: payload.meta ?? '',
        epoch: payload.epoch ?? '',
      }),
      'content-length': String(payload.body ? (payload.length ?? 0) : (buf?.length ?? 0)),
      'content-type': payload.body ? 'application/octet-stream' : 'application/json',
    };
    if (payload.meta !== undefined) headers[metaHeader] = payload.meta;
    if (payload.epoch !== undefined) headers[epochHeader] = payload.epoch;
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: this.base.hostname, port: this.base.port || 80, method, path: url, headers, agent: this.agent },
        (res) => void readAnswer(res).then(resolve, reject),
      );
      req.setTimeout(replicaRequestTimeoutMs, () => req.destroy(new Error('timeout')));
      req.on('error', (err) => reject(new TargetUnavailableError(`peer unreachable: ${err.message}`, { cause: err })));
      if (payload.body) {
        payload.body.on('error', (err) => req.destroy(err));
        payload.body.pipe(req);
      } else req.end(buf);
    });
  }
}

async function readAnswer(res: http.IncomingMessage): Promise<unknown> {
  const raw = await readBounded(res, replicaJsonBodyBytesMax, () => new TargetUnavailableError('answer too large'));
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  } catch {
    // not JSON: handled by the status below
  }
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return json;
  if (status === 409 && json.error === 'fenced') {
    throw new FencedError(Number(json.epoch), typeof json.primary === 'string' ? json.primary : undefined);
  }
  if (status >= 500) throw new TargetUnavailableError(`peer answered ${status}`);
  throw new TargetRejectedError(`peer refused: ${status} ${String(json.message ?? '')}`, status, json.code as string | undefined);
}
