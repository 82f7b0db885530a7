// Test fixtures for the object store: a fresh data dir and lmdb root per store.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { RootDatabase } from 'lmdb';
import type { ChangeHooks } from '../../src/core/changes.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import type { ChecksumAlgorithm, PutObjectInput, WriteAttributes } from '../../src/objects/types.ts';

export interface Fixture {
  dataDir: string;
  root: RootDatabase;
  store: DiskObjectStore;
  /** Closes the store and lmdb and opens both again on the same dir. */
  reopen(hooks?: ChangeHooks): Promise<DiskObjectStore>;
  cleanup(): Promise<void>;
}

export interface FixtureOptions {
  /** Bodies up to this size are stored in lmdb; 0 makes every body a file. */
  inlineMaxBytes?: number;
}

export async function makeFixture(hooks?: ChangeHooks, options: FixtureOptions = {}): Promise<Fixture> {
  const dataDir = await mkdtemp(join(tmpdir(), 'lookahead-objects-'));
  const fx: Fixture = {
    dataDir,
    root: openMetaDb(dataDir),
    store: undefined as unknown as DiskObjectStore,
    async reopen(h?: ChangeHooks) {
      await fx.store.close();
      await fx.root.close();
      fx.root = openMetaDb(dataDir);
      fx.store = await DiskObjectStore.open({ dataDir, db: fx.root, ...options, ...(h ? { hooks: h } : {}) });
      return fx.store;
    },
    async cleanup() {
      await fx.store.close();
      await fx.root.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  fx.store = await DiskObjectStore.open({ dataDir, db: fx.root, ...options, ...(hooks ? { hooks } : {}) });
  return fx;
}

export const noAttrs: WriteAttributes = { headers: {}, userMeta: {}, tags: {} };

export function putInput(
  bucket: string,
  key: string,
  body: Buffer | string | Readable,
  extra: Partial<PutObjectInput> = {},
): PutObjectInput {
  const stream = body instanceof Readable ? body : Readable.from([Buffer.from(body)]);
  return {
    bucket,
    key,
    body: stream,
    headers: {},
    userMeta: {},
    tags: {},
    algorithms: [] as ChecksumAlgorithm[],
    sha256: false,
    verify: () => {},
    ...extra,
  };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
