// Contract harness of S3Target over a running S3 server: every site gets its
// own place on the server (a prefix within one target bucket, or its own
// record bucket with same-name buckets), so the cases do not see each other.

import type { S3Server } from './servers.ts';
import { rawClient, readBack } from './servers.ts';
import type { TargetContractSetup, TargetSite } from '../target.contract.ts';
import { S3Target } from '../../../src/replica/s3/target.ts';
import type { S3TargetOptions } from '../../../src/replica/s3/target.ts';
import { parseS3TargetUrl } from '../../../src/replica/s3/url.ts';

let sites = 0;

export function s3ContractSetup(
  server: () => S3Server,
  mapping: 'prefix' | 'same',
  extra: Partial<S3TargetOptions> = {},
  quirks: Pick<TargetContractSetup, 'multipartEtags' | 'unsupportedKey'> = { multipartEtags: true },
): () => Promise<TargetContractSetup> {
  return async () => ({
    ...quirks,
    tombstones: false,
    multipartBytes: 6 * 1024 * 1024,
    newSite: async (): Promise<TargetSite> => {
      const s = server();
      const n = ++sites;
      const url =
        mapping === 'prefix'
          ? `s3://contract-target/site-${n}/@${s.endpoint}`
          : `s3://*@${s.endpoint}?record-bucket=contract-record-${n}`;
      const parsed = parseS3TargetUrl(url);
      const client = rawClient(s);
      return {
        open: async () =>
          new S3Target({ url, credentials: s.credentials, multipartBytesMin: 8 * 1024 * 1024, ...extra }),
        read: (bucket, key) => readBack(client, parsed.mapping, bucket, key),
        close: async () => client.destroy(),
      };
    },
  });
}
