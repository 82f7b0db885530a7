// A small in-memory ObjectStore for the simulation. It honours the
// ChangeHooks contract of the real store: admit() starts with the request,
// in parallel with reading the body; the commit waits for it; committed()
// runs inside the (synchronous, atomic) commit and a throw rolls it back;
// settled() runs before the operation resolves (the client's ack) and
// aborted() after any failure past admit (src/objects/hooked-write.ts).
// Its "disk" outlives a crash; a crashed incarnation commits nothing more.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ChangeHooks, ChangeIntent } from '../../core/changes.ts';
import type { Clock } from '../../core/clock.ts';
import { S3Error } from '../../core/errors.ts';
import type {
  BucketInfo,
  ListQuery,
  ListResult,
  MultipartUpload,
  ObjectMeta,
  ObjectReader,
  ObjectStore,
  PartInfo,
  PutObjectInput,
  ReplicaBody,
  WriteAttributes,
} from '../../objects/types.ts';
import { objectMetaVersion } from '../../objects/types.ts';
import { HookedWrite } from '../../objects/hooked-write.ts';
import { CrashedError } from '../state.ts';

export interface SimDisk {
  seq: number;
  buckets: Map<string, BucketInfo>;
  objects: Map<string, { meta: ObjectMeta; body: Buffer }>;
  tombstones: Map<string, number>;
  uploads: Map<string, { bucket: string; key: string; parts: Map<number, Buffer> }>;
  uploadCounter: number;
}

export function newSimDisk(): SimDisk {
  return { seq: 0, buckets: new Map(), objects: new Map(), tombstones: new Map(), uploads: new Map(), uploadCounter: 0 };
}

export function objectId(bucket: string, key: string): string {
  return `${bucket}\0${key}`;
}

const emptyAttrs: WriteAttributes = { headers: {}, userMeta: {}, tags: {} };

