// The ReplicaTarget contract against the gateway secondary: GatewayTarget
// (the replication engineer's HTTP client) talking to a real Lookahead
// gateway in secondary role (DiskObjectStore + lmdb record + the replica
// router), in process on 127.0.0.1 port 0. Replicas are read back from the
// secondary's store, as its clients would see them.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { systemClock } from '../../../src/core/clock.ts';
import { S3Error } from '../../../src/core/errors.ts';
import { StaticCredentials } from '../../../src/gateway/credentials.ts';
import { createGateway } from '../../../src/gateway/server.ts';
import { DiskObjectStore, openMetaDb } from '../../../src/objects/store.ts';
import type { ChangeHooks } from '../../../src/core/changes.ts';
import { GatewayTarget } from '../../../src/replica/http-target.ts';
import { createReplicaRouter } from '../../../src/replica/router.ts';
import { SecondaryService } from '../../../src/replica/secondary.ts';
import { LmdbSecondaryDurable } from '../../../src/replica/state.ts';
import type { ReadBack, TargetSite } from '../target.contract.ts';
import { targetContract } from '../target.contract.ts';

const secret = 'contract-replication-secret';

async function gatewaySite(): Promise<TargetSite> {
  const dataDir = await mkdtemp(join(tmpdir(), 'lookahead-contract-secondary-'));
  const db = openMetaDb(dataDir);
  let service: SecondaryService | undefined;
  // The store needs the service's hooks and the service needs the store.
  const hooks: ChangeHooks = {
    admit: (change) => (service as SecondaryService).hooks().admit(change),
    committed: (change) => (service as SecondaryService).hooks().committed(change),
  };
  const store = await DiskObjectStore.open({ dataDir, db, hooks });
  service = new SecondaryService({ durable: new LmdbSecondaryDurable(db), store, clock: systemClock });
  await service.start();
  const gateway = createGateway({
    store,
    credentials: new StaticCredentials([{ accessKeyId: 'contract-key', secretAccessKey: 'contract-secret-key-0123456789' }]),
    region: 'us-east-1',
    logger: pino({ level: 'silent' }),
    extraRouters: [createReplicaRouter(service, secret, systemClock)],
  });
  const { port } = await gateway.listen('127.0.0.1', 0);
  return {
    open: async () => new GatewayTarget({ url: `http://127.0.0.1:${port}`, secret, clock: systemClock }),
    read: async (bucket, key): Promise<ReadBack | undefined> => {
      let reader;
      try {
        reader = await store.openObject(bucket, key);
      } catch (err) {
        if (err instanceof S3Error && (err.code === 'NoSuchKey' || err.code === 'NoSuchBucket')) return undefined;
        throw err;
      }
      const chunks: Buffer[] = [];
      for await (const c of reader.stream()) chunks.push(Buffer.from(c as Buffer));
      const { meta } = reader;
      return { body: Buffer.concat(chunks), etag: meta.etag, headers: meta.headers, userMeta: meta.userMeta, tags: meta.tags };
    },
    close: async () => {
      await gateway.close();
      await store.close();
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

targetContract('GatewayTarget on a Lookahead secondary', async () => ({
  newSite: gatewaySite,
  tombstones: true,
  multipartBytes: 6 * 1024 * 1024,
  multipartEtags: true,
}));
