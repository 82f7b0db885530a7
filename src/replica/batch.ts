// Small-object copies in batches: many copies in one inter-site request
// (POST /_lookahead/replica/objects), applied on S under one lock hold and in
// one store transaction (SecondaryService.putObjects, the store's
// applyReplicaBatch). Profiles of `npm run bench` (replication, 4 KiB PUT
// c16) showed the per-request work of one copy per request (HTTP on both
// sites, routing, HMAC, a transaction each) costing more CPU than the copy
// itself, on the same cores the client writes need.
//
// Wire format of a batch body:
//   u32 BE  length H of the head
//   H bytes JSON head {v: 2, items: [{epoch: number, meta: <ObjectMeta as
//           JSON>}]}
//   then each item's body, meta.size bytes, in order.
// Version 1 (no `v` in the head) carried each meta as a base64url string (the
// x-lookahead-meta header's encoding): one base64 decode and one JSON.parse
// per item, ~7% of S's CPU per 4 KiB copy; version 2 parses the head
// once. S still reads version 1 (an older primary); an older secondary
// refuses a version-2 head as a protocol error (400), and the primary then
// sends those copies one per request, as for any batch refused whole.
// The whole body is signed (its SHA-256 in the request signature), so the
// metas are as authenticated as the single-copy header; the bodies are also
// checked against their ETags when S applies them, as single copies are.
// The answer is {results: [{applied: boolean} | {status, code, message}]},
// one per item in order; fencing and stale sessions fail the whole batch
// (409, as for single copies).
//
// The copier builds its batches itself (copier.ts, ReplicaTarget.putObjects).
// GatewayTarget.putObject, for other callers, hands copies of at most
// replicaBatchObjectBytesMax to an ObjectBatcher, which sends what arrived in
// the same turn as one request. Either way, a secondary without the route
// (404/405) turns batching off for the target's lifetime, and the items of a
// batch refused whole (4xx) are sent one by one, so one bad item fails alone.

import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { replicaBatchBytesMax, replicaBatchInFlightMax, replicaBatchObjectBytesMax, replicaBatchObjectsMax } from '../core/limits.ts';
import { readBounded } from '../core/bounded-read.ts';
import type { ObjectMeta } from '../objects/types.ts';
import type { ObjectCopy } from './messages.ts';
import { ReplicaProtocolError, checkMeta, decodeMetaHeader } from './messages.ts';
import type { SecondaryService } from './secondary.ts';
import { TargetRejectedError, TargetUnavailableError } from './target.ts';

export const batchPath = '/objects';

/** A small copy with its body in memory. */
export interface ReplicaCopy {
  copy: ObjectCopy;
  body: Buffer;
}
export type BatchItem = ReplicaCopy;

/** One item's outcome on S: applied (false: S held a newer seq) or an S3 error. */
export type BatchResult = { applied: boolean } | { status: number; code: string; message: string };

const headLengthBytes = 4;
/** The head's `v`; version 1 heads have none. */
export const batchFormatVersion = 2;

/** Past this many separate body runs a batch body is gathered into one
 * buffer (a copy) rather than hashed and written run by run. */
const bodyRunsMax = 8;

export function encodeBatch(items: readonly BatchItem[]): Buffer {
  return Buffer.concat(encodeBatchParts(items));
}

/**
 * The batch body as consecutive parts: the length and head in one buffer,
 * then the bodies, where bodies adjacent in memory (the copier packs those
 * it reads into shared slabs, copier.ts BodySlabs) form one part: the
 * request writes and hashes them without gathering 256 KiB into a new
 * buffer first. Bodies scattered over many buffers (held copies) are
 * gathered into one part.
 */
export function encodeBatchParts(items: readonly BatchItem[]): Buffer[] {
  const head = JSON.stringify({ v: batchFormatVersion, items: items.map((i) => ({ epoch: i.copy.epoch, meta: i.copy.meta })) });
  const headBytes = Buffer.byteLength(head, 'utf8');
  const first = Buffer.allocUnsafe(headLengthBytes + headBytes); // every byte written below
  first.writeUInt32BE(headBytes, 0);
  first.write(head, headLengthBytes, 'utf8');
  const runs = bodyRuns(items);
  if (runs.length > bodyRunsMax) return [first, Buffer.concat(runs)];
  return [first, ...runs];
}

/** The items' bodies in order, adjacent ones (same memory, each starting
 * where the previous ends) joined into one view; empty bodies skipped. */
function bodyRuns(items: readonly BatchItem[]): Buffer[] {
  const runs: Buffer[] = [];
  let run: Buffer | undefined;
  for (const { body } of items) {
    if (body.length === 0) continue;
    if (run !== undefined && run.buffer === body.buffer && run.byteOffset + run.length === body.byteOffset) {
      run = Buffer.from(run.buffer, run.byteOffset, run.length + body.length);
      runs[runs.length - 1] = run;
    } else {
      run = body;
      runs.push(run);
    }
  }
  return runs;
}

