// Bucket operations through @aws-sdk/client-s3.

import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/server.ts';

async function errorOf(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return err;
    throw err;
  }
  throw new Error('expected an S3 error');
}

describe('buckets in us-east-1', () => {
  let gw: TestGateway;
  let s3: S3Client;
  beforeAll(async () => {
    gw = await startTestGateway();
    s3 = gw.client();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('create, list, head, location, delete', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'alpha' }));
    await s3.send(new CreateBucketCommand({ Bucket: 'beta.dotted' }));
    const list = await s3.send(new ListBucketsCommand({}));
    expect(list.Buckets?.map((b) => b.Name)).toEqual(['alpha', 'beta.dotted']);
    expect(list.Buckets?.[0]?.CreationDate).toBeInstanceOf(Date);
    const head = await s3.send(new HeadBucketCommand({ Bucket: 'alpha' }));
    expect(head.BucketRegion).toBe('us-east-1');
    const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'alpha' }));
    expect(loc.LocationConstraint ?? '').toBe('');
    await s3.send(new DeleteBucketCommand({ Bucket: 'beta.dotted' }));
    expect((await errorOf(s3.send(new HeadBucketCommand({ Bucket: 'beta.dotted' })))).$metadata.httpStatusCode).toBe(404);
    expect((await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toEqual(['alpha']);
  });

  it('creating twice is BucketAlreadyOwnedByYou; deleting a missing one NoSuchBucket', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'twice' }));
    expect((await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'twice' })))).name).toBe('BucketAlreadyOwnedByYou');
    expect((await errorOf(s3.send(new DeleteBucketCommand({ Bucket: 'no-such-bucket' })))).name).toBe('NoSuchBucket');
  });

  it('a non-empty bucket is BucketNotEmpty until emptied', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'full' }));
    await s3.send(new PutObjectCommand({ Bucket: 'full', Key: 'k', Body: 'x' }));
    expect((await errorOf(s3.send(new DeleteBucketCommand({ Bucket: 'full' })))).name).toBe('BucketNotEmpty');
    await s3.send(new DeleteObjectCommand({ Bucket: 'full', Key: 'k' }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'full' }));
  });

  it('a CreateBucketConfiguration for another region is refused', async () => {
    const err = await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'elsewhere', CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } })));
    expect(err.name).toBe('IllegalLocationConstraintException');
    expect((await errorOf(s3.send(new HeadBucketCommand({ Bucket: 'elsewhere' })))).$metadata.httpStatusCode).toBe(404);
  });

  it('conditional PUT: If-None-Match * refuses to overwrite', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'once', Body: 'first', IfNoneMatch: '*' }));
    const err = await errorOf(s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'once', Body: 'second', IfNoneMatch: '*' })));
    expect(err.$metadata.httpStatusCode).toBe(412);
  });
});

describe('buckets in another region', () => {
  let gw: TestGateway;
  let s3: S3Client;
  beforeAll(async () => {
    gw = await startTestGateway({ region: 'eu-west-1' });
    s3 = gw.client();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('accepts a matching CreateBucketConfiguration and reports the region', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'euro', CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
    const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'euro' }));
    expect(loc.LocationConstraint).toBe('eu-west-1');
    await s3.send(new PutObjectCommand({ Bucket: 'euro', Key: 'k', Body: 'signed for eu-west-1' }));
  });
});
