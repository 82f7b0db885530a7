// Get/Put/DeleteObjectTagging.

import type { ObjectRef } from '../endpoint.ts';
import { readSmallBody } from '../body.ts';
import { emptyReply, xmlReply, type Reply } from '../reply.ts';
import { asNode, list, malformed, text } from '../xml.ts';
import { validateTags, type HandlerDeps, type RequestState } from './context.ts';

export async function getObjectTagging(op: ObjectRef, _rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const meta = await deps.store.headObject(op.bucket, op.key);
  const tags = Object.entries(meta.tags).map(([Key, Value]) => ({ Key, Value }));
  return xmlReply(deps.xml.build('Tagging', { TagSet: tags.length ? { Tag: tags } : '' }));
}

export function parseTagging(body: Buffer, deps: HandlerDeps): Record<string, string> {
  const root = deps.xml.parse(body, 'Tagging');
  const tagSet = asNode(root.TagSet);
  if (root.TagSet === undefined) throw malformed();
  const pairs: [string, string][] = list(tagSet, 'Tag').map((t) => {
    const key = text(t, 'Key');
    const value = text(t, 'Value');
    if (key === undefined || value === undefined) throw malformed();
    return [key, value];
  });
  return validateTags(pairs);
}

export async function putObjectTagging(op: ObjectRef, rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  const tags = parseTagging(await readSmallBody(rq.req, rq.auth), deps);
  await deps.store.setTags(op.bucket, op.key, tags);
  return emptyReply(200);
}

export async function deleteObjectTagging(op: ObjectRef, _rq: RequestState, deps: HandlerDeps): Promise<Reply> {
  await deps.store.setTags(op.bucket, op.key, {});
  return emptyReply(204);
}
