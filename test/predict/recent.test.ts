import { describe, expect, it } from 'vitest';
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
});
