// The gateway the aws-CLI test talks to: in-process via
// test/helpers/server.ts, with only the fields the CLI needs.

import { startTestGateway } from '../helpers/server.ts';

export interface E2eGateway {
  url: string;
  accessKey: string;
  secretKey: string;
  region: string;
  close: () => Promise<void>;
}

export async function startE2eGateway(): Promise<E2eGateway> {
  const g = await startTestGateway();
  return {
    url: g.endpoint,
    accessKey: g.accessKeyId,
    secretKey: g.secretAccessKey,
    region: g.region,
    close: () => g.close(),
  };
}
