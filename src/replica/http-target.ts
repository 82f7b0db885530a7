// GatewayTarget: the primary's ReplicaTarget for a Lookahead secondary over
// HTTP (node:http keep-alive agent, streamed object bodies, HMAC-signed
// requests; see router.ts for the other end).

import http from 'node:http';
import { Readable } from 'node:stream';
import type { Clock } from '../core/clock.ts';
import { readBounded } from '../core/bounded-read.ts';
import { replicaBatchObjectsLegacyMax, replicaBatchObjectsMax, replicaJsonBodyBytesMax, replicaRequestTimeoutMs } from '../core/limits.ts';
import { epochHeader, metaHeader, sha256Hex, sha256HexOfParts, signHeaders, streamedBodyHash } from './auth.ts';
import { BatchUnsupportedError, ObjectBatcher, batchPath, encodeBatchParts, type BatchItem, type BatchResult, type ReplicaCopy } from './batch.ts';
import type {
  BucketCopy,
  DeleteCopy,
  ObjectCopy,
  PeerHealth,
  RecordAck,
  RecordMessage,
  SessionInfo,
} from './messages.ts';
import { decodePeerHealth, decodeRecordAck, decodeSessionInfo, encodeMetaHeader } from './messages.ts';
import { replicaPathPrefix } from './router.ts';
import type { ReplicaTarget } from './target.ts';
import { FencedError, StaleSessionError, TargetRejectedError, TargetUnavailableError } from './target.ts';

export interface GatewayTargetOptions {
  /** Base URL of the secondary gateway, e.g. http://127.0.0.1:9001 */
  url: string;
  secret: string;
  clock: Clock;
  /** Socket idle time before a request counts as lost (ms). */
  timeoutMs?: number;
  /** Sockets kept per peer (bounds copier concurrency on the wire). */
  maxSockets?: number;
}

interface Response {
  status: number;
  json: unknown;
}

export class GatewayTarget implements ReplicaTarget {
  private readonly agent: http.Agent;
  private readonly base: URL;
  /** Requests sent, by path (tests check that a hit sends no record message). */
  readonly sent = new Map<string, number>();
  /** The secondary has no batch route (an older version). */
  private batchUnsupported = false;
  /** Copies per batch request: what S said when the session opened. */
  private batchMax = replicaBatchObjectsLegacyMax;
  /** Small copies go out many to a request (batch.ts). */
  private readonly batcher = new ObjectBatcher(
    (items) => this.sendBatch(items),
    (item) => this.putOne(item.copy, Readable.from([item.body], { objectMode: false })),
    () => this.batchMax,
  );

