// What a handler returns, and the single function that writes it to node's
// response. Handlers never touch the socket, so they stay testable.

import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { ResponseClosed } from '../objects/pump.ts';
import type { BodyPump } from '../objects/types.ts';

export type ReplyHeaders = Record<string, string | number | string[]>;

export interface Reply {
  status: number;
  headers: ReplyHeaders;
  body?: string | Buffer | Readable | BodyPump;
}

export function xmlReply(body: string, status = 200, headers: ReplyHeaders = {}): Reply {
  return { status, headers: { 'content-type': 'application/xml', ...headers }, body };
}

export function emptyReply(status = 200, headers: ReplyHeaders = {}): Reply {
  return { status, headers };
}

/** Writes a reply. A stream body that fails before anything was sent
 * rejects (the caller answers with an error instead); one that fails midway
 * aborts the connection (and is reported to `onBodyError`). */
export async function writeReply(res: ServerResponse, reply: Reply, method: string, onBodyError?: (err: Error) => void): Promise<void> {
  for (const [name, value] of Object.entries(reply.headers)) res.setHeader(name, value);
  res.statusCode = reply.status;
  const body = reply.body;
  if (body === undefined || method === 'HEAD' || reply.status === 304 || reply.status === 204) {
    if (typeof body === 'object' && 'destroy' in body && typeof body.destroy === 'function') body.destroy();
    if (body === undefined && method !== 'HEAD' && !res.hasHeader('content-length') && reply.status !== 204 && reply.status !== 304) {
      res.setHeader('content-length', 0);
    }
    res.end();
    return;
  }
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    res.setHeader('content-length', Buffer.byteLength(body));
    res.end(body);
    return;
  }
  if ('kind' in body && body.kind === 'pump') await pumpBody(body, res, onBodyError);
  else await pipeBody(body as Readable, res, onBodyError);
}

/** A body the store writes itself; failure handling as in pipeBody. */
async function pumpBody(body: BodyPump, res: ServerResponse, onBodyError?: (err: Error) => void): Promise<void> {
  try {
    await body.writeTo(res);
  } catch (err) {
    if (err instanceof ResponseClosed) return; // the client went away
    // Nothing went out yet: the client can still get a proper error.
    if (!res.headersSent) throw err;
    // Headers are gone: cut the connection (a short body, never a wrong one).
    res.destroy();
    onBodyError?.(err as Error);
    return;
  }
  await new Promise<void>((resolve) => {
    res.once('finish', resolve);
    res.once('close', resolve);
    res.end();
  });
}

/**
 * body.pipe(res) with cleanup both ways. Not stream.pipeline: it allocates
 * an AbortController (and a DOMException on finish) per response, which
 * showed up in GET profiles. Resolves when the response is done either way.
 */
function pipeBody(body: Readable, res: ServerResponse, onBodyError?: (err: Error) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off('finish', done);
      res.off('close', done);
      resolve();
    };
    res.once('finish', done);
    res.once('close', () => {
      // Client gone before the end: stop reading the file.
      if (!body.destroyed && !res.writableFinished) body.destroy();
      done();
    });
    body.once('error', (err) => {
      if (!res.headersSent) {
        // Nothing went out yet: the client can still get a proper error.
        body.unpipe(res);
        res.off('finish', done);
        res.off('close', done);
        reject(err);
        return;
      }
      // Headers are gone already: the only honest signal left is a cut
      // connection, so the client sees a short body rather than a wrong one.
      res.destroy();
      onBodyError?.(err);
    });
    body.pipe(res);
  });
}
