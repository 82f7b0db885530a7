// Real S3 servers written by others, started on 127.0.0.1 by the tests
// (issue 5): moto_server (Python, a child process on a free port) and
// s3rver (npm, in process on port 0 with a temp dir).

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { GetObjectCommand, GetObjectTaggingCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../../src/replica/s3/client.ts';
import { reservedMetaNames } from '../../../src/replica/s3/copy.ts';
import type { S3BucketMapping } from '../../../src/replica/s3/url.ts';
import { targetLocation } from '../../../src/replica/s3/url.ts';
import type { ReadBack } from '../target.contract.ts';

export interface S3Server {
  name: string;
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

/** How long moto may take to answer its first request (Python start-up). */
const serverStartMs = 30_000;
const pollMs = 100;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitUntilServing(endpoint: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + serverStartMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}`);
    try {
      await fetch(`${endpoint}/`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
  throw new Error(`moto_server did not answer within ${serverStartMs} ms`);
}

/** `moto_server -H 127.0.0.1 -p PORT` as a child; it closes the connection
 * after every response, which the client must live with. */
export async function startMoto(): Promise<S3Server> {
  // A port taken between freePort() and moto's bind shows as an early exit;
  // a few attempts cover that race.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      await waitUntilServing(endpoint, child);
    } catch (err) {
      child.kill('SIGKILL');
      if (attempt === 2) throw err;
      continue;
    }
    return {
      name: 'moto',
      endpoint,
      credentials: { accessKeyId: 'moto-access', secretAccessKey: 'moto-secret' },
      stop: async () => {
        if (child.exitCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      },
    };
  }
  throw new Error('unreachable');
}

export async function startS3rver(): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'lookahead-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true });
  const address = (await server.run()) as { port: number };
  return {
    name: 's3rver',
    endpoint: `http://127.0.0.1:${address.port}`,
    // s3rver's built-in account.
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    stop: async () => {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export function rawClient(server: S3Server): S3Client {
  return createS3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: server.credentials });
}

/** A replica read back through plain S3, as a client after failover would. */
export async function readBack(client: S3Client, mapping: S3BucketMapping, bucket: string, key: string): Promise<ReadBack | undefined> {
  const loc = targetLocation(mapping, bucket, key);
  let out;
  try {
    out = await client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
  const body = Buffer.from((await out.Body?.transformToByteArray()) ?? []);
  const tagging = await client.send(new GetObjectTaggingCommand({ Bucket: loc.bucket, Key: loc.key }));
  const userMeta = Object.fromEntries(Object.entries(out.Metadata ?? {}).filter(([name]) => !reservedMetaNames.includes(name)));
  const tags = Object.fromEntries((tagging.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  return {
    body,
    etag: (out.ETag ?? '').replace(/"/g, ''),
    headers: {
      contentType: out.ContentType,
      contentEncoding: out.ContentEncoding,
      contentDisposition: out.ContentDisposition,
      contentLanguage: out.ContentLanguage,
      cacheControl: out.CacheControl,
      expires: out.ExpiresString ?? out.Expires?.toUTCString(),
    },
    userMeta,
    tags,
  };
}
