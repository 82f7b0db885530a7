// `lookahead verify` against a plain S3 secondary (s3rver): clean after the
// primary's queue drained; a key planted behind the primary's back is
// found, and the exit status follows whether the record covers it (the
// bucket was just created, so its bucket location is still in R).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, startS3rver, type S3Server } from '../replica/s3/servers.ts';
import { cli, client, kill, serve, sleep, status, type Proc } from './procs.ts';

let dir: string;
let s3: S3Server;
let p: Proc | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lookahead-verify-s3-'));
  s3 = await startS3rver();
});

afterAll(async () => {
  await kill(p);
  await s3?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('verify against a plain S3 secondary', () => {
  it('is clean when replicated and reports a planted key with its coverage', { timeout: 60_000 }, async () => {
    const awsEnv = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey };
    await rawClient(s3).send(new CreateBucketCommand({ Bucket: 'replicas' }));
    const url = `s3://replicas/site@${s3.endpoint}`;
    p = await serve(['--role', 'primary', '--data', join(dir, 'p'), '--secondary', url], awsEnv);
    const c = client(p.url);
    await c.send(new CreateBucketCommand({ Bucket: 'vbucket' }));
    for (let i = 0; i < 12; i++) await c.send(new PutObjectCommand({ Bucket: 'vbucket', Key: `dir/k${i}`, Body: `body ${i}` }));
    for (let i = 0; i < 100; i++) {
      const st = await status(p.url);
      if (st.replication.queueDepth === 0) break;
      await sleep(200);
    }
    const clean = await cli(['verify', '--primary', p.url, '--secondary', url, '--bodies', '--json'], awsEnv);
    expect(clean.code, clean.stderr).toBe(0);
    const ok = JSON.parse(clean.stdout) as { differences: unknown[]; keysPrimary: number; keysSecondary: number };
    expect(ok.differences).toEqual([]);
    expect(ok.keysSecondary).toBe(12);
    // A key nobody wrote through the primary.
    await rawClient(s3).send(new PutObjectCommand({ Bucket: 'replicas', Key: 'site/vbucket/planted', Body: 'x' }));
    const bad = await cli(['verify', '--primary', p.url, '--secondary', url, '--json'], awsEnv);
    const diff = JSON.parse(bad.stdout) as { differences: Array<{ key: string; kind: string; covered: boolean }>; uncovered: number };
    expect(diff.differences).toEqual([expect.objectContaining({ key: 'planted', kind: 'only-secondary' })]);
    expect(diff.differences[0]?.covered).toBe(true);
    expect(diff.uncovered).toBe(0);
    expect(bad.code).toBe(0);
    const text = await cli(['verify', '--primary', p.url, '--secondary', url], awsEnv);
    expect(text.stdout).toMatch(/covered\s+only-secondary\s+vbucket\/planted/);
  });
});
