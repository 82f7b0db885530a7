import { describe, expect, it } from 'vitest';
import { S3TargetUrlError, parseS3TargetUrl, recordLocation, targetLocation } from '../../../src/replica/s3/url.ts';

describe('parseS3TargetUrl', () => {
  it('parses a prefix mapping with an endpoint (path style by default)', () => {
    const url = parseS3TargetUrl('s3://backup/site-a@http://127.0.0.1:9000');
    expect(url).toEqual({
      mapping: { kind: 'prefix', bucket: 'backup', prefix: 'site-a/' },
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      forcePathStyle: true,
    });
  });

  it('parses a whole-bucket mapping without an endpoint (AWS, virtual host)', () => {
    const url = parseS3TargetUrl('s3://backup');
    expect(url.mapping).toEqual({ kind: 'prefix', bucket: 'backup', prefix: '' });
    expect(url.endpoint).toBeUndefined();
    expect(url.forcePathStyle).toBe(false);
  });

  it('parses same-name mapping with options in the endpoint query', () => {
    const url = parseS3TargetUrl('s3://*@https://minio.internal:9000?region=eu-west-1&path-style=false&record-bucket=la-rec');
    expect(url).toEqual({
      mapping: { kind: 'same', recordBucket: 'la-rec' },
      endpoint: 'https://minio.internal:9000',
      region: 'eu-west-1',
      forcePathStyle: false,
    });
    expect(parseS3TargetUrl('s3://*@http://h:1').mapping).toEqual({ kind: 'same', recordBucket: 'lookahead-record' });
  });

  it('keeps "@" inside a prefix and splits at the last "@http"', () => {
    const url = parseS3TargetUrl('s3://backup/a@b/c@http://host:9000');
    expect(url.mapping).toEqual({ kind: 'prefix', bucket: 'backup', prefix: 'a@b/c/' });
    expect(url.endpoint).toBe('http://host:9000');
  });

  it.each([
    ['http://host/bucket', 'expected s3://'],
    ['s3://', 'no bucket'],
    ['s3://@http://h:1', 'no bucket'],
    ['s3://Bad_Bucket@http://h:1', 'not a valid bucket name'],
    ['s3://ab@http://h:1', 'not a valid bucket name'],
    ['s3://bucket//x@http://h:1', 'empty path segment'],
    ['s3://bucket@http://user:pw@h:1', 'credentials'],
    ['s3://bucket@http://h:1/path', 'no path'],
    ['s3://bucket@http://h:1?colour=red', 'unknown option'],
    ['s3://bucket@http://h:1?record-bucket=x-y-z', 'same-names'],
    ['s3://*@http://h:1?record-bucket=NO', 'not a valid bucket name'],
    ['s3://bucket@http://h:1?path-style=maybe', 'path-style'],
    ['s3://bucket@http://h:1?region=EU%20WEST', 'bad region'],
    [`s3://bucket/${'p'.repeat(600)}@http://h:1`, 'too long'],
  ])('rejects %s', (url, reason) => {
    expect(() => parseS3TargetUrl(url)).toThrow(S3TargetUrlError);
    expect(() => parseS3TargetUrl(url)).toThrow(reason);
  });
});

describe('target and record locations', () => {
  it('maps keys under the prefix and keeps the record beside them', () => {
    const mapping = parseS3TargetUrl('s3://backup/site-a@http://h:1').mapping;
    expect(targetLocation(mapping, 'photos', 'a/b c.jpg')).toEqual({ bucket: 'backup', key: 'site-a/photos/a/b c.jpg' });
    expect(recordLocation(mapping)).toEqual({ bucket: 'backup', prefix: 'site-a/.lookahead/' });
  });

  it('maps same names and keeps the record in its own bucket', () => {
    const mapping = parseS3TargetUrl('s3://*@http://h:1?record-bucket=rec-bucket').mapping;
    expect(targetLocation(mapping, 'photos', 'a/b c.jpg')).toEqual({ bucket: 'photos', key: 'a/b c.jpg' });
    expect(recordLocation(mapping)).toEqual({ bucket: 'rec-bucket', prefix: '.lookahead/' });
  });
});
