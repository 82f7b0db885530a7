import { describe, expect, it } from 'vitest';
import { objectMetaVersion, type ObjectMeta } from '../../src/objects/types.ts';
import { evaluateConditions, parseCopyRange, parseRange } from '../../src/gateway/handlers/conditions.ts';
import { XmlCodec } from '../../src/gateway/xml.ts';
import { S3Error } from '../../src/core/errors.ts';

const modified = Date.UTC(2026, 0, 10, 12, 0, 0, 500);
const meta: ObjectMeta = {
  v: objectMetaVersion,
  bucket: 'b',
  key: 'k',
  size: 10,
  etag: 'abc',
  lastModified: modified,
  seq: 1,
  headers: {},
  userMeta: {},
  tags: {},
  blobs: [],
};
const at = (deltaSeconds: number) => new Date(modified + deltaSeconds * 1000).toUTCString();

describe('parseRange', () => {
  it('accepts a-b, a-, -n and clamps the end', () => {
    expect(parseRange('bytes=0-0', 10)).toEqual({ kind: 'range', range: { start: 0, end: 0 } });
    expect(parseRange('bytes=3-', 10)).toEqual({ kind: 'range', range: { start: 3, end: 9 } });
    expect(parseRange('bytes=-4', 10)).toEqual({ kind: 'range', range: { start: 6, end: 9 } });
    expect(parseRange('bytes=5-99', 10)).toEqual({ kind: 'range', range: { start: 5, end: 9 } });
  });
  it('unsatisfiable past the end, for -0, and for offsets into an empty object', () => {
    expect(parseRange('bytes=10-', 10).kind).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 10).kind).toBe('unsatisfiable');
    expect(parseRange('bytes=0-', 0).kind).toBe('unsatisfiable');
    expect(parseRange('bytes=0-0', 0).kind).toBe('unsatisfiable');
    // A tail read of an empty object is the empty object, as on AWS.
    expect(parseRange('bytes=-5', 0).kind).toBe('whole');
  });
  it('ignores what S3 ignores', () => {
    for (const v of [undefined, 'bytes=1-2,4-5', 'items=0-1', 'bytes=5-2', 'bytes=-', 'garbage']) {
      expect(parseRange(v, 10).kind).toBe('whole');
    }
  });
  it('copy ranges must be a-b inside the source', () => {
    expect(parseCopyRange('bytes=0-9', 10)).toEqual({ start: 0, end: 9 });
    expect(() => parseCopyRange('bytes=0-10', 10)).toThrow(S3Error);
    expect(() => parseCopyRange('bytes=5-', 10)).toThrow(S3Error);
  });
});

describe('evaluateConditions', () => {
  it('If-Match and If-None-Match with lists, quotes and *', () => {
    expect(evaluateConditions(meta, { ifMatch: '"abc"' })).toBe('ok');
    expect(evaluateConditions(meta, { ifMatch: '"x", "abc"' })).toBe('ok');
    expect(evaluateConditions(meta, { ifMatch: '*' })).toBe('ok');
    expect(evaluateConditions(meta, { ifMatch: '"x"' })).toBe('precondition-failed');
    expect(evaluateConditions(meta, { ifNoneMatch: 'abc' })).toBe('not-modified');
    expect(evaluateConditions(meta, { ifNoneMatch: '"x"' })).toBe('ok');
  });
  it('dates compare at one-second granularity; invalid dates are ignored', () => {
    expect(evaluateConditions(meta, { ifModifiedSince: at(0) })).toBe('not-modified');
    expect(evaluateConditions(meta, { ifModifiedSince: at(-1) })).toBe('ok');
    expect(evaluateConditions(meta, { ifUnmodifiedSince: at(0) })).toBe('ok');
    expect(evaluateConditions(meta, { ifUnmodifiedSince: at(-1) })).toBe('precondition-failed');
    expect(evaluateConditions(meta, { ifUnmodifiedSince: 'not a date' })).toBe('ok');
  });
  it('S3 precedence between the pairs', () => {
    expect(evaluateConditions(meta, { ifMatch: '"abc"', ifUnmodifiedSince: at(-100) })).toBe('ok');
    expect(evaluateConditions(meta, { ifNoneMatch: '"abc"', ifModifiedSince: at(-100) })).toBe('not-modified');
    expect(evaluateConditions(meta, { ifNoneMatch: '"x"', ifModifiedSince: at(100) })).toBe('ok');
    expect(evaluateConditions(meta, { ifMatch: '"x"', ifNoneMatch: '"abc"' })).toBe('precondition-failed');
  });
});

describe('XmlCodec', () => {
  const xml = new XmlCodec();
  it('decodes &quot; and numeric references, keeps surrounding spaces', () => {
    const doc = xml.parse('<Root><ETag>&quot;a&#34;</ETag><Key> k </Key></Root>', 'Root');
    expect(doc.ETag).toBe('"a"');
    expect(doc.Key).toBe(' k ');
  });
  it('refuses DTDs, wrong roots and broken documents', () => {
    for (const body of ['<!DOCTYPE r [<!ENTITY e "x">]><Root>&e;</Root>', '<Other/>', '<Root><a></Root>', '']) {
      expect(() => xml.parse(body, 'Root'), body).toThrow(expect.objectContaining({ code: 'MalformedXML' }));
    }
  });
  it('escapes what it writes', () => {
    const out = xml.build('R', { Key: 'a<b>&"c"' });
    expect(out).toContain('<Key>a&lt;b&gt;&amp;&quot;c&quot;</Key>');
    expect(xml.parse(out, 'R').Key).toBe('a<b>&"c"');
  });
});
