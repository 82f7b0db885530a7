// Issue 4's other paths with real processes: a primary restarted while its
// secondary is unreachable starts read-only (unless --force-primary) and
// opens once the secondary answers; the secondary-down modes (degraded keeps
// serving and resyncs, refuse answers 503); a rejoin whose new primary is
// SIGKILLed mid-resync resumes after the restart and ends clean.

import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { ChaosProxy, prng } from '../hardening/chaos-proxy.ts';
import { adminCall } from '../../src/cli/admin-client.ts';
import { cli, client, keys, kill, status, type Proc, portOf, until, procSuite } from './procs.ts';

const suite = procSuite('lookahead-failover-paths-');
const { proxies } = suite;

const start = (args: string[]): Promise<Proc> => suite.start(args);

async function proxyTo(url: string): Promise<ChaosProxy> {
  const proxy = new ChaosProxy(portOf(url), prng(5));
  await proxy.listen();
  proxies.push(proxy);
  return proxy;
}

async function put(url: string, bucket: string, key: string, body = key): Promise<string | undefined> {
  return client(url)
    .send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))
    .then(
      () => undefined,
      (err: Error) => err.name,
    );
}

/** A primary/secondary pair, the primary reaching the secondary through a proxy. */
async function pair(name: string, extra: string[] = []) {
  const s = await start(['--role', 'secondary', '--data', suite.path(`${name}-s`)]);
  const proxy = await proxyTo(s.url);
  const pArgs = ['--role', 'primary', '--data', suite.path(`${name}-p`), '--secondary', `http://127.0.0.1:${proxy.port}`, ...extra];
  const p = await start(pArgs);
  await client(p.url).send(new CreateBucketCommand({ Bucket: `${name}-b` }));
  return { s, p, proxy, pArgs, bucket: `${name}-b` };
}

