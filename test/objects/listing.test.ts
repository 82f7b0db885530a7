import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { ListQuery } from '../../src/objects/types.ts';
import { makeFixture, putInput, type Fixture } from './helpers.ts';

let fx: Fixture;
const keys = [
  'a', 'a/b', 'a/b/c', 'a/c', 'a+b', 'a-b', 'b', 'b/', 'b//x', 'photos/2026/01/x.jpg',
  'photos/2026/02/y.jpg', 'photos/2027/z.jpg', 'photos/index.html', 'z', 'ü', 'Z', '~', 'é/x',
  '\u{1F600}emoji', '\uFFFDrepl', 'sp ace', 'per%cent', 'q?x', 'amp&', 'ne\nwline', 'x'.repeat(1024),
];

/** The reference: S3 semantics computed from a sorted array, the slow way. */
function reference(all: string[], q: Omit<ListQuery, 'bucket'>) {
  const sorted = [...all].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  const prefix = q.prefix ?? '';
  const entries: { kind: 'key' | 'cp'; name: string }[] = [];
  for (const k of sorted) {
    if (!k.startsWith(prefix)) continue;
    let name = k;
    let kind: 'key' | 'cp' = 'key';
    if (q.delimiter) {
      const at = k.indexOf(q.delimiter, prefix.length);
      if (at >= 0) {
        name = k.slice(0, at + q.delimiter.length);
        kind = 'cp';
      }
    }
    if (q.after !== undefined && Buffer.compare(Buffer.from(name), Buffer.from(q.after)) <= 0) continue;
    const last = entries[entries.length - 1];
    if (last && last.kind === 'cp' && last.name === name) continue;
    entries.push({ kind, name });
  }
  const page = entries.slice(0, q.maxKeys);
  return {
    keys: page.filter((e) => e.kind === 'key').map((e) => e.name),
    prefixes: page.filter((e) => e.kind === 'cp').map((e) => e.name),
    isTruncated: entries.length > q.maxKeys,
  };
}

beforeAll(async () => {
  fx = await makeFixture();
  await fx.store.createBucket('lst', 'us-east-1');
  await fx.store.createBucket('lst2', 'us-east-1');
  for (const k of keys) await fx.store.putObject(putInput('lst', k, k.slice(0, 10)));
  await fx.store.putObject(putInput('lst2', 'a', 'other bucket'));
});
afterAll(async () => fx.cleanup());

async function run(q: Omit<ListQuery, 'bucket'>) {
  const r = await fx.store.list({ bucket: 'lst', ...q });
  return { keys: r.objects.map((o) => o.key), prefixes: r.commonPrefixes, isTruncated: r.isTruncated, nextAfter: r.nextAfter };
}

describe('list', () => {
  it('returns all keys in UTF-8 byte order, only from its bucket', async () => {
    const r = await run({ maxKeys: 1000 });
    const expected = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(r.keys).toEqual(expected);
    // UTF-16 order would put U+1F600 before U+FFFD; UTF-8 byte order does not.
    expect(r.keys.indexOf('\uFFFDrepl')).toBeLessThan(r.keys.indexOf('\u{1F600}emoji'));
    expect(r.isTruncated).toBe(false);
  });

  it('rolls up common prefixes with a delimiter', async () => {
    const r = await run({ prefix: 'photos/', delimiter: '/', maxKeys: 1000 });
    expect(r.prefixes).toEqual(['photos/2026/', 'photos/2027/']);
    expect(r.keys).toEqual(['photos/index.html']);
    const top = await run({ delimiter: '/', maxKeys: 1000 });
    expect(top.prefixes).toEqual(['a/', 'b/', 'photos/', 'é/']);
  });

  it('paginates with nextAfter across keys and common prefixes', async () => {
    for (const q of [{ delimiter: '/' }, {}, { prefix: 'a' }, { prefix: 'photos/', delimiter: '/' }]) {
      const seen: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 100; page++) {
        const r = await run({ ...q, maxKeys: 2, ...(after !== undefined ? { after } : {}) });
        seen.push(...r.keys, ...r.prefixes);
        if (!r.isTruncated) break;
        after = r.nextAfter;
      }
      const all = reference(keys, { ...q, maxKeys: 1000 });
      expect(seen.sort()).toEqual([...all.keys, ...all.prefixes].sort());
    }
  });

  it('maxKeys 0 returns nothing', async () => {
    const r = await run({ maxKeys: 0 });
    expect(r.keys).toEqual([]);
  });

  it('matches the reference model for random queries', async () => {
    const pieces = ['', 'a', 'a/', 'b', 'photos/', 'photos/2026/', 'é', 'z', '/', 'x'];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...pieces),
        fc.option(fc.constantFrom('/', 'b', '2', '+', 'é'), { nil: undefined }),
        fc.option(fc.constantFrom(...keys, 'a/', 'photos/2026/', 'b/', 'c'), { nil: undefined }),
        fc.integer({ min: 1, max: 30 }),
        async (prefix, delimiter, after, maxKeys) => {
          const q = { prefix, maxKeys, ...(delimiter ? { delimiter } : {}), ...(after !== undefined ? { after } : {}) };
          const got = await run(q);
          const want = reference(keys, q);
          expect({ keys: got.keys, prefixes: got.prefixes, isTruncated: got.isTruncated }).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('seeks past common prefixes: a page over a huge prefix reads few entries', async () => {
    // 2000 keys under one prefix: a delimiter listing must still answer quickly and once.
    await fx.store.createBucket('many', 'us-east-1');
    const writes = [];
    for (let i = 0; i < 2000; i++) writes.push(fx.store.putObject(putInput('many', `deep/${String(i).padStart(5, '0')}`, 'x')));
    await Promise.all(writes);
    await fx.store.putObject(putInput('many', 'top', 'x'));
    const t = performance.now();
    const r = await fx.store.list({ bucket: 'many', delimiter: '/', maxKeys: 1000 });
    const ms = performance.now() - t;
    expect(r.commonPrefixes).toEqual(['deep/']);
    expect(r.objects.map((o) => o.key)).toEqual(['top']);
    expect(ms).toBeLessThan(50);
  });
});
