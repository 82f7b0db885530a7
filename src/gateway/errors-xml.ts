// The one place thrown values become S3 error responses.

import type { Logger } from 'pino';
import { toWireError } from '../core/errors.ts';
import type { Reply } from './reply.ts';
import type { XmlCodec } from './xml.ts';

export interface ErrorContext {
  requestId: string;
  method: string;
  /** Request path, decoded, for the Resource element. */
  resource: string;
  logger: Logger;
  xml: XmlCodec;
}

export function errorReply(err: unknown, ctx: ErrorContext): Reply {
  const wire = toWireError(err);
  if (wire.unexpected) {
    // The client sees a generic message; the log gets everything.
    ctx.logger.error({ err, requestId: ctx.requestId, method: ctx.method, resource: ctx.resource }, 'unexpected error');
  }
  const headers: Record<string, string> = { ...wire.headers };
  if (ctx.method === 'HEAD' || wire.status === 304) return { status: wire.status, headers };
  const body = ctx.xml.buildPlain('Error', {
    Code: wire.code,
    Message: wire.message,
    ...wire.extra,
    Resource: wire.resource ?? ctx.resource,
    RequestId: ctx.requestId,
  });
  headers['content-type'] = 'application/xml';
  return { status: wire.status, headers, body };
}
