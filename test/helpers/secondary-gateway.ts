// A real secondary gateway in process (its store on lmdb in a temp dir, the
// replica routes on the gateway), for tests of the inter-site routes.

import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RootDatabase } from 'lmdb';
import pino from 'pino';
import { systemClock } from '../../src/core/clock.ts';
import { StaticCredentials } from '../../src/gateway/credentials.ts';
import { createGateway, type Gateway } from '../../src/gateway/server.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import { objectMetaVersion, type ObjectMeta } from '../../src/objects/types.ts';
import type { BatchItem } from '../../src/replica/batch.ts';
import { createSecondaryReplication } from '../../src/replica/index.ts';

export interface SecondaryGateway {
  dir: string;
  root: RootDatabase;
  store: DiskObjectStore;
  /** Not listening yet: the test chooses how to serve it. */
  gateway: Gateway;
  close(): Promise<void>;
}

export async function openSecondaryGateway(name: string, replicationSecret: string): Promise<SecondaryGateway> {
  const dir = await mkdtemp(join(tmpdir(), `lookahead-${name}-`));
  const root = openMetaDb(dir);
  const repl = createSecondaryReplication({ root, clock: systemClock, replicationSecret });
  const store = await DiskObjectStore.open({ dataDir: dir, db: root, hooks: repl.hooks });
  await repl.start(store);
  const gateway = createGateway({
    store,
    credentials: new StaticCredentials([{ accessKeyId: 'LASECONDARYTESTKEY01', secretAccessKey: 'secondary-test-secret-0123456789abcdefgh' }]),
    region: 'us-east-1',
    logger: pino({ level: 'silent' }),
    extraRouters: [repl.router],
  });
  return {
    dir,
    root,
    store,
    gateway,
    close: async () => {
      await gateway.close();
      await store.close();
      await root.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A small copy as the copier sends it: a text body, its MD5 ETag, `seq`. */
export function copyItem(opts: { bucket: string; key: string; text: string; epoch: number; seq: number }): BatchItem {
  const body = Buffer.from(opts.text);
  const meta: ObjectMeta = {
    v: objectMetaVersion,
    bucket: opts.bucket,
    key: opts.key,
    size: body.length,
    etag: createHash('md5').update(body).digest('hex'),
    lastModified: 1,
    seq: opts.seq,
    headers: { contentType: 'text/plain' },
    userMeta: {},
    tags: {},
    blobs: [],
  };
  return { copy: { epoch: opts.epoch, meta }, body };
}
