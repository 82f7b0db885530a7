// Settings shared by tests that start real sites in-process with startSite
// (src/cli/site.ts): a pair on 127.0.0.1, port 0, with one client key pair.

import { defaultPredictorConfig } from '../../src/predict/predictions.ts';
import type { ReplicationConfig, SiteConfig } from '../../src/cli/site.ts';

export interface TestKeys {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Everything of a SiteConfig but role, data dir and replication. Without
 * `keys` the environment holds none and the site generates its own pair. */
export function siteBase(keys?: TestKeys): Omit<SiteConfig, 'role' | 'dataDir' | 'replication'> {
  return {
    host: '127.0.0.1',
    port: 0,
    region: 'us-east-1',
    anonymousReadBuckets: [],
    logLevel: process.env.LOOKAHEAD_TEST_LOG ?? 'silent',
    env: keys ? { LOOKAHEAD_ACCESS_KEY: keys.accessKeyId, LOOKAHEAD_SECRET_KEY: keys.secretAccessKey } : {},
  };
}

/** Replication settings of a test pair: degraded mode, default predictors. */
export function pairReplication(secret: string): ReplicationConfig {
  return { secret, onSecondaryDown: 'degraded', predictors: defaultPredictorConfig };
}
