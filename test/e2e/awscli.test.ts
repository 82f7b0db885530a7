// The real `aws` CLI (awscli v1, on PATH) against a Lookahead gateway:
// mb, cp up and down (1 KiB and 50 MiB multipart), sync of an awkward tree
// both ways, ls --recursive, s3api tagging / copy / head, presign + plain
// GET, rm --recursive, rb. Every CLI call is async and bounded in time.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, statSync, rmSync, createReadStream } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startE2eGateway, type E2eGateway } from './gateway.ts';

const cliTimeoutMs = 120_000;
const bucket = 'awscli-e2e';

let gw: E2eGateway;
let work: string;
let env: NodeJS.ProcessEnv;

interface CliResult {
  stdout: string;
  stderr: string;
}

function aws(args: string[], timeoutMs = cliTimeoutMs): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'aws',
      [...args, '--endpoint-url', gw.url],
      { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`aws ${args.join(' ')} failed: ${err.message}\n${stderr}\n${stdout}`));
        else resolve({ stdout, stderr });
      },
    );
  });
}

async function awsJson(args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await aws([...args, '--output', 'json']);
  return stdout.trim() === '' ? {} : (JSON.parse(stdout) as Record<string, unknown>);
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Every file under `root` as relative path -> sha256 of its contents. */
function treeDigest(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, depth: number): void => {
    if (depth > 32) throw new Error(`tree too deep at ${dir}`);
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full, depth + 1);
      else out.set(path.relative(root, full), createHash('sha256').update(readFileSync(full)).digest('hex'));
    }
  };
  walk(root, 0);
  return out;
}

/** A tree with nested dirs and awkward names: spaces, &+-é", unicode. */
const treeFiles = [
  'top.txt',
  'with space/file one.txt',
  'amp&plus+dash-e\u0301"quote/odd &+-é".txt',
  'unicode/日本語/ファイル.txt',
  'unicode/emoji 🎉/party.bin',
  'deep/a/b/c/d/e/leaf.dat',
  'deep/a/sibling.dat',
  'percent%20not-decoded.txt',
];

function writeTree(root: string): void {
  treeFiles.forEach((rel, i) => {
    const full = path.join(root, rel);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, Buffer.concat([Buffer.from(`${rel}\n`), randomBytes(100 + i * 997)]));
  });
}

function plainGet(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('presigned GET timed out')));
    req.on('error', reject);
  });
}

beforeAll(async () => {
  gw = await startE2eGateway();
  work = mkdtempSync(path.join(tmpdir(), 'lookahead-awscli-'));
  const config = path.join(work, 'aws-config');
  writeFileSync(
    config,
    '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n',
  );
  env = {
    PATH: process.env.PATH,
    HOME: work,
    AWS_ACCESS_KEY_ID: gw.accessKey,
    AWS_SECRET_ACCESS_KEY: gw.secretKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  };
}, 120_000);

