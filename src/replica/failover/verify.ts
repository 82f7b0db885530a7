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
  /** Listed by a plain S3 target: the ETag may be the target's own. */
  plainS3?: boolean;
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

/** One side of a comparison: its buckets, its keys, and a body hash. */
export interface SiteLister {
  /** undefined: the side cannot enumerate buckets (use the other side's). */
  buckets(): Promise<string[] | undefined>;
  list(bucket: string): Promise<Map<string, Listed>>;
  bodyHash(bucket: string, key: string): Promise<string>;
}

/** A site seen through the S3 API (a Lookahead gateway, any S3 server). */
export function s3ApiLister(client: S3Client): SiteLister {
  return {
    buckets: async () => {
      const res = await client.send(new ListBucketsCommand({}));
      return (res.Buckets ?? []).map((b) => b.Name ?? '').filter((n) => n !== '');
    },
    list: async (bucket) => {
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
    },
    bodyHash: async (bucket, key) => {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return hashStream(res.Body as Readable);
    },
  };
}

/** What a plain S3 secondary (src/replica/s3) offers for verify. */
export interface PlainS3Replica {
  listObjects(bucket: string, options?: { after?: string }): Promise<{ objects: Array<{ key: string; size: number; etag: string; targetEtag: string }>; nextAfter?: string }>;
  headObject(bucket: string, key: string): Promise<{ etag: string; size: number } | undefined>;
  getObject(bucket: string, key: string): Promise<{ body: Readable } | undefined>;
}

/** A plain S3 secondary through its bucket mapping. Its listing shows the
 * target's own ETag: a key whose ETag differs from `expect` is HEADed for
 * the primary's ETag kept in its metadata (a split big object). */
export function plainS3Lister(target: PlainS3Replica): SiteLister {
  return {
    buckets: async () => undefined,
    list: async (bucket) => {
      const out = new Map<string, Listed>();
      let after: string | undefined;
      for (let page = 0; out.size < verifyKeysPerBucketMax; page++) {
        const res = await target.listObjects(bucket, after ? { after } : {});
        for (const o of res.objects) out.set(o.key, { etag: o.etag, size: o.size, plainS3: true });
        if (res.nextAfter === undefined || res.objects.length === 0) break;
        after = res.nextAfter;
      }
      return out;
    },
    bodyHash: async (bucket, key) => {
      const got = await target.getObject(bucket, key);
      return got ? hashStream(got.body) : '';
    },
  };
}

async function hashStream(body: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function verifySites(options: {
  primary: S3Client | SiteLister;
  secondary: S3Client | SiteLister;
  /** HEAD on a plain S3 secondary for the primary's ETag (split objects). */
  headSecondary?: (bucket: string, key: string) => Promise<{ etag: string; size: number } | undefined>;
  /** Location names of the secondary's record (the at-risk list). */
  record: Iterable<string>;
  bodies?: boolean;
}): Promise<VerifyResult> {
  const covered = coverageOf(options.record);
  const primary = 'send' in options.primary ? s3ApiLister(options.primary) : options.primary;
  const secondary = 'send' in options.secondary ? s3ApiLister(options.secondary) : options.secondary;
  const pb = new Set((await primary.buckets()) ?? []);
  // A side that cannot enumerate buckets is compared on the other's.
  const sb = new Set((await secondary.buckets()) ?? pb);
  const differences: VerifyDifference[] = [];
  let keysPrimary = 0;
  let keysSecondary = 0;
  for (const b of pb) if (!sb.has(b)) differences.push({ bucket: b, key: '', kind: 'bucket-only-primary', covered: covered(b, '') });
  for (const b of sb) if (!pb.has(b)) differences.push({ bucket: b, key: '', kind: 'bucket-only-secondary', covered: covered(b, '') });
  for (const bucket of [...new Set([...pb, ...sb])].sort()) {
    const p = pb.has(bucket) ? await primary.list(bucket) : new Map<string, Listed>();
    const s = sb.has(bucket) ? await secondary.list(bucket) : new Map<string, Listed>();
    keysPrimary += p.size;
    keysSecondary += s.size;
    for (const [key, po] of p) {
      let so = s.get(key);
      if (so?.plainS3 && so.etag !== po.etag && options.headSecondary) so = (await options.headSecondary(bucket, key)) ?? so;
      const kind: VerifyDifference['kind'] | undefined = so === undefined ? 'only-primary' : so.etag !== po.etag ? 'etag' : so.size !== po.size ? 'size' : undefined;
      let diff: VerifyDifference['kind'] | undefined = kind;
      if (diff === undefined && options.bodies) {
        const [hp, hs] = await Promise.all([primary.bodyHash(bucket, key), secondary.bodyHash(bucket, key)]);
        if (hp !== hs) diff = 'body';
      }
      if (diff !== undefined) {
        differences.push({ bucket, key, kind: diff, covered: covered(bucket, key), primary: plain(po), ...(so ? { secondary: plain(so) } : {}) });
      }
    }
    for (const [key, so] of s) {
      if (!p.has(key)) differences.push({ bucket, key, kind: 'only-secondary', covered: covered(bucket, key), secondary: plain(so) });
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

function plain(o: Listed): { etag: string; size: number } {
  return { etag: o.etag, size: o.size };
}
