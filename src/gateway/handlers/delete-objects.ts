// DeleteObjects: up to 1000 keys, per-key results, quiet mode.

import { S3Error, toWireError } from '../../core/errors.ts';
import { deleteObjectsKeysMax } from '../../core/limits.ts';
import { readSmallBody } from '../body.ts';
import { checkKey } from '../endpoint.ts';
import { xmlReply, type Reply } from '../reply.ts';
import { list, malformed, text, type XmlNode } from '../xml.ts';
import type { HandlerDeps, RequestState } from './context.ts';

/** Deletes in flight at once: enough to overlap lmdb commits, bounded. */
const deleteConcurrency = 16;

interface DeleteRequest {
  quiet: boolean;
  keys: string[];
}

export function parseDeleteBody(body: Buffer, deps: HandlerDeps): DeleteRequest {
  const root = deps.xml.parse(body, 'Delete');
  const objects = list(root, 'Object');
  if (objects.length === 0 || objects.length > deleteObjectsKeysMax) throw malformed();
  const keys = objects.map((o) => {
    const key = text(o, 'Key');
    if (key === undefined) throw malformed();
    return key;
  });
  const quiet = (text(root, 'Quiet') ?? 'false').trim().toLowerCase();
  if (quiet !== 'true' && quiet !== 'false') throw malformed();
  return { quiet: quiet === 'true', keys };
}

type Outcome = { key: string; error?: { code: string; message: string } };

async function deleteOne(bucket: string, key: string, deps: HandlerDeps): Promise<Outcome> {
  const bad = checkKey(key);
  if (bad) return { key, error: { code: bad.code, message: bad.message } };
  try {
    await deps.store.deleteObject(bucket, key);
    return { key };
  } catch (err) {
    // A missing bucket fails the whole request, like S3; other errors are per key.
    if (err instanceof S3Error && err.code === 'NoSuchBucket') throw err;
    const wire = toWireError(err);
    if (wire.unexpected) throw err;
    return { key, error: { code: wire.code, message: wire.message } };
  }
}

/** Runs deletes with bounded concurrency, keeping request order in the result. */
async function deleteAll(bucket: string, keys: string[], deps: HandlerDeps): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(keys.length);
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const i = next++;
      outcomes[i] = await deleteOne(bucket, keys[i]!, deps);
    }
  };
  await Promise.all(Array.from({ length: Math.min(deleteConcurrency, keys.length) }, worker));
  return outcomes;
}

export async function deleteObjects(bucket: string, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const request = parseDeleteBody(await readSmallBody(rq.req, rq.auth), deps);
  // Check the bucket once so a missing one is NoSuchBucket, not 1000 key errors.
  await deps.store.headBucket(bucket);
  const outcomes = await deleteAll(bucket, request.keys, deps);
  const deleted: XmlNode[] = [];
  const errors: XmlNode[] = [];
  for (const o of outcomes) {
    if (o.error) errors.push({ Key: o.key, Code: o.error.code, Message: o.error.message });
    else if (!request.quiet) deleted.push({ Key: o.key });
  }
  return xmlReply(deps.xml.build('DeleteResult', { Deleted: deleted, Error: errors }));
}