afterAll(async () => {
  await gw?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('aws CLI against lookahead', { timeout: 300_000 }, () => {
  it('makes a bucket', async () => {
    await aws(['s3', 'mb', `s3://${bucket}`]);
    const { stdout } = await aws(['s3', 'ls']);
    expect(stdout).toContain(bucket);
  });

  it('copies 1 KiB up and down byte-identical', async () => {
    const src = path.join(work, 'small.bin');
    const back = path.join(work, 'small.back');
    writeFileSync(src, randomBytes(1024));
    await aws(['s3', 'cp', src, `s3://${bucket}/small/one kib.bin`]);
    await aws(['s3', 'cp', `s3://${bucket}/small/one kib.bin`, back]);
    expect(readFileSync(back).equals(readFileSync(src))).toBe(true);
  });

  it('copies 50 MiB up (multipart) and down byte-identical', async () => {
    const src = path.join(work, 'big.bin');
    const back = path.join(work, 'big.back');
    const chunk = randomBytes(1024 * 1024);
    const parts: Buffer[] = [];
    for (let i = 0; i < 50; i++) parts.push(Buffer.concat([Buffer.from(`chunk ${i} `), chunk]).subarray(0, chunk.length));
    writeFileSync(src, Buffer.concat(parts));
    await aws(['s3', 'cp', src, `s3://${bucket}/big/fifty.bin`]);
    const head = await awsJson(['s3api', 'head-object', '--bucket', bucket, '--key', 'big/fifty.bin']);
    expect(head.ContentLength).toBe(50 * 1024 * 1024);
    // awscli v1 splits at 8 MiB: a multipart ETag ends in -N.
    expect(String(head.ETag)).toMatch(/^"[0-9a-f]{32}-\d+"$/);
    await aws(['s3', 'cp', `s3://${bucket}/big/fifty.bin`, back]);
    expect(await sha256File(back)).toBe(await sha256File(src));
    rmSync(src);
    rmSync(back);
  });

  it('syncs an awkward tree up, lists it, and syncs it back down identical', async () => {
    const up = path.join(work, 'tree-up');
    const down = path.join(work, 'tree-down');
    writeTree(up);
    await aws(['s3', 'sync', up, `s3://${bucket}/tree`]);
    const { stdout } = await aws(['s3', 'ls', '--recursive', `s3://${bucket}/tree/`]);
    const listed = stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.replace(/^\S+\s+\S+\s+\d+\s/, ''));
    expect(listed.sort()).toEqual(treeFiles.map((f) => `tree/${f}`).sort());
    await aws(['s3', 'sync', `s3://${bucket}/tree`, down]);
    expect(treeDigest(down)).toEqual(treeDigest(up));
    // A second sync has nothing to do: sizes and times match.
    const again = await aws(['s3', 'sync', up, `s3://${bucket}/tree`]);
    expect(again.stdout.trim()).toBe('');
  });

  it('tags, copies and heads objects with s3api', async () => {
    const key = 'small/one kib.bin';
    await aws([
      's3api', 'put-object-tagging', '--bucket', bucket, '--key', key,
      '--tagging', 'TagSet=[{Key=team,Value=storage},{Key=tier,Value=hot & cold}]',
    ]);
    const tags = await awsJson(['s3api', 'get-object-tagging', '--bucket', bucket, '--key', key]);
    const tagSet = (tags.TagSet as { Key: string; Value: string }[]).map((t) => `${t.Key}=${t.Value}`).sort();
    expect(tagSet).toEqual(['team=storage', 'tier=hot & cold']);

    await aws([
      's3api', 'copy-object', '--bucket', bucket, '--key', 'copies/é copy.bin',
      // botocore percent-encodes the copy source itself: pass it raw.
      '--copy-source', `${bucket}/${key}`,
      '--metadata-directive', 'REPLACE', '--content-type', 'application/x-test', '--metadata', 'origin=awscli',
    ]);
    const src = await awsJson(['s3api', 'head-object', '--bucket', bucket, '--key', key]);
    const copy = await awsJson(['s3api', 'head-object', '--bucket', bucket, '--key', 'copies/é copy.bin']);
    expect(copy.ContentLength).toBe(1024);
    expect(copy.ETag).toBe(src.ETag);
    expect(copy.ContentType).toBe('application/x-test');
    expect(copy.Metadata).toEqual({ origin: 'awscli' });
    const back = path.join(work, 'copy.back');
    await aws(['s3', 'cp', `s3://${bucket}/copies/é copy.bin`, back]);
    expect(readFileSync(back).equals(readFileSync(path.join(work, 'small.bin')))).toBe(true);
  });

  it('presigns a GET that plain http can use, and that a tampered one cannot', async () => {
    const { stdout } = await aws(['s3', 'presign', `s3://${bucket}/small/one kib.bin`, '--expires-in', '300']);
    const url = stdout.trim();
    expect(url.startsWith(gw.url)).toBe(true);
    const ok = await plainGet(url);
    expect(ok.status).toBe(200);
    expect(ok.body.equals(readFileSync(path.join(work, 'small.bin')))).toBe(true);
    const tampered = await plainGet(url.replace(/(X-Amz-Signature=)([0-9a-f])/, (_, p: string, c: string) => p + (c === '0' ? '1' : '0')));
    expect(tampered.status).toBe(403);
  });

  it('accepts a presigned PUT (made by boto3, which aws s3 presign cannot do) over plain http', async () => {
    const script =
      'import boto3,sys\n' +
      'from botocore.config import Config\n' +
      "c=boto3.client('s3',endpoint_url=sys.argv[1],config=Config(signature_version='s3v4',s3={'addressing_style':'path'}))\n" +
      "print(c.generate_presigned_url('put_object',Params={'Bucket':sys.argv[2],'Key':sys.argv[3]},ExpiresIn=300))\n";
    const url = await new Promise<string>((resolve, reject) => {
      execFile('python3', ['-c', script, gw.url, bucket, 'presigned/put é.bin'], { env, timeout: 60_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out.trim()),
      );
    });
    const body = randomBytes(3000);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(url, { method: 'PUT', agent: false, headers: { 'content-length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.setTimeout(30_000, () => req.destroy(new Error('presigned PUT timed out')));
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(200);
    const back = path.join(work, 'presigned.back');
    await aws(['s3', 'cp', `s3://${bucket}/presigned/put é.bin`, back]);
    expect(readFileSync(back).equals(body)).toBe(true);
  });

  it('removes recursively and removes the bucket', async () => {
    await aws(['s3', 'rm', '--recursive', `s3://${bucket}/`]);
    const { stdout } = await aws(['s3', 'ls', '--recursive', `s3://${bucket}/`]).catch(() => ({ stdout: '' }));
    expect(stdout.trim()).toBe('');
    await aws(['s3', 'rb', `s3://${bucket}`]);
    const buckets = await aws(['s3', 'ls']);
    expect(buckets.stdout).not.toContain(bucket);
  });
});
