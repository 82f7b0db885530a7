// The record view (kinds, generations, search) against a reference computed
// by brute force, and the Basic header parser.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/core/errors.ts';
import { consoleRecordListMax, consoleSearchCharsMax } from '../../src/core/limits.ts';
import { locationName } from '../../src/predict/locations.ts';
import type { Location } from '../../src/predict/types.ts';
import { parseBasicAuthorization, secretsEqual } from '../../src/gateway/ui/basic-auth.ts';
import { buildRecordView, kindOfName, parseRecordQuery, recordViewOfNames } from '../../src/gateway/ui/record-view.ts';

const location: fc.Arbitrary<Location> = fc.oneof(
  fc.record({ kind: fc.constant('key' as const), bucket: fc.constantFrom('b1', 'b2'), key: fc.string({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('prefix' as const), bucket: fc.constantFrom('b1', 'b2'), prefix: fc.constantFrom('', 'a/', 'a/b/') }),
  fc.record({
    kind: fc.constant('upload' as const),
    bucket: fc.constantFrom('b1'),
    key: fc.string({ minLength: 1, maxLength: 5 }),
    uploadId: fc.string({ minLength: 1, maxLength: 5 }),
  }),
  fc.record({ kind: fc.constant('bucket' as const), bucket: fc.constantFrom('b1', 'b2', 'b3') }),
);

describe('buildRecordView', () => {
  it('counts kinds and generations and lists matches like a brute-force reference', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(location, { selector: locationName, maxLength: 60 }),
        fc.string({ maxLength: 3 }),
        fc.integer({ min: 1, max: 20 }),
        (locations, search, limit) => {
          const names = locations.map(locationName);
          const generation = (id: number) => 1 + (id % 4);
          const view = buildRecordView({ ids: names.keys(), nameOf: (id) => names[id], generationOf: generation, search, limit, entriesMax: 99 });
          expect(view.size).toBe(names.length);
          expect(view.entriesMax).toBe(99);
          for (const kind of ['key', 'prefix', 'upload', 'bucket'] as const) {
            expect(view.byKind[kind]).toBe(locations.filter((l) => l.kind === kind).length);
          }
          const matches = names
            .map((name, id) => ({ name, id }))
            .filter(({ name }) => name.toLowerCase().includes(search.toLowerCase()));
          expect(view.matched).toBe(matches.length);
          expect(view.entries.map((e) => e.name)).toEqual(matches.slice(0, limit).map((m) => m.name));
          expect(view.entries.map((e) => e.generation)).toEqual(matches.slice(0, limit).map((m) => generation(m.id)));
          expect(view.generationCount).toBe(new Set(names.map((_, id) => generation(id))).size);
        },
      ),
    );
  });

  it('names the kind of each canonical name', () => {
    expect(kindOfName('k/b/x')).toBe('key');
    expect(kindOfName('p/b/')).toBe('prefix');
    expect(kindOfName('u/b/id/k')).toBe('upload');
    expect(kindOfName('b/b')).toBe('bucket');
    expect(kindOfName('zz')).toBe('unknown');
  });
});

describe('recordViewOfNames', () => {
  it('views a record known by names only', () => {
    const view = recordViewOfNames(['k/b/a', 'p/b/x/', 'k/b/c'], { search: 'k/', limit: 1 }, 10);
    expect(view).toMatchObject({ size: 3, entriesMax: 10, matched: 2, entries: [{ name: 'k/b/a', kind: 'key' }] });
    expect(view.byKind).toMatchObject({ key: 2, prefix: 1 });
    expect(view.generations).toBeUndefined();
  });
});

describe('parseRecordQuery', () => {
  it('defaults and bounds', () => {
    expect(parseRecordQuery({})).toEqual({ search: '', limit: 100 });
    expect(parseRecordQuery({ search: ['a', 'b'], limit: '7' })).toEqual({ search: 'a', limit: 7 });
    expect(parseRecordQuery({ limit: String(consoleRecordListMax) }).limit).toBe(consoleRecordListMax);
    expect(() => parseRecordQuery({ limit: String(consoleRecordListMax + 1) })).toThrow(S3Error);
    expect(() => parseRecordQuery({ limit: '1e2x' })).toThrow(S3Error);
    expect(() => parseRecordQuery({ search: 'x'.repeat(consoleSearchCharsMax + 1) })).toThrow(S3Error);
  });
});

describe('Basic credentials', () => {
  it('round-trips any user without a colon and any password', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }).filter((u) => !u.includes(':')), fc.string(), (user, password) => {
        const header = `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
        const parsed = parseBasicAuthorization(header);
        // Lone surrogates do not survive UTF-8; everything else must.
        if (Buffer.from(user, 'utf8').toString('utf8') === user && Buffer.from(password, 'utf8').toString('utf8') === password) {
          expect(parsed).toEqual({ user, password });
        }
      }),
    );
    expect(parseBasicAuthorization('basic   ' + Buffer.from('a:b:c').toString('base64'))).toEqual({ user: 'a', password: 'b:c' });
    expect(parseBasicAuthorization('Bearer abc')).toBeUndefined();
    expect(parseBasicAuthorization(`Basic ${Buffer.from(':pw').toString('base64')}`)).toBeUndefined();
  });

  it('compares secrets exactly, whatever their lengths', () => {
    expect(secretsEqual('secret', 'secret')).toBe(true);
    expect(secretsEqual('secret', 'secret ')).toBe(false);
    expect(secretsEqual('', 'secret')).toBe(false);
    expect(secretsEqual('Secret', 'secret')).toBe(false);
  });
});