  constructor(private readonly options: GatewayTargetOptions) {
    this.base = new URL(options.url);
    if (this.base.protocol !== 'http:') throw new Error(`unsupported secondary URL ${options.url} (http only)`);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 32 });
  }

  async openSession(from: string, epoch: number): Promise<SessionInfo> {
    const info = decodeSessionInfo(this.ok(await this.json('POST', '/session', { from, epoch })));
    // Never more than we would accept ourselves, nor less than one.
    this.batchMax = Math.max(1, Math.min(info.batchObjectsMax ?? replicaBatchObjectsLegacyMax, replicaBatchObjectsMax));
    return info;
  }

  batchObjectsMax(): number {
    return this.batchMax;
  }

  async applyRecord(message: RecordMessage): Promise<RecordAck> {
    return decodeRecordAck(this.ok(await this.json('POST', '/record', message)));
  }

  async putObject(copy: ObjectCopy, body: Readable): Promise<boolean> {
    if (this.batcher.accepts(copy)) return this.batcher.put(copy, body);
    return this.putOne(copy, body);
  }

  private async putOne(copy: ObjectCopy, body: Readable): Promise<boolean> {
    const meta = encodeMetaHeader(copy.meta);
    const epoch = String(copy.epoch);
    const res = await this.send('PUT', '/object', { meta, epoch, contentSha256: streamedBodyHash }, body, copy.meta.size);
    return applied(this.ok(res));
  }

  /**
   * The copier's batches: one request; a secondary without the route (it
   * stays off for this target's lifetime) or a batch refused whole (4xx)
   * goes one copy per request, so one bad item fails alone.
   */
  async putObjects(items: ReplicaCopy[]): Promise<BatchResult[]> {
    if (!this.batchUnsupported) {
      try {
        return await this.sendBatch(items);
      } catch (err) {
        if (err instanceof BatchUnsupportedError) this.batchUnsupported = true;
        else if (!(err instanceof TargetRejectedError)) throw err;
      }
    }
    return Promise.all(items.map((item) => this.putAlone(item)));
  }

  private async putAlone(item: ReplicaCopy): Promise<BatchResult> {
    try {
      return { applied: await this.putOne(item.copy, Readable.from([item.body], { objectMode: false })) };
    } catch (err) {
      if (err instanceof TargetRejectedError) return { status: err.status, code: err.code ?? 'Rejected', message: err.message };
      if (err instanceof TargetUnavailableError) return { status: 503, code: 'ServiceUnavailable', message: err.message };
      throw err;
    }
  }

  /** One batch request (batch.ts); BatchUnsupportedError from an older secondary. */
  private async sendBatch(items: BatchItem[]): Promise<BatchResult[]> {
    const parts = encodeBatchParts(items);
    let length = 0;
    for (const part of parts) length += part.length;
    const res = await this.send('POST', batchPath, { contentSha256: sha256HexOfParts(parts) }, parts, length);
    if (res.status === 404 || res.status === 405) throw new BatchUnsupportedError();
    const results = (this.ok(res) as { results?: unknown } | undefined)?.results;
    if (!Array.isArray(results)) throw new TargetUnavailableError('batch answer without results');
    return results as BatchResult[];
  }

  async deleteObject(copy: DeleteCopy): Promise<boolean> {
    return applied(this.ok(await this.json('POST', '/delete', copy)));
  }

  async putBucket(copy: BucketCopy): Promise<void> {
    this.ok(await this.json('POST', '/bucket', copy));
  }

  async health(): Promise<PeerHealth> {
    return decodePeerHealth(this.ok(await this.send('GET', '/health', { contentSha256: sha256Hex('') }, undefined, 0)));
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  private json(method: string, path: string, value: unknown): Promise<Response> {
    const body = Buffer.from(JSON.stringify(value), 'utf8');
    return this.send(method, path, { contentSha256: sha256Hex(body) }, body, body.length);
  }

  /** Maps the secondary's answer to our error classes. */
  private ok(res: Response): unknown {
    if (res.status >= 200 && res.status < 300) return res.json;
    const body = (typeof res.json === 'object' && res.json !== null ? res.json : {}) as Record<string, unknown>;
    if (res.status === 409 && body.error === 'fenced') {
      throw new FencedError(Number(body.epoch), typeof body.primary === 'string' ? body.primary : undefined);
    }
    if (res.status === 409 && body.error === 'stale-session') throw new StaleSessionError(Number(body.session));
    if (res.status >= 500) throw new TargetUnavailableError(`secondary answered ${res.status}`);
    throw new TargetRejectedError(`secondary refused: ${res.status} ${String(body.message ?? '')}`, res.status, body.code as string | undefined);
  }

  private send(
    method: string,
    path: string,
    sign: { contentSha256: string; meta?: string; epoch?: string },
    body: Buffer | readonly Buffer[] | Readable | undefined,
    length: number,
  ): Promise<Response> {
    this.sent.set(path, (this.sent.get(path) ?? 0) + 1);
    const url = `${replicaPathPrefix}${path}`;
    const headers: Record<string, string> = {
      ...signHeaders(this.options.secret, {
        method,
        url,
        date: this.options.clock.now(),
        contentSha256: sign.contentSha256,
        meta: sign.meta ?? '',
        epoch: sign.epoch ?? '',
      }),
      'content-length': String(length),
      'content-type': Buffer.isBuffer(body) || isParts(body) ? 'application/json' : 'application/octet-stream',
    };
    if (sign.meta !== undefined) headers[metaHeader] = sign.meta;
    if (sign.epoch !== undefined) headers[epochHeader] = sign.epoch;
    return new Promise<Response>((resolve, reject) => {
      const req = http.request(
        { host: this.base.hostname, port: this.base.port || 80, method, path: url, headers, agent: this.agent },
        (res) => void readResponse(res).then(resolve, reject),
      );
      req.setTimeout(this.options.timeoutMs ?? replicaRequestTimeoutMs, () => req.destroy(new Error('timeout')));
      req.on('error', (err) => reject(new TargetUnavailableError(`secondary unreachable: ${err.message}`, { cause: err })));
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else if (isParts(body)) {
        // In one go to the socket (writev) once it is there.
        req.cork();
        for (const part of body) req.write(part);
        req.end();
      } else {
        body.on('error', (err) => req.destroy(err));
        body.pipe(req);
      }
    });
  }
}

function isParts(body: Buffer | readonly Buffer[] | Readable | undefined): body is readonly Buffer[] {
  return Array.isArray(body);
}

function applied(json: unknown): boolean {
  return typeof json === 'object' && json !== null && (json as { applied?: unknown }).applied === true;
}

async function readResponse(res: http.IncomingMessage): Promise<Response> {
  const raw = await readBounded(res, replicaJsonBodyBytesMax, () => new TargetUnavailableError('answer too large'));
  const text = raw.toString('utf8');
  let json: unknown;
  try {
    json = text.length === 0 ? undefined : JSON.parse(text);
  } catch {
    json = { message: text.slice(0, 200) };
  }
  return { status: res.statusCode ?? 0, json };
}
