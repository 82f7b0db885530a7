// The one switch from a parsed operation to its handler. A new operation in
// the union is a compile error here until it is handled.

import { assertNever } from '../core/assert.ts';
import { S3Error } from '../core/errors.ts';
import type { Operation } from './endpoint.ts';
import * as buckets from './handlers/buckets.ts';
import type { HandlerDeps, RequestState } from './handlers/context.ts';
import { copyObject, uploadPartCopy } from './handlers/copy.ts';
import { deleteObjects } from './handlers/delete-objects.ts';
import { listMultipartUploads, listObjects, listObjectsV2 } from './handlers/list.ts';
import * as multipart from './handlers/multipart.ts';
import { deleteObject, getObject, headObject, putObject } from './handlers/objects.ts';
import { deleteObjectTagging, getObjectTagging, putObjectTagging } from './handlers/tagging.ts';
import type { Reply } from './reply.ts';

export async function dispatch(op: Operation, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  switch (op.kind) {
    case 'ListBuckets':
      return buckets.listBuckets(rq, deps);
    case 'CreateBucket':
      return buckets.createBucket(op.bucket, rq, deps);
    case 'HeadBucket':
      return buckets.headBucket(op.bucket, rq, deps);
    case 'DeleteBucket':
      return buckets.deleteBucket(op.bucket, rq, deps);
    case 'GetBucketLocation':
      return buckets.getBucketLocation(op.bucket, rq, deps);
    case 'ListObjects':
      return listObjects(op.bucket, rq, deps);
    case 'ListObjectsV2':
      return listObjectsV2(op.bucket, rq, deps);
    case 'ListMultipartUploads':
      return listMultipartUploads(op.bucket, rq, deps);
    case 'DeleteObjects':
      return deleteObjects(op.bucket, rq, deps);
    case 'PutObject':
      return putObject(op, rq, deps);
    case 'CopyObject':
      return copyObject(op, rq, deps);
    case 'GetObject':
      return getObject(op, rq, deps);
    case 'HeadObject':
      return headObject(op, rq, deps);
    case 'DeleteObject':
      return deleteObject(op, rq, deps);
    case 'GetObjectTagging':
      return getObjectTagging(op, rq, deps);
    case 'PutObjectTagging':
      return putObjectTagging(op, rq, deps);
    case 'DeleteObjectTagging':
      return deleteObjectTagging(op, rq, deps);
    case 'CreateMultipartUpload':
      return multipart.createMultipartUpload(op, rq, deps);
    case 'UploadPart':
      return multipart.uploadPart(op, rq, deps);
    case 'UploadPartCopy':
      return uploadPartCopy(op, rq, deps);
    case 'CompleteMultipartUpload':
      return multipart.completeMultipartUpload(op, rq, deps);
    case 'AbortMultipartUpload':
      return multipart.abortMultipartUpload(op, rq, deps);
    case 'ListParts':
      return multipart.listParts(op, rq, deps);
    case 'NotImplemented':
      throw new S3Error('NotImplemented', `${op.operation} is not implemented by this server.`, {
        extra: { Operation: op.operation },
      });
    case 'Invalid':
      throw op.error;
    default:
      return assertNever(op, 'operation');
  }
}
