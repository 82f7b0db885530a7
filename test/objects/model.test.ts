// Random operation sequences against an in-memory model of S3 semantics.
import { createHash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { S3Error } from '../../src/core/errors.ts';
import { makeFixture, putInput, readAll, type Fixture } from './helpers.ts';

let fx: Fixture;
beforeAll(async () => {
  fx = await makeFixture();
});
afterAll(async () => fx.cleanup());

const keyArb = fc.constantFrom('a', 'a/b', 'a/c/d', 'b', 'é', 'a/', 'z/z', '\u{1F600}');
const opArb = fc.oneof(
  fc.record({ op: fc.constant('put' as const), key: keyArb, body: fc.string({ maxLength: 40 }) }),
  fc.record({ op: fc.constant('delete' as const), key: keyArb }),
  fc.record({ op: fc.constant('copy' as const), from: keyArb, key: keyArb }),
  fc.record({ op: fc.constant('tag' as const), key: keyArb, value: fc.string({ maxLength: 5 }) }),
);

let run = 0;
it('matches a map model under random put/delete/copy/tag sequences', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 25 }), async (ops) => {
      const bucket = `model-${run++}`;
      await fx.store.createBucket(bucket, 'us-east-1');
      const model = new Map<string, { body: string; tags: Record<string, string> }>();
      let lastSeq = fx.store.currentSeq();
      for (const o of ops) {
        if (o.op === 'put') {
          const m = await fx.store.putObject(putInput(bucket, o.key, o.body));
          expect(m.seq).toBeGreaterThan(lastSeq);
          lastSeq = m.seq;
          model.set(o.key, { body: o.body, tags: {} });
        } else if (o.op === 'delete') {
          await fx.store.deleteObject(bucket, o.key);
          model.delete(o.key);
        } else if (o.op === 'copy') {
          const src = model.get(o.from);
          try {
            await fx.store.copyObject({ bucket, key: o.from }, { bucket, key: o.key }, 'copy');
            expect(src).toBeDefined();
            model.set(o.key, { body: src!.body, tags: { ...src!.tags } });
          } catch (err) {
            expect(src).toBeUndefined();
            expect((err as S3Error).code).toBe('NoSuchKey');
          }
        } else {
          const cur = model.get(o.key);
          try {
            await fx.store.setTags(bucket, o.key, { t: o.value });
            expect(cur).toBeDefined();
            cur!.tags = { t: o.value };
          } catch (err) {
            expect(cur).toBeUndefined();
            expect((err as S3Error).code).toBe('NoSuchKey');
          }
        }
      }
      const listed = await fx.store.list({ bucket, maxKeys: 1000 });
      const expectedKeys = [...model.keys()].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      expect(listed.objects.map((o) => o.key)).toEqual(expectedKeys);
      for (const [key, want] of model) {
        const r = await fx.store.openObject(bucket, key);
        expect(r.meta.tags).toEqual(want.tags);
        expect(r.meta.etag).toBe(createHash('md5').update(want.body).digest('hex'));
        expect((await readAll(r.stream())).toString()).toBe(want.body);
      }
      for (const o of listed.objects) await fx.store.deleteObject(bucket, o.key);
      await fx.store.deleteBucket(bucket);
    }),
    { numRuns: 25 },
  );
  await fx.store.settled();
});

it('openObject gives up after a bounded number of retries when a blob is missing', async () => {
  await fx.store.createBucket('broken', 'us-east-1');
  const m = await fx.store.putObject(putInput('broken', 'k', Buffer.alloc(200 * 1024))); // a file, not inline
  const id = m.blobs[0]!.id;
  await unlink(join(fx.dataDir, 'blobs', id.slice(0, 2), id)); // outside damage, not a race
  await expect(fx.store.openObject('broken', 'k')).rejects.toMatchObject({ code: 'ENOENT' });
});
