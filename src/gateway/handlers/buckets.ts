// ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.

import { S3Error } from '../../core/errors.ts';
import { readSmallBody } from '../body.ts';
import { emptyReply, xmlReply, type Reply } from '../reply.ts';
import { isoTime, text } from '../xml.ts';
import { owner, type HandlerDeps, type RequestState } from './context.ts';

export async function listBuckets(rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const allowed = rq.allowedBuckets;
  const buckets = (await deps.store.listBuckets()).filter((b) => allowed === undefined || allowed.has(b.name));
  const items = buckets.map((b) => ({ Name: b.name, CreationDate: isoTime(b.created) }));
  return xmlReply(
    deps.xml.build('ListAllMyBucketsResult', {
      Owner: owner,
      Buckets: items.length ? { Bucket: items } : '',
    }),
  );
}

/** AWS writes us-east-1 as an empty LocationConstraint. */
function locationConstraint(region: string): string {
  return region === 'us-east-1' ? '' : region;
}

export async function createBucket(bucket: string, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const body = await readSmallBody(rq.req, rq.auth);
  if (body.length > 0) {
    const config = deps.xml.parse(body, 'CreateBucketConfiguration');
    const wanted = text(config, 'LocationConstraint');
    if (wanted !== undefined && wanted !== locationConstraint(deps.region) && wanted !== deps.region) {
      throw new S3Error(
        'IllegalLocationConstraintException',
        `The ${wanted} location constraint is incompatible for the region specific endpoint this request was sent to.`,
      );
    }
  }
  await deps.store.createBucket(bucket, deps.region);
  return emptyReply(200, { location: `/${bucket}` });
}

export async function headBucket(bucket: string, _rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const info = await deps.store.headBucket(bucket);
  return emptyReply(200, { 'x-amz-bucket-region': info.region });
}

export async function deleteBucket(bucket: string, _rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  await deps.store.deleteBucket(bucket);
  return emptyReply(204);
}

export async function getBucketLocation(bucket: string, _rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const info = await deps.store.headBucket(bucket);
  return xmlReply(deps.xml.build('LocationConstraint', { '#text': locationConstraint(info.region) }));
}
