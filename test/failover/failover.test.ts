// Issue 4 end to end with real processes: under a steady SDK write load the
// primary is SIGKILLed; the secondary is promoted and the client repointed;
// the old primary restarts fenced; it rejoins as the new primary's
// secondary; the resync touches only the record plus what was written since
// promotion (and the old primary's unconfirmed writes); verify finds no
// difference between the sites.

import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { ChaosProxy, prng } from '../hardening/chaos-proxy.ts';
import { WriteLoad, cli, client, kill, serve, sleep, status, portOf, until, procSuite } from './procs.ts';

const suite = procSuite('lookahead-failover-');
const { procs, proxies } = suite;

// Prediction off: R holds exactly the keys written (no groups). Default
// predictors: R holds prefix groups, which the resync expands by listing.
describe.each([
  ['prediction off', ['--predictors', '']],
  ['default predictors', []],
])('failover and failback (%s)', (name, predictors) => {
  it('SIGKILL under load, promote, fenced restart, rejoin, verify clean', { timeout: 90_000 }, async () => {
    const sDir = suite.path(`${name}-s`);
    const pDir = suite.path(`${name}-p`);
    const s = await serve(['--role', 'secondary', '--data', sDir]);
    procs.push(s);
    // Copies cross a slow link, so the kill leaves acknowledged writes behind.
    const proxy = new ChaosProxy(portOf(s.url), prng(11));
    proxies.push(proxy);
    await proxy.listen();
    const viaProxy = `http://127.0.0.1:${proxy.port}`;
    const p = await serve(['--role', 'primary', '--data', pDir, '--secondary', viaProxy, ...predictors]);
    procs.push(p);
    const c = client(p.url);
    await c.send(new CreateBucketCommand({ Bucket: 'fover' }));
    for (let i = 0; i < 30; i++) await c.send(new PutObjectCommand({ Bucket: 'fover', Key: `base/${i}`, Body: `base ${i}` }));
    // The base reaches S before the load: under load a primary holds its
    // copies (--copy-priority background) up to its lag bound, and the kill
    // would take the base with it.
    await until('the base to reach the secondary', async () => ((await status(p.url)).replication?.queueDepth === 0 ? true : undefined));
    const keySpace = Array.from({ length: 120 }, (_, i) => `load/${i % 12}/k${i}`);
    const load = new WriteLoad(p.url, 'fover', keySpace);
    proxy.settings = { delayMsMax: 40, resetChance: 0, stallChance: 0, stallMs: 0 };
    load.start();
    await sleep(2500);
    await kill(p, 'SIGKILL');
    const okBefore = load.ok;
    expect(okBefore).toBeGreaterThan(10);

    // Promote: higher epoch, at-risk list.
    const promoted = await cli(['promote', '--endpoint', s.url, '--json']);
    expect(promoted.code, promoted.stderr).toBe(0);
    const report = JSON.parse(promoted.stdout) as { role: string; epoch: number; atRisk: { count: number; names: string[] } };
    expect(report.role).toBe('primary');
    expect(report.epoch).toBe(2);
    expect(report.atRisk.count).toBe(report.atRisk.names.length);
    expect(report.atRisk.count).toBeGreaterThan(0);
    const text = await cli(['at-risk', '--endpoint', s.url]);
    expect(text.stdout).toMatch(/at risk: \d+ location/);

    // Repoint the client; writes go on at the new primary.
    load.repoint(s.url);
    await sleep(2000);
    expect(load.ok).toBeGreaterThan(okBefore + 5);
    const sStatus = await status(s.url);
    expect(sStatus.role).toBe('primary');
    expect(sStatus.epoch).toBe(2);
    expect(sStatus.failover.trackedSincePromotion).toBeGreaterThan(0);

    // The old primary restarts: its peer answers with epoch 2, so it is fenced.
    const p2 = await serve(['--role', 'primary', '--data', pDir, '--secondary', viaProxy, ...predictors]);
    procs.push(p2);
    const refused = await client(p2.url).send(new PutObjectCommand({ Bucket: 'fover', Key: 'split-brain', Body: 'no' })).then(
      () => undefined,
      (err: Error & { $metadata?: { httpStatusCode?: number } }) => err,
    );
    expect(refused?.name).toBe('MethodNotAllowed');
    expect((await status(p2.url)).role).toBe('fenced');

    // Failback: rejoin as the secondary; the resync copies what may differ.
    const rejoin = await cli(['rejoin', '--endpoint', p2.url, '--primary', s.url, '--json']);
    expect(rejoin.code, rejoin.stderr).toBe(0);
    const resync = (JSON.parse(rejoin.stdout) as { resync: Record<string, any> }).resync;
    expect(resync.phase).toBe('done');
    await load.stop();
    expect(load.ok).toBeGreaterThan(okBefore + 5);

    // Everything queued since reaches the rejoined secondary.
    await until('the queue to drain', async () => {
      const st = await status(s.url);
      return st.replication?.queueDepth === 0 && st.replication?.peer === 'ok' ? st : undefined;
    });
    const verify = await cli(['verify', '--primary', s.url, '--secondary', p2.url, '--bodies', '--json']);
    const result = JSON.parse(verify.stdout) as { differences: unknown[]; keysPrimary: number };
    expect(result.differences, verify.stdout).toEqual([]);
    expect(verify.code).toBe(0);
    expect(result.keysPrimary).toBeGreaterThanOrEqual(30);

    // The resync touched no more than R + the keys written since promotion
    // (+ the old primary's own unconfirmed writes, a subset of R here).
    const final = (await status(s.url)).resync as { copied: number; deleted: number; total: number; planned: { record: number; tracked: number; peerUnsynced: number }; expanded?: number; done: number };
    expect(final.planned.record).toBe(report.atRisk.count);
    if (predictors.length > 0) expect(final.expanded ?? 0).toBe(0); // no groups to expand
    expect(final.total).toBe(final.planned.record + final.planned.tracked + final.planned.peerUnsynced + (final.expanded ?? 0));
    expect(final.done).toBe(final.total);
    expect(final.copied + final.deleted).toBeLessThanOrEqual(final.total);
    // Work items: R's locations, the keys written since promotion, the old
    // primary's unconfirmed writes and, for groups, the keys listed there
    // that differ; never the 30 base objects unless R names them.
    expect(final.planned.tracked).toBeLessThanOrEqual(sStatus.failover.trackedSincePromotion + keySpace.length);
    expect(final.expanded ?? 0).toBeLessThanOrEqual(keySpace.length + 30);
    const st2 = await status(p2.url);
    expect(st2.role).toBe('secondary');
  });
});
