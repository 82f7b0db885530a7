// Factories the composition root (src/main.ts) calls to wire replication.
//
// Primary:
//   const repl = createPrimaryReplication({ root, target, clock, random, config, registry, logger });
//   const store = await DiskObjectStore.open({ dataDir, db: root, hooks: repl.hooks });
//   await repl.start(store);           // loads R' and Q, connects, starts the copier
//   ... repl.status() for GET /_lookahead/status; repl.stop() on shutdown.
// Secondary:
//   const sec = createSecondaryReplication({ root, clock, primaryUrl, replicationSecret });
//   const store = await DiskObjectStore.open({ dataDir, db: root, hooks: sec.hooks });
//   await sec.start(store);
//   createGateway({ ..., extraRouters: [sec.router] });

import type { RootDatabase } from 'lmdb';
import type Router from '@koa/router';
import type { Registry } from 'prom-client';
import type { ChangeHooks } from '../core/changes.ts';
import type { Clock, Random } from '../core/clock.ts';
import { S3Error } from '../core/errors.ts';
import type { ObjectStore } from '../objects/types.ts';
import { Predictions, defaultPredictorConfig } from '../predict/predictions.ts';
import type { PredictorConfig } from '../predict/predictions.ts';
import { RecentWrites } from '../predict/recent.ts';
import { GatewayTarget } from './http-target.ts';
import { ReplicaMetrics } from './metrics.ts';
import { predictWith, storeKeysUnderPrefix } from './predict.ts';
import { PrimaryReplicator, defaultPrimaryConfig } from './primary.ts';
import type { PrimaryConfig, ReplicaStatus } from './primary.ts';
import { createReplicaRouter } from './router.ts';
import { SecondaryService, secondaryHooks } from './secondary.ts';
import { LmdbPrimaryDurable, LmdbSecondaryDurable } from './state.ts';
import type { ReplicaTarget } from './target.ts';
import type { ForegroundLoad } from './pacing.ts';

export { GatewayTarget } from './http-target.ts';
export { PrimaryReplicator, defaultPrimaryConfig } from './primary.ts';
export type { PrimaryConfig, ReplicaStatus, OnSecondaryDown, PeerState } from './primary.ts';
export { SecondaryService, secondaryHooks } from './secondary.ts';
export { createReplicaRouter } from './router.ts';
export type { ReplicaTarget } from './target.ts';
export { copyPriorities } from './pacing.ts';
export type { CopyPriority, ForegroundLoad, PacingStatus } from './pacing.ts';

type Log = (message: string, fields?: Record<string, unknown>) => void;

export interface PrimaryReplicationOptions {
  /** The lmdb root the object store uses too (Q commits with the object). */
  root: RootDatabase;
  /** Where the record and copies go; or `secondaryUrl` + `replicationSecret`. */
  target?: ReplicaTarget;
  secondaryUrl?: string;
  replicationSecret?: string;
  clock: Clock;
  random: Random;
  /** Overrides of defaultPrimaryConfig; `site` names this gateway. */
  config?: Partial<PrimaryConfig>;
  predictors?: PredictorConfig;
  /** Keys under a prefix, capped (the same-prefix predictor's group cap);
   * defaults to counting in the object store's lmdb on the same root. */
  keysUnderPrefix?: (bucket: string, prefix: string) => number;
  registry?: Registry;
  log?: Log;
  /** Client requests on this site, for copy priority (pacing.ts). */
  foreground?: ForegroundLoad;
}

export interface PrimaryReplication {
  hooks: ChangeHooks;
  replicator: PrimaryReplicator;
  target: ReplicaTarget;
  start(store: ObjectStore): Promise<void>;
  stop(): Promise<void>;
  status(): ReplicaStatus;
}

export function createPrimaryReplication(options: PrimaryReplicationOptions): PrimaryReplication {
  const target = options.target ?? gatewayTarget(options);
  const predictorConfig = options.predictors ?? defaultPredictorConfig;
  const predictions = new Predictions(predictorConfig);
  const recent = new RecentWrites({ windowMs: Math.max(predictorConfig.hotMs, 60_000) });
  const config: PrimaryConfig = { ...defaultPrimaryConfig, site: 'primary', ...options.config };
  let replicator: PrimaryReplicator | undefined;
  const durable = new LmdbPrimaryDurable(options.root, (id) => replicator?.inRecord(id) ?? false);
  replicator = new PrimaryReplicator({
    durable,
    target,
    clock: options.clock,
    random: options.random,
    config,
    predict: predictWith(predictions, recent, options.keysUnderPrefix ?? storeKeysUnderPrefix(options.root)),
    onCommitted: (change, now) => recent.note(change, now),
    ...(options.registry ? { metrics: new ReplicaMetrics(options.registry) } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.foreground ? { foreground: options.foreground } : {}),
  });
  const r = replicator;
  return {
    hooks: r,
    replicator: r,
    target,
    start: (store) => r.start(store),
    stop: async () => {
      r.stop();
      await target.close();
    },
    status: () => r.status(),
  };
}

function gatewayTarget(options: PrimaryReplicationOptions): ReplicaTarget {
  if (options.secondaryUrl === undefined || options.replicationSecret === undefined) {
    throw new Error('createPrimaryReplication needs a target, or secondaryUrl and replicationSecret');
  }
  return new GatewayTarget({ url: options.secondaryUrl, secret: options.replicationSecret, clock: options.clock });
}

export interface SecondaryReplicationOptions {
  root: RootDatabase;
  clock: Clock;
  /** Named in the error a client gets for a write to the secondary. */
  primaryUrl?: string;
  replicationSecret: string;
}

export interface SecondaryReplication {
  /** Refuses client writes; lets the service's bucket copies through. */
  hooks: ChangeHooks;
  router: Router;
  service(): SecondaryService;
  start(store: ObjectStore): Promise<void>;
}

export function createSecondaryReplication(options: SecondaryReplicationOptions): SecondaryReplication {
  const durable = new LmdbSecondaryDurable(options.root);
  let service: SecondaryService | undefined;
  // The store needs hooks before the service has its store: delegate.
  const hooks: ChangeHooks = {
    admit: (change) => {
      if (service === undefined) return secondaryHooks(() => options.primaryUrl).admit(change);
      return service.hooks().admit(change);
    },
    committed: (change) => service?.hooks().committed(change),
  };
  const started = (): SecondaryService => {
    if (service === undefined) throw new S3Error('ServiceUnavailable', 'The secondary is starting.');
    return service;
  };
  return {
    hooks,
    router: createReplicaRouter(started, options.replicationSecret, options.clock),
    service: started,
    start: async (store) => {
      const s = new SecondaryService({ durable, store, clock: options.clock, ...(options.primaryUrl ? { primaryUrl: options.primaryUrl } : {}) });
      await s.start();
      service = s;
    },
  };
}
