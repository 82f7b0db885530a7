// The composition root of one site: the only place that wires concrete
// classes (store, credentials, replication, gateway) together.

import { chmod, mkdir, readFile } from 'node:fs/promises';
import type Router from '@koa/router';
import pino, { type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { noReplication, type ChangeHooks } from '../core/changes.ts';
import { systemClock, systemRandom } from '../core/clock.ts';
import { createAdminRouter } from '../gateway/admin.ts';
import { recordViewOfNames, type RecordProvider } from '../gateway/ui/record-view.ts';
import { WriteStats } from '../gateway/ui/write-stats.ts';
import { loadCredentials, type KeyPair } from '../gateway/credentials.ts';
import { createGateway, type Gateway } from '../gateway/server.ts';
import { DiskObjectStore, openMetaDb } from '../objects/store.ts';
import type { ObjectStore } from '../objects/types.ts';
import { createS3Target } from '../replica/s3/target.ts';
import { defaultPredictorConfig, type PredictorConfig } from '../predict/predictions.ts';
import {
  createPrimaryReplication,
  createSecondaryReplication,
  type OnSecondaryDown,
  type ReplicaTarget,
} from '../replica/index.ts';

export type Role = 'single' | 'primary' | 'secondary';

export interface ReplicationConfig {
  /** Shared by both sites; authenticates every inter-site request. Not
   * needed for a plain S3 secondary (its own credentials apply). */
  secret?: string;
  /** Primary: where the secondary gateway listens (http://...), or a plain
   * S3 secondary (s3://BUCKET[/PREFIX]@ENDPOINT, src/replica/s3/url.ts). */
  secondaryUrl?: string;
  /** Primary: a ready-made target instead (plain S3 secondary). */
  target?: ReplicaTarget;
  /** Secondary: named in the error a client gets for a write here. */
  primaryUrl?: string;
  onSecondaryDown: OnSecondaryDown;
  recordEntriesMax?: number;
  predictors: PredictorConfig;
}

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
  /** Required for the primary and secondary roles. */
  replication?: ReplicationConfig;
  /** Serve clients over HTTPS (PEM files); plain HTTP otherwise. */
  tls?: { certFile: string; keyFile: string };
}

export interface RunningSite {
  config: SiteConfig;
  endpoint: string;
  port: number;
  credentials: KeyPair;
  credentialsGenerated: boolean;
  close(): Promise<void>;
}

/** What each role adds to a plain gateway. */
interface RoleParts {
  hooks: ChangeHooks;
  routers: Router[];
  start(store: ObjectStore): Promise<void>;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
  /** The at-risk list for the console (GET /_lookahead/record). */
  record?: RecordProvider;
}

function replicationOf(config: SiteConfig): ReplicationConfig {
  if (!config.replication) throw new Error(`role ${config.role} needs replication settings (a replication secret)`);
  return config.replication;
}

function roleParts(config: SiteConfig, db: ReturnType<typeof openMetaDb>, registry: Registry, logger: Logger): RoleParts {
  switch (config.role) {
    case 'single':
      return { hooks: noReplication, routers: [], start: async () => {}, stop: async () => {}, status: () => ({}) };
    case 'primary': {
      const r = replicationOf(config);
      const log = (message: string, fields?: Record<string, unknown>) => logger.info(fields ?? {}, message);
      // A plain S3 secondary keeps R as objects on itself (issue 5); its
      // credentials come from the AWS SDK's default chain (AWS_* variables).
      const target = r.target ?? (r.secondaryUrl?.startsWith('s3://') ? createS3Target({ url: r.secondaryUrl, log }) : undefined);
      const repl = createPrimaryReplication({
        root: db,
        ...(target ? { target } : { secondaryUrl: r.secondaryUrl, replicationSecret: r.secret }),
        clock: systemClock,
        random: systemRandom,
        config: {
          site: `${config.host}:${config.port}`,
          onSecondaryDown: r.onSecondaryDown,
          ...(r.recordEntriesMax ? { recordEntriesMax: r.recordEntriesMax } : {}),
        },
        predictors: r.predictors,
        registry,
        log,
      });
      return {
        hooks: repl.hooks,
        routers: [],
        start: (store) => repl.start(store),
        stop: () => repl.stop(),
        status: () => ({ replication: repl.status() }),
      };
    }
    case 'secondary': {
      const r = replicationOf(config);
      if (!r.secret) throw new Error('a secondary needs a replication secret');
      const sec = createSecondaryReplication({
        root: db,
        clock: systemClock,
        replicationSecret: r.secret,
        ...(r.primaryUrl ? { primaryUrl: r.primaryUrl } : {}),
      });
      return {
        hooks: sec.hooks,
        routers: [sec.router],
        start: (store) => sec.start(store),
        stop: async () => {},
        status: () => {
          const s = sec.service();
          return { replication: { ...s.health(), primary: s.primaryUrl } };
        },
        record: (query) => recordViewOfNames(sec.service().recordNames(), query),
      };
    }
  }
}

export async function startSite(config: SiteConfig): Promise<RunningSite> {
  const logger: Logger = pino({ level: config.logLevel, base: { role: config.role } }, pino.destination(2));
  // A site's files (keys, metadata, object bodies) are its own: nothing it
  // creates is readable by group or other, whatever the caller's umask, and
  // a data dir that already existed is closed to others too.
  process.umask(0o077);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await chmod(config.dataDir, 0o700);
  const db = openMetaDb(config.dataDir);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'lookahead_' });
  const role = roleParts(config, db, registry, logger);
  // Hit/miss counts and PUT latency per second, for status and the console.
  const writeStats = new WriteStats(systemClock);
  const hooks = writeStats.wrap(role.hooks);
  const store = await DiskObjectStore.open({ dataDir: config.dataDir, db, defaultRegion: config.region, hooks });
  await role.start(store);
  const creds = await loadCredentials({ dataDir: config.dataDir, env: config.env, keysFile: config.keysFile });
  const startedAt = systemClock.now();
  let endpoint = '';
  const status = () => ({
    role: config.role,
    endpoint,
    uptimeSeconds: Math.round((systemClock.now() - startedAt) / 1000),
    ...role.status(),
    writes: writeStats.snapshot(),
  });
  const extraRouters: Router[] = [
    ...role.routers,
    createAdminRouter({
      credentials: creds.lookup,
      adminKeys: new Set([creds.primary.accessKeyId]),
      status,
      registry,
      clock: systemClock,
      ...(role.record ? { record: role.record } : {}),
    }),
  ];
  const gateway: Gateway = createGateway({
    store,
    credentials: creds.lookup,
    region: config.region,
    logger,
    anonymousReadBuckets: config.anonymousReadBuckets,
    extraRouters,
    registry,
    ...(config.baseDomain ? { baseDomain: config.baseDomain } : {}),
    ...(config.tls ? { tls: { cert: await readFile(config.tls.certFile), key: await readFile(config.tls.keyFile) } } : {}),
  });
  const { port } = await gateway.listen(config.host, config.port);
  endpoint = `${config.tls ? 'https' : 'http'}://${config.host}:${port}`;
  logger.info({ endpoint, dataDir: config.dataDir }, 'site ready');
  return {
    config,
    endpoint,
    port,
    credentials: creds.primary,
    credentialsGenerated: creds.generated,
    async close() {
      await gateway.close();
      await role.stop();
      await store.close();
      await db.close();
    },
  };
}

export { defaultPredictorConfig };
