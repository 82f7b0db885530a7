// The store's side of `aborted` and `settled` (src/core/changes.ts): every
// failure after admit reports exactly that write's token, once; a committed
// write reports `settled` (awaited before the call resolves) and never
// `aborted`.

import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeHooks, ChangeIntent, CommittedChange, WriteToken } from '../../src/core/changes.ts';
import { S3Error } from '../../src/core/errors.ts';
import { makeFixture, noAttrs, putInput, type Fixture } from './helpers.ts';

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.cleanup();
  fx = undefined;
});

const tick = () => new Promise((r) => setTimeout(r, 5));

/**
 * Hooks that record admits, commits, aborts and settles by token, and can
 * hold the admission of one named write open (`hold('put:k')`).
 */
function tokenHooks() {
  const admitted = new Map<string, ChangeIntent[]>();
  const aborted: WriteToken[] = [];
  const settled: WriteToken[] = [];
  const committed: CommittedChange[] = [];
  const gates = new Map<string, Promise<void>>();
  let failCommit = false;
  const name = (c: ChangeIntent) => `${c.kind}:${c.key}`;
  const hooks: ChangeHooks = {
    admit: async (c) => {
      const list = admitted.get(name(c)) ?? [];
      list.push(c);
      admitted.set(name(c), list);
      await gates.get(name(c));
      return { hit: false };
    },
    committed: (c) => {
      if (failCommit) throw new Error('queue write failed');
      committed.push(c);
    },
    aborted: (c) => {
      expect(c.token).toBeDefined();
      aborted.push(c.token as WriteToken);
    },
    settled: async (c) => {
      await tick(); // the caller must wait for this
      settled.push(c.token as WriteToken);
    },
  };
  return {
    hooks,
    aborted,
    settled,
    committed,
    /** Tokens of the admissions of one named write, in order. */
    tokens: (n: string) => (admitted.get(n) ?? []).map((c) => c.token as WriteToken),
    hold(n: string): () => void {
      let open!: () => void;
      gates.set(n, new Promise((r) => (open = r)));
      return () => {
        gates.delete(n);
        open();
      };
    },
    failCommits(v: boolean) {
      failCommit = v;
    },
  };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof S3Error ? err.code : (err as Error).message;
  }
}

/** Until `n` aborts were reported (they follow the admission's settling). */
async function abortsReach(h: ReturnType<typeof tokenHooks>, n: number): Promise<void> {
  for (let i = 0; i < 200 && h.aborted.length < n; i++) await tick();
}

const badDigest = () => {
  throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
};

