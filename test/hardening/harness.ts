// Shared pieces of the hardening tests: a gateway with several keys (some
// limited to buckets) and an optional log sink, and a snapshot of everything
// a request could have changed (listings, tags, uploads, files on disk).

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { StaticCredentials, type KeyPair } from '../../src/gateway/credentials.ts';
import { createGateway } from '../../src/gateway/server.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import { rawRequest, xmlText, type RawResponse, type Target } from '../helpers/http.ts';

export interface HardGateway {
  port: number;
  endpoint: string;
  region: string;
  dataDir: string;
  store: DiskObjectStore;
  /** A request target signing with `pair` (the first pair by default). */
  as(pair?: KeyPair): Target;
  close(): Promise<void>;
}

export interface HardGatewayOptions {
  pairs: KeyPair[];
  logger?: Logger;
  dataDir?: string;
  anonymousReadBuckets?: string[];
  /** Open the metadata environment differently (e.g. a tiny lmdb map). */
  openDb?: (dataDir: string) => ReturnType<typeof openMetaDb>;
}

export async function startHardGateway(options: HardGatewayOptions): Promise<HardGateway> {
  const region = 'us-east-1';
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'lookahead-hard-')));
  const db = (options.openDb ?? openMetaDb)(dataDir);
  const store = await DiskObjectStore.open({ dataDir, db });
  const gateway = createGateway({
    store,
    credentials: new StaticCredentials(options.pairs),
    region,
    logger: options.logger ?? pino({ level: 'silent' }),
    ...(options.anonymousReadBuckets ? { anonymousReadBuckets: options.anonymousReadBuckets } : {}),
  });
  const { port } = await gateway.listen('127.0.0.1', 0);
  const first = options.pairs[0]!;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    region,
    dataDir,
    store,
    as(pair = first) {
      return { port, region, accessKeyId: pair.accessKeyId, secretAccessKey: pair.secretAccessKey };
    },
    async close() {
      await gateway.close();
      await store.close();
      await db.close();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A pino logger whose lines land in `lines` (level debug: the most it could say). */
export function capturingLogger(lines: string[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return pino({ level: 'debug' }, sink);
}

async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Temp and blob files of a data dir, sorted. */
export async function dataFiles(dataDir: string): Promise<string[]> {
  return [...(await filesUnder(join(dataDir, 'tmp'))), ...(await filesUnder(join(dataDir, 'blobs')))].sort();
}

function allTags(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]!);
}

/**
 * Everything a request could change, read with an all-bucket key: buckets,
 * keys with ETags, tags and uploads with parts per bucket, and data files.
 */
export async function snapshot(gw: HardGateway, admin: Target): Promise<unknown> {
  const buckets = allTags((await rawRequest(admin, { method: 'GET', path: '/' })).text, 'Name');
  const perBucket: Record<string, unknown> = {};
  for (const b of buckets) {
    const list = (await rawRequest(admin, { method: 'GET', path: `/${b}`, query: { 'list-type': '2' } })).text;
    const keys = allTags(list, 'Key');
    const tags: Record<string, string[]> = {};
    for (const k of keys) {
      tags[k] = allTags((await rawRequest(admin, { method: 'GET', path: `/${b}/${encodeURIComponent(k)}`, query: { tagging: '' } })).text, 'Value');
    }
    const uploads = (await rawRequest(admin, { method: 'GET', path: `/${b}`, query: { uploads: '' } })).text;
    const uploadIds = allTags(uploads, 'UploadId');
    const parts: Record<string, string[]> = {};
    for (const [i, id] of uploadIds.entries()) {
      const key = allTags(uploads, 'Key')[i]!;
      parts[id] = allTags((await rawRequest(admin, { method: 'GET', path: `/${b}/${encodeURIComponent(key)}`, query: { uploadId: id } })).text, 'ETag');
    }
    perBucket[b] = { keys, etags: allTags(list, 'ETag'), tags, uploadIds, parts };
  }
  return { buckets, perBucket, files: await dataFiles(gw.dataDir) };
}

export function errorCode(r: RawResponse): string | undefined {
  return xmlText(r.text, 'Code');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