describe('failover paths', () => {
  it('a primary restarted while its secondary is unreachable is read-only until the secondary answers', { timeout: 60_000 }, async () => {
    const { p, proxy, pArgs, bucket } = await pair('gate');
    expect(await put(p.url, bucket, 'before')).toBeUndefined();
    await kill(p, 'SIGKILL');
    proxy.partition();
    const p2 = await start(pArgs);
    expect(await put(p2.url, bucket, 'while-down')).toBe('MethodNotAllowed');
    expect((await status(p2.url)).readOnly).toBeDefined();
    proxy.heal();
    await until('the gate to open', async () => ((await put(p2.url, bucket, 'after')) === undefined ? true : undefined));
    await kill(p2, 'SIGKILL');
    // --force-primary: writable at once (the operator's call).
    proxy.partition();
    const p3 = await start([...pArgs, '--force-primary']);
    expect(await put(p3.url, bucket, 'forced')).toBeUndefined();
    expect((await status(p3.url)).replication.peer).toBe('degraded');
  });

  it('degraded mode keeps serving while the secondary is down and resyncs when it returns', { timeout: 60_000 }, async () => {
    const { s, p, proxy, bucket } = await pair('degr', ['--predictors', '']);
    expect(await put(p.url, bucket, 'warm')).toBeUndefined();
    proxy.partition();
    for (let i = 0; i < 20; i++) expect(await put(p.url, bucket, `down/${i}`)).toBeUndefined();
    const st = await status(p.url);
    expect(st.replication.peer).toBe('degraded');
    expect(st.replication.dirtyCount).toBeGreaterThan(0);
    proxy.heal();
    await until('the dirty set to resync', async () => {
      const now = await status(p.url);
      return now.replication.dirtyCount === 0 && now.replication.queueDepth === 0 ? now : undefined;
    });
    const v = await cli(['verify', '--primary', p.url, '--secondary', s.url, '--json']);
    expect(JSON.parse(v.stdout).differences).toEqual([]);
    expect(v.code).toBe(0);
  });

  it('refuse mode answers 503 to writes that miss while the secondary is down', { timeout: 60_000 }, async () => {
    const { p, proxy, bucket } = await pair('refu', ['--on-secondary-down', 'refuse', '--predictors', '']);
    expect(await put(p.url, bucket, 'warm')).toBeUndefined();
    proxy.partition();
    expect(await put(p.url, bucket, 'missing/while-down')).toBe('ServiceUnavailable');
    expect((await status(p.url)).replication.peer).toBe('unreachable');
    proxy.heal();
    await until('writes to work again', async () => ((await put(p.url, bucket, 'missing/after')) === undefined ? true : undefined));
  });

  it('a rejoin interrupted by a SIGKILL of the new primary resumes after its restart', { timeout: 90_000 }, async () => {
    const { s, p, bucket } = await pair('intr', ['--predictors', '']);
    expect(await put(p.url, bucket, 'seed')).toBeUndefined();
    await until('the bucket to reach the secondary', async () => ((await status(p.url)).replication.queueDepth === 0 ? true : undefined));
    await kill(p, 'SIGKILL');
    const promoted = await cli(['promote', '--endpoint', s.url, '--json']);
    expect(promoted.code, promoted.stderr).toBe(0);
    // Enough keys written since promotion that the resync takes a while
    // over a slow link.
    const sc = client(s.url);
    for (let i = 0; i < 300; i++) await sc.send(new PutObjectCommand({ Bucket: bucket, Key: `after/${i}`, Body: `v${i}` }));
    const old = await start(['--role', 'secondary', '--data', suite.path('intr-p'), '--rejoin-from', s.url]);
    const slow = await proxyTo(old.url);
    slow.settings = { delayMsMax: 30, resetChance: 0, stallChance: 0, stallMs: 0 };
    const oldViaProxy = `http://127.0.0.1:${slow.port}`;
    const rejoin = await cli(['rejoin', '--endpoint', oldViaProxy, '--primary', s.url, '--no-wait', '--json']);
    expect(rejoin.code, rejoin.stderr).toBe(0);
    await until('the resync to be under way', async () => {
      const r = (await status(s.url)).resync as { done: number; total: number } | undefined;
      return r && r.done > 20 ? r : undefined;
    });
    await kill(s, 'SIGKILL');
    // The promoted site comes back as primary (its role is durable) and resumes.
    const s2 = await start(['--role', 'secondary', '--data', suite.path('intr-s')]);
    const resumed = (await status(s2.url)).resync as { phase: string; done: number; total: number };
    expect(resumed.phase).not.toBe('idle');
    expect((await status(s2.url)).role).toBe('primary');
    const final = await until('the resync to finish', async () => {
      const r = (await status(s2.url)).resync as { phase: string; done: number; total: number };
      return r.phase === 'done' ? r : undefined;
    }, 60_000);
    expect(final.done).toBe(final.total);
    expect(final.total).toBe(resumed.total);
    await until('the queue to drain', async () => ((await status(s2.url)).replication?.queueDepth === 0 ? true : undefined));
    const v = await cli(['verify', '--primary', s2.url, '--secondary', old.url, '--json']);
    expect(JSON.parse(v.stdout).differences).toEqual([]);
  });

  it('a running primary that learns of a higher epoch refuses writes at once, naming the new primary', { timeout: 60_000 }, async () => {
    const { s, p, proxy, bucket } = await pair('split', ['--predictors', '']);
    expect(await put(p.url, bucket, 'one')).toBeUndefined();
    // A partition: the operator promotes the secondary while the primary runs.
    proxy.partition();
    const promoted = await cli(['promote', '--endpoint', s.url, '--json']);
    expect(promoted.code, promoted.stderr).toBe(0);
    proxy.heal();
    // The primary's next record message or probe meets epoch 2: fenced.
    const err = await until('the old primary to be fenced', async () => {
      const name = await put(p.url, bucket, `k${Date.now()}`);
      return name === 'MethodNotAllowed' ? name : undefined;
    });
    expect(err).toBe('MethodNotAllowed');
    const st = await status(p.url);
    expect(st.role).toBe('fenced');
    const refused = await client(p.url)
      .send(new PutObjectCommand({ Bucket: bucket, Key: 'named', Body: 'x' }))
      .then(() => undefined, (e: Error & { Primary?: string; message: string }) => e);
    expect(refused?.Primary ?? refused?.message).toContain(s.url);
  });

  it('switchover swaps the roles with nothing lost', { timeout: 60_000 }, async () => {
    const { s, p, bucket } = await pair('swap');
    for (let i = 0; i < 40; i++) expect(await put(p.url, bucket, `pre/${i}`)).toBeUndefined();
    // The old primary must be reachable by the new one directly.
    const r = await cli(['switchover', '--endpoint', p.url, '--secondary', s.url, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { promoted: { epoch: number }; resync: { phase: string } };
    expect(out.promoted.epoch).toBe(2);
    expect(out.resync.phase).toBe('done');
    expect((await status(s.url)).role).toBe('primary');
    expect((await status(p.url)).role).toBe('secondary');
    expect(await put(p.url, bucket, 'to-old')).toBe('MethodNotAllowed');
    for (let i = 0; i < 10; i++) expect(await put(s.url, bucket, `post/${i}`)).toBeUndefined();
    await until('the new primary to drain', async () => ((await status(s.url)).replication?.queueDepth === 0 ? true : undefined));
    const v = await cli(['verify', '--primary', s.url, '--secondary', p.url, '--bodies', '--json']);
    const result = JSON.parse(v.stdout) as { differences: unknown[]; keysPrimary: number };
    expect(result.differences).toEqual([]);
    expect(result.keysPrimary).toBe(50);
    // And back: the epoch keeps rising, nothing is lost either way.
    const back = await cli(['switchover', '--endpoint', s.url, '--secondary', p.url, '--json']);
    expect(back.code, back.stderr).toBe(0);
    expect((JSON.parse(back.stdout) as { promoted: { epoch: number } }).promoted.epoch).toBe(3);
    expect(await put(p.url, bucket, 'back')).toBeUndefined();
    expect(await put(s.url, bucket, 'nope')).toBe('MethodNotAllowed');
    await until('the primary to drain', async () => ((await status(p.url)).replication?.queueDepth === 0 ? true : undefined));
    const v2 = await cli(['verify', '--primary', p.url, '--secondary', s.url, '--json']);
    expect(JSON.parse(v2.stdout).differences).toEqual([]);
  });

  it('serve --promote takes over at start, and the promotion outlives a restart with the old flags', { timeout: 60_000 }, async () => {
    const data = suite.path('flag-s');
    const s = await start(['--role', 'secondary', '--data', data, '--promote']);
    const st = await status(s.url);
    expect(st.role).toBe('primary');
    expect(st.epoch).toBe(2);
    await client(s.url).send(new CreateBucketCommand({ Bucket: 'flag-b' }));
    expect(await put(s.url, 'flag-b', 'k')).toBeUndefined();
    await kill(s, 'SIGKILL');
    const again = await start(['--role', 'secondary', '--data', data]);
    const st2 = await status(again.url);
    expect(st2.role).toBe('primary');
    expect(st2.epoch).toBe(2);
    expect(st2.failover.trackedSincePromotion).toBe(2); // the bucket and the key
    expect(await put(again.url, 'flag-b', 'k2')).toBeUndefined();
    const metrics = await adminCall({ url: again.url, ...keys }, 'GET', '/_lookahead/metrics');
    expect(metrics.text).toMatch(/^lookahead_failover_epoch 2$/m);
    expect(metrics.text).toMatch(/^lookahead_failover_primary 1$/m);
  });

  it('writes the old primary made while its secondary was down (outside R) are undone at rejoin, buckets too', { timeout: 60_000 }, async () => {
    const { s, p, proxy, bucket } = await pair('ghost', ['--predictors', '']);
    expect(await put(p.url, bucket, 'warm', 'v1')).toBeUndefined();
    await until('the pair to be in sync', async () => ((await status(p.url)).replication.queueDepth === 0 ? true : undefined));
    proxy.partition();
    await client(p.url).send(new CreateBucketCommand({ Bucket: 'ghost-only' }));
    for (let i = 0; i < 3; i++) expect(await put(p.url, 'ghost-only', `g${i}`)).toBeUndefined();
    expect(await put(p.url, bucket, 'warm', 'v2')).toBeUndefined();
    expect((await status(p.url)).replication.dirtyCount).toBeGreaterThan(0);
    await kill(p, 'SIGKILL');
    const promoted = JSON.parse((await cli(['promote', '--endpoint', s.url, '--json'])).stdout) as { atRisk: { names: string[] } };
    expect(promoted.atRisk.names.some((n) => n.includes('ghost-only'))).toBe(false); // degraded writes are outside R
    const old = await start(['--role', 'secondary', '--data', suite.path('ghost-p'), '--rejoin-from', s.url]);
    const r = await cli(['rejoin', '--endpoint', old.url, '--primary', s.url, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const resync = (JSON.parse(r.stdout) as { resync: { phase: string; planned: { peerUnsynced: number } } }).resync;
    expect(resync.phase).toBe('done');
    expect(resync.planned.peerUnsynced).toBeGreaterThanOrEqual(4);
    const v = await cli(['verify', '--primary', s.url, '--secondary', old.url, '--bodies', '--json']);
    expect(JSON.parse(v.stdout).differences).toEqual([]);
    expect(v.code).toBe(0);
  });
});
