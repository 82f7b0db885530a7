import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/clock.ts';
import { RecentWrites } from '../../src/predict/recent.ts';

const put = (key: string) => ({ kind: 'put' as const, bucket: 'bk', key });

describe('RecentWrites', () => {
  it('counts distinct recent keys under every ancestor prefix', () => {
    const rw = new RecentWrites({ windowMs: 1000 });
    rw.note(put('a/b/1'), 0);
    rw.note(put('a/b/2'), 10);
    rw.note(put('a/b/2'), 20); // overwrite: still one key
    rw.note(put('a/c/3'), 30);
    expect(rw.recentWrites('bk', '', 40)).toBe(3);
    expect(rw.recentWrites('bk', 'a/', 40)).toBe(3);
    expect(rw.recentWrites('bk', 'a/b/', 40)).toBe(2);
    expect(rw.recentWrites('bk', 'a/c/', 40)).toBe(1);
    expect(rw.recentWrites('other', '', 40)).toBe(0);
    expect(rw.lastWrite('bk', 'a/b/2')).toBe(20);
  });

  it('forgets writes older than the window, by last write', () => {
    const rw = new RecentWrites({ windowMs: 100 });
    rw.note(put('x/1'), 0);
    rw.note(put('x/2'), 50);
    rw.note(put('x/1'), 90); // refreshed
    expect(rw.recentWrites('bk', 'x/', 120)).toBe(2);
    expect(rw.recentWrites('bk', 'x/', 160)).toBe(1); // x/2 (t=50) expired
    expect(rw.recentWrites('bk', 'x/', 200)).toBe(0);
    expect(rw.size).toBe(0);
  });

  it('a key under the last key\'s directory counts again after that directory was forgotten (its id freed)', () => {
    const rw = new RecentWrites({ windowMs: 100 });
    rw.note(put('a/1'), 0);
    expect(rw.recentWrites('bk', 'a/', 500)).toBe(0); // a/1 expired: the ids of 'a/' and the bucket freed
    rw.note(put('a/2'), 500);
    rw.note(put('a/3'), 501);
    expect(rw.recentWrites('bk', 'a/', 502)).toBe(2);
    expect(rw.recentWrites('bk', '', 502)).toBe(2);
    rw.note(put('z/q/1'), 503); // takes other ids
    expect(rw.recentWrites('bk', 'z/q/', 504)).toBe(1);
    expect(rw.recentWrites('bk', '', 504)).toBe(3);
  });

  it('stays within its capacity, dropping the least recent', () => {
    const rw = new RecentWrites({ windowMs: 1e9, keysMax: 3 });
    for (let i = 0; i < 10; i++) rw.note(put(`d/${i}`), i);
    expect(rw.size).toBe(3);
    expect(rw.recentWrites('bk', 'd/', 10)).toBe(3);
    expect(rw.lastWrite('bk', 'd/0')).toBeUndefined();
    expect(rw.lastWrite('bk', 'd/9')).toBe(9);
  });

  it('provides a PredictContext bound to a time and a key counter', () => {
    const rw = new RecentWrites({ windowMs: 1000 });
    rw.note(put('p/1'), 0);
    const ctx = rw.context(5, (_b, prefix) => (prefix === 'p/' ? 42 : 0));
    expect(ctx.now).toBe(5);
    expect(ctx.keysUnderPrefix('bk', 'p/')).toBe(42);
    expect(ctx.recentWrites('bk', 'p/')).toBe(1);
  });

  it('evicts the least recently written key, not a key written again since', () => {
    const rw = new RecentWrites({ windowMs: 1e9, keysMax: 3 });
    rw.note(put('a'), 0);
    rw.note(put('b'), 1);
    rw.note(put('c'), 2);
    rw.note(put('a'), 3); // a is now the most recent; its first record is stale
    rw.note(put('d'), 4);
    expect(rw.lastWrite('bk', 'b')).toBeUndefined();
    expect(rw.lastWrite('bk', 'a')).toBe(3);
    expect(rw.size).toBe(3);
  });

  it('a key written twice in one millisecond keeps its place (stale records are told by write, not time)', () => {
    const rw = new RecentWrites({ windowMs: 100 });
    rw.note(put('k'), 5);
    rw.note(put('k'), 5);
    rw.note(put('k'), 50);
    expect(rw.recentWrites('bk', '', 120)).toBe(1); // 5 + 100 passed, 50 + 100 not
    expect(rw.recentWrites('bk', '', 150)).toBe(0);
  });

  it('keeps its records bounded when a few hot keys are written again and again', () => {
    const rw = new RecentWrites({ windowMs: 1e9, keysMax: 1000 });
    for (let i = 0; i < 200_000; i++) rw.note(put(`hot/${i % 7}`), i);
    expect(rw.size).toBe(7);
    // The ring fills before stale records go, and it is sized for twice
    // the keys plus 1024: at most 4 x keys + 2048 records.
    expect(rw.recordsHeld).toBeLessThanOrEqual(4 * 7 + 2048);
    expect(rw.recentWrites('bk', 'hot/', 200_000)).toBe(7);
  });

  it('matches a plain reference LRU over random writes, expiries and capacity evictions', () => {
    // Reference: an array in last-write order, scanned in full.
    const rng = seededRandom(12345);
    const random = () => rng.next();
    const windowMs = 500;
    const keysMax = 50;
    const rw = new RecentWrites({ windowMs, keysMax });
    let ref: Array<{ key: string; time: number }> = [];
    let now = 0;
    let peak = 0;
    for (let step = 0; step < 20_000; step++) {
      now += Math.floor(random() * 3);
      const key = `${['a/', 'a/b/', 'c/'][Math.floor(random() * 3)]}${Math.floor(random() * 80)}`;
      rw.note(put(key), now);
      ref = ref.filter((e) => e.key !== key);
      ref.push({ key, time: now });
      ref = ref.filter((e) => now - e.time < windowMs);
      while (ref.length > keysMax) ref.shift();
      if (step % 97 === 0) {
        for (const prefix of ['', 'a/', 'a/b/', 'c/']) {
          expect(rw.recentWrites('bk', prefix, now)).toBe(ref.filter((e) => e.key.startsWith(prefix)).length);
        }
        expect(rw.size).toBe(ref.length);
        peak = Math.max(peak, rw.size);
        expect(rw.recordsHeld).toBeLessThanOrEqual(4 * peak + 2048);
      }
    }
  });

  it('matches the reference over many keys in several buckets and nested prefixes (table growth, deletes, prefix reuse)', () => {
    const rng = seededRandom(987654);
    const random = () => rng.next();
    const windowMs = 2_000;
    const keysMax = 3_000;
    const rw = new RecentWrites({ windowMs, keysMax });
    const ref = new Map<string, number>(); // "bucket key" -> last write, in last-write order
    const prefixes = ['', 'a/', 'a/b/', 'a/b/c/', 'd/'];
    let now = 0;
    for (let step = 0; step < 60_000; step++) {
      now += Math.floor(random() * 2);
      const bucket = `bk${Math.floor(random() * 3)}`;
      const key = `${prefixes[Math.floor(random() * prefixes.length)]}${Math.floor(random() * 4000)}`;
      rw.note({ kind: 'put', bucket, key }, now);
      ref.delete(`${bucket} ${key}`);
      ref.set(`${bucket} ${key}`, now);
      for (const [k, t] of ref) {
        if (ref.size <= keysMax && now - t < windowMs) break;
        ref.delete(k);
      }
      if (step % 997 === 0) {
        expect(rw.size).toBe(ref.size);
        for (const b of ['bk0', 'bk1', 'bk2']) {
          for (const p of prefixes) {
            const expected = [...ref.keys()].filter((k) => k.startsWith(`${b} ${p}`)).length;
            expect(rw.recentWrites(b, p, now)).toBe(expected);
          }
        }
      }
    }
    now += windowMs;
    expect(rw.recentWrites('bk0', '', now)).toBe(0);
    expect(rw.size).toBe(0);
  });
});