/** Parses and checks a batch body; any inconsistency is a protocol error. */
export function decodeBatch(raw: Buffer): BatchItem[] {
  if (raw.length < headLengthBytes) throw new ReplicaProtocolError('batch: no head');
  const headLength = raw.readUInt32BE(0);
  if (headLength > raw.length - headLengthBytes) throw new ReplicaProtocolError('batch: head longer than the body');
  let head: unknown;
  try {
    head = JSON.parse(raw.toString('utf8', headLengthBytes, headLengthBytes + headLength));
  } catch {
    throw new ReplicaProtocolError('batch: head is not JSON');
  }
  const { v, items: list } = (head ?? {}) as { v?: unknown; items?: unknown };
  if (v !== undefined && v !== batchFormatVersion) throw new ReplicaProtocolError(`batch: unknown format version ${String(v)}`);
  if (!Array.isArray(list) || list.length === 0 || list.length > replicaBatchObjectsMax) {
    throw new ReplicaProtocolError(`batch: expected 1 to ${replicaBatchObjectsMax} items`);
  }
  const readMeta = v === undefined ? metaV1 : checkMeta;
  let offset = headLengthBytes + headLength;
  const items: BatchItem[] = [];
  for (const entry of list as unknown[]) {
    const { meta: encoded, epoch } = (entry ?? {}) as { meta?: unknown; epoch?: unknown };
    if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0) throw new ReplicaProtocolError('batch: item epoch');
    const meta: ObjectMeta = readMeta(encoded);
    if (meta.size > replicaBatchObjectBytesMax || offset + meta.size > raw.length) {
      throw new ReplicaProtocolError('batch: item body missing or too large');
    }
    items.push({ copy: { epoch, meta }, body: raw.subarray(offset, offset + meta.size) });
    offset += meta.size;
  }
  if (offset !== raw.length) throw new ReplicaProtocolError('batch: bytes after the last item');
  return items;
}

/** A version-1 item's meta: the x-lookahead-meta header's base64url JSON. */
function metaV1(encoded: unknown): ObjectMeta {
  if (typeof encoded !== 'string') throw new ReplicaProtocolError('batch: item without meta');
  return decodeMetaHeader(encoded);
}

/** Reads a batch body, refusing more than replicaBatchBytesMax. */
export async function readBatchBody(req: IncomingMessage): Promise<Buffer> {
  return readBounded(req, replicaBatchBytesMax, () => new ReplicaProtocolError('batch body too large'));
}

/** S: applies every item at once (one store transaction for the small ones). */
export async function applyBatch(service: SecondaryService, items: readonly BatchItem[]): Promise<{ results: BatchResult[] }> {
  return { results: await service.putObjects(items) };
}

/** P: the error a failed item maps to (as GatewayTarget maps a single copy's answer). */
export function itemError(r: { status: number; code: string; message: string }): Error {
  if (r.status >= 500) return new TargetUnavailableError(`secondary answered ${r.status} (${r.code})`);
  return new TargetRejectedError(`secondary refused: ${r.status} ${r.message}`, r.status, r.code);
}

/** The secondary has no batch route (an older version): copy one by one. */
export class BatchUnsupportedError extends Error {
  constructor() {
    super('secondary has no batch route');
    this.name = 'BatchUnsupportedError';
  }
}

interface Pending {
  item: BatchItem;
  resolve: (applied: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Gathers small copies into batches. Copies that arrive in one event-loop
 * turn go out together; while replicaBatchInFlightMax batches are in flight,
 * new copies wait and leave with the next. Bounded: at most
 * replicaBatchObjectsMax items and replicaBatchBytesMax bytes a batch, and
 * the copier's concurrency bounds how many copies wait at all.
 */
export class ObjectBatcher {
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private unsupported = false;

  constructor(
    private readonly sendBatch: (items: BatchItem[]) => Promise<BatchResult[]>,
    /** One copy in a request of its own: for the items of a batch S refused whole. */
    private readonly sendOne?: (item: BatchItem) => Promise<boolean>,
    /** Items per batch: what S accepts (ReplicaTarget.batchObjectsMax). */
    private readonly itemsMax: () => number = () => replicaBatchObjectsMax,
  ) {}

  /** Whether this copy goes through a batch (else: a single request). */
  accepts(copy: ObjectCopy): boolean {
    return !this.unsupported && copy.meta.size <= replicaBatchObjectBytesMax;
  }

  async put(copy: ObjectCopy, body: Readable): Promise<boolean> {
    const buffer = await readSmall(body, copy.meta.size);
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ item: { copy, body: buffer }, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= replicaBatchInFlightMax || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < replicaBatchInFlightMax && this.queue.length > 0) {
      const batch: Pending[] = [];
      let bytes = 0;
      const itemsMax = this.itemsMax();
      while (this.queue.length > 0 && batch.length < itemsMax) {
        const next = this.queue[0]!;
        // Bodies fill half a batch at most: the other half is for the metas.
        if (batch.length > 0 && bytes + next.item.body.length > replicaBatchBytesMax / 2) break;
        batch.push(this.queue.shift()!);
        bytes += next.item.body.length;
      }
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.schedule();
      });
    }
  }

  private async send(batch: Pending[]): Promise<void> {
    let results: BatchResult[];
    try {
      results = await this.sendBatch(batch.map((p) => p.item));
      if (results.length !== batch.length) throw new TargetUnavailableError('batch answer has the wrong number of results');
    } catch (err) {
      if (err instanceof BatchUnsupportedError) this.unsupported = true;
      // A request S refused whole (4xx, e.g. one item it cannot parse) must
      // not hold its batch-mates hostage on every retry: each goes alone
      // (as every copy does once S turned out to lack the route).
      const sendOne = this.sendOne;
      const alone = err instanceof TargetRejectedError || err instanceof BatchUnsupportedError;
      if (alone && sendOne) for (const p of batch) void sendOne(p.item).then(p.resolve, p.reject);
      else for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const r = results[i]!;
      if ('applied' in r) p.resolve(r.applied === true);
      else p.reject(itemError(r));
    });
  }
}

/** A copy's body (known to be at most replicaBatchObjectBytesMax) in one buffer. */
async function readSmall(body: Readable, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const chunk of body) {
    got += (chunk as Buffer).length;
    if (got > size) break;
    chunks.push(chunk as Buffer);
  }
  // The frame is sized by the meta: a body of another length cannot go in a batch.
  if (got !== size) throw new Error(`copy body has ${got} bytes where its meta says ${size}`);
  return Buffer.concat(chunks, got);
}
