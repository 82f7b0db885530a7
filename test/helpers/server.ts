// A real gateway on 127.0.0.1, port 0, over a temp data dir, and an S3Client
// configured for it with the SDK's default checksum settings.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import pino from 'pino';
import type Router from '@koa/router';
import type { Registry } from 'prom-client';
import { StaticCredentials } from '../../src/gateway/credentials.ts';
import { createGateway } from '../../src/gateway/server.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';

export interface TestGatewayOptions {
  region?: string;
  baseDomain?: string;
  anonymousReadBuckets?: string[];
  extraRouters?: Router[];
  /** Reuse a data dir (restart tests); a fresh temp dir otherwise. */
  dataDir?: string;
  /** Collect the gateway's request metrics here. */
  registry?: Registry;
}

export interface TestGateway {
  endpoint: string;
  port: number;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
  store: DiskObjectStore;
  /** An S3Client for this gateway; `overrides` win over the defaults. */
  client(overrides?: Partial<S3ClientConfig>): S3Client;
  close(): Promise<void>;
}

export const testAccessKeyId = 'LATESTACCESSKEY00001';
export const testSecretAccessKey = 'test-secret-key-0123456789abcdefghijklmn';

export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const region = options.region ?? 'us-east-1';
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'lookahead-gw-')));
  const db = openMetaDb(dataDir);
  const store = await DiskObjectStore.open({ dataDir, db });
  const logger = pino({ level: process.env.LOOKAHEAD_TEST_LOG ?? 'silent' });
  const gateway = createGateway({
    store,
    credentials: new StaticCredentials([{ accessKeyId: testAccessKeyId, secretAccessKey: testSecretAccessKey }]),
    region,
    logger,
    ...(options.baseDomain ? { baseDomain: options.baseDomain } : {}),
    ...(options.anonymousReadBuckets ? { anonymousReadBuckets: options.anonymousReadBuckets } : {}),
    ...(options.extraRouters ? { extraRouters: options.extraRouters } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
  });
  const { port } = await gateway.listen('127.0.0.1', 0);
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];
  return {
    endpoint,
    port,
    region,
    accessKeyId: testAccessKeyId,
    secretAccessKey: testSecretAccessKey,
    dataDir,
    store,
    client(overrides = {}) {
      const c = new S3Client({
        endpoint,
        region,
        forcePathStyle: true,
        credentials: { accessKeyId: testAccessKeyId, secretAccessKey: testSecretAccessKey },
        maxAttempts: 1,
        ...overrides,
      });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.destroy();
      await gateway.close();
      await store.close();
      await db.close();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
