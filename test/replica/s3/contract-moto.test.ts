// The ReplicaTarget contract against S3Target on moto_server.
import { afterAll, beforeAll } from 'vitest';
import { targetContract } from '../target.contract.ts';
import { s3ContractSetup } from './harness.ts';
import type { S3Server } from './servers.ts';
import { startMoto } from './servers.ts';

let server: S3Server | undefined;
beforeAll(async () => {
  server = await startMoto();
});
afterAll(async () => {
  await server?.stop();
});
const current = (): S3Server => server as S3Server;

targetContract('S3Target on moto_server, prefix mapping', s3ContractSetup(current, 'prefix'));
targetContract('S3Target on moto_server, same bucket names', s3ContractSetup(current, 'same'));
