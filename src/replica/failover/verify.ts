// `lookahead verify` (issue 4): compares two sites through the S3 API, every
// bucket and key on both (ETag and size; optionally a SHA-256 of each body),
// and says of each difference whether the secondary's record covers it. A
// difference the record does not cover is a replication bug: exit non-zero.

import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListBucketsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { coveringNames, parseLocationName } from '../../predict/locations.ts';

/** Keys listed per bucket and side (every loop bounded). */
export const verifyKeysPerBucketMax = 10_000_000;

export interface VerifyDifference {
  bucket: string;
  key: string;
  /** What differs: missing on one side, etag/size, or body hash. */
  kind: 'only-primary' | 'only-secondary' | 'etag' | 'size' | 'body' | 'bucket-only-primary' | 'bucket-only-secondary';
  covered: boolean;
  primary?: { etag: string; size: number };
  secondary?: { etag: string; size: number };
}

export interface VerifyResult {
  buckets: number;
  keysPrimary: number;
  keysSecondary: number;
  differences: VerifyDifference[];
  uncovered: number;
}

interface Listed {
  etag: string;
  size: number;
}

/** Whether a location-name set covers an object key (key, any ancestor
 * prefix group, an upload group for the key, or the bucket). */
export function coverageOf(names: Iterable<string>): (bucket: string, key: string) => boolean {
  const set = new Set<string>();
  const uploads = new Set<string>();
  for (const n of names) {
    set.add(n);
    const loc = parseLocationName(n);
    if (loc?.kind === 'upload') uploads.add(`${loc.bucket}/${loc.key}`);
  }
  return (bucket, key) => {
    if (set.has(`b/${bucket}`) || uploads.has(`${bucket}/${key}`)) return true;
    if (key === '') return false;
    return coveringNames({ kind: 'put', bucket, key }).some((n) => set.has(n));
  };
}

async function buckets(client: S3Client): Promise<string[]> {
  const res = await client.send(new ListBucketsCommand({}));
  return (res.Buckets ?? []).map((b) => b.Name ?? '').filter((n) => n !== '');
}

async function listAll(client: S3Client, bucket: string): Promise<Map<string, Listed>> {
  const out = new Map<string, Listed>();
  let token: string | undefined;
  for (let page = 0; out.size < verifyKeysPerBucketMax; page++) {
    const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of res.Contents ?? []) {
      if (o.Key !== undefined) out.set(o.Key, { etag: (o.ETag ?? '').replaceAll('"', ''), size: o.Size ?? 0 });
    }
    if (!res.IsTruncated || !res.NextContinuationToken) break;
    token = res.NextContinuationToken;
  }
  return out;
}

async function bodyHash(client: S3Client, bucket: string, key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function verifySites(options: {
  primary: S3Client;
  secondary: S3Client;
  /** Location names of the secondary's record (the at-risk list). */
  record: Iterable<string>;
  bodies?: boolean;
}): Promise<VerifyResult> {
  const covered = coverageOf(options.record);
  const pb = new Set(await buckets(options.primary));
  const sb = new Set(await buckets(options.secondary));
  const differences: VerifyDifference[] = [];
  let keysPrimary = 0;
  let keysSecondary = 0;
  for (const b of pb) if (!sb.has(b)) differences.push({ bucket: b, key: '', kind: 'bucket-only-primary', covered: covered(b, '') });
  for (const b of sb) if (!pb.has(b)) differences.push({ bucket: b, key: '', kind: 'bucket-only-secondary', covered: covered(b, '') });
  for (const bucket of [...new Set([...pb, ...sb])].sort()) {
    const p = pb.has(bucket) ? await listAll(options.primary, bucket) : new Map<string, Listed>();
    const s = sb.has(bucket) ? await listAll(options.secondary, bucket) : new Map<string, Listed>();
    keysPrimary += p.size;
    keysSecondary += s.size;
    for (const [key, po] of p) {
      const so = s.get(key);
      const kind: VerifyDifference['kind'] | undefined = so === undefined ? 'only-primary' : so.etag !== po.etag ? 'etag' : so.size !== po.size ? 'size' : undefined;
      let diff: VerifyDifference['kind'] | undefined = kind;
      if (diff === undefined && options.bodies) {
        const [hp, hs] = await Promise.all([bodyHash(options.primary, bucket, key), bodyHash(options.secondary, bucket, key)]);
        if (hp !== hs) diff = 'body';
      }
      if (diff !== undefined) {
        differences.push({ bucket, key, kind: diff, covered: covered(bucket, key), primary: po, ...(so ? { secondary: so } : {}) });
      }
    }
    for (const [key, so] of s) {
      if (!p.has(key)) differences.push({ bucket, key, kind: 'only-secondary', covered: covered(bucket, key), secondary: so });
    }
  }
  return {
    buckets: new Set([...pb, ...sb]).size,
    keysPrimary,
    keysSecondary,
    differences,
    uncovered: differences.filter((d) => !d.covered).length,
  };
}
