// Small pieces of the failover code: which differences the record covers
// (verify), how at-risk names read, PrimaryPeer's fencing answers.

import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { describeLocation } from '../../src/cli/failover-commands.ts';
import { PrimaryPeer } from '../../src/replica/failover/primary-peer.ts';
import { coverageOf, verifySites, type SiteLister } from '../../src/replica/failover/verify.ts';
import { FencedError } from '../../src/replica/target.ts';

describe('coverageOf', () => {
  const covered = coverageOf(['k/b1/a/x', 'p/b1/logs/', 'u/b2/up1/big.bin', 'b/b3']);
  it('covers a key, keys under a prefix group, an upload group\'s final key, a whole bucket', () => {
    expect(covered('b1', 'a/x')).toBe(true);
    expect(covered('b1', 'logs/2026/01/f')).toBe(true);
    expect(covered('b2', 'big.bin')).toBe(true);
    expect(covered('b3', 'anything')).toBe(true);
    expect(covered('b3', '')).toBe(true);
  });
  it('covers nothing else', () => {
    expect(covered('b1', 'a/y')).toBe(false);
    expect(covered('b1', 'logsx/f')).toBe(false);
    expect(covered('b2', 'other.bin')).toBe(false);
    expect(covered('b4', '')).toBe(false);
  });
});

describe('describeLocation', () => {
  it('names what each kind covers', () => {
    expect(describeLocation('k/b/a/x')).toBe('b/a/x');
    expect(describeLocation('p/b/logs/')).toMatch(/^b\/logs\/\* .*prefix group/);
    expect(describeLocation('b/b')).toMatch(/^b .*bucket/);
  });
});

describe('PrimaryPeer', () => {
  let fencedAt: number | undefined;
  const peer = new PrimaryPeer({ epoch: () => 3, endpoint: () => 'http://new:9000', onHigherEpoch: (e) => (fencedAt = e) });
  it('fences a sender with a lower epoch, naming itself', async () => {
    const err = await peer.openSession('old', 2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect((err as FencedError).epoch).toBe(3);
    expect((err as FencedError).primary).toBe('http://new:9000');
    expect(fencedAt).toBeUndefined();
  });
  it('refuses replication at its own epoch and learns a higher one', async () => {
    await expect(peer.openSession('twin', 3)).rejects.toThrow(/primary at epoch 3/);
    const body = Readable.from([Buffer.from('x')]);
    await expect(peer.putObject({ epoch: 4, meta: {} as never }, body)).rejects.toThrow();
    expect(fencedAt).toBe(4);
  });
});

describe('verifySites', () => {
  const site = (objects: Record<string, Record<string, string>>): SiteLister => ({
    buckets: async () => Object.keys(objects),
    list: async (bucket) => new Map(Object.entries(objects[bucket] ?? {}).map(([k, etag]) => [k, { etag, size: etag.length }])),
    bodyHash: async (bucket, key) => objects[bucket]?.[key] ?? '',
  });
  it('lists every difference and counts those the record does not cover', async () => {
    const result = await verifySites({
      primary: site({ b: { same: 'e1', changed: 'e2', mine: 'e3' }, onlyp: {} }),
      secondary: site({ b: { same: 'e1', changed: 'eX', theirs: 'e4' } }),
      record: ['k/b/changed'],
    });
    const byKey = Object.fromEntries(result.differences.map((d) => [`${d.bucket}/${d.key}`, [d.kind, d.covered]]));
    expect(byKey).toEqual({
      'onlyp/': ['bucket-only-primary', false],
      'b/changed': ['etag', true],
      'b/mine': ['only-primary', false],
      'b/theirs': ['only-secondary', false],
    });
    expect(result.uncovered).toBe(3);
    expect(result.keysPrimary).toBe(3);
  });
});