function notImplemented(): never {
  throw new S3Error('NotImplemented', 'not in the simulation store');
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

export class SimObjectStore implements ObjectStore {
  private alive = true;

  constructor(
    readonly disk: SimDisk,
    private hooks: ChangeHooks,
    private readonly clock: Clock,
  ) {}

  setHooks(hooks: ChangeHooks): void {
    this.hooks = hooks;
  }

  /** Kills this incarnation; the returned store sees the same disk. */
  crash(hooks: ChangeHooks): SimObjectStore {
    this.alive = false;
    return new SimObjectStore(this.disk, hooks, this.clock);
  }

  /** The commit: atomic, and nothing after a crash. `version`: the
   * committed meta and body, handed to the hooks as the real store does for
   * small PUTs (the copier may send it without reading it back). */
  private commit(write: HookedWrite | undefined, apply: (seq: number) => void, version?: (seq: number) => ReplicaBody): number {
    if (!this.alive) throw new CrashedError();
    const seq = this.disk.seq + 1;
    const committed = version?.(seq);
    write?.committed(seq, committed);
    this.disk.seq = seq;
    apply(seq);
    return seq;
  }

  private begin(intent: ChangeIntent): HookedWrite {
    return new HookedWrite(this.hooks, intent);
  }

  private requireBucket(bucket: string): void {
    if (!this.disk.buckets.has(bucket)) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist');
  }

  async createBucket(name: string, region: string): Promise<void> {
    if (this.disk.buckets.has(name)) throw new S3Error('BucketAlreadyOwnedByYou', 'exists');
    const w = this.begin({ kind: 'bucket-create', bucket: name, key: '' });
    await w.run(async () => {
      await w.admission;
      if (this.disk.buckets.has(name)) throw new S3Error('BucketAlreadyOwnedByYou', 'exists');
      this.commit(w, () => this.disk.buckets.set(name, { name, created: this.clock.now(), region }));
    });
  }

  async deleteBucket(name: string): Promise<void> {
    this.requireEmpty(name);
    const w = this.begin({ kind: 'bucket-delete', bucket: name, key: '' });
    await w.run(async () => {
      await w.admission;
      this.requireEmpty(name);
      this.commit(w, () => this.disk.buckets.delete(name));
    });
  }

  private requireEmpty(name: string): void {
    this.requireBucket(name);
    for (const { meta } of this.disk.objects.values()) {
      if (meta.bucket === name) throw new S3Error('BucketNotEmpty', 'not empty');
    }
  }

  async headBucket(name: string): Promise<BucketInfo> {
    const info = this.disk.buckets.get(name);
    if (info === undefined) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist');
    return info;
  }

  async listBuckets(): Promise<BucketInfo[]> {
    return [...this.disk.buckets.values()];
  }

  async putObject(input: PutObjectInput): Promise<ObjectMeta> {
    this.requireBucket(input.bucket);
    const w = this.begin({ kind: 'put', bucket: input.bucket, key: input.key });
    return w.run(async () => {
      const body = await readAll(input.body);
      input.verify({ size: body.length, md5Hex: createHash('md5').update(body).digest('hex'), checksums: {} });
      await w.admission;
      this.requireBucket(input.bucket);
      let meta: ObjectMeta | undefined;
      const version = (seq: number): ReplicaBody => {
        meta = this.newMeta(input.bucket, input.key, body, seq, input);
        return { meta, body };
      };
      this.commit(w, () => this.disk.objects.set(objectId(input.bucket, input.key), { meta: meta as ObjectMeta, body }), version);
      return meta as ObjectMeta;
    });
  }

  private newMeta(bucket: string, key: string, body: Buffer, seq: number, attrs: WriteAttributes, etag?: string): ObjectMeta {
    return {
      v: objectMetaVersion,
      bucket,
      key,
      size: body.length,
      etag: etag ?? createHash('md5').update(body).digest('hex'),
      lastModified: this.clock.now(),
      seq,
      headers: attrs.headers,
      userMeta: attrs.userMeta,
      tags: attrs.tags,
      blobs: [],
    };
  }

  async openObject(bucket: string, key: string): Promise<ObjectReader> {
    this.requireBucket(bucket);
    const found = this.disk.objects.get(objectId(bucket, key));
    if (found === undefined) throw new S3Error('NoSuchKey', 'The specified key does not exist.');
    return {
      meta: found.meta,
      stream: () => Readable.from([found.body]),
      close: async () => {},
    };
  }

  /** Every body here is in memory: the copier's batch path. */
  readInlineObject(bucket: string, key: string, copyBody?: (view: Buffer) => Buffer): ReplicaBody | null {
    if (!this.disk.buckets.has(bucket)) return null;
    const found = this.disk.objects.get(objectId(bucket, key));
    if (found === undefined) return null;
    return { meta: found.meta, body: copyBody === undefined ? found.body : copyBody(found.body) };
  }

  async headObject(bucket: string, key: string): Promise<ObjectMeta> {
    return (await this.openObject(bucket, key)).meta;
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    this.requireBucket(bucket);
    const w = this.begin({ kind: 'delete', bucket, key });
    await w.run(async () => {
      await w.admission;
      this.requireBucket(bucket);
      this.commit(w, () => this.disk.objects.delete(objectId(bucket, key)));
    });
  }

  async setTags(bucket: string, key: string, tags: Record<string, string>): Promise<ObjectMeta> {
    await this.openObject(bucket, key);
    const w = this.begin({ kind: 'tagging', bucket, key });
    return w.run(async () => {
      await w.admission;
      const found = this.disk.objects.get(objectId(bucket, key));
      if (found === undefined) throw new S3Error('NoSuchKey', 'The specified key does not exist.');
      let meta: ObjectMeta | undefined;
      this.commit(w, (seq) => {
        meta = { ...found.meta, tags, seq };
        this.disk.objects.set(objectId(bucket, key), { meta, body: found.body });
      });
      return meta as ObjectMeta;
    });
  }

  async list(query: ListQuery): Promise<ListResult> {
    const objects = [...this.disk.objects.values()]
      .map((o) => o.meta)
      .filter((m) => m.bucket === query.bucket && m.key.startsWith(query.prefix ?? ''))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    return { objects, commonPrefixes: [], isTruncated: false };
  }

  async createMultipartUpload(bucket: string, key: string, attrs: WriteAttributes): Promise<MultipartUpload> {
    this.requireBucket(bucket);
    const uploadId = `up${++this.disk.uploadCounter}`;
    const w = this.begin({ kind: 'mpu-create', bucket, key, uploadId });
    return w.run(async () => {
      await w.admission;
      this.commit(w, () => this.disk.uploads.set(uploadId, { bucket, key, parts: new Map() }));
      return { bucket, key, uploadId, initiated: this.clock.now(), attrs };
    });
  }

  async uploadPart(input: { bucket: string; key: string; uploadId: string; partNumber: number; body: Readable }): Promise<PartInfo> {
    this.requireUpload(input.uploadId);
    const w = this.begin({ kind: 'mpu-part', bucket: input.bucket, key: input.key, uploadId: input.uploadId });
    return w.run(async () => {
      const body = await readAll(input.body);
      await w.admission;
      const upload = this.requireUpload(input.uploadId);
      this.commit(w, () => upload.parts.set(input.partNumber, body));
      const etag = createHash('md5').update(body).digest('hex');
      return { partNumber: input.partNumber, etag, size: body.length, lastModified: this.clock.now() };
    });
  }

  private requireUpload(uploadId: string) {
    const upload = this.disk.uploads.get(uploadId);
    if (upload === undefined) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.');
    return upload;
  }

  copyObject(): Promise<ObjectMeta> {
    notImplemented();
  }

  uploadPartCopy(): Promise<PartInfo> {
    notImplemented();
  }

  async completeMultipartUpload(bucket: string, key: string, uploadId: string): Promise<ObjectMeta> {
    this.requireUpload(uploadId);
    const w = this.begin({ kind: 'put', bucket, key, uploadId });
    return w.run(async () => {
      await w.admission;
      const upload = this.requireUpload(uploadId);
      this.requireBucket(bucket);
      const parts = [...upload.parts.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b);
      const body = Buffer.concat(parts);
      const etag = `${createHash('md5').update(body).digest('hex')}-${parts.length}`;
      let meta: ObjectMeta | undefined;
      this.commit(w, (seq) => {
        meta = this.newMeta(bucket, key, body, seq, emptyAttrs, etag);
        this.disk.objects.set(objectId(bucket, key), { meta, body });
        this.disk.uploads.delete(uploadId);
      });
      return meta as ObjectMeta;
    });
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    this.requireUpload(uploadId);
    const w = this.begin({ kind: 'mpu-abort', bucket, key, uploadId });
    await w.run(async () => {
      await w.admission;
      this.commit(w, () => this.disk.uploads.delete(uploadId));
    });
  }

  listParts(): never {
    notImplemented();
  }

  listMultipartUploads(): never {
    notImplemented();
  }

  async applyReplica(meta: ObjectMeta, body: Readable, options: { force?: boolean } = {}): Promise<boolean> {
    const data = await readAll(body);
    const id = objectId(meta.bucket, meta.key);
    let applied = false;
    this.commit(undefined, () => {
      const current = this.disk.objects.get(id)?.meta.seq ?? this.disk.tombstones.get(id) ?? 0;
      if (!options.force && current >= meta.seq) return;
      if (!this.disk.buckets.has(meta.bucket)) {
        this.disk.buckets.set(meta.bucket, { name: meta.bucket, created: this.clock.now(), region: 'us-east-1' });
      }
      this.disk.objects.set(id, { meta, body: data });
      this.disk.tombstones.delete(id);
      applied = true;
    });
    return applied;
  }

  async applyReplicaDelete(bucket: string, key: string, seq: number, options: { force?: boolean } = {}): Promise<boolean> {
    const id = objectId(bucket, key);
    let applied = false;
    this.commit(undefined, () => {
      const current = this.disk.objects.get(id)?.meta.seq ?? this.disk.tombstones.get(id) ?? 0;
      if (!options.force && current >= seq) return;
      this.disk.objects.delete(id);
      this.disk.tombstones.set(id, seq);
      applied = true;
    });
    return applied;
  }

  async close(): Promise<void> {}
}
