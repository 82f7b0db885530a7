// The composition root of one site: the only place that wires concrete
// classes (store, credentials, replication, gateway) together.

import { mkdir } from 'node:fs/promises';
import type Router from '@koa/router';
import pino, { type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock } from '../core/clock.ts';
import { createAdminRouter } from '../gateway/admin.ts';
import { loadCredentials, type KeyPair } from '../gateway/credentials.ts';
import { createGateway, type Gateway } from '../gateway/server.ts';
import { DiskObjectStore, openMetaDb } from '../objects/store.ts';

export type Role = 'single' | 'primary' | 'secondary';

export interface SiteConfig {
  role: Role;
  dataDir: string;
  host: string;
  port: number;
  region: string;
  baseDomain?: string;
  keysFile?: string;
  anonymousReadBuckets: string[];
  logLevel: string;
  /** Environment to read LOOKAHEAD_* credentials from. */
  env: NodeJS.ProcessEnv;
}

export interface RunningSite {
  config: SiteConfig;
  endpoint: string;
  port: number;
  credentials: KeyPair;
  credentialsGenerated: boolean;
  close(): Promise<void>;
}

export async function startSite(config: SiteConfig): Promise<RunningSite> {
  const logger: Logger = pino({ level: config.logLevel, base: { role: config.role } }, pino.destination(2));
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const db = openMetaDb(config.dataDir);
  const store = await DiskObjectStore.open({ dataDir: config.dataDir, db, defaultRegion: config.region });
  const creds = await loadCredentials({ dataDir: config.dataDir, env: config.env, keysFile: config.keysFile });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'lookahead_' });
  const startedAt = systemClock.now();
  const status = () => ({
    role: config.role,
    endpoint,
    uptimeSeconds: Math.round((systemClock.now() - startedAt) / 1000),
  });
  let endpoint = '';
  const extraRouters: Router[] = [
    createAdminRouter({
      credentials: creds.lookup,
      adminKeys: new Set([creds.primary.accessKeyId]),
      status,
      registry,
      clock: systemClock,
    }),
  ];
  const gateway: Gateway = createGateway({
    store,
    credentials: creds.lookup,
    region: config.region,
    logger,
    anonymousReadBuckets: config.anonymousReadBuckets,
    extraRouters,
    ...(config.baseDomain ? { baseDomain: config.baseDomain } : {}),
  });
  const { port } = await gateway.listen(config.host, config.port);
  endpoint = `http://${config.host}:${port}`;
  logger.info({ endpoint, dataDir: config.dataDir }, 'site ready');
  return {
    config,
    endpoint,
    port,
    credentials: creds.primary,
    credentialsGenerated: creds.generated,
    async close() {
      await gateway.close();
      await store.close();
      await db.close();
    },
  };
}
