// The composition root of one site: the only place that wires concrete
// classes (store, credentials, replication, gateway) together.

import { chmod, mkdir, readFile } from 'node:fs/promises';
import type Router from '@koa/router';
import pino, { type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, systemRandom } from '../core/clock.ts';
import { createAdminRouter } from '../gateway/admin.ts';
import { WriteStats } from '../gateway/ui/write-stats.ts';
import { loadCredentials, type KeyPair } from '../gateway/credentials.ts';
import { ClientLoad } from '../gateway/client-load.ts';
import { createGateway, type Gateway } from '../gateway/server.ts';
import { DiskObjectStore, openMetaDb } from '../objects/store.ts';
import { defaultPredictorConfig, type PredictorConfig } from '../predict/predictions.ts';
import type { CopyPriority, OnSecondaryDown, ReplicaTarget } from '../replica/index.ts';
import { SiteRoles } from './roles.ts';

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
  /** Primary: ack a write that missed the record only once its data (or
   * delete) is durable on the secondary too (claim 2). */
  syncCopyOnMiss?: boolean;
  recordEntriesMax?: number;
  predictors: PredictorConfig;
  /** Primary: hold copies back while clients are busy ('background', the
   * default) or send them at once ('eager'); src/replica/pacing.ts. */
  copyPriority?: CopyPriority;
  /** Primary: the lag bound of 'background' (copyDeferLagMsDefault). */
  copyLagMaxMs?: number;
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
  /** Failover at start (issue 4). */
  failover?: FailoverFlags;
  /** What GETs check of stored bodies (objects/verify-read.ts); default 'full'. */
  verifyReads?: 'full' | 'size';
}

export interface FailoverFlags {
  /** Secondary: promote at start (as `lookahead promote`). */
  promote?: boolean;
  /** Become the secondary of this primary at start (failback). */
  rejoinFrom?: string;
  /** Primary: accept writes after a restart even if the secondary does not
   * answer (it may have been promoted: risk of split brain). */
  forcePrimary?: boolean;
}

export interface RunningSite {
  config: SiteConfig;
  endpoint: string;
  port: number;
  credentials: KeyPair;
  credentialsGenerated: boolean;
  /** The role machine (promote, rejoin, resync progress). */
  roles: SiteRoles;
  close(): Promise<void>;
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
  let endpoint = '';
  const log = (message: string, fields?: Record<string, unknown>) => logger.info(fields ?? {}, message);
  // Client S3 requests, counted by the gateway, read by the copier's
  // priority (one counter per site, built here: no module singleton).
  const clientLoad = new ClientLoad();
  const roles = new SiteRoles({ config, db, registry, log, endpoint: () => endpoint, foreground: clientLoad });
  // Hit/miss counts and PUT latency per second, for status and the console.
  // The role's hooks sit behind a swappable wrapper: promote, rejoin and
  // switchover change them in process.
  const writeStats = new WriteStats(systemClock);
  const hooks = writeStats.wrap(roles.hooks);
  const store = await DiskObjectStore.open({ dataDir: config.dataDir, db, defaultRegion: config.region, hooks });
  await roles.start(store);
  const creds = await loadCredentials({ dataDir: config.dataDir, env: config.env, keysFile: config.keysFile });
  const startedAt = systemClock.now();
  const status = () => ({
    role: config.role,
    endpoint,
    uptimeSeconds: Math.round((systemClock.now() - startedAt) / 1000),
    ...roles.status(),
    writes: writeStats.snapshot(),
  });
  const record = roles.record();
  const extraRouters: Router[] = [
    ...roles.routers(),
    createAdminRouter({
      credentials: creds.lookup,
      adminKeys: new Set([creds.primary.accessKeyId]),
      status,
      registry,
      clock: systemClock,
      actions: roles.actions(),
      ...(record ? { record } : {}),
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
    clientLoad,
    ...(config.baseDomain ? { baseDomain: config.baseDomain } : {}),
    ...(config.verifyReads ? { verifyReads: config.verifyReads } : {}),
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
    roles,
    async close() {
      await gateway.close();
      await roles.stop();
      await store.close();
      await db.close();
    },
  };
}

export { defaultPredictorConfig };
