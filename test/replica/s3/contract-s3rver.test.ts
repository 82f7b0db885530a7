// The ReplicaTarget contract against S3Target on s3rver. s3rver ignores
// x-amz-tagging on PUT, so tags go in a separate PutObjectTagging; it
// stores objects as files named by their keys, so an empty path segment
// ("a//b") cannot be stored; and its multipart ETag is the body's MD5.
import { afterAll, beforeAll } from 'vitest';
import { targetContract } from '../target.contract.ts';
import { s3ContractSetup } from './harness.ts';
import type { S3Server } from './servers.ts';
import { startS3rver } from './servers.ts';

let server: S3Server | undefined;
beforeAll(async () => {
  server = await startS3rver();
});
afterAll(async () => {
  await server?.stop();
});
const current = (): S3Server => server as S3Server;
const quirks = { multipartEtags: false, unsupportedKey: (key: string) => key.includes('//') };

targetContract('S3Target on s3rver, prefix mapping', s3ContractSetup(current, 'prefix', { tagging: 'separate' }, quirks));
targetContract('S3Target on s3rver, same bucket names', s3ContractSetup(current, 'same', { tagging: 'separate' }, quirks));