describe('aborted: every failure after admit releases that write, by token', () => {
  it('a PUT that fails its digest (inline and file bodies) and one whose body breaks off', async () => {
    const h = tokenHooks();
    fx = await makeFixture(h.hooks);
    await fx.store.createBucket('b', 'us-east-1');
    expect(await code(fx.store.putObject(putInput('b', 'small', 'x', { verify: badDigest })))).toBe('BadDigest');
    expect(await code(fx.store.putObject(putInput('b', 'big', randomBytes(300_000), { verify: badDigest })))).toBe('BadDigest');
    const broken = new Readable({ read() {} });
    broken.push(randomBytes(100_000));
    const put = fx.store.putObject(putInput('b', 'cut', broken));
    await tick();
    broken.destroy(new Error('client went away'));
    expect(await code(put)).toBe('client went away');
    await abortsReach(h, 3);
    expect(h.aborted).toEqual([...h.tokens('put:small'), ...h.tokens('put:big'), ...h.tokens('put:cut')]);
    expect(new Set(h.aborted).size).toBe(3);
    // Only the bucket committed and settled.
    expect(h.settled).toEqual(h.tokens('bucket-create:'));
  });

  it('of two concurrent writers of one key, only the failing one is reported', async () => {
    const h = tokenHooks();
    fx = await makeFixture(h.hooks);
    await fx.store.createBucket('b', 'us-east-1');
    const release = h.hold('put:k');
    const good = fx.store.putObject(putInput('b', 'k', 'good'));
    const bad = code(fx.store.putObject(putInput('b', 'k', 'bad!', { verify: badDigest })));
    await tick();
    release();
    expect(await bad).toBe('BadDigest');
    const meta = await good;
    await abortsReach(h, 1);
    const [goodToken, badToken] = h.tokens('put:k');
    expect(goodToken).not.toBe(badToken);
    expect(h.aborted).toEqual([badToken]);
    expect(h.committed.at(-1)).toMatchObject({ key: 'k', seq: meta.seq, token: goodToken });
    expect(h.settled).toContain(goodToken);
  });

  it('a precondition that fails at the commit (a racing writer) on PUT and CopyObject', async () => {
    const h = tokenHooks();
    fx = await makeFixture(h.hooks);
    const s = fx.store;
    await s.createBucket('b', 'us-east-1');
    await s.putObject(putInput('b', 'src', 'source'));
    const release = h.hold('put:dst');
    const put = code(s.putObject(putInput('b', 'dst', 'mine', { ifNoneMatchStar: true })));
    const copy = code(s.copyObject({ bucket: 'b', key: 'src' }, { bucket: 'b', key: 'dst' }, 'copy', { ifNoneMatchStar: true }));
    await tick();
    // Both passed the early check; the first to commit makes the other's
    // re-check inside the transaction fail.
    release();
    expect((await Promise.all([put, copy])).sort()).toEqual(['PreconditionFailed', 'ok']);
    await abortsReach(h, 1);
    expect(h.aborted).toHaveLength(1);
    expect(h.tokens('put:dst')).toContain(h.aborted[0]);
  });

  it('a failed commit transaction (committed() throws) on PUT, DeleteObject, tagging and bucket changes', async () => {
    const h = tokenHooks();
    fx = await makeFixture(h.hooks);
    const s = fx.store;
    await s.createBucket('b', 'us-east-1');
    await s.putObject(putInput('b', 'k', 'v'));
    h.failCommits(true);
    expect(await code(s.putObject(putInput('b', 'k', 'v2')))).toBe('queue write failed');
    expect(await code(s.deleteObject('b', 'k'))).toBe('queue write failed');
    expect(await code(s.setTags('b', 'k', { a: '1' }))).toBe('queue write failed');
    expect(await code(s.createBucket('c', 'us-east-1'))).toBe('queue write failed');
    await abortsReach(h, 4);
    expect(h.aborted).toEqual([h.tokens('put:k')[1], h.tokens('delete:k')[0], h.tokens('tagging:k')[0], h.tokens('bucket-create:')[1]]);
    expect(h.aborted.every((t) => typeof t === 'symbol')).toBe(true);
  });

  it('multipart: a part whose body breaks off, and a Complete or tagging that loses its target meanwhile', async () => {
    const h = tokenHooks();
    fx = await makeFixture(h.hooks);
    const s = fx.store;
    await s.createBucket('b', 'us-east-1');
    await s.putObject(putInput('b', 'gone', 'v'));
    const up = await s.createMultipartUpload('b', 'm', noAttrs);
    const part = await s.uploadPart({ bucket: 'b', key: 'm', uploadId: up.uploadId, partNumber: 1, body: Readable.from([Buffer.from('p1')]), algorithms: [], sha256: false, verify: () => {} });
    const broken = new Readable({ read() {} });
    broken.push(Buffer.alloc(50_000, 1));
    const cut = s.uploadPart({ bucket: 'b', key: 'm', uploadId: up.uploadId, partNumber: 2, body: broken, algorithms: [], sha256: false, verify: () => {} });
    await tick();
    broken.destroy(new Error('client went away'));
    expect(await code(cut)).toBe('client went away');
    // Complete and tagging admitted, then their targets vanish before the commit.
    const releaseComplete = h.hold('put:m');
    const releaseTags = h.hold('tagging:gone');
    const complete = code(s.completeMultipartUpload('b', 'm', up.uploadId, [{ partNumber: 1, etag: part.etag }]));
    const tags = code(s.setTags('b', 'gone', { t: '1' }));
    await tick();
    await s.abortMultipartUpload('b', 'm', up.uploadId);
    await s.deleteObject('b', 'gone');
    releaseComplete();
    releaseTags();
    expect(await complete).toBe('NoSuchUpload');
    expect(await tags).toBe('NoSuchKey');
    await abortsReach(h, 3);
    expect(new Set(h.aborted)).toEqual(new Set([h.tokens('mpu-part:m')[1], ...h.tokens('put:m'), ...h.tokens('tagging:gone')]));
    expect(h.aborted).toHaveLength(3);
    // The successful ones settled, the failed ones did not.
    for (const t of h.aborted) expect(h.settled).not.toContain(t);
    expect(h.settled).toContain(h.tokens('mpu-part:m')[0]);
    expect(h.settled).toContain(h.tokens('mpu-abort:m')[0]);
  });

  it('a refused admission holds nothing and is not reported', async () => {
    const h = tokenHooks();
    fx = await makeFixture(h.hooks);
    await fx.store.createBucket('b', 'us-east-1');
    fx.store.setChangeHooks({ ...h.hooks, admit: async () => Promise.reject(new S3Error('SlowDown', 'busy')) });
    expect(await code(fx.store.putObject(putInput('b', 'k', 'v')))).toBe('SlowDown');
    await tick();
    expect(h.aborted).toEqual([]);
  });

  it('a committed write resolves only after settled()', async () => {
    const h = tokenHooks();
    fx = await makeFixture(h.hooks);
    await fx.store.createBucket('b', 'us-east-1');
    let settle: (() => void) | undefined;
    fx.store.setChangeHooks({ ...h.hooks, settled: () => new Promise<void>((r) => (settle = r)) });
    let done = false;
    const put = fx.store.putObject(putInput('b', 'k', 'v')).then(() => (done = true));
    for (let i = 0; i < 100 && settle === undefined; i++) await tick();
    // Committed (readable) but not acknowledged yet.
    expect((await fx.store.headObject('b', 'k')).size).toBe(1);
    await tick();
    expect(done).toBe(false);
    settle?.();
    await put;
    expect(done).toBe(true);
  });
});
