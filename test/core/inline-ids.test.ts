// Inline blob ids (src/core/durable.ts): "i" and 31 hex digits, unique, and
// ordered by creation time (the clock digits keep a commit's new bodies
// together in lmdb's inline sub-db).

import { describe, expect, it } from 'vitest';
import { isInlineBlobId, newInlineBlobId, newInlineBlobIds } from '../../src/core/durable.ts';

const shape = /^i[0-9a-f]{31}$/;

describe('inline blob ids', () => {
  it('are "i" and 31 hex digits, all distinct', () => {
    const ids = [...newInlineBlobIds(500), ...Array.from({ length: 500 }, () => newInlineBlobId())];
    for (const id of ids) {
      expect(id).toMatch(shape);
      expect(isInlineBlobId(id)).toBe(true);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('made in a later millisecond sort after those made before', async () => {
    const before = [...newInlineBlobIds(64), newInlineBlobId()];
    const start = Date.now();
    for (let i = 0; i < 100 && Date.now() === start; i++) await new Promise((r) => setTimeout(r, 2));
    const after = [...newInlineBlobIds(64), newInlineBlobId()];
    const lastBefore = [...before].sort().at(-1)!;
    for (const id of after) expect(id > lastBefore).toBe(true);
  });
});
