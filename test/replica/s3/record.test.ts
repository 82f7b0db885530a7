import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { S3RecordDelta } from '../../../src/replica/s3/record.ts';
import {
  S3RecordFormatError,
  applyDelta,
  decodeDelta,
  decodeSnapshot,
  decodeState,
  deltaKey,
  encodeDelta,
  encodeSnapshot,
  encodeState,
  foldRecord,
  parseDeltaKey,
} from '../../../src/replica/s3/record.ts';

const name = (id: number) => `k/b/key-${id}`;
const delta = (session: number, msgId: number, add: number[], remove: number[] = []): S3RecordDelta => ({
  epoch: 1,
  from: 'p',
  session,
  msgId,
  add: add.map((id) => ({ id, name: name(id) })),
  remove,
});

describe('record objects on an S3 target', () => {
  it('round-trips state, snapshot and delta with a leading format byte', () => {
    const state = { epoch: 3, session: 7, role: 'secondary' as const, primary: 'http://p' };
    const s = encodeState(state);
    expect(s[0]).toBe(1);
    expect(decodeState(s)).toEqual(state);
    const snap = { session: 7, lastMsgId: 42, entries: [{ id: 1, name: 'p/b/logs/' }, { id: 2, name: 'k/b/x y' }] };
    expect(decodeSnapshot(encodeSnapshot(snap))).toEqual(snap);
    const d = delta(7, 43, [5, 6], [1]);
    expect(decodeDelta(encodeDelta(d))).toEqual(d);
  });

  it('refuses another format version, bad JSON and bad shapes', () => {
    const good = encodeState({ epoch: 1, session: 1, role: 'secondary' });
    expect(() => decodeState(Buffer.concat([Buffer.from([2]), good.subarray(1)]))).toThrow(S3RecordFormatError);
    expect(() => decodeState(Buffer.from([1, 0x7b]))).toThrow(S3RecordFormatError);
    expect(() => decodeState(Buffer.from([]))).toThrow(S3RecordFormatError);
    const badRole = Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify({ epoch: 1, session: 1, role: 'boss' }))]);
    expect(() => decodeState(badRole)).toThrow('bad role');
    const badName = Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify({ session: 1, lastMsgId: 0, entries: [[1, 'nonsense']] }))]);
    expect(() => decodeSnapshot(badName)).toThrow('location name');
    const badId = Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify({ ...delta(1, 1, []), remove: [-1] }))]);
    expect(() => decodeDelta(badId)).toThrow(S3RecordFormatError);
  });

  it('names deltas so a listing returns them in msgId order', () => {
    const keys = [10, 9, 100, 2].map((m) => deltaKey('p/.lookahead/', 3, m));
    expect([...keys].sort().map((k) => parseDeltaKey('p/.lookahead/', k)?.msgId)).toEqual([2, 9, 10, 100]);
    expect(parseDeltaKey('p/.lookahead/', 'p/.lookahead/record/delta/0000000003/12')).toBeUndefined();
    expect(parseDeltaKey('p/.lookahead/', 'q/.lookahead/record/delta/0000000003/0000000000000012')).toBeUndefined();
  });

  it('applies removals before additions: an id in both stays', () => {
    const record = new Map([[1, name(1)], [2, name(2)]]);
    applyDelta(record, delta(1, 1, [2, 3], [1, 2]));
    expect([...record.keys()].sort()).toEqual([2, 3]);
  });

  it('folds only the snapshot session deltas newer than the snapshot, in msgId order', () => {
    const snapshot = { session: 5, lastMsgId: 10, entries: [{ id: 1, name: name(1) }] };
    const folded = foldRecord(snapshot, [
      delta(5, 12, [3], [2]), // out of listing order on purpose
      delta(5, 11, [2]),
      delta(5, 9, [99]), // already in the snapshot (a crash before its delete)
      delta(4, 13, [98], [1]), // a sealed session's late message
      delta(6, 14, [97]), // a session not sealed into this snapshot
    ]);
    expect([...folded.record.keys()].sort()).toEqual([1, 3]);
    expect(folded.lastMsgId).toBe(12);
  });

  it('compaction at any point gives the same record as folding every delta (property)', () => {
    const op = fc.record({ add: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 5 }), remove: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 5 }) });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), fc.nat(), (ops, cut) => {
        const deltas = ops.map((o, i) => delta(2, i + 1, o.add, o.remove));
        const all = foldRecord({ session: 2, lastMsgId: 0, entries: [] }, deltas);
        const k = cut % (deltas.length + 1);
        const head = foldRecord({ session: 2, lastMsgId: 0, entries: [] }, deltas.slice(0, k));
        const snapshot = { session: 2, lastMsgId: k, entries: [...head.record].map(([id, n]) => ({ id, name: n })) };
        // The reader still lists the folded deltas (deleted after the snapshot).
        const after = foldRecord(snapshot, deltas);
        expect([...after.record].sort()).toEqual([...all.record].sort());
        expect(after.lastMsgId).toBe(all.lastMsgId);
      }),
      { numRuns: 200 },
    );
  });
});
