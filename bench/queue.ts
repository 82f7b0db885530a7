// A primary's copy queue as the benches see it: its depth from
// /_lookahead/status (the Prometheus text costs the server far more to
// render), and a bounded wait for it to empty.

import type { S3Http } from './s3http.ts';

/** Longest wait for a queue to drain before a bench moves on. */
export const drainWaitMsDefault = 60_000;

/** Q's depth on the primary behind `client` (0 when status has none). */
export async function queueDepth(client: S3Http): Promise<number> {
  const res = await client.request('GET', '/_lookahead/status', { keepBody: true, timeoutMs: 5_000 });
  const m = /"queueDepth":(\d+)/.exec(res.body?.toString('utf8') ?? '');
  return m ? Number(m[1]) : 0;
}

/** Polls every `pollMs` until Q is empty or `maxMs` passed; returns the
 * seconds it waited. */
export async function waitDrained(client: S3Http, pollMs: number, maxMs = drainWaitMsDefault): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < maxMs && (await queueDepth(client)) > 0) await new Promise((r) => setTimeout(r, pollMs));
  return (performance.now() - t0) / 1000;
}
